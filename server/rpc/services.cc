#include "server/rpc/services.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/api.h"
#include "common/catalog.h"
#include "common/grpc_status.h"
#include "common/run_files.h"
#include "common/token.h"
#include "server/base/no_throw.h"
#include "server/rpc/call_auth.h"
#include "server/rpc/reactors.h"

namespace distill {
namespace {

// A sweep's notify.url is a webhook's secret: its readers see that one is
// set, not which (the notifier reads it from the store).
template <typename T>
absl::StatusOr<T> WithoutNotifyUrl(absl::StatusOr<T> answer) {
  if (answer.ok()) {
    v1::SweepSpec* spec = answer->mutable_sweep()->mutable_spec();
    if (!spec->notify().url().empty()) {
      spec->mutable_notify()->set_url(kRedactedNotifyUrl);
    }
  }
  return answer;
}

// Longest a LeaseRun long-poll may hold a request.
constexpr absl::Duration kMaxLeaseWait = absl::Seconds(60);

v1::Token ToProto(const TokenRecord& record) {
  v1::Token token;
  token.set_id(record.id);
  token.set_name(record.name);
  token.set_role(static_cast<v1::Role>(record.role));
  token.set_created_ms(record.created_ms);
  token.set_revoked_ms(record.revoked_ms);
  return token;
}

}  // namespace

Requester ExperimentServiceImpl::RequesterOf(const Principal& caller) const {
  Requester who;  // Without tokens: anonymous, and may change anything.
  if (!auth_->enabled()) return who;
  who.name = caller.name;
  who.admin = caller.role == v1::ROLE_ADMIN;
  return who;
}

v1::ListRunsRequest ExperimentServiceImpl::OwnRuns(
    const v1::ListRunsRequest& request, const Requester& who) {
  v1::ListRunsRequest own = request;
  own.set_owner(who.name);
  own.set_mine(false);
  return own;
}

// Returns from the handler unless the caller may do `permission`; else
// `caller` names them.
#define DISTILL_AUTHORIZE(caller, permission)      \
  absl::StatusOr<Principal> caller =               \
      AuthorizeCall(*auth_, *context, permission); \
  if (!caller.ok()) return ToGrpcStatus(caller.status())

grpc::ServerUnaryReactor* ExperimentServiceImpl::SubmitRun(
    grpc::CallbackServerContext* context, const v1::SubmitRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "SubmitRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->SubmitRun(request->spec(), RequesterOf(*caller)),
                 response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::SubmitSweep(
    grpc::CallbackServerContext* context, const v1::SubmitSweepRequest* request,
    v1::SubmitSweepResponse* response) {
  return OnPool(context, &work_pool_, "SubmitSweep",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kChange);
                  return Reply(WithoutNotifyUrl(scheduler_->SubmitSweep(
                                   request->spec(), RequesterOf(*caller))),
                               response);
                });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::CancelSweep(
    grpc::CallbackServerContext* context, const v1::SweepRequest* request,
    v1::SweepActionResponse* response) {
  return OnPool(context, &work_pool_, "CancelSweep",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kChange);
                  return Reply(WithoutNotifyUrl(scheduler_->CancelSweep(
                                   request->sweep(), RequesterOf(*caller))),
                               response);
                });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::RetrySweep(
    grpc::CallbackServerContext* context, const v1::SweepRequest* request,
    v1::SweepActionResponse* response) {
  return OnPool(context, &work_pool_, "RetrySweep",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kChange);
                  return Reply(WithoutNotifyUrl(scheduler_->RetrySweep(
                                   request->sweep(), RequesterOf(*caller))),
                               response);
                });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::Annotate(
    grpc::CallbackServerContext* context, const v1::AnnotateRequest* request,
    v1::AnnotateResponse* response) {
  return OnPool(context, &work_pool_, "Annotate", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->Annotate(*request, RequesterOf(*caller)),
                 response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetRun(
    grpc::CallbackServerContext* context, const v1::GetRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "GetRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kRead);
    return Reply(scheduler_->GetRun(request->id()), response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::ListRuns(
    grpc::CallbackServerContext* context, const v1::ListRunsRequest* request,
    v1::ListRunsResponse* response) {
  return OnPool(context, &bulk_pool_, "ListRuns", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kRead);
    absl::StatusOr<RunPage> page = scheduler_->FindRuns(
        request->mine() ? OwnRuns(*request, RequesterOf(*caller)) : *request);
    if (!page.ok()) return ToGrpcStatus(page.status());
    for (v1::Run& run : page->runs) *response->add_runs() = std::move(run);
    response->set_next_page_token(page->next_page_token);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetRunMetrics(
    grpc::CallbackServerContext* context,
    const v1::GetRunMetricsRequest* request,
    v1::GetRunMetricsResponse* response) {
  return OnPool(
      context, &bulk_pool_, "GetRunMetrics", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kRead);
        absl::StatusOr<MetricPage> page = scheduler_->MetricHistory(
            request->run_id(), request->page_token(), request->page_size());
        if (!page.ok()) return ToGrpcStatus(page.status());
        for (v1::MetricPoint& point : page->points)
          *response->add_points() = std::move(point);
        response->set_next_page_token(page->next_page_token);
        return grpc::Status::OK;
      });
}

grpc::ServerWriteReactor<v1::RunEvent>* ExperimentServiceImpl::WatchRun(
    grpc::CallbackServerContext* context, const v1::WatchRunRequest* request) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kRead);
  if (!caller.ok()) return new Refused<v1::RunEvent>(caller.status());
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(watches_, *caller, *context);
  if (!slot.ok()) return new Refused<v1::RunEvent>(slot.status());
  WatchCursor cursor;
  cursor.include_history = request->include_history();
  cursor.history_points_per_key = request->history_points_per_key();
  return NewWatchReactor(scheduler_, &watch_pool_, request->id(), cursor,
                         *std::move(slot));
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::CancelRun(
    grpc::CallbackServerContext* context, const v1::CancelRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "CancelRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->CancelRun(request->id(), RequesterOf(*caller)),
                 response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetSweepResults(
    grpc::CallbackServerContext* context,
    const v1::GetSweepResultsRequest* request, v1::SweepResults* response) {
  return OnPool(
      context, &bulk_pool_, "GetSweepResults", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kRead);
        return Reply(
            WithoutNotifyUrl(scheduler_->SweepResults(request->sweep())),
            response);
      });
}

grpc::ServerWriteReactor<v1::FileChunk>* ExperimentServiceImpl::DownloadRunFile(
    grpc::CallbackServerContext* context,
    const v1::DownloadRunFileRequest* request) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kRead);
  if (!caller.ok()) return new Refused<v1::FileChunk>(caller.status());
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      NoThrow("DownloadRunFile", [&] {
        return scheduler_->OpenRunFile(request->run_id(), request->name());
      });
  if (!reader.ok()) return new Refused<v1::FileChunk>(reader.status());
  return new FileReactor<v1::FileChunk>(*std::move(reader));
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::ListWorkers(
    grpc::CallbackServerContext* context, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  return OnPool(context, &bulk_pool_, "ListWorkers",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kRead);
                  absl::StatusOr<WorkerPage> page = scheduler_->ListWorkersPage(
                      request->page_token(), request->page_size());
                  if (!page.ok()) return ToGrpcStatus(page.status());
                  for (v1::Worker& worker : page->workers)
                    *response->add_workers() = std::move(worker);
                  response->set_next_page_token(page->next_page_token);
                  response->set_leasing_paused(scheduler_->LeasingPaused());
                  return grpc::Status::OK;
                });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::DrainWorker(
    grpc::CallbackServerContext* context, const v1::DrainWorkerRequest* request,
    v1::Worker* response) {
  return OnPool(
      context, &work_pool_, "DrainWorker", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kChange);
        return Reply(scheduler_->DrainWorker(request->id()), response);
      });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::ListOwners(
    grpc::CallbackServerContext* context, const v1::ListOwnersRequest* request,
    v1::ListOwnersResponse* response) {
  (void)request;
  return OnPool(context, &bulk_pool_, "ListOwners",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kRead);
                  return Reply(scheduler_->ListOwners(), response);
                });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::RegisterWorker(
    grpc::CallbackServerContext* context,
    const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  return OnPool(
      context, &work_pool_, "RegisterWorker", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return Reply(scheduler_->RegisterWorker(*request, caller->token_id),
                     response);
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::LeaseRun(
    grpc::CallbackServerContext* context, const v1::LeaseRunRequest* request,
    v1::LeaseRunResponse* response) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kWork);
  if (!caller.ok()) return Finished(context, ToGrpcStatus(caller.status()));
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, request->wait_ms())),
               kMaxLeaseWait);
  // Never hold the call past the client's own deadline.
  const absl::Duration until_deadline = absl::FromChrono(context->deadline()) -
                                        absl::Now() - absl::Milliseconds(200);
  wait = std::max(absl::ZeroDuration(), std::min(wait, until_deadline));
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(long_polls_, *caller, *context);
  if (!slot.ok()) return Finished(context, ToGrpcStatus(slot.status()));
  return StartLeasePoll(scheduler_, &poll_pool_, request->worker_id(),
                        caller->token_id, wait, response, *std::move(slot));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Heartbeat(
    grpc::CallbackServerContext* context, const v1::HeartbeatRequest* request,
    v1::HeartbeatResponse* response) {
  return OnPool(context, &work_pool_, "Heartbeat", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kWork);
    return Reply(scheduler_->Heartbeat(*request, caller->token_id), response);
  });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReportMetrics(
    grpc::CallbackServerContext* context,
    const v1::ReportMetricsRequest* request,
    v1::ReportMetricsResponse* response) {
  return OnPool(
      context, &work_pool_, "ReportMetrics", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(
            scheduler_->ReportMetrics(*request, caller->token_id, response));
      });
}

