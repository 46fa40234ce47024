#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/run_files.h"

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

}  // namespace

grpc::Status ExperimentServiceImpl::SubmitRun(
    grpc::ServerContext*, const v1::SubmitRunRequest* request,
    v1::Run* response) {
  return Reply(scheduler_->SubmitRun(request->spec()), response);
}

grpc::Status ExperimentServiceImpl::SubmitSweep(
    grpc::ServerContext*, const v1::SubmitSweepRequest* request,
    v1::SubmitSweepResponse* response) {
  return Reply(scheduler_->SubmitSweep(request->spec()), response);
}

grpc::Status ExperimentServiceImpl::GetRun(grpc::ServerContext*,
                                           const v1::GetRunRequest* request,
                                           v1::Run* response) {
  return Reply(scheduler_->GetRun(request->id()), response);
}

grpc::Status ExperimentServiceImpl::ListRuns(grpc::ServerContext*,
                                             const v1::ListRunsRequest* request,
                                             v1::ListRunsResponse* response) {
  absl::StatusOr<std::vector<v1::Run>> runs =
      scheduler_->ListRuns(request->sweep_id(), request->status());
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  for (v1::Run& run : *runs) *response->add_runs() = std::move(run);
  return grpc::Status::OK;
}

grpc::Status ExperimentServiceImpl::WatchRun(
    grpc::ServerContext* context, const v1::WatchRunRequest* request,
    grpc::ServerWriter<v1::RunEvent>* writer) {
  absl::StatusOr<PeerLimiter::Slot> slot = watches_.Acquire(context->peer());
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
    grpc::ServerContext*, const v1::CancelRunRequest* request,
    v1::Run* response) {
  return Reply(scheduler_->CancelRun(request->id()), response);
}

grpc::Status ExperimentServiceImpl::GetSweepResults(
    grpc::ServerContext*, const v1::GetSweepResultsRequest* request,
    v1::SweepResults* response) {
  return Reply(scheduler_->SweepResults(request->sweep()), response);
}

grpc::Status ExperimentServiceImpl::DownloadRunFile(
    grpc::ServerContext* context, const v1::DownloadRunFileRequest* request,
    grpc::ServerWriter<v1::FileChunk>* writer) {
  return StreamFile(scheduler_->OpenRunFile(request->run_id(), request->name()),
                    context, writer);
}

grpc::Status WorkerServiceImpl::RegisterWorker(
    grpc::ServerContext*, const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  return Reply(scheduler_->RegisterWorker(*request), response);
}

grpc::Status WorkerServiceImpl::LeaseRun(grpc::ServerContext* context,
                                         const v1::LeaseRunRequest* request,
                                         v1::LeaseRunResponse* response) {
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, request->wait_ms())),
               kMaxLeaseWait);
  // Never hold the call past the client's own deadline.
  const absl::Duration until_deadline = absl::FromChrono(context->deadline()) -
                                        absl::Now() - absl::Milliseconds(200);
  wait = std::max(absl::ZeroDuration(), std::min(wait, until_deadline));
  absl::StatusOr<PeerLimiter::Slot> slot = long_polls_.Acquire(context->peer());
  if (!slot.ok()) return ToGrpcStatus(slot.status());
  return Reply(scheduler_->LeaseRun(request->worker_id(), wait), response);
}

grpc::Status WorkerServiceImpl::Heartbeat(grpc::ServerContext*,
                                          const v1::HeartbeatRequest* request,
                                          v1::HeartbeatResponse* response) {
  return Reply(scheduler_->Heartbeat(*request), response);
}

grpc::Status WorkerServiceImpl::ReportMetrics(
    grpc::ServerContext*, const v1::ReportMetricsRequest* request,
    v1::ReportMetricsResponse*) {
  return ToGrpcStatus(scheduler_->ReportMetrics(*request));
}

grpc::Status WorkerServiceImpl::UploadRunFile(
    grpc::ServerContext*, grpc::ServerReader<v1::RunFileChunk>* reader,
    v1::UploadRunFileResponse* response) {
  v1::RunFileChunk chunk;
  if (!reader->Read(&chunk) || !chunk.has_header()) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                        "the first run-file chunk must carry the header");
  }
  const v1::RunFileHeader header = chunk.header();
  absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
      scheduler_->BeginUpload(header);
  if (!writer.ok()) return ToGrpcStatus(writer.status());
  do {
    if (absl::Status s = (*writer)->Append(chunk.data()); !s.ok())
      return ToGrpcStatus(s);
  } while (reader->Read(&chunk));
  if (absl::Status s = scheduler_->FinishUpload(header, **writer); !s.ok()) {
    return ToGrpcStatus(s);
  }
  response->set_sha256(header.sha256());
  return grpc::Status::OK;
}

grpc::Status WorkerServiceImpl::FetchRunFile(
    grpc::ServerContext* context, const v1::FetchRunFileRequest* request,
    grpc::ServerWriter<v1::RunFileChunk>* writer) {
  return StreamFile(scheduler_->OpenRunFileByDigest(request->sha256()), context,
                    writer);
}

grpc::Status WorkerServiceImpl::CompleteRun(
    grpc::ServerContext*, const v1::CompleteRunRequest* request,
    v1::CompleteRunResponse*) {
  return ToGrpcStatus(scheduler_->CompleteRun(*request));
}

grpc::Status WorkerServiceImpl::FailRun(grpc::ServerContext*,
                                        const v1::FailRunRequest* request,
                                        v1::FailRunResponse*) {
  return ToGrpcStatus(scheduler_->FailRun(*request));
}

}  // namespace distill
