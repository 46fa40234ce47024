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
#include "common/scalar_text.h"

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
    const std::string expected = SetScalarFromText(text, field, message, add);
    if (expected.empty()) return absl::OkStatus();
    return Error(value, path,
                 absl::StrCat("expected ", expected, ", got \"", text, "\""));
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
