#ifndef DISTILL_COMMON_GRPC_STATUS_H_
#define DISTILL_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace distill {

// Status conversion at the gRPC boundary; the code and message carry over.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace distill

#endif  // DISTILL_COMMON_GRPC_STATUS_H_
