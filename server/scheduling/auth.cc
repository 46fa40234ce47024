#include "server/scheduling/auth.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/roles.h"
#include "common/token.h"

namespace distill {
namespace {

// What each permission lets a token do, and the roles that have it: the
// one place both are written.
struct Rule {
  Permission permission;
  const char* may;
  std::vector<v1::Role> roles;
};

const std::vector<Rule>& Rules() {
  static const auto* const kRules = new std::vector<Rule>{
      {Permission::kRead,
       "read runs",
       {v1::ROLE_VIEWER, v1::ROLE_RESEARCHER, v1::ROLE_ADMIN}},
      {Permission::kChange,
       "submit, cancel, retry or annotate runs and sweeps, or drain workers",
       {v1::ROLE_RESEARCHER, v1::ROLE_ADMIN}},
      {Permission::kWork, "act as a worker", {v1::ROLE_WORKER}},
      {Permission::kAdminister,
       "administer this coordinator: tokens, backups, garbage collection, "
       "owners' shares",
       {v1::ROLE_ADMIN}},
      {Permission::kReflect, "use reflection",
       std::vector<v1::Role>(kRoles.begin(), kRoles.end())},
  };
  return *kRules;
}

const Rule* RuleOf(Permission permission) {
  for (const Rule& rule : Rules()) {
    if (rule.permission == permission) return &rule;
  }
  return nullptr;
}

// "read runs (needs viewer, researcher or admin)".
std::string PermissionText(Permission permission) {
  const Rule* rule = RuleOf(permission);
  if (rule == nullptr) return "?";
  return absl::StrCat(rule->may, " (needs ", RoleList(rule->roles), ")");
}

}  // namespace

bool RoleAllows(v1::Role role, Permission permission) {
  const Rule* rule = RuleOf(permission);
  return rule != nullptr && std::find(rule->roles.begin(), rule->roles.end(),
                                      role) != rule->roles.end();
}

std::vector<v1::Role> RolesAllowed(Permission permission) {
  const Rule* rule = RuleOf(permission);
  return rule == nullptr ? std::vector<v1::Role>() : rule->roles;
}

void Authenticator::Enable(const std::vector<TokenRecord>& tokens) {
  for (const TokenRecord& token : tokens) Add(token);
  enabled_.store(true);
}

void Authenticator::Add(const TokenRecord& token) {
  if (token.revoked_ms != 0) return;
  absl::MutexLock lock(&mu_);
  valid_[token.sha256] =
      Principal{token.id, token.name, static_cast<v1::Role>(token.role)};
}

void Authenticator::Remove(const TokenRecord& token) {
  absl::MutexLock lock(&mu_);
  valid_.erase(token.sha256);
}

absl::StatusOr<Principal> Authenticator::AuthorizeHeader(
    absl::string_view header, Permission permission) const {
  if (!enabled_) return Principal{0, "anonymous", v1::ROLE_ADMIN};
  if (header.empty()) {
    return absl::UnauthenticatedError(
        "this coordinator requires a token: send gRPC metadata "
        "\"authorization: Bearer <token>\" (distill and distill-worker: "
        "--token_file or DISTILL_TOKEN_FILE)");
  }
  if (!absl::ConsumePrefix(&header, kBearerPrefix)) {
    return absl::UnauthenticatedError(
        "the authorization metadata must be \"Bearer <token>\"");
  }
  Principal principal;
  {
    absl::MutexLock lock(&mu_);
    const auto it = valid_.find(
        TokenDigest(std::string_view(header.data(), header.size())));
    if (it == valid_.end()) {
      return absl::UnauthenticatedError(
          "the token is not known to this coordinator or was revoked");
    }
    principal = it->second;
  }
  if (!RoleAllows(principal.role, permission)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "token \"", principal.name, "\" (role ", RoleName(principal.role),
        ") may not ", PermissionText(permission)));
  }
  return principal;
}

}  // namespace distill
