#include "client/session.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "render/terminal.h"

namespace distill {

Session::Session(std::shared_ptr<grpc::Channel> channel, std::ostream& out,
                 std::ostream& err, bool tty)
    : experiments_(v1::ExperimentService::NewStub(channel)),
      admin_(v1::AdminService::NewStub(channel)),
      health_(grpc::health::v1::Health::NewStub(channel)),
      out_(out),
      err_(err),
      tty_(tty) {}

int Session::Refused(const std::string& what, const grpc::Status& status) {
  err_ << what << ": "
       << absl::StatusCodeToString(FromGrpcStatus(status).code()) << ": "
       << TerminalSafe(status.error_message()) << "\n";
  return kExitRefused;
}

int Session::Usage(const std::string& what, const std::string& message) {
  err_ << what << ": " << TerminalSafe(message) << "\n";
  return kExitUsage;
}

grpc::Status Session::GetRun(int64_t id, v1::Run* run) {
  v1::GetRunRequest request;
  request.set_id(id);
  grpc::ClientContext context;
  return experiments_->GetRun(&context, request, run);
}

grpc::Status Session::GetSweepResults(const std::string& sweep,
                                      v1::SweepResults* results) {
  v1::GetSweepResultsRequest request;
  request.set_sweep(sweep);
  grpc::ClientContext context;
  return experiments_->GetSweepResults(&context, request, results);
}

absl::StatusOr<std::string> Session::DownloadFile(int64_t id,
                                                  const std::string& name) {
  v1::DownloadRunFileRequest request;
  request.set_run_id(id);
  request.set_name(name);
  grpc::ClientContext context;
  auto reader = experiments_->DownloadRunFile(&context, request);
  v1::FileChunk chunk;
  std::string data;
  while (reader->Read(&chunk)) data += chunk.data();
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    const absl::Status s = FromGrpcStatus(status);
    return absl::Status(s.code(),
                        absl::StrCat(absl::StatusCodeToString(s.code()), ": ",
                                     TerminalSafe(s.message())));
  }
  return data;
}

grpc::Status Session::FirstEvent(int64_t id, int64_t points_per_key,
                                 v1::RunEvent* event) {
  v1::WatchRunRequest request;
  request.set_id(id);
  request.set_include_history(true);
  request.set_history_points_per_key(points_per_key);
  grpc::ClientContext context;
  auto reader = experiments_->WatchRun(&context, request);
  const bool got = reader->Read(event);
  // Without a first event the stream ended by itself, with the reason
  // (NOT_FOUND for a missing run); with one, the rest is not needed.
  if (got) context.TryCancel();
  grpc::Status status = reader->Finish();
  return got ? grpc::Status::OK : status;
}

bool ParseRunId(const std::string& text, int64_t* id) {
  return absl::SimpleAtoi(text, id) && *id >= 1;
}

}  // namespace distill
