#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/grpc_status.h"
#include "common/run_files.h"
#include "common/token.h"

namespace distill {
namespace {

// Longest a LeaseRun long-poll may hold a request.
constexpr absl::Duration kMaxLeaseWait = absl::Seconds(60);

// Copies a StatusOr's value into `*out`, or returns its status.
template <typename T, typename U>
grpc::Status Reply(absl::StatusOr<T> result, U* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

// Streams a stored file in chunks of type Chunk (a message with `data`).
template <typename Chunk>
grpc::Status StreamFile(absl::StatusOr<std::unique_ptr<RunFileReader>> reader,
                        grpc::ServerContext* context,
                        grpc::ServerWriter<Chunk>* writer) {
  if (!reader.ok()) return ToGrpcStatus(reader.status());
  while (!context->IsCancelled()) {
    absl::StatusOr<std::string> data = (*reader)->Read(kFileChunkBytes);
    if (!data.ok()) return ToGrpcStatus(data.status());
    if (data->empty()) break;
    Chunk chunk;
    chunk.set_data(*std::move(data));
    if (!writer->Write(chunk)) break;
  }
  return grpc::Status::OK;
}

// Whom the limits on open calls count against: the token, or the host
// where the coordinator runs without tokens.
absl::StatusOr<PeerLimiter::Slot> AcquireSlot(PeerLimiter& limiter,
                                              const Principal& caller,
                                              const grpc::ServerContext& c) {
  if (caller.token_id == 0) return limiter.Acquire(c.peer());
  return limiter.AcquireFor(
      absl::StrCat("token \"", caller.name, "\" (id ", caller.token_id, ")"));
}

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

// Returns from the handler unless the caller may do `permission`; else
// `caller` names them.
#define DISTILL_AUTHORIZE(caller, permission)                                \
  absl::StatusOr<Principal> caller = auth_->Authorize(*context, permission); \
  if (!caller.ok()) return ToGrpcStatus(caller.status())

grpc::Status ExperimentServiceImpl::SubmitRun(
    grpc::ServerContext* context, const v1::SubmitRunRequest* request,
    v1::Run* response) {
  DISTILL_AUTHORIZE(caller, Permission::kChange);
  return Reply(scheduler_->SubmitRun(request->spec()), response);
}

grpc::Status ExperimentServiceImpl::SubmitSweep(
    grpc::ServerContext* context, const v1::SubmitSweepRequest* request,
    v1::SubmitSweepResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kChange);
  return Reply(scheduler_->SubmitSweep(request->spec()), response);
}

grpc::Status ExperimentServiceImpl::GetRun(grpc::ServerContext* context,
                                           const v1::GetRunRequest* request,
                                           v1::Run* response) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  return Reply(scheduler_->GetRun(request->id()), response);
}

grpc::Status ExperimentServiceImpl::ListRuns(grpc::ServerContext* context,
                                             const v1::ListRunsRequest* request,
                                             v1::ListRunsResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  absl::StatusOr<std::vector<v1::Run>> runs =
      scheduler_->ListRuns(request->sweep_id(), request->status());
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  for (v1::Run& run : *runs) *response->add_runs() = std::move(run);
  return grpc::Status::OK;
}

grpc::Status ExperimentServiceImpl::WatchRun(
    grpc::ServerContext* context, const v1::WatchRunRequest* request,
    grpc::ServerWriter<v1::RunEvent>* writer) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(watches_, *caller, *context);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  WatchCursor cursor;
  cursor.include_history = request->include_history();
  while (!context->IsCancelled()) {
    absl::StatusOr<std::optional<v1::RunEvent>> event =
        scheduler_->NextRunEvent(request->id(), &cursor,
                                 absl::Now() + absl::Seconds(1));
    if (!event.ok()) return ToGrpcStatus(event.status());
    if (!event->has_value()) continue;
    if (!writer->Write(**event)) break;
    if (IsTerminal((*event)->run().status())) break;
  }
  return grpc::Status::OK;
}

grpc::Status ExperimentServiceImpl::CancelRun(
    grpc::ServerContext* context, const v1::CancelRunRequest* request,
    v1::Run* response) {
  DISTILL_AUTHORIZE(caller, Permission::kChange);
  return Reply(scheduler_->CancelRun(request->id()), response);
}

grpc::Status ExperimentServiceImpl::GetSweepResults(
    grpc::ServerContext* context, const v1::GetSweepResultsRequest* request,
    v1::SweepResults* response) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  return Reply(scheduler_->SweepResults(request->sweep()), response);
}

grpc::Status ExperimentServiceImpl::DownloadRunFile(
    grpc::ServerContext* context, const v1::DownloadRunFileRequest* request,
    grpc::ServerWriter<v1::FileChunk>* writer) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  return StreamFile(scheduler_->OpenRunFile(request->run_id(), request->name()),
                    context, writer);
}

grpc::Status ExperimentServiceImpl::ListWorkers(
    grpc::ServerContext* context, const v1::ListWorkersRequest*,
    v1::ListWorkersResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kRead);
  absl::StatusOr<std::vector<v1::Worker>> workers = scheduler_->ListWorkers();
  if (!workers.ok()) return ToGrpcStatus(workers.status());
  for (v1::Worker& worker : *workers)
    *response->add_workers() = std::move(worker);
  return grpc::Status::OK;
}

grpc::Status ExperimentServiceImpl::DrainWorker(
    grpc::ServerContext* context, const v1::DrainWorkerRequest* request,
    v1::Worker* response) {
  DISTILL_AUTHORIZE(caller, Permission::kChange);
  return Reply(scheduler_->DrainWorker(request->id()), response);
}

grpc::Status WorkerServiceImpl::RegisterWorker(
    grpc::ServerContext* context, const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return Reply(scheduler_->RegisterWorker(*request, caller->token_id),
               response);
}

