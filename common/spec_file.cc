#include "common/spec_file.h"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace distill {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::EnumValueDescriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Message;
using google::protobuf::Reflection;

class YamlToProto {
 public:
  explicit YamlToProto(std::string source) : source_(std::move(source)) {}

  absl::Status Fill(const YAML::Node& node, const std::string& path,
                    Message* message) {
    if (!node.IsMap()) {
      return Error(node, path.empty() ? "the document" : path,
                   absl::StrCat("expected a mapping of ",
                                message->GetDescriptor()->name(), " fields"));
    }
    const Descriptor* descriptor = message->GetDescriptor();
    for (const auto& entry : node) {
      const std::string key = entry.first.Scalar();
      const std::string field_path =
          path.empty() ? key : absl::StrCat(path, ".", key);
      const FieldDescriptor* field = descriptor->FindFieldByName(key);
      if (field == nullptr) {
        std::vector<std::string> known;
        for (int i = 0; i < descriptor->field_count(); ++i) {
          known.push_back(descriptor->field(i)->name());
        }
        return Error(entry.first, field_path,
                     absl::StrCat("unknown field; ", descriptor->name(),
                                  " has [", absl::StrJoin(known, ", "), "]"));
      }
      if (absl::Status s = FillField(entry.second, field_path, field, message);
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const YAML::Node& node, const std::string& path,
                     const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ":", node.Mark().line + 1, ": ", path, ": ", what));
  }

  absl::Status FillField(const YAML::Node& value, const std::string& path,
                         const FieldDescriptor* field, Message* message) {
    if (field->is_map()) {
      return Error(value, path, "map fields cannot be set from a spec file");
    }
    if (field->is_repeated()) {
      if (!value.IsSequence()) return Error(value, path, "expected a list");
      for (size_t i = 0; i < value.size(); ++i) {
        const std::string item_path = absl::StrCat(path, "[", i, "]");
        if (absl::Status s = SetOne(value[i], item_path, field, message, true);
            !s.ok()) {
          return s;
        }
      }
      return absl::OkStatus();
    }
    return SetOne(value, path, field, message, false);
  }

  absl::Status SetOne(const YAML::Node& value, const std::string& path,
                      const FieldDescriptor* field, Message* message,
                      bool add) {
    const Reflection* r = message->GetReflection();
    if (field->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      Message* sub = add ? r->AddMessage(message, field)
                         : r->MutableMessage(message, field);
      return Fill(value, path, sub);
    }
    if (!value.IsScalar()) return Error(value, path, "expected a single value");
    const std::string text = value.Scalar();
    // What the text should have been, when it is not.
    const std::string expected = SetScalar(text, field, message, add);
    if (expected.empty()) return absl::OkStatus();
    return Error(value, path,
                 absl::StrCat("expected ", expected, ", got \"", text, "\""));
  }

  // Sets (or with `add`, appends) scalar `field` from `text`; "" when done,
  // else what the text should have been.
  static std::string SetScalar(const std::string& text,
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
          add ? r->AddDouble(message, field, v)
              : r->SetDouble(message, field, v);
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
        return SetEnumValue(text, field, message, add);
      default:
        return "a field of a supported type";
    }
  }

  static std::string SetInteger(const std::string& text,
                                const FieldDescriptor* field, Message* message,
                                bool add) {
    const Reflection* r = message->GetReflection();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64: {
        int64_t v;
        if (!absl::SimpleAtoi(text, &v)) return "an integer";
        if (field->cpp_type() == FieldDescriptor::CPPTYPE_INT64) {
          add ? r->AddInt64(message, field, v) : r->SetInt64(message, field, v);
        } else if (v < INT32_MIN || v > INT32_MAX) {
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
          add ? r->AddUInt64(message, field, v)
              : r->SetUInt64(message, field, v);
        } else if (v > UINT32_MAX) {
          return "a 32-bit integer";
        } else {
          add ? r->AddUInt32(message, field, uint32_t(v))
              : r->SetUInt32(message, field, uint32_t(v));
        }
        return "";
      }
    }
  }

  static std::string SetEnumValue(const std::string& text,
                                  const FieldDescriptor* field,
                                  Message* message, bool add) {
    const Reflection* r = message->GetReflection();
    const auto* type = field->enum_type();
    const EnumValueDescriptor* v =
        type->FindValueByName(absl::AsciiStrToUpper(text));
    if (v == nullptr || v->number() == 0) {
      std::vector<std::string> names;
      for (int i = 1; i < type->value_count(); ++i)
        names.push_back(type->value(i)->name());
      return absl::StrCat("one of [", absl::StrJoin(names, ", "), "]");
    }
    add ? r->AddEnum(message, field, v) : r->SetEnum(message, field, v);
    return "";
  }

  std::string source_;
};

}  // namespace

absl::Status ParseYamlMessage(const std::string& yaml,
                              const std::string& source_name,
                              google::protobuf::Message* message) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ":", e.mark.line + 1, ": ", e.msg));
  }
  if (!root.IsDefined() || root.IsNull()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_name, ": the file is empty"));
  }
  message->Clear();
  return YamlToProto(source_name).Fill(root, "", message);
}

absl::Status ReadYamlFile(const std::string& path,
                          google::protobuf::Message* message) {
  std::ifstream in(path);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot open spec file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseYamlMessage(text.str(), path, message);
}

}  // namespace distill
