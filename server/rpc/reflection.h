// Server reflection (grpcurl, grpc_cli, Postman), behind a token: the
// standard protocol answered from the compiled-in descriptors of the
// services the coordinator serves. Thread-safe.
#ifndef DISTILL_SERVER_RPC_REFLECTION_H_
#define DISTILL_SERVER_RPC_REFLECTION_H_

#include <string>
#include <vector>

#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server/scheduling/auth.h"

namespace distill {

class ReflectionServiceImpl final
    : public grpc::reflection::v1alpha::ServerReflection::Service {
 public:
  // `services`: the full names list_services answers.
  ReflectionServiceImpl(const Authenticator* auth,
                        std::vector<std::string> services)
      : auth_(auth), services_(std::move(services)) {}

  grpc::Status ServerReflectionInfo(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<
          grpc::reflection::v1alpha::ServerReflectionResponse,
          grpc::reflection::v1alpha::ServerReflectionRequest>* stream) override;

 private:
  const Authenticator* const auth_;
  const std::vector<std::string> services_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_RPC_REFLECTION_H_
