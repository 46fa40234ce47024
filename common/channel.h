// The channel from a worker or the CLI to the coordinator: TLS when a CA is
// named (common/tls.h), and the token on every call.
#ifndef DISTILL_COMMON_CHANNEL_H_
#define DISTILL_COMMON_CHANNEL_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"

namespace distill {

// `token` (none when empty) goes as "authorization: Bearer <token>" on
// every call of the channel, plaintext or TLS. INVALID_ARGUMENT naming a
// TLS file that cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& address,
                                                    const TlsFiles& tls,
                                                    const std::string& token);

}  // namespace distill

#endif  // DISTILL_COMMON_CHANNEL_H_
