// Who is calling over gRPC: the token a call's metadata carries, checked by
// the Authenticator (server/scheduling/auth.h).
#ifndef DISTILL_SERVER_RPC_CALL_AUTH_H_
#define DISTILL_SERVER_RPC_CALL_AUTH_H_

#include <grpcpp/grpcpp.h>

#include "absl/status/statusor.h"
#include "server/scheduling/auth.h"

namespace distill {

// Authenticator::AuthorizeHeader for the "authorization" metadata of
// `context` (none: as an empty header).
absl::StatusOr<Principal> AuthorizeCall(const Authenticator& auth,
                                        const grpc::ServerContextBase& context,
                                        Permission permission);

}  // namespace distill

#endif  // DISTILL_SERVER_RPC_CALL_AUTH_H_
