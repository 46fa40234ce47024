// Sweeps: a spec expanded into its teachers and members (each member
// waiting for its own teacher), cancelled or retried as a whole, its
// results in Table 1's shape, and its members stopped early by its rule
// (common/early_stopping.h) as their epochs are judged. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_SWEEPS_H_
#define DISTILL_SERVER_SCHEDULING_SWEEPS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/sweep_expansion.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

class Sweeps {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Sweeps(SchedulerCore& core) : core_(core) {}

  // Owned by `who`; INVALID_ARGUMENT when a researcher's priority is above
  // SchedulerOptions::max_priority.
  absl::StatusOr<v1::SubmitSweepResponse> Submit(const v1::SweepSpec& spec,
                                                 const Requester& who);
  // `ref` is an id or a name (the newest of that name). Cancel ends every
  // run of it not ended; Retry queues again, as new runs of the same
  // names, the members whose newest run failed or was cancelled, and first
  // the sweep's own teacher when that did not succeed.
  // PERMISSION_DENIED naming the owner unless `who` may change the sweep.
  absl::StatusOr<v1::SweepActionResponse> Cancel(const std::string& ref,
                                                 const Requester& who);
  absl::StatusOr<v1::SweepActionResponse> Retry(const std::string& ref,
                                                const Requester& who);
  absl::StatusOr<v1::SweepResults> Results(const std::string& ref);

  // Inside a transaction, after `points` of `run` were stored: when they
  // judge an epoch and the run's sweep stops members early, asks its rule
  // about the run's member (its seeds as one) and, if the rule says so,
  // ends the run and its member's other seeds not yet ended PRUNED, with
  // the reason in `stop_reason`.
  absl::Status StopEarlyIfBehindLocked(
      const Locked& lock, v1::Run& run,
      const std::vector<v1::MetricPoint>& points, std::string* stop_reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  // For a collaborator that shares this core and holds its lock: says so
  // to the analysis (which cannot see that the two cores are one).
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK(core_.mutex()) {
    core_.AssertHeld();
  }

 private:
  // With fork.sweep_id, each member of `expanded` starts from the newest
  // SUCCEEDED run of its name in that sweep (FAILED_PRECONDITION naming a
  // member that has none, or whose fork CheckForkLocked refuses).
  absl::Status ForkMembersLocked(const Locked& lock, const v1::SweepFork& fork,
                                 ExpandedSweep& expanded)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // The sweep's teachers, each name's newest run queued again when it did
  // not succeed; returns name -> the run now.
  absl::StatusOr<absl::flat_hash_map<std::string, int64_t>> RetryTeachersLocked(
      const Locked& lock, const v1::Sweep& sweep,
      const std::vector<v1::Run>& runs, v1::SweepActionResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_SWEEPS_H_