grpc::Status WorkerServiceImpl::LeaseRun(grpc::ServerContext* context,
                                         const v1::LeaseRunRequest* request,
                                         v1::LeaseRunResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, request->wait_ms())),
               kMaxLeaseWait);
  // Never hold the call past the client's own deadline.
  const absl::Duration until_deadline = absl::FromChrono(context->deadline()) -
                                        absl::Now() - absl::Milliseconds(200);
  wait = std::max(absl::ZeroDuration(), std::min(wait, until_deadline));
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(long_polls_, *caller, *context);
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return Reply(
      scheduler_->LeaseRun(request->worker_id(), wait, caller->token_id),
      response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext* context,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return Reply(scheduler_->Heartbeat(*request, caller->token_id), response);
}

grpc::Status WorkerServiceImpl::ReportMetrics(
    grpc::ServerContext* context, const v1::ReportMetricsRequest* request,
    v1::ReportMetricsResponse*) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return ToGrpcStatus(scheduler_->ReportMetrics(*request, caller->token_id));
}

grpc::Status WorkerServiceImpl::UploadRunFile(
    grpc::ServerContext* context, grpc::ServerReader<v1::RunFileChunk>* reader,
    v1::UploadRunFileResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  v1::RunFileChunk chunk;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first run-file chunk must carry the header");
  }
  const v1::RunFileHeader header = chunk.header();
  absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
      scheduler_->BeginUpload(header, caller->token_id);
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  do {
    if (absl::Status s = (*writer)->Append(chunk.data()); !s.ok())
      return ToGrpcStatus(s);
  } while (reader->Read(&chunk));
  if (absl::Status s =
          scheduler_->FinishUpload(header, **writer, caller->token_id);
      !s.ok()) {
    return ToGrpcStatus(s);
  }
  response->set_sha256(header.sha256());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FetchRunFile(
    grpc::ServerContext* context, const v1::FetchRunFileRequest* request,
    grpc::ServerWriter<v1::RunFileChunk>* writer) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return StreamFile(
      scheduler_->OpenRunFileByDigest(request->sha256(), caller->token_id),
      context, writer);
}

grpc::Status WorkerServiceImpl::CompleteRun(
    grpc::ServerContext* context, const v1::CompleteRunRequest* request,
    v1::CompleteRunResponse*) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return ToGrpcStatus(scheduler_->CompleteRun(*request, caller->token_id));
}

grpc::Status WorkerServiceImpl::FailRun(grpc::ServerContext* context,
                                        const v1::FailRunRequest* request,
                                        v1::FailRunResponse*) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return ToGrpcStatus(scheduler_->FailRun(*request, caller->token_id));
}

grpc::Status WorkerServiceImpl::ReleaseRun(grpc::ServerContext* context,
                                           const v1::ReleaseRunRequest* request,
                                           v1::ReleaseRunResponse*) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return ToGrpcStatus(scheduler_->ReleaseRun(*request, caller->token_id));
}

grpc::Status WorkerServiceImpl::Deregister(grpc::ServerContext* context,
                                           const v1::DeregisterRequest* request,
                                           v1::DeregisterResponse*) {
  DISTILL_AUTHORIZE(caller, Permission::kWork);
  return ToGrpcStatus(
      scheduler_->Deregister(request->worker_id(), caller->token_id));
}

absl::StatusOr<std::pair<TokenRecord, std::string>> IssueToken(
    Scheduler& scheduler, Authenticator& auth, const std::string& name,
    v1::Role role) {
  if (name.empty() || name.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a token's name must be 1 to ", limits::kNameBytes,
                     " bytes, got ", name.size()));
  }
  if (role == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(role)) {
    return absl::InvalidArgumentError(
        absl::StrCat("role must be viewer, researcher, worker or admin, got ",
                     static_cast<int>(role)));
  }
  absl::StatusOr<std::string> secret = NewTokenSecret();
  if (!secret.ok()) return secret.status();
  TokenRecord record;
  record.name = name;
  record.role = role;
  record.sha256 = TokenDigest(*secret);
  absl::StatusOr<TokenRecord> stored = scheduler.InsertToken(record);
  if (!stored.ok()) return stored.status();
  auth.Add(*stored);
  return std::make_pair(*stored, *secret);
}

grpc::Status AdminServiceImpl::CreateToken(
    grpc::ServerContext* context, const v1::CreateTokenRequest* request,
    v1::CreateTokenResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  if (!auth_->enabled()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this coordinator runs without tokens (--auth=none)");
  }
  absl::StatusOr<std::pair<TokenRecord, std::string>> issued =
      IssueToken(*scheduler_, *auth_, request->name(), request->role());
  if (!issued.ok()) return ToGrpcStatus(issued.status());
  *response->mutable_token() = ToProto(issued->first);
  response->set_secret(issued->second);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListTokens(grpc::ServerContext* context,
                                          const v1::ListTokensRequest*,
                                          v1::ListTokensResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  absl::StatusOr<std::vector<TokenRecord>> tokens = scheduler_->ListTokens();
  if (!tokens.ok()) return ToGrpcStatus(tokens.status());
  for (const TokenRecord& token : *tokens)
    *response->add_tokens() = ToProto(token);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::RevokeToken(
    grpc::ServerContext* context, const v1::RevokeTokenRequest* request,
    v1::Token* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  absl::StatusOr<TokenRecord> revoked = scheduler_->RevokeToken(request->id());
  if (!revoked.ok()) return ToGrpcStatus(revoked.status());
  auth_->Remove(*revoked);
  *response = ToProto(*revoked);
  return grpc::Status::OK;
}

#undef DISTILL_AUTHORIZE

}  // namespace distill
