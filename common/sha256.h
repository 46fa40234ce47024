#ifndef DISTILL_COMMON_SHA256_H_
#define DISTILL_COMMON_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace distill {

// Incremental SHA-256. Not thread-safe.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view data);
  // Lower-case hex digest. REQUIRES: called once.
  std::string HexDigest();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

std::string Sha256Hex(std::string_view data);

// Digest of a whole file; NOT_FOUND naming the path when it cannot be read.
absl::StatusOr<std::string> Sha256File(const std::string& path);

// True for 64 lower-case hex characters (so a digest is safe as a file name).
bool IsSha256Hex(std::string_view s);

}  // namespace distill

#endif  // DISTILL_COMMON_SHA256_H_
