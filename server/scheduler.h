#ifndef DISTILL_SERVER_SCHEDULER_H_
#define DISTILL_SERVER_SCHEDULER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/worker_service.pb.h"
#include "server/clock.h"
#include "server/metrics.h"
#include "server/run_file_store.h"
#include "server/store.h"

namespace distill {

struct SchedulerOptions {
  // A leased run whose worker sends no heartbeat for this long is queued
  // again (or FAILED, reason LOST, past its max_restarts).
  int64_t lease_duration_ms = 60'000;
  int64_t heartbeat_interval_ms = 10'000;
  // The largest run file a worker may upload (a ResNet-50 checkpoint with
  // its optimizer state is ~300 MB).
  int64_t max_run_file_bytes = int64_t{8} << 30;
  // Where leases, expiries and ingested points are counted; none when null.
  CoordinatorMetrics* metrics = nullptr;
};

// Where a watcher is in a run's history.
struct WatchCursor {
  bool started = false;
  bool include_history = false;
  int64_t metric_sequence = 0;
  v1::RunStatus status = v1::RUN_STATUS_UNSPECIFIED;
};

bool IsTerminal(v1::RunStatus status);

// The coordinator's core: the run queue, leases and their fencing, sweep
// dependencies, metrics and checkpoint records. Knows nothing of gRPC.
// Thread-safe: one mutex serialises every change, and a condition variable
// wakes long-polling workers and watchers.
class Scheduler {
 public:
  // Does not take ownership; all three must outlive the scheduler.
  Scheduler(Store* store, RunFileStore* run_files, Clock* clock,
            SchedulerOptions options = {});

  // --- Experiments (researchers) ---
  absl::StatusOr<v1::Run> SubmitRun(const v1::ExperimentSpec& spec);
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(
      const v1::SweepSpec& spec);
  absl::StatusOr<v1::Run> GetRun(int64_t id);
  absl::StatusOr<std::vector<v1::Run>> ListRuns(int64_t sweep_id,
                                                v1::RunStatus status);
  absl::StatusOr<v1::Run> CancelRun(int64_t id);
  // `sweep` is an id or a name (the newest sweep of that name).
  absl::StatusOr<v1::SweepResults> SweepResults(const std::string& sweep);
  // Waits until the run changed status or got metrics since `cursor`, or
  // until `deadline`. The first call returns the run at once (with its
  // history when cursor->include_history). nullopt on timeout.
  absl::StatusOr<std::optional<v1::RunEvent>> NextRunEvent(int64_t run_id,
                                                           WatchCursor* cursor,
                                                           absl::Time deadline);

  // --- Workers ---
  // Each call names the token it came with (`caller`, a token id; 0 on a
  // coordinator without tokens). A worker belongs to the token it
  // registered with, and every call about a leased run must come from the
  // token of the worker that holds the lease: PERMISSION_DENIED otherwise.
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request, int64_t caller = 0);
  // Long-poll: the oldest queued run, leased to `worker_id`, or
  // no run once `wait` passed.
  absl::StatusOr<v1::LeaseRunResponse> LeaseRun(const std::string& worker_id,
                                                absl::Duration wait,
                                                int64_t caller = 0);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(
      const v1::HeartbeatRequest& request, int64_t caller = 0);
  absl::Status ReportMetrics(const v1::ReportMetricsRequest& request,
                             int64_t caller = 0);
  // Checkpoint upload: Begin checks the lease, Finish verifies the digest
  // and the lease again, and records the file.
  absl::StatusOr<std::unique_ptr<RunFileWriter>> BeginUpload(
      const v1::RunFileHeader& header, int64_t caller = 0);
  absl::Status FinishUpload(const v1::RunFileHeader& header,
                            RunFileWriter& writer, int64_t caller = 0);
  // A file the run uploaded, by name ("checkpoint", "tsne.csv").
  absl::StatusOr<std::unique_ptr<RunFileReader>> OpenRunFile(
      int64_t run_id, const std::string& name);
  // A file by digest, for a worker: with tokens (`caller` != 0) only one a
  // run its worker holds needs — the run's own (its resume point), its
  // teacher's or its student's checkpoint. PERMISSION_DENIED otherwise.
  absl::StatusOr<std::unique_ptr<RunFileReader>> OpenRunFileByDigest(
      const std::string& sha256, int64_t caller = 0);
  absl::Status CompleteRun(const v1::CompleteRunRequest& request,
                           int64_t caller = 0);
  absl::Status FailRun(const v1::FailRunRequest& request, int64_t caller = 0);
  // The holder hands the run back (it drains): QUEUED at once, its resume
  // point kept; not counted as a restart.
  absl::Status ReleaseRun(const v1::ReleaseRunRequest& request,
                          int64_t caller = 0);
  // The worker stopped for good; `distill workers list` shows it stopped.
  absl::Status Deregister(const std::string& worker_id, int64_t caller = 0);

