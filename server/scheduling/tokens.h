// Every token, in one room: made (by an admin, or at the coordinator's first
// start), imported from the operator's files, listed, revoked, and the set of
// valid ones each call is checked against (the Authenticator). Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_TOKENS_H_
#define DISTILL_SERVER_SCHEDULING_TOKENS_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/admin_service.pb.h"
#include "server/scheduling/auth.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

struct TokenPage {
  std::vector<TokenRecord> tokens;
  std::string next_page_token;
};

// Where a coordinator with tokens finds, or writes, the tokens that let an
// admin and the workers in (BootstrapTokens).
struct TokenFiles {
  std::string admin;
  std::string worker;  // Empty: none made.
};

class Tokens {
 public:
  explicit Tokens(SchedulerCore& core) : core_(core) {}

  // Turns tokens on: the stored valid tokens are let in, and an admin and
  // (with files.worker) the workers can get in: token files that exist are
  // imported (a Kubernetes or Compose secret); when no valid admin token
  // exists, one is made and written to files.admin (replacing a stale
  // one); a worker token is made into files.worker when that is set and
  // missing. Without this call every caller is anonymous and may do all.
  absl::Status Require(const TokenFiles& files);
  // The valid tokens as each call is checked against them.
  const Authenticator& authenticator() const { return auth_; }

  // Makes a token: its record (with id) and its secret, which is shown
  // once and never stored. INVALID_ARGUMENT for an empty, long or
  // all-digit name or no role; with `unique_name`, ALREADY_EXISTS when a
  // valid token has the name (a name is who owns runs; the tokens a
  // coordinator makes at its start need not be unique).
  absl::StatusOr<std::pair<TokenRecord, std::string>> Issue(
      const std::string& name, v1::Role role, bool unique_name = true);
  // Stores `token` (its digest already made) and lets it in.
  absl::StatusOr<TokenRecord> Insert(TokenRecord token,
                                     bool unique_name = true) {
    absl::StatusOr<TokenRecord> stored =
        core_.Durable(Store(std::move(token), unique_name));
    if (stored.ok()) auth_.Add(*stored);
    return stored;
  }
  absl::StatusOr<std::vector<TokenRecord>> List();
  // A page of them, in id order.
  absl::StatusOr<TokenPage> ListPage(const std::string& page_token,
                                     int page_size);
  // Revokes token `id`, or with id 0 the valid token named `name`; its
  // calls are refused from now on.
  absl::StatusOr<TokenRecord> Revoke(int64_t id, const std::string& name) {
    absl::StatusOr<TokenRecord> revoked = core_.Durable(MarkRevoked(id, name));
    if (revoked.ok()) auth_.Remove(*revoked);
    return revoked;
  }

 private:
  absl::StatusOr<TokenRecord> Store(TokenRecord token, bool unique_name);
  absl::StatusOr<TokenRecord> MarkRevoked(int64_t id, const std::string& name);
  // A token file the operator made whose secret this database does not know
  // is imported with `role`; one it knows (valid or revoked) is left as it
  // is: a revocation sticks. Returns whether the file holds a valid token
  // of `role`.
  absl::StatusOr<bool> Import(std::vector<TokenRecord>& tokens,
                              const std::string& file, v1::Role role);

  SchedulerCore& core_;
  Authenticator auth_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_TOKENS_H_
