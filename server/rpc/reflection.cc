#include "server/rpc/reflection.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>

#include <set>

#include "common/grpc_status.h"
#include "server/rpc/call_auth.h"

namespace distill {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::DescriptorPool;
using google::protobuf::FieldDescriptor;
using google::protobuf::FileDescriptor;
using grpc::reflection::v1alpha::ServerReflectionRequest;
using grpc::reflection::v1alpha::ServerReflectionResponse;

// `file` and every file it imports, each once, serialized.
void AddFileWithImports(const FileDescriptor* file,
                        std::set<const FileDescriptor*>* seen,
                        ServerReflectionResponse* response) {
  if (!seen->insert(file).second) return;
  google::protobuf::FileDescriptorProto proto;
  file->CopyTo(&proto);
  response->mutable_file_descriptor_response()->add_file_descriptor_proto(
      proto.SerializeAsString());
  for (int i = 0; i < file->dependency_count(); ++i)
    AddFileWithImports(file->dependency(i), seen, response);
}

void NotFound(const std::string& what, ServerReflectionResponse* response) {
  response->mutable_error_response()->set_error_code(grpc::NOT_FOUND);
  response->mutable_error_response()->set_error_message(what + " not found");
}

}  // namespace

grpc::Status ReflectionServiceImpl::ServerReflectionInfo(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<ServerReflectionResponse, ServerReflectionRequest>*
        stream) {
  absl::StatusOr<Principal> caller =
      AuthorizeCall(*auth_, *context, Permission::kReflect);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  const DescriptorPool* pool = DescriptorPool::generated_pool();
  ServerReflectionRequest request;
  while (stream->Read(&request)) {
    ServerReflectionResponse response;
    response.set_valid_host(request.host());
    *response.mutable_original_request() = request;
    std::set<const FileDescriptor*> seen;
    switch (request.message_request_case()) {
      case ServerReflectionRequest::kListServices:
        for (const std::string& name : services_) {
          response.mutable_list_services_response()->add_service()->set_name(
              name);
        }
        break;
      case ServerReflectionRequest::kFileByFilename:
        if (const FileDescriptor* file =
                pool->FindFileByName(request.file_by_filename())) {
          AddFileWithImports(file, &seen, &response);
        } else {
          NotFound("file " + request.file_by_filename(), &response);
        }
        break;
      case ServerReflectionRequest::kFileContainingSymbol:
        if (const FileDescriptor* file = pool->FindFileContainingSymbol(
                request.file_containing_symbol())) {
          AddFileWithImports(file, &seen, &response);
        } else {
          NotFound("symbol " + request.file_containing_symbol(), &response);
        }
        break;
      case ServerReflectionRequest::kFileContainingExtension: {
        const auto& wanted = request.file_containing_extension();
        const Descriptor* type =
            pool->FindMessageTypeByName(wanted.containing_type());
        const FieldDescriptor* extension =
            type == nullptr
                ? nullptr
                : pool->FindExtensionByNumber(type, wanted.extension_number());
        if (extension != nullptr) {
          AddFileWithImports(extension->file(), &seen, &response);
        } else {
          NotFound("extension", &response);
        }
        break;
      }
      case ServerReflectionRequest::kAllExtensionNumbersOfType: {
        const Descriptor* type = pool->FindMessageTypeByName(
            request.all_extension_numbers_of_type());
        if (type == nullptr) {
          NotFound("type " + request.all_extension_numbers_of_type(),
                   &response);
          break;
        }
        std::vector<const FieldDescriptor*> extensions;
        pool->FindAllExtensions(type, &extensions);
        auto* numbers = response.mutable_all_extension_numbers_response();
        numbers->set_base_type_name(type->full_name());
        for (const FieldDescriptor* e : extensions)
          numbers->add_extension_number(e->number());
        break;
      }
      default:
        response.mutable_error_response()->set_error_code(
            grpc::INVALID_ARGUMENT);
        response.mutable_error_response()->set_error_message(
            "the request names nothing to reflect on");
    }
    if (!stream->Write(response)) break;
  }
  return grpc::Status::OK;
}

}  // namespace distill
