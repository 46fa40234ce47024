#ifndef DISTILL_SERVER_RPC_SERVICES_H_
#define DISTILL_SERVER_RPC_SERVICES_H_

#include "common/task_pool.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "server/operations/backups.h"
#include "server/rpc/peer_limiter.h"
#include "server/scheduling/auth.h"
#include "server/scheduling/scheduler.h"

namespace distill {

// How many calls that stay open one caller (token, or host without
// tokens) may hold at once.
struct ServiceLimits {
  int watches_per_host = 64;
  int long_polls_per_host = 64;
  // Threads that read for every watch stream (and every long-poll)
  // together.
  int watch_threads = 2;
  // Threads that serve unary calls, per service.
  int call_threads = 8;
  // Threads that serve listings, at a lower priority.
  int bulk_threads = 4;
};

// Thin gRPC adapters over the scheduler: each handler first authorises
// the caller (server/scheduling/auth.h), then calls the scheduler, which
// resolves and validates what it is given (common/validation.h), and converts
// its status. Thread-safe; the scheduler and the authenticator must outlive
// them.
//
// What researchers call is served with the callback API (gRPC's
// route_guide_callback_server.cc): a watch is a ServerWriteReactor that the
// scheduler's watch hub wakes when its run changes, and that reads on a
// small task pool, so ten thousand watches hold no thread each.
class ExperimentServiceImpl final
    : public v1::ExperimentService::CallbackService {
 public:
  ExperimentServiceImpl(Scheduler* scheduler, const Authenticator* auth,
                        ServiceLimits limits = {})
      : scheduler_(scheduler),
        auth_(auth),
        watches_("watches", limits.watches_per_host),
        work_pool_(limits.call_threads),
        bulk_pool_(limits.bulk_threads, /*nice=*/10),
        watch_pool_(limits.watch_threads) {}

  grpc::ServerUnaryReactor* SubmitRun(grpc::CallbackServerContext* context,
                                      const v1::SubmitRunRequest* request,
                                      v1::Run* response) override;
  grpc::ServerUnaryReactor* SubmitSweep(
      grpc::CallbackServerContext* context,
      const v1::SubmitSweepRequest* request,
      v1::SubmitSweepResponse* response) override;
  grpc::ServerUnaryReactor* GetRun(grpc::CallbackServerContext* context,
                                   const v1::GetRunRequest* request,
                                   v1::Run* response) override;
  grpc::ServerUnaryReactor* ListRuns(grpc::CallbackServerContext* context,
                                     const v1::ListRunsRequest* request,
                                     v1::ListRunsResponse* response) override;
  grpc::ServerWriteReactor<v1::RunEvent>* WatchRun(
      grpc::CallbackServerContext* context,
      const v1::WatchRunRequest* request) override;
  grpc::ServerUnaryReactor* GetRunMetrics(
      grpc::CallbackServerContext* context,
      const v1::GetRunMetricsRequest* request,
      v1::GetRunMetricsResponse* response) override;
  grpc::ServerUnaryReactor* CancelSweep(
      grpc::CallbackServerContext* context, const v1::SweepRequest* request,
      v1::SweepActionResponse* response) override;
  grpc::ServerUnaryReactor* Annotate(grpc::CallbackServerContext* context,
                                     const v1::AnnotateRequest* request,
                                     v1::AnnotateResponse* response) override;
  grpc::ServerUnaryReactor* RetrySweep(
      grpc::CallbackServerContext* context, const v1::SweepRequest* request,
      v1::SweepActionResponse* response) override;
  grpc::ServerUnaryReactor* CancelRun(grpc::CallbackServerContext* context,
                                      const v1::CancelRunRequest* request,
                                      v1::Run* response) override;
  grpc::ServerUnaryReactor* GetSweepResults(
      grpc::CallbackServerContext* context,
      const v1::GetSweepResultsRequest* request,
      v1::SweepResults* response) override;
  grpc::ServerWriteReactor<v1::FileChunk>* DownloadRunFile(
      grpc::CallbackServerContext* context,
      const v1::DownloadRunFileRequest* request) override;
  grpc::ServerUnaryReactor* ListWorkers(
      grpc::CallbackServerContext* context,
      const v1::ListWorkersRequest* request,
      v1::ListWorkersResponse* response) override;
  grpc::ServerUnaryReactor* DrainWorker(grpc::CallbackServerContext* context,
                                        const v1::DrainWorkerRequest* request,
                                        v1::Worker* response) override;
  grpc::ServerUnaryReactor* ListOwners(
      grpc::CallbackServerContext* context,
      const v1::ListOwnersRequest* request,
      v1::ListOwnersResponse* response) override;

 private:
  // Who the caller is for the scheduler's ownership rules: its token's name
  // and whether it is an admin (anonymous and an admin without tokens).
  Requester RequesterOf(const Principal& caller) const;
  // `request` for `who`'s own runs (ListRunsRequest.mine).
  static v1::ListRunsRequest OwnRuns(const v1::ListRunsRequest& request,
                                     const Requester& who);
  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  PeerLimiter watches_;
  // Where unary calls do their work, and watch streams read; destroyed
  // after the server (the server shuts down before the services go).
  TaskPool work_pool_;
  // Listings (pages of runs, workers, metric history, sweep results): at a
  // lower priority, so that on a busy machine they do not hold up the
  // point reads and writes behind them.
  TaskPool bulk_pool_;
  TaskPool watch_pool_;
};

// What workers call, with the callback API too: a LeaseRun long-poll with
// nothing queued waits on the scheduler's queue changes without a thread.
class WorkerServiceImpl final : public v1::WorkerService::CallbackService {
 public:
  WorkerServiceImpl(Scheduler* scheduler, const Authenticator* auth,
                    ServiceLimits limits = {})
      : scheduler_(scheduler),
        auth_(auth),
        long_polls_("long polls", limits.long_polls_per_host),
        work_pool_(limits.call_threads),
        poll_pool_(limits.watch_threads) {}

