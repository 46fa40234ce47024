#ifndef DISTILL_SERVER_SCHEDULING_SCHEDULER_H_
#define DISTILL_SERVER_SCHEDULING_SCHEDULER_H_

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/api.h"
#include "common/run_status.h"
#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/worker_service.pb.h"
#include "server/scheduling/annotations.h"
#include "server/scheduling/ingest.h"
#include "server/scheduling/leases.h"
#include "server/scheduling/reads.h"
#include "server/scheduling/retention.h"
#include "server/scheduling/runs.h"
#include "server/scheduling/scheduler_core.h"
#include "server/scheduling/shares.h"
#include "server/scheduling/sweeps.h"
#include "server/scheduling/tokens.h"
#include "server/scheduling/uploads.h"

namespace distill {

// The coordinator's core, as the services, the pages and main see it: the
// run queue, leases and their fencing, sweep dependencies, metrics and run
// files, tokens. Knows nothing of gRPC. A facade and only that: each call
// forwards to the room that owns the concern (runs.h, sweeps.h, leases.h,
// ingest.h, reads.h, uploads.h, annotations.h, retention.h, shares.h,
// tokens.h), the rooms sharing one SchedulerCore, whose one mutex serialises
// every change; reads go to their own SQLite connections and never wait
// for it; metric reports are written in groups; the watch hub tells
// long-polls when the queue changes and watchers when their run does
// (nothing here waits: the services do). Thread-safe.
class Scheduler {
 public:
  static constexpr int64_t kQueueChanges = SchedulerCore::kQueueChanges;

  // Does not take ownership; all three must outlive the scheduler.
  Scheduler(Store* store, RunFileStore* run_files, Clock* clock,
            SchedulerOptions options = {});

  // --- Experiments (researchers) ---
  // Owned by `who` (the caller's token; an admin without tokens).
  absl::StatusOr<v1::Run> SubmitRun(const v1::ExperimentSpec& spec,
                                    const Requester& who = {}) {
    return core_.Durable(runs_.Submit(spec, who));
  }
  absl::StatusOr<v1::SubmitSweepResponse> SubmitSweep(
      const v1::SweepSpec& spec, const Requester& who = {}) {
    return core_.Durable(sweeps_.Submit(spec, who));
  }
  absl::StatusOr<v1::Run> GetRun(int64_t id) { return reads_.GetRun(id); }
  absl::StatusOr<std::vector<v1::Run>> ListRuns(int64_t sweep_id,
                                                v1::RunStatus status) {
    return reads_.ListRuns(sweep_id, status);
  }
  // A page of the runs of a sweep and status, in id order; `page_token`
  // from the previous page, `page_size` 0 for the default.
  absl::StatusOr<RunPage> ListRunsPage(int64_t sweep_id, v1::RunStatus status,
                                       const std::string& page_token,
                                       int page_size) {
    return reads_.ListRunsPage(sweep_id, status, page_token, page_size);
  }
  absl::StatusOr<RunPage> FindRuns(const v1::ListRunsRequest& request) {
    return reads_.FindRuns(request);
  }
  absl::StatusOr<std::vector<v1::Sweep>> RecentSweeps(int limit) {
    return reads_.RecentSweeps(limit);
  }
  absl::StatusOr<std::vector<v1::Run>> RecentRuns(int limit) {
    return reads_.RecentRuns(limit);
  }
  absl::StatusOr<std::string> ReadRunFile(int64_t run_id,
                                          const std::string& name,
                                          size_t max_bytes) {
    return uploads_.ReadWhole(run_id, name, max_bytes);
  }
  absl::StatusOr<MetricPage> MetricHistory(int64_t run_id,
                                           const std::string& page_token,
                                           int page_size) {
    return reads_.MetricHistory(run_id, page_token, page_size);
  }
  absl::StatusOr<std::optional<v1::RunEvent>> PollRunEvent(
      int64_t run_id, WatchCursor* cursor) {
    return reads_.PollRunEvent(run_id, cursor);
  }
  // Where watchers subscribe to a run's changes, and long-polls to
  // kQueueChanges (a run queued, a worker drained).
  WatchHub& watch_hub() { return core_.hub(); }
  bool shutting_down() const { return core_.shutting_down(); }
  // A researcher may cancel, retry, tag and note only their own runs and
  // sweeps (PERMISSION_DENIED naming the owner); an admin any.
  absl::StatusOr<v1::Run> CancelRun(int64_t id, const Requester& who = {}) {
    return core_.Durable(runs_.Cancel(id, who));
  }
  absl::StatusOr<v1::SweepActionResponse> CancelSweep(
      const std::string& sweep, const Requester& who = {}) {
    return core_.Durable(sweeps_.Cancel(sweep, who));
  }
  absl::StatusOr<v1::SweepActionResponse> RetrySweep(
      const std::string& sweep, const Requester& who = {}) {
    return core_.Durable(sweeps_.Retry(sweep, who));
  }
  absl::StatusOr<v1::SweepResults> SweepResults(const std::string& sweep) {
    return sweeps_.Results(sweep);
  }
  absl::StatusOr<v1::AnnotateResponse> Annotate(
      const v1::AnnotateRequest& request, const Requester& who = {}) {
    return core_.Durable(annotations_.Annotate(request, who));
  }

