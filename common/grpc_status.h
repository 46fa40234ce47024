#ifndef DISTILL_COMMON_GRPC_STATUS_H_
#define DISTILL_COMMON_GRPC_STATUS_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <memory>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace distill {

// Status conversion at the gRPC boundary; the code and message carry over.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// A client call's context that gives up `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithTimeout(absl::Duration timeout);

}  // namespace distill

#endif  // DISTILL_COMMON_GRPC_STATUS_H_
