// One way to set a protobuf scalar from text as a user writes it, for every
// place text becomes a spec field: YAML files (common/spec_file.h), a
// sweep's grid and random axes (common/sweep_expansion.h) and `runs list
// --where` (common/spec_fields.h).
#ifndef DISTILL_COMMON_SCALAR_TEXT_H_
#define DISTILL_COMMON_SCALAR_TEXT_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>

namespace distill {

// Sets scalar `field` of `message` (with `add`, appends to the repeated
// field) from `text`:
//   double, float   a number (absl::SimpleAtod: "4", "0.05", "1e-3"; NaN
//                   and infinities pass here, validation refuses them by
//                   the field's name)
//   int32, int64    an integer in the field's range
//   uint32, uint64  a non-negative integer in the field's range
//   bool            true/false, yes/no, y/n, t/f, 1/0 (any case)
//   enum            a value's name, any case; never the 0 value
//                   (..._UNSPECIFIED), which means "not set"
//   string          the text as it is
// Returns "" when set, else what the text should have been ("a number",
// "one of [SGD, ADAMW]"), for the caller's message.
std::string SetScalarFromText(const std::string& text,
                              const google::protobuf::FieldDescriptor* field,
                              google::protobuf::Message* message,
                              bool add = false);

}  // namespace distill

#endif  // DISTILL_COMMON_SCALAR_TEXT_H_