grpc::ServerReadReactor<v1::RunFileChunk>* WorkerServiceImpl::UploadRunFile(
    grpc::CallbackServerContext* context, v1::UploadRunFileResponse* response) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kWork);
  return NewUploadReactor(scheduler_, caller, response);
}

grpc::ServerWriteReactor<v1::RunFileChunk>* WorkerServiceImpl::FetchRunFile(
    grpc::CallbackServerContext* context,
    const v1::FetchRunFileRequest* request) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kWork);
  if (!caller.ok()) return new Refused<v1::RunFileChunk>(caller.status());
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      NoThrow("FetchRunFile", [&] {
        return scheduler_->OpenRunFileByDigest(request->sha256(),
                                               caller->token_id);
      });
  if (!reader.ok()) return new Refused<v1::RunFileChunk>(reader.status());
  return new FileReactor<v1::RunFileChunk>(*std::move(reader));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::CompleteRun(
    grpc::CallbackServerContext* context, const v1::CompleteRunRequest* request,
    v1::CompleteRunResponse*) {
  return OnPool(context, &work_pool_, "CompleteRun",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kWork);
                  return ToGrpcStatus(
                      scheduler_->CompleteRun(*request, caller->token_id));
                });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::FailRun(
    grpc::CallbackServerContext* context, const v1::FailRunRequest* request,
    v1::FailRunResponse*) {
  return OnPool(context, &work_pool_, "FailRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kWork);
    return ToGrpcStatus(scheduler_->FailRun(*request, caller->token_id));
  });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReleaseRun(
    grpc::CallbackServerContext* context, const v1::ReleaseRunRequest* request,
    v1::ReleaseRunResponse*) {
  return OnPool(
      context, &work_pool_, "ReleaseRun", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(scheduler_->ReleaseRun(*request, caller->token_id));
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Deregister(
    grpc::CallbackServerContext* context, const v1::DeregisterRequest* request,
    v1::DeregisterResponse*) {
  return OnPool(
      context, &work_pool_, "Deregister", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(
            scheduler_->Deregister(request->worker_id(), caller->token_id));
      });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CreateToken(
    grpc::CallbackServerContext* context, const v1::CreateTokenRequest* request,
    v1::CreateTokenResponse* response) {
  return OnPool(context, &pool_, "CreateToken", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    if (!auth_->enabled()) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "this coordinator runs without tokens (--auth=none)");
    }
    absl::StatusOr<std::pair<TokenRecord, std::string>> issued =
        scheduler_->IssueToken(request->name(), request->role());
    if (!issued.ok()) return ToGrpcStatus(issued.status());
    *response->mutable_token() = ToProto(issued->first);
    response->set_secret(issued->second);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::ListTokens(
    grpc::CallbackServerContext* context, const v1::ListTokensRequest* request,
    v1::ListTokensResponse* response) {
  return OnPool(context, &pool_, "ListTokens", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    absl::StatusOr<TokenPage> page =
        scheduler_->ListTokensPage(request->page_token(), request->page_size());
    if (!page.ok()) return ToGrpcStatus(page.status());
    for (const TokenRecord& token : page->tokens)
      *response->add_tokens() = ToProto(token);
    response->set_next_page_token(page->next_page_token);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::RevokeToken(
    grpc::CallbackServerContext* context, const v1::RevokeTokenRequest* request,
    v1::Token* response) {
  return OnPool(context, &pool_, "RevokeToken", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    if ((request->id() == 0) == request->name().empty()) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("name a token by id or by name, not ",
                       request->id() == 0 ? "neither" : "both"));
    }
    if (request->name().size() > limits::kNameBytes) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("a token's name is at most ", limits::kNameBytes,
                       " bytes, got ", request->name().size()));
    }
    absl::StatusOr<TokenRecord> revoked =
        scheduler_->RevokeToken(request->id(), request->name());
    if (!revoked.ok()) return ToGrpcStatus(revoked.status());
    *response = ToProto(*revoked);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::Backup(
    grpc::CallbackServerContext* context, const v1::BackupRequest* request,
    v1::BackupResponse* response) {
  (void)request;
  return OnPool(context, &pool_, "Backup", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    if (backups_ == nullptr) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "this coordinator takes no backups");
    }
    absl::StatusOr<BackupResult> taken = backups_->Take();
    if (!taken.ok()) return ToGrpcStatus(taken.status());
    response->set_snapshot(taken->snapshot);
    response->set_database_bytes(taken->database_bytes);
    response->set_files(taken->files);
    response->set_files_copied(taken->files_copied);
    response->set_bytes_copied(taken->bytes_copied);
    response->set_took_ms(absl::ToInt64Milliseconds(taken->took));
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::CollectGarbage(
    grpc::CallbackServerContext* context,
    const v1::CollectGarbageRequest* request,
    v1::CollectGarbageResponse* response) {
  return OnPool(context, &pool_, "CollectGarbage", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    if (request->sweep().size() > 256) {
      return grpc::Status(
          grpc::StatusCode::INVALID_ARGUMENT,
          absl::StrCat("sweep must be an id or a name of at most 256 "
                       "bytes, got ",
                       request->sweep().size(), " bytes"));
    }
    return Reply(scheduler_->CollectGarbage(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminServiceImpl::SetOwnerPolicy(
    grpc::CallbackServerContext* context,
    const v1::SetOwnerPolicyRequest* request, v1::Owner* response) {
  return OnPool(context, &pool_, "SetOwnerPolicy", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kAdminister);
    return Reply(scheduler_->SetOwnerPolicy(*request), response);
  });
}

#undef DISTILL_AUTHORIZE

}  // namespace distill