  // --- Workers (each call names its token: `caller`, 0 without tokens) ---
  absl::StatusOr<v1::RegisterWorkerResponse> RegisterWorker(
      const v1::RegisterWorkerRequest& request, int64_t caller = 0) {
    return core_.Durable(leases_.Register(request, caller));
  }
  absl::StatusOr<v1::LeaseRunResponse> LeaseRun(const std::string& worker_id,
                                                int64_t caller = 0) {
    return leases_.Lease(worker_id, caller);
  }
  absl::StatusOr<v1::HeartbeatResponse> Heartbeat(
      const v1::HeartbeatRequest& request, int64_t caller = 0) {
    return core_.Durable(leases_.Heartbeat(request, caller));
  }
  absl::Status ReportMetrics(const v1::ReportMetricsRequest& request,
                             int64_t caller = 0,
                             v1::ReportMetricsResponse* response = nullptr) {
    return core_.Durable(ingest_.Report(request, caller, response));
  }
  absl::StatusOr<std::unique_ptr<RunFileWriter>> BeginUpload(
      const v1::RunFileHeader& header, int64_t caller = 0) {
    return uploads_.Begin(header, caller);
  }
  absl::Status FinishUpload(const v1::RunFileHeader& header,
                            RunFileWriter& writer, int64_t caller = 0) {
    return core_.Durable(uploads_.Finish(header, writer, caller));
  }
  absl::StatusOr<std::unique_ptr<RunFileReader>> OpenRunFile(
      int64_t run_id, const std::string& name) {
    return uploads_.Open(run_id, name);
  }
  absl::StatusOr<std::unique_ptr<RunFileReader>> OpenRunFileByDigest(
      const std::string& sha256, int64_t caller = 0) {
    return uploads_.OpenByDigest(sha256, caller);
  }
  absl::Status CompleteRun(const v1::CompleteRunRequest& request,
                           int64_t caller = 0) {
    return core_.Durable(leases_.Complete(request, caller));
  }
  absl::Status FailRun(const v1::FailRunRequest& request, int64_t caller = 0) {
    return core_.Durable(leases_.Fail(request, caller));
  }
  absl::Status ReleaseRun(const v1::ReleaseRunRequest& request,
                          int64_t caller = 0) {
    return core_.Durable(leases_.Release(request, caller));
  }
  absl::Status Deregister(const std::string& worker_id, int64_t caller = 0) {
    return core_.Durable(leases_.Deregister(worker_id, caller));
  }

