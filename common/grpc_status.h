#ifndef DISTILL_COMMON_GRPC_STATUS_H_
#define DISTILL_COMMON_GRPC_STATUS_H_

#include <grpcpp/client_context.h>
#include <grpcpp/support/status.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace distill {

// Status conversion at the gRPC boundary; the code and message carry over.
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// A client call's context that gives up `timeout` from now. With
// `wait_for_ready` the call waits (within the timeout) for a coordinator
// that is restarting or out of reach instead of failing at once.
std::unique_ptr<grpc::ClientContext> ContextWithTimeout(
    absl::Duration timeout, bool wait_for_ready = false);

// Whether a call that failed so may succeed when made again: the
// coordinator is restarting, out of reach, busy, or its disk full.
bool IsTransient(const absl::Status& status);

// Makes `call` (one RPC) again while it fails transiently, until `patience`
// has passed since the first try, waiting 250 ms (doubling, at most 5 s;
// each wait jittered by common/backoff.h) between tries and logging each
// retry with `what`. Returns the last status.
absl::Status RetryTransient(absl::Duration patience, const std::string& what,
                            const std::function<absl::Status()>& call);

}  // namespace distill

#endif  // DISTILL_COMMON_GRPC_STATUS_H_
