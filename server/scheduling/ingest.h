// Metric reports from the workers holding runs: each checked whole, then
// written in groups (one transaction and one fsync for every report queued
// behind the first, as leveldb's DBImpl::Write), each report's epochs then
// judged by its sweep's early-stopping rule. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_INGEST_H_
#define DISTILL_SERVER_SCHEDULING_INGEST_H_

#include <deque>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "distill/v1/worker_service.pb.h"
#include "server/scheduling/scheduler_core.h"
#include "server/scheduling/sweeps.h"

namespace distill {

// Metric points written in one group commit, at most (one report may be
// larger: it goes alone).
inline constexpr int64_t kPointsPerIngestGroup = 200'000;

// A metric point or result: a key of bounded length and a finite value;
// INVALID_ARGUMENT naming `where` otherwise.
absl::Status CheckMetric(const std::string& where, const std::string& key,
                         double value);

class Ingest {
 public:
  // Does not take ownership; both must outlive it.
  Ingest(SchedulerCore& core, Sweeps& sweeps) : core_(core), sweeps_(sweeps) {}

  // Stores the report's points and provenance once its lease is checked;
  // on disk before this returns. `response`, when given, says whether the
  // report ended the attempt (its sweep's rule pruned the run).
  absl::Status Report(const v1::ReportMetricsRequest& request, int64_t caller,
                      v1::ReportMetricsResponse* response);

 private:
  // A report waiting to be written with others.
  struct Batch {
    const v1::ReportMetricsRequest* request;
    int64_t caller;
    absl::Status status;
    std::string stop_reason;  // The report's epoch pruned the run: why.
    bool done = false;
  };
  // Writes the batches in one transaction; each gets its status.
  void WriteGroup(const std::vector<Batch*>& group);
  // One batch, inside the group's transaction: false when its lease is
  // gone (its status says why; the others go on).
  absl::StatusOr<bool> WriteBatchLocked(const Locked& lock, Batch& batch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  SchedulerCore& core_;
  Sweeps& sweeps_;
  absl::Mutex mu_;
  absl::CondVar done_;
  std::deque<Batch*> queue_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_INGEST_H_
