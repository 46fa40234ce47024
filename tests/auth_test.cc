// Tokens and roles: the role table, and what each kind of bad token gets.
#include "server/scheduling/auth.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "common/token.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(RoleTest, EachRoleMayDoWhatTheTableSays) {
  struct Row {
    v1::Role role;
    bool read, change, work, administer;
  };
  for (const Row& row : {
           Row{v1::ROLE_VIEWER, true, false, false, false},
           Row{v1::ROLE_RESEARCHER, true, true, false, false},
           Row{v1::ROLE_WORKER, false, false, true, false},
           Row{v1::ROLE_ADMIN, true, true, false, true},
           Row{v1::ROLE_UNSPECIFIED, false, false, false, false},
       }) {
    SCOPED_TRACE(RoleName(row.role));
    EXPECT_EQ(RoleAllows(row.role, Permission::kRead), row.read);
    EXPECT_EQ(RoleAllows(row.role, Permission::kChange), row.change);
    EXPECT_EQ(RoleAllows(row.role, Permission::kWork), row.work);
    EXPECT_EQ(RoleAllows(row.role, Permission::kAdminister), row.administer);
    EXPECT_EQ(RoleAllows(row.role, Permission::kReflect),
              row.role != v1::ROLE_UNSPECIFIED);
    if (row.role != v1::ROLE_UNSPECIFIED) {
      EXPECT_EQ(RoleFromName(RoleName(row.role)), row.role);
    }
  }
  EXPECT_EQ(RoleFromName("root"), v1::ROLE_UNSPECIFIED);
  // The names come from the proto's enum, once (issue 33: written in four
  // places); a newer coordinator's role is shown by its number.
  EXPECT_EQ(RoleNames(), (std::vector<std::string>{"viewer", "researcher",
                                                   "worker", "admin"}));
  EXPECT_EQ(RoleName(static_cast<v1::Role>(99)), "role 99");
  EXPECT_EQ(RoleList(RolesAllowed(Permission::kRead)),
            "viewer, researcher or admin");
}

class AuthenticatorTest : public ::testing::Test {
 protected:
  TokenRecord Record(int64_t id, const std::string& name, v1::Role role,
                     const std::string& secret) {
    return {id, name, role, TokenDigest(secret), 1000, 0};
  }

  const std::string viewer_ = *NewTokenSecret();
  const std::string worker_ = *NewTokenSecret();
  Authenticator auth_{{Record(1, "alice", v1::ROLE_VIEWER, viewer_),
                       Record(2, "gpu-1", v1::ROLE_WORKER, worker_)}};
};

TEST_F(AuthenticatorTest, AValidTokenNamesItsHolder) {
  auto caller = auth_.AuthorizeHeader("Bearer " + viewer_, Permission::kRead);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->token_id, 1);
  EXPECT_EQ(caller->name, "alice");
  EXPECT_EQ(caller->role, v1::ROLE_VIEWER);
}

TEST_F(AuthenticatorTest, MissingMalformedAndUnknownTokensAreUnauthenticated) {
  for (const std::string header :
       {std::string(), viewer_, "Basic " + viewer_, std::string("Bearer "),
        "Bearer " + viewer_ + "x",
        std::string("Bearer ") + *NewTokenSecret()}) {
    SCOPED_TRACE(header);
    EXPECT_EQ(auth_.AuthorizeHeader(header, Permission::kRead).status().code(),
              absl::StatusCode::kUnauthenticated);
  }
  EXPECT_THAT(
      std::string(
          auth_.AuthorizeHeader("", Permission::kRead).status().message()),
      HasSubstr("authorization: Bearer <token>"));
}

TEST_F(AuthenticatorTest, TheWrongRoleIsDeniedNamingTokenAndRole) {
  absl::Status denied =
      auth_.AuthorizeHeader("Bearer " + viewer_, Permission::kChange).status();
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(denied.message()),
              HasSubstr("token \"alice\" (role viewer) may not submit, "
                        "cancel, retry or annotate runs and sweeps, or drain "
                        "workers (needs researcher or admin)"));
  // A researcher's backup or gc is refused naming what an admin does, not
  // tokens alone (issue 32).
  const std::string admin_only = std::string(
      auth_.AuthorizeHeader("Bearer " + viewer_, Permission::kAdminister)
          .status()
          .message());
  EXPECT_THAT(admin_only, HasSubstr("may not administer this coordinator: "
                                    "tokens, backups, garbage collection, "
                                    "owners' shares (needs admin)"));
  EXPECT_EQ(auth_.AuthorizeHeader("Bearer " + worker_, Permission::kRead)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, ARevokedTokenStopsAtOnceAndANewOneWorks) {
  auth_.Remove(Record(2, "gpu-1", v1::ROLE_WORKER, worker_));
  EXPECT_EQ(auth_.AuthorizeHeader("Bearer " + worker_, Permission::kWork)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  const std::string fresh = *NewTokenSecret();
  auth_.Add(Record(3, "gpu-2", v1::ROLE_WORKER, fresh));
  EXPECT_TRUE(auth_.AuthorizeHeader("Bearer " + fresh, Permission::kWork).ok());
  // A record already revoked is never let in.
  TokenRecord revoked = Record(4, "old", v1::ROLE_ADMIN, *NewTokenSecret());
  revoked.revoked_ms = 2000;
  Authenticator loaded({revoked});
  EXPECT_EQ(
      loaded.AuthorizeHeader("Bearer x", Permission::kRead).status().code(),
      absl::StatusCode::kUnauthenticated);
}

TEST(AuthenticatorOffTest, WithoutTokensEveryoneIsAnonymousAndAllowed) {
  Authenticator off;
  EXPECT_FALSE(off.enabled());
  for (Permission p : {Permission::kRead, Permission::kChange,
                       Permission::kWork, Permission::kAdminister}) {
    auto caller = off.AuthorizeHeader("", p);
    ASSERT_TRUE(caller.ok());
    EXPECT_EQ(caller->token_id, 0);
  }
}

TEST(TokenTest, SecretsAreLongRandomAndStoredOnlyAsDigests) {
  const std::string a = *NewTokenSecret();
  const std::string b = *NewTokenSecret();
  EXPECT_NE(a, b);
  EXPECT_EQ(a.size(), 8u + 64u);
  EXPECT_EQ(a.rfind("distill_", 0), 0u);
  EXPECT_EQ(TokenDigest(a).size(), 64u);
  EXPECT_EQ(TokenDigest(a).find(a.substr(8, 16)), std::string::npos);
}

}  // namespace
}  // namespace distill