  grpc::ServerUnaryReactor* RegisterWorker(
      grpc::CallbackServerContext* context,
      const v1::RegisterWorkerRequest* request,
      v1::RegisterWorkerResponse* response) override;
  grpc::ServerUnaryReactor* LeaseRun(grpc::CallbackServerContext* context,
                                     const v1::LeaseRunRequest* request,
                                     v1::LeaseRunResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(grpc::CallbackServerContext* context,
                                      const v1::HeartbeatRequest* request,
                                      v1::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* ReportMetrics(
      grpc::CallbackServerContext* context,
      const v1::ReportMetricsRequest* request,
      v1::ReportMetricsResponse* response) override;
  grpc::ServerReadReactor<v1::RunFileChunk>* UploadRunFile(
      grpc::CallbackServerContext* context,
      v1::UploadRunFileResponse* response) override;
  grpc::ServerWriteReactor<v1::RunFileChunk>* FetchRunFile(
      grpc::CallbackServerContext* context,
      const v1::FetchRunFileRequest* request) override;
  grpc::ServerUnaryReactor* CompleteRun(
      grpc::CallbackServerContext* context,
      const v1::CompleteRunRequest* request,
      v1::CompleteRunResponse* response) override;
  grpc::ServerUnaryReactor* FailRun(grpc::CallbackServerContext* context,
                                    const v1::FailRunRequest* request,
                                    v1::FailRunResponse* response) override;
  grpc::ServerUnaryReactor* ReleaseRun(
      grpc::CallbackServerContext* context,
      const v1::ReleaseRunRequest* request,
      v1::ReleaseRunResponse* response) override;
  grpc::ServerUnaryReactor* Deregister(
      grpc::CallbackServerContext* context,
      const v1::DeregisterRequest* request,
      v1::DeregisterResponse* response) override;

 private:
  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  PeerLimiter long_polls_;
  // Where unary calls work and long-polls ask; go after the server.
  TaskPool work_pool_;
  TaskPool poll_pool_;
};

// Tokens: create (the secret is answered once), list, revoke. Admins only.
// On the callback API as the other services: each call's work on a small
// pool of its own.
class AdminServiceImpl final : public v1::AdminService::CallbackService {
 public:
  // `backups` may be null (none taken).
  AdminServiceImpl(Scheduler* scheduler, const Authenticator* auth,
                   Backups* backups = nullptr)
      : scheduler_(scheduler), auth_(auth), backups_(backups), pool_(2) {}

  grpc::ServerUnaryReactor* CreateToken(
      grpc::CallbackServerContext* context,
      const v1::CreateTokenRequest* request,
      v1::CreateTokenResponse* response) override;
  grpc::ServerUnaryReactor* ListTokens(
      grpc::CallbackServerContext* context,
      const v1::ListTokensRequest* request,
      v1::ListTokensResponse* response) override;
  grpc::ServerUnaryReactor* RevokeToken(grpc::CallbackServerContext* context,
                                        const v1::RevokeTokenRequest* request,
                                        v1::Token* response) override;
  grpc::ServerUnaryReactor* Backup(grpc::CallbackServerContext* context,
                                   const v1::BackupRequest* request,
                                   v1::BackupResponse* response) override;
  grpc::ServerUnaryReactor* CollectGarbage(
      grpc::CallbackServerContext* context,
      const v1::CollectGarbageRequest* request,
      v1::CollectGarbageResponse* response) override;
  grpc::ServerUnaryReactor* SetOwnerPolicy(
      grpc::CallbackServerContext* context,
      const v1::SetOwnerPolicyRequest* request, v1::Owner* response) override;

 private:
  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  Backups* const backups_;
  TaskPool pool_;  // Where its calls work; goes after the server.
};

}  // namespace distill

#endif  // DISTILL_SERVER_RPC_SERVICES_H_
