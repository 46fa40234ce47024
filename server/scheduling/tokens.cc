#include "server/scheduling/tokens.h"

#include <algorithm>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/log.h"
#include "common/roles.h"
#include "common/time_text.h"
#include "common/token.h"
#include "common/validation.h"

namespace distill {
namespace {

// The token `name` means to revoke: its one valid token, else its newest
// revoked one (whose revocation MarkRevoked then names); NOT_FOUND when no
// token has it, FAILED_PRECONDITION naming their ids when several valid
// ones do.
absl::StatusOr<int64_t> TokenNamed(const std::vector<TokenRecord>& tokens,
                                   const std::string& name) {
  std::vector<int64_t> valid;
  int64_t revoked = 0;
  for (const TokenRecord& t : tokens) {
    if (t.name != name) continue;
    if (t.revoked_ms == 0)
      valid.push_back(t.id);
    else
      revoked = t.id;
  }
  if (valid.size() == 1) return valid.front();
  if (valid.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        valid.size(), " valid tokens are named \"", name, "\" (ids ",
        absl::StrJoin(valid, ", "), "); revoke by id"));
  }
  if (revoked != 0) return revoked;
  return absl::NotFoundError(absl::StrCat("no token is named \"", name, "\""));
}

absl::Status CheckTokenName(const std::string& name) {
  if (name.empty() || name.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a token's name must be 1 to ", limits::kNameBytes,
                     " bytes, got ", name.size()));
  }
  return NotReadAsAnId("a token's name", name, "`tokens revoke`");
}

}  // namespace

absl::Status Tokens::Require(const TokenFiles& files) {
  absl::StatusOr<std::vector<TokenRecord>> tokens = List();
  if (!tokens.ok()) return tokens.status();
  auth_.Enable(*tokens);
  for (const auto& [file, role] : {std::pair{files.admin, v1::ROLE_ADMIN},
                                   std::pair{files.worker, v1::ROLE_WORKER}}) {
    if (absl::Status s = Import(*tokens, file, role).status(); !s.ok())
      return s;
  }
  const bool have_admin =
      std::any_of(tokens->begin(), tokens->end(), [](const TokenRecord& t) {
        return t.role == v1::ROLE_ADMIN && t.revoked_ms == 0;
      });
  struct Wanted {
    bool make;
    const std::string& file;
    const char* name;
    v1::Role role;
  };
  std::error_code ec;
  for (const Wanted& w :
       {Wanted{!have_admin, files.admin, "admin", v1::ROLE_ADMIN},
        Wanted{
            !files.worker.empty() && !std::filesystem::exists(files.worker, ec),
            files.worker, "worker", v1::ROLE_WORKER}}) {
    if (!w.make) continue;
    absl::StatusOr<std::pair<TokenRecord, std::string>> issued =
        Issue(w.name, w.role, /*unique_name=*/false);
    if (!issued.ok()) return issued.status();
    const std::string temp = w.file + ".new";
    std::filesystem::remove(temp, ec);
    if (absl::Status s = WriteTokenFile(temp, issued->second); !s.ok())
      return s;
    std::filesystem::rename(temp, w.file, ec);
    if (ec) {
      return absl::UnavailableError(absl::StrCat("cannot rename ", temp, " to ",
                                                 w.file, ": ", ec.message()));
    }
    DISTILL_LOG(INFO) << "made " << w.name << " token " << issued->first.id
                      << "; its secret is in " << w.file;
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Tokens::Import(std::vector<TokenRecord>& tokens,
                                    const std::string& file, v1::Role role) {
  std::error_code ec;
  if (file.empty() || !std::filesystem::exists(file, ec)) return false;
  absl::StatusOr<std::string> secret = ReadTokenFile(file);
  if (!secret.ok()) return secret.status();
  if (secret->size() < 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the token in ", file, " is ", secret->size(),
        " characters; a token has at least 32 (distill_ and 64 hex digits: "
        "echo distill_$(openssl rand -hex 32))"));
  }
  const std::string digest = TokenDigest(*secret);
  for (const TokenRecord& t : tokens) {
    if (t.sha256 == digest) return t.revoked_ms == 0 && t.role == role;
  }
  TokenRecord record;
  record.name = absl::StrCat(RoleName(role), " (", file, ")");
  record.name = record.name.substr(0, limits::kNameBytes);
  record.role = role;
  record.sha256 = digest;
  absl::StatusOr<TokenRecord> stored =
      Insert(std::move(record), /*unique_name=*/false);
  if (!stored.ok()) return stored.status();
  tokens.push_back(*stored);
  DISTILL_LOG(INFO) << "imported the " << RoleName(role) << " token in " << file
                    << " as token " << stored->id;
  return true;
}

