#include "common/token.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace distill {

absl::StatusOr<std::string> NewTokenSecret() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof(bytes)) != 1) {
    return absl::UnavailableError("the system's random source failed");
  }
  return absl::StrCat(
      "distill_", absl::BytesToHexString(absl::string_view(
                      reinterpret_cast<const char*>(bytes), sizeof(bytes))));
}

std::string TokenDigest(std::string_view secret) { return Sha256Hex(secret); }

bool IsTokenShaped(std::string_view token) {
  if (token.empty() || token.size() > kMaxTokenBytes) return false;
  size_t i = 0;
  for (; i < token.size(); ++i) {
    const char c = token[i];
    if (!absl::ascii_isalnum(c) && c != '-' && c != '.' && c != '_' &&
        c != '~' && c != '+' && c != '/') {
      break;
    }
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

absl::StatusOr<std::string> ReadTokenFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream content;
  content << in.rdbuf();
  const std::string token(absl::StripAsciiWhitespace(content.str()));
  if (!in || token.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read a token from ", path));
  }
  return token;
}

absl::Status WriteTokenFile(const std::string& path, std::string_view secret) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const std::string what =
        absl::StrCat("cannot create ", path, ": ", std::strerror(errno));
    return errno == EEXIST ? absl::AlreadyExistsError(what)
                           : absl::UnavailableError(what);
  }
  const std::string line =
      absl::StrCat(absl::string_view(secret.data(), secret.size()), "\n");
  const bool written = ::write(fd, line.data(), line.size()) ==
                           static_cast<ssize_t>(line.size()) &&
                       ::fsync(fd) == 0;
  ::close(fd);
  if (!written) {
    ::unlink(path.c_str());
    return absl::UnavailableError(absl::StrCat("cannot write ", path));
  }
  return absl::OkStatus();
}

}  // namespace distill
