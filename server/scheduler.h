#ifndef DISTILL_SERVER_SCHEDULER_H_
#define DISTILL_SERVER_SCHEDULER_H_

#include <atomic>
#include <deque>
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
#include "common/api.h"
#include "common/run_status.h"
#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/worker_service.pb.h"
#include "server/clock.h"
#include "server/metrics.h"
#include "server/run_file_store.h"
#include "server/store.h"
#include "server/watch_hub.h"

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
  // The first event's history: at most this many points of each key,
  // spread evenly (0: kHistoryPointsPerKey).
  int64_t history_points_per_key = 0;
  int64_t metric_sequence = 0;
  v1::RunStatus status = v1::RUN_STATUS_UNSPECIFIED;
};

// Metric points written in one group commit, at most (one report may be
// larger: it goes alone).
inline constexpr int64_t kPointsPerIngestGroup = 200'000;

// One page of a listing and the token of the next (empty at the end).
struct RunPage {
  std::vector<v1::Run> runs;
  std::string next_page_token;
};

struct WorkerPage {
  std::vector<v1::Worker> workers;
  std::string next_page_token;
};

struct TokenPage {
  std::vector<TokenRecord> tokens;
  std::string next_page_token;
};

struct MetricPage {
  std::vector<v1::MetricPoint> points;
  std::string next_page_token;
};

