#include "server/base/exposure.h"

#include "absl/strings/match.h"

namespace distill {

bool IsLoopback(const std::string& address) {
  const std::string host = address.substr(0, address.rfind(':'));
  return absl::StartsWith(host, "127.") || host == "localhost" ||
         host == "[::1]" || host == "::1";
}

std::string ExposureGap(const std::string& address, bool tls, bool tokens) {
  if (IsLoopback(address) || (tls && tokens)) return "";
  return tls ? "tokens" : (tokens ? "TLS" : "TLS or tokens");
}

}  // namespace distill
