#ifndef DISTILL_SERVER_SERVICES_H_
#define DISTILL_SERVER_SERVICES_H_

#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "server/auth.h"
#include "server/peer_limiter.h"
#include "server/scheduler.h"

namespace distill {

// How many calls that stay open one caller (token, or host without
// tokens) may hold at once.
struct ServiceLimits {
  int watches_per_host = 64;
  int long_polls_per_host = 64;
};

// Thin gRPC adapters over the scheduler (sync API): each handler first
// authorises the caller (server/auth.h), then calls the scheduler, which
// resolves and validates what it is given (common/validation.h), and
// converts its status. Thread-safe; the scheduler and the authenticator
// must outlive them.
class ExperimentServiceImpl final : public v1::ExperimentService::Service {
 public:
  ExperimentServiceImpl(Scheduler* scheduler, const Authenticator* auth,
                        ServiceLimits limits = {})
      : scheduler_(scheduler),
        auth_(auth),
        watches_("watches", limits.watches_per_host) {}

  grpc::Status SubmitRun(grpc::ServerContext* context,
                         const v1::SubmitRunRequest* request,
                         v1::Run* response) override;
  grpc::Status SubmitSweep(grpc::ServerContext* context,
                           const v1::SubmitSweepRequest* request,
                           v1::SubmitSweepResponse* response) override;
  grpc::Status GetRun(grpc::ServerContext* context,
                      const v1::GetRunRequest* request,
                      v1::Run* response) override;
  grpc::Status ListRuns(grpc::ServerContext* context,
                        const v1::ListRunsRequest* request,
                        v1::ListRunsResponse* response) override;
  grpc::Status WatchRun(grpc::ServerContext* context,
                        const v1::WatchRunRequest* request,
                        grpc::ServerWriter<v1::RunEvent>* writer) override;
  grpc::Status CancelRun(grpc::ServerContext* context,
                         const v1::CancelRunRequest* request,
                         v1::Run* response) override;
  grpc::Status GetSweepResults(grpc::ServerContext* context,
                               const v1::GetSweepResultsRequest* request,
                               v1::SweepResults* response) override;
  grpc::Status DownloadRunFile(
      grpc::ServerContext* context, const v1::DownloadRunFileRequest* request,
      grpc::ServerWriter<v1::FileChunk>* writer) override;
  grpc::Status ListWorkers(grpc::ServerContext* context,
                           const v1::ListWorkersRequest* request,
                           v1::ListWorkersResponse* response) override;
  grpc::Status DrainWorker(grpc::ServerContext* context,
                           const v1::DrainWorkerRequest* request,
                           v1::Worker* response) override;

 private:
  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  PeerLimiter watches_;
};

class WorkerServiceImpl final : public v1::WorkerService::Service {
 public:
  WorkerServiceImpl(Scheduler* scheduler, const Authenticator* auth,
                    ServiceLimits limits = {})
      : scheduler_(scheduler),
        auth_(auth),
        long_polls_("long polls", limits.long_polls_per_host) {}

  grpc::Status RegisterWorker(grpc::ServerContext* context,
                              const v1::RegisterWorkerRequest* request,
                              v1::RegisterWorkerResponse* response) override;
  grpc::Status LeaseRun(grpc::ServerContext* context,
                        const v1::LeaseRunRequest* request,
                        v1::LeaseRunResponse* response) override;
  grpc::Status Heartbeat(grpc::ServerContext* context,
                         const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override;
  grpc::Status ReportMetrics(grpc::ServerContext* context,
                             const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override;
  grpc::Status UploadRunFile(grpc::ServerContext* context,
                             grpc::ServerReader<v1::RunFileChunk>* reader,
                             v1::UploadRunFileResponse* response) override;
  grpc::Status FetchRunFile(
      grpc::ServerContext* context, const v1::FetchRunFileRequest* request,
      grpc::ServerWriter<v1::RunFileChunk>* writer) override;
  grpc::Status CompleteRun(grpc::ServerContext* context,
                           const v1::CompleteRunRequest* request,
                           v1::CompleteRunResponse* response) override;
  grpc::Status FailRun(grpc::ServerContext* context,
                       const v1::FailRunRequest* request,
                       v1::FailRunResponse* response) override;
  grpc::Status ReleaseRun(grpc::ServerContext* context,
                          const v1::ReleaseRunRequest* request,
                          v1::ReleaseRunResponse* response) override;
  grpc::Status Deregister(grpc::ServerContext* context,
                          const v1::DeregisterRequest* request,
                          v1::DeregisterResponse* response) override;

 private:
  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  PeerLimiter long_polls_;
};

// Tokens: create (the secret is answered once), list, revoke. Admins only.
class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  AdminServiceImpl(Scheduler* scheduler, Authenticator* auth)
      : scheduler_(scheduler), auth_(auth) {}

  grpc::Status CreateToken(grpc::ServerContext* context,
                           const v1::CreateTokenRequest* request,
                           v1::CreateTokenResponse* response) override;
  grpc::Status ListTokens(grpc::ServerContext* context,
                          const v1::ListTokensRequest* request,
                          v1::ListTokensResponse* response) override;
  grpc::Status RevokeToken(grpc::ServerContext* context,
                           const v1::RevokeTokenRequest* request,
                           v1::Token* response) override;

 private:
  Scheduler* const scheduler_;
  Authenticator* const auth_;
};

// Creates a token of `role` named `name`, stores its digest through the
// scheduler and makes `auth` accept it. Returns the record and the secret.
absl::StatusOr<std::pair<TokenRecord, std::string>> IssueToken(
    Scheduler& scheduler, Authenticator& auth, const std::string& name,
    v1::Role role);

}  // namespace distill

#endif  // DISTILL_SERVER_SERVICES_H_
