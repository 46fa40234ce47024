#ifndef DISTILL_COMMON_SPEC_FILE_H_
#define DISTILL_COMMON_SPEC_FILE_H_

#include <google/protobuf/message.h>

#include <string>

#include "absl/status/status.h"

namespace distill {

// Fills `message` from YAML whose keys are the proto's field names; enums by
// value name (case-insensitive). An unknown field, a wrong type or an
// unknown enum value is INVALID_ARGUMENT naming `source_name`, the line and
// the field path: `sweep.yaml:12: base.losses.ikd.temperature: expected a
// number, got "hot"`.
absl::Status ParseYamlMessage(const std::string& yaml,
                              const std::string& source_name,
                              google::protobuf::Message* message);

// The same for a file; NOT_FOUND when it cannot be read.
absl::Status ReadYamlFile(const std::string& path,
                          google::protobuf::Message* message);

}  // namespace distill

#endif  // DISTILL_COMMON_SPEC_FILE_H_
