// A spec's scalar fields as (path, text) pairs, so that runs can be found
// by any field of their spec in SQL (`distill runs list --where
// losses.ikd.temperature=4`).
#ifndef DISTILL_COMMON_SPEC_FIELDS_H_
#define DISTILL_COMMON_SPEC_FIELDS_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// Every scalar field of `spec` (set or not, in nested messages too; lists
// left out) by its path, with its value as text: numbers in a canonical
// form (a double round-trips), enums by name, true/false. In field order.
std::vector<std::pair<std::string, std::string>> FlattenSpec(
    const v1::ExperimentSpec& spec);

// FlattenSpec's fields that runs are found by (`--where`): a loss term
// turned off (weight 0) has its weight alone, not the settings it was
// filled with (`losses.ikd.temperature=4` finds runs that ran IKD at 4).
std::vector<std::pair<std::string, std::string>> SearchableFields(
    const v1::ExperimentSpec& spec);

// The stored text of the field at `path` holding `value` (as a user writes
// it: "4", "0.05", "adamw", "resnet50"), so that it compares equal to what
// FlattenSpec stored. INVALID_ARGUMENT naming the path or the value.
absl::StatusOr<std::string> CanonicalFieldValue(const std::string& path,
                                                const std::string& value);

// The value of a singular double or float `field` of `message`.
double FloatingValue(const google::protobuf::Message& message,
                     const google::protobuf::FieldDescriptor* field);

// Calls `visit(message, field, path)` for every singular double or float
// field of `message` and of the nested messages it has set, by path
// ("optimizer.lr"), in field order; returns the first error `visit`
// returns. `Message` is google::protobuf::Message, const (to read) or not
// (`visit` may then set the field).
template <typename Message, typename Visit>
absl::Status ForEachFloatingField(Message& message, const std::string& prefix,
                                  const Visit& visit) {
  using google::protobuf::FieldDescriptor;
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const google::protobuf::Reflection* r = message.GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* field = d->field(i);
    if (field->is_repeated()) continue;
    const std::string path = absl::StrCat(prefix, field->name());
    absl::Status s;
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      if (!r->HasField(message, field)) continue;
      if constexpr (std::is_const_v<Message>) {
        s = ForEachFloatingField(r->GetMessage(message, field), path + ".",
                                 visit);
      } else {
        s = ForEachFloatingField(*r->MutableMessage(&message, field),
                                 path + ".", visit);
      }
    } else if (field->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE ||
               field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
      s = visit(message, field, path);
    }
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace distill

#endif  // DISTILL_COMMON_SPEC_FIELDS_H_
