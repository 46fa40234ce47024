// TLS for every gRPC connection: the coordinator's port, and the worker's
// and the CLI's channels to it. Files are PEM.
#ifndef DISTILL_COMMON_TLS_H_
#define DISTILL_COMMON_TLS_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace distill {

struct TlsFiles {
  std::string cert;  // This side's certificate chain.
  std::string key;   // Its private key.
  // Server: when set, clients must present a certificate this CA signed.
  // Client: the CA the coordinator's certificate must chain to.
  std::string ca;
  bool enabled() const { return !cert.empty() || !key.empty() || !ca.empty(); }
};

// TLS with `files.cert` and `files.key` (and client certificates required
// when `files.ca` is set); plaintext when none is set. INVALID_ARGUMENT
// naming the file that cannot be read or is missing.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentials(
    const TlsFiles& files);

// TLS trusting `files.ca` (presenting `files.cert`/`files.key` when set);
// plaintext when `files.ca` is empty.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentials(
    const TlsFiles& files);

}  // namespace distill

#endif  // DISTILL_COMMON_TLS_H_
