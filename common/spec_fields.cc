#include "common/spec_fields.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <charconv>
#include <string>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sweep_expansion.h"

namespace distill {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// The shortest text in printf's %g that reads back as the same double
// (the form run_fields has always stored); zero of either sign is "0".
// Never throws: the text is read back with std::from_chars, which reports
// a subnormal or out-of-range text in its result instead of throwing (as
// std::stod did, for 1e-310).
std::string DoubleText(double x) {
  if (x == 0) return "0";
  for (int digits = 1; digits <= 17; ++digits) {
    std::string text = absl::StrFormat("%.*g", digits, x);
    double back = 0;
    const auto [end, error] =
        std::from_chars(text.data(), text.data() + text.size(), back);
    if (error == std::errc() && end == text.data() + text.size() && back == x)
      return text;
  }
  return absl::StrFormat("%.17g", x);
}

std::string FieldText(const Message& message, const FieldDescriptor* field) {
  const google::protobuf::Reflection* r = message.GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return DoubleText(r->GetDouble(message, field));
    case FieldDescriptor::CPPTYPE_FLOAT:
      return DoubleText(r->GetFloat(message, field));
    case FieldDescriptor::CPPTYPE_INT32:
      return absl::StrCat(r->GetInt32(message, field));
    case FieldDescriptor::CPPTYPE_INT64:
      return absl::StrCat(r->GetInt64(message, field));
    case FieldDescriptor::CPPTYPE_UINT32:
      return absl::StrCat(r->GetUInt32(message, field));
    case FieldDescriptor::CPPTYPE_UINT64:
      return absl::StrCat(r->GetUInt64(message, field));
    case FieldDescriptor::CPPTYPE_BOOL:
      return r->GetBool(message, field) ? "true" : "false";
    case FieldDescriptor::CPPTYPE_ENUM:
      return r->GetEnum(message, field)->name();
    case FieldDescriptor::CPPTYPE_STRING:
      return r->GetString(message, field);
    default:
      return "";
  }
}

// Whether `message` is a loss term (a message of Losses with a weight)
// turned off: its weight is 0.
bool IsLossTurnedOff(const Message& message, const std::string& prefix) {
  if (!absl::StartsWith(prefix, "losses.")) return false;
  const FieldDescriptor* weight =
      message.GetDescriptor()->FindFieldByName("weight");
  return weight != nullptr &&
         weight->cpp_type() == FieldDescriptor::CPPTYPE_DOUBLE &&
         message.GetReflection()->GetDouble(message, weight) == 0;
}

// With `searchable`, a loss term turned off has its weight alone (the
// settings it was filled with do not run).
void Flatten(const Message& message, const std::string& prefix, bool searchable,
             std::vector<std::pair<std::string, std::string>>* out) {
  const google::protobuf::Descriptor* d = message.GetDescriptor();
  const bool weight_only = searchable && IsLossTurnedOff(message, prefix);
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* field = d->field(i);
    if (field->is_repeated()) continue;
    if (weight_only && field->name() != "weight") continue;
    const std::string path = absl::StrCat(prefix, field->name());
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Flatten(message.GetReflection()->GetMessage(message, field), path + ".",
              searchable, out);
    } else {
      out->emplace_back(path, FieldText(message, field));
    }
  }
}

}  // namespace

std::vector<std::pair<std::string, std::string>> FlattenSpec(
    const v1::ExperimentSpec& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  Flatten(spec, "", /*searchable=*/false, &out);
  return out;
}

std::vector<std::pair<std::string, std::string>> SearchableFields(
    const v1::ExperimentSpec& spec) {
  std::vector<std::pair<std::string, std::string>> out;
  Flatten(spec, "", /*searchable=*/true, &out);
  return out;
}

double FloatingValue(const google::protobuf::Message& message,
                     const google::protobuf::FieldDescriptor* field) {
  const google::protobuf::Reflection* r = message.GetReflection();
  return field->cpp_type() == google::protobuf::FieldDescriptor::CPPTYPE_FLOAT
             ? r->GetFloat(message, field)
             : r->GetDouble(message, field);
}

absl::StatusOr<std::string> CanonicalFieldValue(const std::string& path,
                                                const std::string& value) {
  v1::ExperimentSpec spec;
  absl::Status s;
  // The sweep axes' parser, and the fields no axis sets that a researcher
  // still looks runs up by.
  if (path == "kind") {
    v1::ExperimentKind kind;
    if (!v1::ExperimentKind_Parse(absl::AsciiStrToUpper(value), &kind)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": \"", value.substr(0, 64),
                       "\" is not TRAIN_TEACHER, DISTILL or EVALUATE"));
    }
    spec.set_kind(kind);
  } else if (path == "name") {
    spec.set_name(value);
  } else if (path == "teacher.run_id") {
    int64_t id = 0;
    if (!absl::SimpleAtoi(value, &id)) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ": \"", value.substr(0, 64), "\" is not a whole number"));
    }
    spec.mutable_teacher()->set_run_id(id);
  } else if (IsTeacherAxis(path)) {
    s = SetTeacherField(path, value, &spec);
  } else {
    s = SetSpecField(path, value, &spec);
  }
  if (!s.ok()) return s;
  for (auto& [p, v] : FlattenSpec(spec)) {
    if (p == path) return std::move(v);
  }
  return absl::InvalidArgumentError(absl::StrCat(path, ": not a field"));
}

}  // namespace distill
