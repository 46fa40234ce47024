// Tokens: how they are made, kept and sent. A token is "distill_" and 64
// random hex digits; the coordinator keeps only its SHA-256. Clients send it
// as gRPC metadata: "authorization: Bearer <token>".
#ifndef DISTILL_COMMON_TOKEN_H_
#define DISTILL_COMMON_TOKEN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace distill {

inline constexpr char kAuthorizationKey[] = "authorization";
inline constexpr char kBearerPrefix[] = "Bearer ";

// A new secret from the system's random source (32 bytes).
absl::StatusOr<std::string> NewTokenSecret();

// What the coordinator stores and looks a secret up by.
std::string TokenDigest(std::string_view secret);

// Whether `token` has a bearer token's shape (RFC 6750's b64token:
// letters, digits and -._~+/, then any '='), 1 to kMaxTokenBytes long.
// Every token distill makes has it; nothing of that shape can end an HTTP
// header or a cookie.
inline constexpr size_t kMaxTokenBytes = 512;
bool IsTokenShaped(std::string_view token);

// The token in `path` (surrounding whitespace dropped); INVALID_ARGUMENT
// naming the path when it cannot be read or is empty.
absl::StatusOr<std::string> ReadTokenFile(const std::string& path);

// Writes `secret` to `path` readable by its owner only (0600), replacing
// nothing: ALREADY_EXISTS when the file is there.
absl::Status WriteTokenFile(const std::string& path, std::string_view secret);

}  // namespace distill

#endif  // DISTILL_COMMON_TOKEN_H_
