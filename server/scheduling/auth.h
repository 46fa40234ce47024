// Who is calling, and whether their token's role allows what they ask.
#ifndef DISTILL_SERVER_SCHEDULING_AUTH_H_
#define DISTILL_SERVER_SCHEDULING_AUTH_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "common/roles.h"
#include "distill/v1/admin_service.pb.h"
#include "server/storage/store.h"

namespace distill {

// What an RPC does, for the role check.
enum class Permission {
  kRead,        // ExperimentService reads: viewer, researcher, admin.
  kChange,      // Submit and cancel: researcher, admin.
  kWork,        // The WorkerService: worker.
  kAdminister,  // The AdminService: admin.
  kReflect,     // Server reflection: any valid token.
};

bool RoleAllows(v1::Role role, Permission permission);
// The roles whose tokens have `permission`.
std::vector<v1::Role> RolesAllowed(Permission permission);

// The caller of an RPC. token_id 0 is the anonymous caller of a
// coordinator without tokens.
struct Principal {
  int64_t token_id = 0;
  std::string name;
  v1::Role role = v1::ROLE_UNSPECIFIED;
};

// Checks the token each call carries against the valid tokens, kept in
// memory (the store is written on create and revoke only, by the Tokens
// room, server/scheduling/tokens.h, which owns one). Knows nothing of gRPC
// (server/rpc/call_auth.h reads a call's header). Thread-safe.
class Authenticator {
 public:
  // Without tokens every caller is anonymous and may do everything.
  Authenticator() = default;
  // With tokens: `tokens` as stored (revoked ones are skipped).
  explicit Authenticator(const std::vector<TokenRecord>& tokens) {
    Enable(tokens);
  }

  // From now on each call needs one of `tokens`, or one added later.
  void Enable(const std::vector<TokenRecord>& tokens);
  bool enabled() const { return enabled_.load(); }

  // Checks the value of a call's authorization header ("" when absent):
  // UNAUTHENTICATED when it carries no token or one that is unknown or
  // revoked; PERMISSION_DENIED, naming the token and its role, when the
  // role does not allow `permission`.
  absl::StatusOr<Principal> AuthorizeHeader(absl::string_view header,
                                            Permission permission) const;

  void Add(const TokenRecord& token);
  void Remove(const TokenRecord& token);

 private:
  std::atomic<bool> enabled_{false};
  mutable absl::Mutex mu_;
  // By the SHA-256 of the secret.
  absl::flat_hash_map<std::string, Principal> valid_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_AUTH_H_
