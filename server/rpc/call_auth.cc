#include "server/rpc/call_auth.h"

#include "common/token.h"

namespace distill {

absl::StatusOr<Principal> AuthorizeCall(const Authenticator& auth,
                                        const grpc::ServerContextBase& context,
                                        Permission permission) {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kAuthorizationKey);
  return auth.AuthorizeHeader(
      it == metadata.end()
          ? absl::string_view()
          : absl::string_view(it->second.data(), it->second.size()),
      permission);
}

}  // namespace distill