// The coordinator's core: the run queue, leases and their fencing, sweep
// dependencies, metrics and checkpoint records. Knows nothing of gRPC.
// Thread-safe: one mutex serialises every change; reads go to their own
// SQLite connections and never wait for it; metric reports are written in
// groups; the watch hub tells long-polls when the queue changes and
// watchers when their run does (nothing here waits: the services do).
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
  // A page of the runs that pass the filters, in id order; `page_token`
  // from the previous page (same filters), `page_size` 0 for the default.
  absl::StatusOr<RunPage> ListRunsPage(int64_t sweep_id, v1::RunStatus status,
                                       const std::string& page_token,
                                       int page_size);
  // A page of the runs that pass the request's filters, in id order or by
  // its sort; the filters run in SQL (Store::FindRuns).
  absl::StatusOr<RunPage> FindRuns(const v1::ListRunsRequest& request);
  // The newest `limit` sweeps and runs (the live pages' index).
  absl::StatusOr<std::vector<v1::Sweep>> RecentSweeps(int limit);
  absl::StatusOr<std::vector<v1::Run>> RecentRuns(int limit);
  // A run file's whole content, at most `max_bytes` (OUT_OF_RANGE beyond).
  absl::StatusOr<std::string> ReadRunFile(int64_t run_id,
                                          const std::string& name,
                                          size_t max_bytes);
  // A page of the run's full metric history, oldest first (for CSV).
  absl::StatusOr<MetricPage> MetricHistory(int64_t run_id,
                                           const std::string& page_token,
                                           int page_size);
  // The run's event for a watcher at `cursor`, or nullopt when nothing
  // changed since; advances the cursor. Never waits.
  absl::StatusOr<std::optional<v1::RunEvent>> PollRunEvent(int64_t run_id,
                                                           WatchCursor* cursor);
  // Where watchers subscribe to a run's changes, and long-polls to
  // kQueueChanges (a run queued, a worker drained).
  WatchHub& watch_hub() { return hub_; }
  static constexpr int64_t kQueueChanges = 0;  // No run has id 0.
  bool shutting_down() const { return shutting_down_; }
  absl::StatusOr<v1::Run> CancelRun(int64_t id);
  // `sweep` is an id or a name (the newest of that name). CancelSweep ends
  // every run of it that has not ended, CANCELLED; RetrySweep queues again,
  // as new runs with the same member names, the members whose newest run
  // FAILED or was CANCELLED, and first the sweep's own teacher when that
  // did not succeed. Each returns the runs it touched.
  absl::StatusOr<v1::SweepActionResponse> CancelSweep(const std::string& sweep);
  absl::StatusOr<v1::SweepActionResponse> RetrySweep(const std::string& sweep);
  // `sweep` is an id or a name (the newest sweep of that name).
  absl::StatusOr<v1::SweepResults> SweepResults(const std::string& sweep);
  // Tags and the note of a run or a sweep: the request's changes, checked
  // (names, sizes, at most kMaxTags) and applied together, or none.
  absl::StatusOr<v1::AnnotateResponse> Annotate(
      const v1::AnnotateRequest& request);

  // --- Workers ---
  // Each call names the token it came with (`caller`, a token id; 0 on a
  // coordinator without tokens). A worker belongs to the token it
  // registered with, and every call about a leased run must come from the
  // token of the worker that holds the lease: PERMISSION_DENIED otherwise.
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request, int64_t caller = 0);
  // The oldest queued run, leased to `worker_id`, or no run; never waits
  // (a long-poll asks again when the hub's kQueueChanges fires).
  absl::StatusOr<v1::LeaseRunResponse> LeaseRun(const std::string& worker_id,
                                                int64_t caller = 0);
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(
      const v1::HeartbeatRequest& request, int64_t caller = 0);
  // `response`, when given, says whether the report ended the attempt.
  absl::Status ReportMetrics(const v1::ReportMetricsRequest& request,
                             int64_t caller = 0,
                             v1::ReportMetricsResponse* response = nullptr);
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
  // A page of them, newest first.
  absl::StatusOr<WorkerPage> ListWorkersPage(const std::string& page_token,
                                             int page_size);
  // The worker stops leasing and hands its run back (its next heartbeat or
  // long-poll tells it).
  absl::StatusOr<v1::Worker> DrainWorker(const std::string& id);

  // --- Tokens (kept here so that one mutex serialises the store) ---
  // Stores `token` and returns it with its id.
  absl::StatusOr<TokenRecord> InsertToken(TokenRecord token);
  absl::StatusOr<std::vector<TokenRecord>> ListTokens();
  // A page of them, in id order.
  absl::StatusOr<TokenPage> ListTokensPage(const std::string& page_token,
                                           int page_size);
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
  // LeaseRun but the fsync of a grant: `*sync_upto` says which commit.
  absl::StatusOr<v1::LeaseRunResponse> LeaseRunLocked(
      const std::string& worker_id, int64_t caller, int64_t* sync_upto);
  // The run when `attempt` holds its lease and `caller` is the token of the
  // worker holding it.
  absl::StatusOr<v1::Run> CurrentLease(int64_t run_id, int32_t attempt,
                                       int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Workers newest first with the runs they hold: at most `limit` (0:
  // all) registered before `before_row` (0: from the newest).
  absl::StatusOr<std::vector<v1::Worker>> ReadWorkers(int64_t before_row,
                                                      int64_t limit);
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
  // Removes the files of orphaned_ (after the transaction that left them
  // without a record committed).
  void RemoveOrphaned() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inside a transaction, after `points` of `run` were stored: when they
  // judge an epoch and the run's sweep stops members early, asks its rule
  // about the run's member (its seeds as one) and, if the rule says so,
  // ends the run and its member's other seeds not yet ended PRUNED, with
  // the reason in `stop_reason`.
  absl::Status StopEarlyIfBehind(v1::Run& run,
                                 const std::vector<v1::MetricPoint>& points,
                                 std::string* stop_reason)
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
  // Wakes long-polling workers: the queue (or a drain) changed.
  void QueueChanged() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tells the run's watchers, once mu_ is released (after the change
  // committed: watchers read on their own connections).
  void RunChanged(int64_t run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    changed_runs_.push_back(run_id);
  }
  // Holds mu_; on release, tells the watchers of the runs that changed.
  class ABSL_SCOPED_LOCKABLE Locked {
   public:
    explicit Locked(Scheduler* scheduler)
        ABSL_EXCLUSIVE_LOCK_FUNCTION(scheduler->mu_)
        : scheduler_(scheduler) {
      scheduler_->mu_.Lock();
    }
    ~Locked() ABSL_UNLOCK_FUNCTION() {
      std::vector<int64_t> changed;
      changed.swap(scheduler_->changed_runs_);
      if (scheduler_->queue_changed_) changed.push_back(kQueueChanges);
      scheduler_->queue_changed_ = false;
      scheduler_->mu_.Unlock();
      for (int64_t run_id : changed) scheduler_->hub_.Notify(run_id);
    }
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

   private:
    Scheduler* const scheduler_;
  };

  // A reader connection (or none, for an in-memory database), then back.
  std::unique_ptr<Store> TakeReader();
  void ReturnReader(std::unique_ptr<Store> reader);
  // Runs `fn` on a snapshot: a reader connection's, or the writer's under
  // mu_ when there are no readers.
  absl::Status Read(const std::function<absl::Status(Store&)>& fn);

  // A ReportMetrics call waiting to be written with others (group
  // commit, as leveldb's DBImpl::Write).
  struct IngestBatch {
    const v1::ReportMetricsRequest* request;
    int64_t caller;
    absl::Status status;
    std::string stop_reason;  // The report's epoch pruned the run: why.
    bool done = false;
  };
  // Writes the batches in one transaction; each gets its status.
  void WriteGroup(const std::vector<IngestBatch*>& group);

  Store* const store_;
  RunFileStore* const run_files_;
  Clock* const clock_;
  const SchedulerOptions options_;

  WatchHub hub_;

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Store>> readers_ ABSL_GUARDED_BY(readers_mu_);
  bool no_readers_ ABSL_GUARDED_BY(readers_mu_) = false;

  absl::Mutex ingest_mu_;
  absl::CondVar ingest_done_;
  std::deque<IngestBatch*> ingest_queue_ ABSL_GUARDED_BY(ingest_mu_);

  absl::Mutex mu_;
  // Raised by each registration: worker ids stay unique within a ms.
  int64_t version_ ABSL_GUARDED_BY(mu_) = 0;
  std::atomic<bool> shutting_down_{false};
  std::vector<std::string> orphaned_ ABSL_GUARDED_BY(mu_);
  std::vector<int64_t> changed_runs_ ABSL_GUARDED_BY(mu_);
  bool queue_changed_ ABSL_GUARDED_BY(mu_) = false;
  // Worker id -> the token it registered with (a cache of the store's).
  absl::flat_hash_map<std::string, int64_t> worker_tokens_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULER_H_
