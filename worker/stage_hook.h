// Where a test may step in before the worker talks to the coordinator about
// a run. The worker itself calls no hook: only test binaries link one
// (tests/paused_worker_main.cc, for tests/e2e_restart_test.sh).
#ifndef DISTILL_WORKER_STAGE_HOOK_H_
#define DISTILL_WORKER_STAGE_HOOK_H_

#include "absl/strings/string_view.h"

namespace distill {

class StageHook {
 public:
  virtual ~StageHook() = default;
  // Called right before the worker's call for `stage`: "fetch" (a teacher
  // or checkpoint download), "resume_upload", "upload", "complete" or
  // "fail". May block; the worker waits.
  virtual void Before(absl::string_view stage) = 0;
};

}  // namespace distill

#endif  // DISTILL_WORKER_STAGE_HOOK_H_
