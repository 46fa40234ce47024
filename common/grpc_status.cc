#include "common/grpc_status.h"

#include <algorithm>
#include <string>

#include "absl/time/clock.h"
#include "common/backoff.h"
#include "common/log.h"

namespace distill {

// absl::StatusCode and grpc::StatusCode share their numbering.
grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                      std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

std::unique_ptr<grpc::ClientContext> ContextWithTimeout(absl::Duration timeout,
                                                        bool wait_for_ready) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  context->set_wait_for_ready(wait_for_ready);
  return context;
}

bool IsTransient(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kAborted:
      return true;
    default:
      return false;
  }
}

absl::Status RetryTransient(absl::Duration patience, const std::string& what,
                            const std::function<absl::Status()>& call) {
  const absl::Time give_up = absl::Now() + patience;
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(5));
  while (true) {
    absl::Status status = call();
    if (status.ok() || !IsTransient(status) || absl::Now() >= give_up)
      return status;
    const absl::Duration wait = backoff.Next();
    DISTILL_LOG(WARNING) << what << ": " << status.message() << "; again in "
                         << wait;
    absl::SleepFor(std::min(wait, give_up - absl::Now()));
  }
}

}  // namespace distill