absl::StatusOr<std::pair<TokenRecord, std::string>> Tokens::Issue(
    const std::string& name, v1::Role role, bool unique_name) {
  if (absl::Status s = CheckTokenName(name); !s.ok()) return s;
  if (role == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(role)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "role must be ", RoleList(kRoles), ", got ", static_cast<int>(role)));
  }
  absl::StatusOr<std::string> secret = NewTokenSecret();
  if (!secret.ok()) return secret.status();
  TokenRecord record;
  record.name = name;
  record.role = role;
  record.sha256 = TokenDigest(*secret);
  absl::StatusOr<TokenRecord> stored = Insert(std::move(record), unique_name);
  if (!stored.ok()) return stored.status();
  return std::make_pair(*stored, *secret);
}

absl::StatusOr<TokenRecord> Tokens::Store(TokenRecord token, bool unique_name) {
  Locked lock(&core_);
  token.created_ms = core_.clock().NowMs();
  absl::StatusOr<int64_t> id;
  if (absl::Status s = core_.Write([&]() -> absl::Status {
        core_.AssertHeld();
        if (unique_name) {
          absl::StatusOr<std::vector<TokenRecord>> tokens =
              core_.store().ListTokens();
          if (!tokens.ok()) return tokens.status();
          for (const TokenRecord& t : *tokens) {
            if (t.name != token.name || t.revoked_ms != 0) continue;
            return absl::AlreadyExistsError(absl::StrCat(
                "token ", t.id, " is named \"", token.name,
                "\" and valid (made ", TimeText(t.created_ms),
                "); a name is one owner: revoke that token first, or "
                "choose another name"));
          }
        }
        id = core_.store().InsertToken(token);
        return id.status();
      });
      !s.ok()) {
    return s;
  }
  token.id = *id;
  return token;
}

absl::StatusOr<std::vector<TokenRecord>> Tokens::List() {
  Locked lock(&core_);
  return core_.store().ListTokens();
}

absl::StatusOr<TokenPage> Tokens::ListPage(const std::string& page_token,
                                           int page_size) {
  absl::StatusOr<int64_t> after = RowToken(page_token, "token");
  if (!after.ok()) return after.status();
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) return size.status();
  // Tokens are made by hand and few: read whole, answered a page at a time.
  absl::StatusOr<std::vector<TokenRecord>> tokens = List();
  if (!tokens.ok()) return tokens.status();
  TokenPage page;
  for (TokenRecord& token : *tokens) {
    if (token.id <= *after) continue;
    if (int(page.tokens.size()) == *size) {
      page.next_page_token = absl::StrCat(page.tokens.back().id);
      break;
    }
    page.tokens.push_back(std::move(token));
  }
  return page;
}

absl::StatusOr<TokenRecord> Tokens::MarkRevoked(int64_t id,
                                                const std::string& name) {
  Locked lock(&core_);
  absl::StatusOr<TokenRecord> revoked;
  const int64_t now = core_.clock().NowMs();
  if (absl::Status s = core_.Write([&]() -> absl::Status {
        core_.AssertHeld();
        absl::StatusOr<std::vector<TokenRecord>> tokens =
            core_.store().ListTokens();
        if (!tokens.ok()) return tokens.status();
        if (id == 0) {
          absl::StatusOr<int64_t> named = TokenNamed(*tokens, name);
          if (!named.ok()) return named.status();
          id = *named;
        }
        // A revoked token says when it was revoked, not "revoked" again.
        for (const TokenRecord& t : *tokens) {
          if (t.id != id || t.revoked_ms == 0) continue;
          return absl::FailedPreconditionError(absl::StrCat(
              "token ", id, " (", t.name, ") was already revoked at ",
              TimeText(t.revoked_ms)));
        }
        revoked = core_.store().RevokeToken(id, now);
        return revoked.status();
      });
      !s.ok()) {
    return s;
  }
  return revoked;
}

}  // namespace distill
