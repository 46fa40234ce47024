// The roles a token has, by the names people write (`distill tokens create
// --role=viewer`): each name comes from the proto's enum (ROLE_VIEWER ->
// "viewer"), written nowhere else.
#ifndef DISTILL_COMMON_ROLES_H_
#define DISTILL_COMMON_ROLES_H_

#include <array>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "distill/v1/admin_service.pb.h"

namespace distill {

// Every role a token may have, in the order they grow.
inline constexpr std::array<v1::Role, 4> kRoles = {
    v1::ROLE_VIEWER, v1::ROLE_RESEARCHER, v1::ROLE_WORKER, v1::ROLE_ADMIN};

// "viewer", "researcher", ...; "unspecified" for ROLE_UNSPECIFIED, "role
// 99" for one this build does not know (a newer coordinator's).
std::string RoleName(v1::Role role);
// The role of that name; ROLE_UNSPECIFIED for any other text.
v1::Role RoleFromName(absl::string_view name);
// kRoles' names.
std::vector<std::string> RoleNames();
// "viewer, researcher or admin".
std::string RoleList(absl::Span<const v1::Role> roles);

}  // namespace distill

#endif  // DISTILL_COMMON_ROLES_H_
