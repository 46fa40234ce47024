// The rule for listening beyond loopback, one for the gRPC port and the
// pages: calls there are encrypted and carry tokens, or the operator said
// the network is trusted (--insecure).
#ifndef DISTILL_SERVER_BASE_EXPOSURE_H_
#define DISTILL_SERVER_BASE_EXPOSURE_H_

#include <string>

namespace distill {

// Whether host:port names only this machine (127.0.0.0/8, ::1, localhost).
bool IsLoopback(const std::string& address);

// What serving `address` lacks under the rule: "" when nothing (loopback,
// or TLS and tokens), else "TLS", "tokens" or "TLS or tokens".
std::string ExposureGap(const std::string& address, bool tls, bool tokens);

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_EXPOSURE_H_
