// What the load generators (coordinator_load, lab) share as gRPC clients
// of a running coordinator: a connection of their own, a token's metadata,
// the token files, and an exit naming the call that failed.
#ifndef DISTILL_BENCH_BENCH_CLIENT_H_
#define DISTILL_BENCH_BENCH_CLIENT_H_

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/token.h"

namespace distill::bench {

// A channel of its own (its own TCP connection), as a separate worker or
// researcher has: `index` tells it apart; 0 keeps gRPC's receive limit.
inline std::shared_ptr<grpc::Channel> OwnChannel(const std::string& target,
                                                 int index,
                                                 int max_receive_bytes = 0) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("distill.bench.client", index);
  if (max_receive_bytes > 0) args.SetMaxReceiveMessageSize(max_receive_bytes);
  return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(),
                                   args);
}

inline void Authorize(grpc::ClientContext* context, const std::string& token) {
  context->AddMetadata("authorization", "Bearer " + token);
}

[[noreturn]] inline void Die(const char* program, const std::string& what,
                             const std::string& message) {
  std::fprintf(stderr, "%s: %s: %s\n", program, what.c_str(), message.c_str());
  std::exit(1);
}

[[noreturn]] inline void Die(const char* program, const std::string& what,
                             const grpc::Status& status) {
  Die(program, what, status.error_message());
}

// The token in `path` (common/token.h), or the exit naming it.
inline std::string TokenOrDie(const char* program, const std::string& path) {
  absl::StatusOr<std::string> token = ReadTokenFile(path);
  if (!token.ok()) Die(program, "token file", token.status().ToString());
  return *token;
}

}  // namespace distill::bench

#endif  // DISTILL_BENCH_BENCH_CLIENT_H_
