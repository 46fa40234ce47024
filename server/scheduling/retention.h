// What the coordinator keeps of its runs' files over the years (README
// "Retention"): each sweep's policy (its spec's retention, or the
// coordinator's --keep_best) keeps the checkpoints of its best students
// and of runs tagged `keep`; the checkpoints and resume points of failed,
// cancelled and pruned runs, and of the succeeded students outside the
// best, go. A teacher's checkpoint is never dropped, nor one a waiting,
// queued or running run starts from; metrics, results, t-SNE files and
// provenance always stay. Thread-safe; one pass at a time.
#ifndef DISTILL_SERVER_SCHEDULING_RETENTION_H_
#define DISTILL_SERVER_SCHEDULING_RETENTION_H_

#include <atomic>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "distill/v1/admin_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

// The tag that keeps a run's (or every run of a sweep's) checkpoint.
inline constexpr char kKeepTag[] = "keep";

class Retention {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Retention(SchedulerCore& core) : core_(core) {}

  // What the policies drop now of `sweep_ref`'s runs (by id or name; every
  // run's when empty), read from a snapshot; nothing changes.
  absl::StatusOr<v1::CollectGarbageResponse> Plan(const std::string& sweep_ref);

  // Drops what Plan lists, a few files per write with `pause` between
  // (leases and reports wait for one small write at a time), each checked
  // again at its write: a run tagged `keep`, or needed by a new run, since
  // the plan keeps its files. UNAVAILABLE while another pass runs.
  absl::StatusOr<v1::CollectGarbageResponse> Collect(
      const std::string& sweep_ref, absl::Duration pause);

 private:
  // Within Write: drops `items`, each checked again, into `batch` (what
  // went and the bytes freed).
  absl::Status DropLocked(const Locked& lock,
                          const std::vector<v1::DroppedRunFile>& items,
                          v1::CollectGarbageResponse* batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  SchedulerCore& core_;
  std::atomic<bool> in_pass_{false};  // A Collect is running.
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_RETENTION_H_