  // --- Workers, as operators see them ---
  absl::StatusOr<std::vector<v1::Worker>> ListWorkers() {
    return reads_.Workers(0, 0);
  }
  absl::StatusOr<WorkerPage> ListWorkersPage(const std::string& page_token,
                                             int page_size) {
    return reads_.WorkersPage(page_token, page_size);
  }
  // Why no new run is leased now (server/base/disk_guard.h); empty while runs
  // are.
  std::string LeasingPaused() { return core_.disk().LeasingPaused(); }
  // The worker stops leasing and hands its run back (its next heartbeat or
  // long-poll tells it).
  absl::StatusOr<v1::Worker> DrainWorker(const std::string& id) {
    return core_.Durable(leases_.Drain(id));
  }

  // --- Tokens (server/scheduling/tokens.h) ---
  // Tokens on: see Tokens::Require. Call before the services start.
  absl::Status RequireTokens(const TokenFiles& files) {
    return tokens_.Require(files);
  }
  // What the services and the pages check each call against.
  const Authenticator& authenticator() const { return tokens_.authenticator(); }
  absl::StatusOr<std::pair<TokenRecord, std::string>> IssueToken(
      const std::string& name, v1::Role role) {
    return tokens_.Issue(name, role);
  }
  absl::StatusOr<TokenRecord> InsertToken(TokenRecord token,
                                          bool unique_name = true) {
    return tokens_.Insert(std::move(token), unique_name);
  }
  absl::StatusOr<std::vector<TokenRecord>> ListTokens() {
    return tokens_.List();
  }
  absl::StatusOr<TokenPage> ListTokensPage(const std::string& page_token,
                                           int page_size) {
    return tokens_.ListPage(page_token, page_size);
  }
  absl::StatusOr<TokenRecord> RevokeToken(int64_t id,
                                          const std::string& name = "") {
    return tokens_.Revoke(id, name);
  }

  // --- Fair share (server/scheduling/fair_share.h, shares.h) ---
  // An admin's: an owner's shares and cap on running runs.
  absl::StatusOr<v1::Owner> SetOwnerPolicy(
      const v1::SetOwnerPolicyRequest& request) {
    return shares_.SetPolicy(request);
  }
  absl::StatusOr<v1::ListOwnersResponse> ListOwners() { return shares_.List(); }

  // Queues again, or fails as LOST, every run whose lease expired; accrues
  // owners' GPU time and plans preemptions (the coordinator's 1 s tick).
  absl::Status ExpireLeases() { return core_.Durable(leases_.Expire()); }
  // Workers stopped longer than SchedulerOptions says leave the listings.
  absl::StatusOr<int64_t> ForgetStoppedWorkers() {
    return core_.Durable(leases_.ForgetStopped());
  }
  // The leases of workers whose host name starts with `prefix` (a cluster
  // job that ended) expire now: their runs are queued again (or LOST).
  // Returns how many.
  absl::StatusOr<int> ExpireLeasesOfHosts(const std::string& prefix) {
    return core_.Durable(leases_.ExpireHosts(prefix));
  }
  // The run files the retention policies drop (server/scheduling/retention.h):
  // listed with dry_run, else dropped, `pause` between writes.
  absl::StatusOr<v1::CollectGarbageResponse> CollectGarbage(
      const v1::CollectGarbageRequest& request,
      absl::Duration pause = absl::Milliseconds(20)) {
    return core_.Durable(request.dry_run()
                             ? retention_.Plan(request.sweep())
                             : retention_.Collect(request.sweep(), pause));
  }

  // Sets options.metrics' gauges: runs by status, workers by state.
  absl::Status RefreshGauges() { return reads_.RefreshGauges(); }

  // Wakes every waiter; later long-polls return at once.
  void Shutdown();

 private:
  SchedulerCore core_;
  Reads reads_{core_};
  Sweeps sweeps_{core_};
  Runs runs_{core_};
  Leases leases_{core_, reads_};
  Ingest ingest_{core_, sweeps_};
  Uploads uploads_{core_};
  Annotations annotations_{core_};
  Retention retention_{core_};
  Shares shares_{core_};
  Tokens tokens_{core_};
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_SCHEDULER_H_
