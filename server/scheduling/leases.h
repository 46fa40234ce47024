// Workers and the leases of their runs: registration, the lease itself
// (with the provenance of the attempt), heartbeats, the end of an attempt
// (complete, fail, hand back), expiry, drain and deregistration. Each call
// names the token it came with (`caller`; 0 without tokens); every call
// about a leased run must come from the token of the worker holding it.
// Thread-safe; writes under the core's mutex.
#ifndef DISTILL_SERVER_SCHEDULING_LEASES_H_
#define DISTILL_SERVER_SCHEDULING_LEASES_H_

#include <string>

#include "absl/status/statusor.h"
#include "distill/v1/worker_service.pb.h"
#include "server/scheduling/preemption.h"
#include "server/scheduling/reads.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

class Leases {
 public:
  // Does not take ownership; `core` and `reads` must outlive it.
  Leases(SchedulerCore& core, const Reads& reads)
      : core_(core), reads_(reads), last_accrual_ms_(core.clock().NowMs()) {}

  absl::StatusOr<v1::RegisterWorkerResponse> Register(
      const v1::RegisterWorkerRequest& request, int64_t caller);
  // The oldest queued run (or the one the worker already holds), leased
  // to `worker_id` and on disk before this returns; or no run, or the
  // request to drain.
  absl::StatusOr<v1::LeaseRunResponse> Lease(const std::string& worker_id,
                                             int64_t caller);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(
      const v1::HeartbeatRequest& request, int64_t caller);
  absl::Status Complete(const v1::CompleteRunRequest& request, int64_t caller);
  absl::Status Fail(const v1::FailRunRequest& request, int64_t caller);
  // QUEUED at once with its resume point; not counted as a restart.
  absl::Status Release(const v1::ReleaseRunRequest& request, int64_t caller);
  absl::Status Deregister(const std::string& worker_id, int64_t caller);
  // Stops leasing to the worker; its run is handed back at its next call.
  // Returns the worker as listings show it.
  absl::StatusOr<v1::Worker> Drain(const std::string& worker_id);

  // Forgets the workers stopped longer than the options say; how many.
  absl::StatusOr<int64_t> ForgetStopped();
  // Queues again, or fails as LOST, every run whose lease expired; then
  // accrues GPU time and plans preemptions (AccrueLocked). The
  // coordinator calls it once a second.
  absl::Status Expire();
  absl::Status ExpireLocked(const Locked& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // Adds the GPU time each owner's running runs used since the last call
  // (at most every kAccrualIntervalMs) and decays what was used before;
  // then looks for a run to preempt.
  absl::Status AccrueLocked(const Locked& lock)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  static constexpr int64_t kAccrualIntervalMs = 1000;
  // The leases of workers whose host name starts with `prefix` expire now,
  // and those workers read as stopped (their job ended: none of them will
  // call again, and none is idle for a launcher to count on).
  absl::StatusOr<int> ExpireHosts(const std::string& prefix);

 private:
  // Lease but the fsync (Lease makes it durable once the lock is
  // released).
  absl::StatusOr<v1::LeaseRunResponse> Grant(const std::string& worker_id,
                                             int64_t caller);
  // The worker's record, seen now, when `caller` registered it and it has
  // not stopped.
  absl::StatusOr<WorkerRecord> SeenLocked(const Locked& lock,
                                          const std::string& worker_id,
                                          int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());
  // `run` leased to `worker` (again, when `again`): status, attempt,
  // provenance, the checkpoints and resume point it starts from, written.
  absl::Status GrantLocked(const Locked& lock, v1::Run& run,
                           WorkerRecord& worker, bool again,
                           v1::LeaseRunResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  // A fork's first attempt starts from its parent: the parent's
  // checkpoint as the student's, or (continuing) its final state as the
  // resume point.
  absl::Status ForkStartLocked(const Locked& lock, v1::Run& run,
                               v1::LeaseRunResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  SchedulerCore& core_;
  const Reads& reads_;
  // Raised by each registration: worker ids stay unique within a ms.
  int64_t registrations_ ABSL_GUARDED_BY(core_.mutex()) = 0;
  // Which runs are asked to give way (server/scheduling/preemption.h).
  Preemption preemption_{core_};
  // When GPU time was last accrued (AccrueLocked; first, the start).
  int64_t last_accrual_ms_ ABSL_GUARDED_BY(core_.mutex());
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_LEASES_H_
