// Compiled by tests/thread_safety_test.sh with clang's -Wthread-safety
// -Werror=thread-safety: with -DUNGUARDED it reads the scheduler's store
// and calls a ...Locked method without the lock, and must not compile;
// without, it takes the lock first and must.
#include "server/scheduling/scheduler_core.h"

namespace distill {

absl::Status Touch(SchedulerCore& core, v1::Run& run) {
#ifdef UNGUARDED
  (void)core.store().GetRun(run.id());
  return absl::OkStatus();
#else
  Locked lock(&core);
  (void)core.store().GetRun(run.id());
  return core.Write([&] {
    core.AssertHeld();
    return core.RequeueLocked(lock, run, "again", /*released=*/false);
  });
#endif
}

}  // namespace distill
