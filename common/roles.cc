#include "common/roles.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace distill {

std::string RoleName(v1::Role role) {
  const std::string& name = v1::Role_Name(role);  // "" for an unknown one.
  if (!absl::StartsWith(name, "ROLE_"))
    return absl::StrCat("role ", static_cast<int>(role));
  return absl::AsciiStrToLower(name.substr(5));
}

v1::Role RoleFromName(absl::string_view name) {
  for (v1::Role role : kRoles) {
    if (name == RoleName(role)) return role;
  }
  return v1::ROLE_UNSPECIFIED;
}

std::vector<std::string> RoleNames() {
  std::vector<std::string> names;
  for (v1::Role role : kRoles) names.push_back(RoleName(role));
  return names;
}

std::string RoleList(absl::Span<const v1::Role> roles) {
  std::vector<std::string> names;
  for (v1::Role role : roles) names.push_back(RoleName(role));
  if (names.size() < 2) return absl::StrJoin(names, "");
  const std::string last = names.back();
  names.pop_back();
  return absl::StrCat(absl::StrJoin(names, ", "), " or ", last);
}

}  // namespace distill
