#include "common/scalar_text.h"

#include <cstdint>
#include <limits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace distill {
namespace {

using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

std::string SetInteger(const std::string& text, const FieldDescriptor* field,
                       Message* message, bool add) {
  const Reflection* r = message->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64: {
      int64_t v;
      if (!absl::SimpleAtoi(text, &v)) return "an integer";
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
        add ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
      } else if (v < std::numeric_limits<int32_t>::min() ||
                 v > std::numeric_limits<int32_t>::max()) {
        return "a 32-bit integer";
      } else {
        add ? r->AddInt32(message, field, int32_t(v))
            : r->SetInt32(message, field, int32_t(v));
      }
      return "";
    }
    default: {
      uint64_t v;
      if (!absl::SimpleAtoi(text, &v)) return "a non-negative integer";
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_UINT64) {
        add ? r->AddUInt64(message, field, v) : r->SetUInt64(message, field, v);
      } else if (v > std::numeric_limits<uint32_t>::max()) {
        return "a 32-bit integer";
      } else {
        add ? r->AddUInt32(message, field, uint32_t(v))
            : r->SetUInt32(message, field, uint32_t(v));
      }
      return "";
    }
  }
}

std::string SetEnum(const std::string& text, const FieldDescriptor* field,
                    Message* message, bool add) {
  const Reflection* r = message->GetReflection();
  const auto* type = field->enum_type();
  const EnumValueDescriptor* v =
      type->FindValueByName(absl::AsciiStrToUpper(text));
  if (v == nullptr || v->number() == 0) {
    std::vector<std::string> names;
    for (int i = 0; i < type->value_count(); ++i) {
      if (type->value(i)->number() != 0)
        names.push_back(type->value(i)->name());
    }
    return absl::StrCat("one of [", absl::StrJoin(names, ", "), "]");
  }
  add ? r->AddEnum(message, field, v) : r->SetEnum(message, field, v);
  return "";
}

}  // namespace

std::string SetScalarFromText(const std::string& text,
                              const FieldDescriptor* field, Message* message,
                              bool add) {
  const Reflection* r = message->GetReflection();
  switch (field->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_UINT64:
      return SetInteger(text, field, message, add);
    case FieldDescriptor::CPPTYPE_DOUBLE:
    case FieldDescriptor::CPPTYPE_FLOAT: {
      double v;
      if (!absl::SimpleAtod(text, &v)) return "a number";
      if (field->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT) {
        add ? r->AddFloat(message, field, float(v))
            : r->SetFloat(message, field, float(v));
      } else {
        add ? r->AddDouble(message, field, v) : r->SetDouble(message, field, v);
      }
      return "";
    }
    case FieldDescriptor::CPPTYPE_BOOL: {
      bool v;
      if (!absl::SimpleAtob(text, &v)) return "true or false";
      add ? r->AddBool(message, field, v) : r->SetBool(message, field, v);
      return "";
    }
    case FieldDescriptor::CPPTYPE_STRING:
      add ? r->AddString(message, field, text)
          : r->SetString(message, field, text);
      return "";
    case FieldDescriptor::CPPTYPE_ENUM:
      return SetEnum(text, field, message, add);
    default:
      return "a field of a supported type";
  }
}

}  // namespace distill
