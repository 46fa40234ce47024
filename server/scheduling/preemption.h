// Preemption at a step (issue 31): when the run the queue would serve
// first waits and no free worker meets it, the coordinator asks one run
// that should give way to hand its worker back at its next step boundary —
// the drain path: its resume point uploaded, the run queued again at once,
// no work lost but the step under way, no restart counted — and the freed
// worker leases the waiting run (it comes first in the queue's order).
//
// A run gives way to one of higher priority; with --preemption=fair also,
// at equal priority, to an owner whose standing
// (server/scheduling/fair_share.h) is below the running owner's by
// --preempt_share_margin times. Against thrashing: a run holds its worker
// --preempt_after before it may be asked, a worker is asked at most once every
// --preempt_every, and one run waits for one ask at a time. The asks live in
// memory (a restarted coordinator asks again if it still must); each is
// recorded in the run's history. Thread-safe: under the scheduler's lock.
#ifndef DISTILL_SERVER_SCHEDULING_PREEMPTION_H_
#define DISTILL_SERVER_SCHEDULING_PREEMPTION_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

class Preemption {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Preemption(SchedulerCore& core) : core_(core) {}

  // For a collaborator that shares this core and holds its lock: says so
  // to the analysis (which cannot see that the two cores are one).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK(core_.mutex()) {
    core_.AssertHeld();
  }

  // Within the lock: `run_id` was leased now (its hold starts).
  void LeasedLocked(const SchedulerCore::Locked& lock, int64_t run_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // Why the attempt is asked to give way, when it is.
  std::optional<std::string> AskedLocked(const SchedulerCore::Locked& lock,
                                         int64_t run_id, int32_t attempt) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // Looks for a waiting run that should have a worker and a run to give
  // way to it; asks that one (recorded in its history). At most one ask a
  // call; called once a second.
  absl::Status PlanLocked(const SchedulerCore::Locked& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

 private:
  // Forgets the asks and holds of attempts no longer running.
  void ForgetEndedLocked(const std::vector<v1::Run>& running)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // Why running run `r` should give way to `waiting`, or "".
  std::string WhyGiveWayLocked(
      const v1::Run& r, const v1::Run& waiting,
      absl::flat_hash_map<std::string, double>& standing)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // The running run on a worker of `fitting` to give way, and why; none
  // when none may.
  const v1::Run* ChooseLocked(
      const v1::Run& waiting, const std::vector<v1::Run>& running,
      const absl::flat_hash_set<std::string>& fitting,
      absl::flat_hash_map<std::string, double>& standing, std::string* why)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  struct Ask {
    int32_t attempt = 0;
    int64_t for_run_id = 0;
    std::string reason;
  };

  SchedulerCore& core_;
  // Run -> when it was leased (this coordinator's clock).
  absl::flat_hash_map<int64_t, int64_t> leased_at_
      ABSL_GUARDED_BY(core_.mutex());
  // Run -> the ask it has to hand back.
  absl::flat_hash_map<int64_t, Ask> asked_ ABSL_GUARDED_BY(core_.mutex());
  // Worker -> when one of its runs was last asked.
  absl::flat_hash_map<std::string, int64_t> last_asked_on_
      ABSL_GUARDED_BY(core_.mutex());
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_PREEMPTION_H_
