// Runs one at a time, as a researcher submits and cancels them (a sweep's
// runs: server/scheduling/sweeps.h). Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_RUNS_H_
#define DISTILL_SERVER_SCHEDULING_RUNS_H_

#include <cstdint>

#include "absl/status/statusor.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

class Runs {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Runs(SchedulerCore& core) : core_(core) {}

  // The spec resolved and validated, queued (or WAITING behind its
  // teacher run) and owned by `who`. An EVALUATE run's student must be a
  // SUCCEEDED DISTILL run whose checkpoint is kept.
  absl::StatusOr<v1::Run> Submit(const v1::ExperimentSpec& spec,
                                 const Requester& who);
  // Ends the run CANCELLED; PERMISSION_DENIED naming the owner unless `who`
  // may change it, FAILED_PRECONDITION when it already ended.
  absl::StatusOr<v1::Run> Cancel(int64_t id, const Requester& who);

 private:
  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_RUNS_H_
