#include "server/auth.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/token.h"

namespace distill {
namespace {

const char* PermissionText(Permission permission) {
  switch (permission) {
    case Permission::kRead:
      return "read runs (needs viewer, researcher or admin)";
    case Permission::kChange:
      return "submit, cancel, retry or annotate runs and sweeps, or drain "
             "workers (needs researcher or admin)";
    case Permission::kWork:
      return "act as a worker (needs worker)";
    case Permission::kAdminister:
      return "administer this coordinator: tokens, backups, garbage "
             "collection, owners' shares (needs admin)";
    case Permission::kReflect:
      return "use reflection";
  }
  return "?";
}

}  // namespace

bool RoleAllows(v1::Role role, Permission permission) {
  switch (permission) {
    case Permission::kRead:
      return role == v1::ROLE_VIEWER || role == v1::ROLE_RESEARCHER ||
             role == v1::ROLE_ADMIN;
    case Permission::kChange:
      return role == v1::ROLE_RESEARCHER || role == v1::ROLE_ADMIN;
    case Permission::kWork:
      return role == v1::ROLE_WORKER;
    case Permission::kAdminister:
      return role == v1::ROLE_ADMIN;
    case Permission::kReflect:
      return role != v1::ROLE_UNSPECIFIED;
  }
  return false;
}

std::string RoleName(v1::Role role) {
  switch (role) {
    case v1::ROLE_VIEWER:
      return "viewer";
    case v1::ROLE_RESEARCHER:
      return "researcher";
    case v1::ROLE_WORKER:
      return "worker";
    case v1::ROLE_ADMIN:
      return "admin";
    default:
      return "unspecified";
  }
}

v1::Role RoleFromName(absl::string_view name) {
  for (v1::Role role : {v1::ROLE_VIEWER, v1::ROLE_RESEARCHER, v1::ROLE_WORKER,
                        v1::ROLE_ADMIN}) {
    if (name == RoleName(role)) return role;
  }
  return v1::ROLE_UNSPECIFIED;
}

Authenticator::Authenticator(const std::vector<TokenRecord>& tokens)
    : enabled_(true) {
  for (const TokenRecord& token : tokens) Add(token);
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

absl::StatusOr<Principal> Authenticator::Authorize(
    const grpc::ServerContextBase& context, Permission permission) const {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find(kAuthorizationKey);
  return AuthorizeHeader(
      it == metadata.end()
          ? absl::string_view()
          : absl::string_view(it->second.data(), it->second.size()),
      permission);
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