  // --- Workers, as operators see them ---
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers();
  // The worker stops leasing and hands its run back (its next heartbeat or
  // long-poll tells it).
  absl::StatusOr<v1::Worker> DrainWorker(const std::string& id);

  // --- Tokens (kept here so that one mutex serialises the store) ---
  // Stores `token` and returns it with its id.
  absl::StatusOr<TokenRecord> InsertToken(TokenRecord token);
  absl::StatusOr<std::vector<TokenRecord>> ListTokens();
  absl::StatusOr<TokenRecord> RevokeToken(int64_t id);

  // Queues again, or fails as LOST, every run whose lease expired.
  absl::Status ExpireLeases();
  // The leases of workers whose host name starts with `prefix` (a cluster
  // job that ended) expire now: their runs are queued again (or LOST).
  // Returns how many.
  absl::StatusOr<int> ExpireLeasesOfHosts(const std::string& prefix);
  // Sets options.metrics' gauges: runs by status, workers by state.
  absl::Status RefreshGauges();

  // Wakes every waiter; later long-polls return at once.
  void Shutdown();

 private:
  // The run when `attempt` holds its lease and `caller` is the token of the
  // worker holding it.
  absl::StatusOr<v1::Run> CurrentLease(int64_t run_id, int32_t attempt,
                                       int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The worker as listed, with its state ("idle", "running", "draining",
  // "lost", "stopped") and the run it holds (0: none).
  v1::Worker WorkerInfo(const WorkerRecord& record, int64_t run_id) const;
  // Whether `sha256` is the resume point, or the teacher's or student's
  // checkpoint, of a run `caller`'s worker holds.
  absl::StatusOr<bool> NeededByCaller(const std::string& sha256, int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // PERMISSION_DENIED unless `caller` registered the worker `run` names.
  absl::Status CheckHolder(const v1::Run& run, int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status ExpireLeasesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Runs `fn` in a store transaction; the files it left without a record
  // (orphaned_) are removed once it committed.
  absl::Status Transaction(const std::function<absl::Status()>& fn)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends `run`, drops its resume point (every file unless it succeeded),
  // and settles the runs waiting on it as a teacher.
  absl::Status Finish(v1::Run& run, v1::RunStatus status,
                      const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Run> InsertRun(v1::Run run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // WAITING or QUEUED for a run depending on `teacher`; an error when the
  // teacher cannot ever serve.
  absl::StatusOr<v1::RunStatus> StatusBehindTeacher(int64_t teacher_run_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Changed() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  RunFileStore* const run_files_;
  Clock* const clock_;
  const SchedulerOptions options_;

  absl::Mutex mu_;
  absl::CondVar changed_;
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> orphaned_ ABSL_GUARDED_BY(mu_);
  // Worker id -> the token it registered with (a cache of the store's).
  absl::flat_hash_map<std::string, int64_t> worker_tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULER_H_
