// One scalar setter from text (common/scalar_text.h) behind every place
// text becomes a spec field: a YAML file, a sweep's grid axis and `runs
// list --where` read each scalar kind alike (issue 33: YAML took yes/1 as
// bools and refused an enum's 0, axes and --where did not; unsigned fields
// worked only in YAML).
#include "common/scalar_text.h"

#include <gmock/gmock.h>
#include <google/protobuf/wrappers.pb.h>
#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "common/spec_fields.h"
#include "common/spec_file.h"
#include "common/sweep_expansion.h"

namespace distill {
namespace {

struct Case {
  std::string path;
  std::string text;
  std::optional<std::string> stored;  // nullopt: refused.
};

// The value of `path` in `spec` as the store keeps it.
std::string Stored(const v1::ExperimentSpec& spec, const std::string& path) {
  for (const auto& [p, v] : FlattenSpec(spec)) {
    if (p == path) return v;
  }
  return "(no such path)";
}

// "optimizer.lr", "0.05" -> "optimizer: {lr: 0.05}".
std::string Yaml(const std::string& path, const std::string& text) {
  const std::vector<std::string> parts = absl::StrSplit(path, '.');
  std::string out = "\"" + text + "\"";
  for (auto it = parts.rbegin(); it != parts.rend(); ++it)
    out = "{" + *it + ": " + out + "}";
  return out.substr(1, out.size() - 2);
}

TEST(ScalarTextTest, EveryKindReadsAlikeInYamlGridAxesAndWhere) {
  const std::vector<Case> cases = {
      {"optimizer.lr", "0.05", "0.05"},
      {"optimizer.lr", "1e-3", "0.001"},
      {"optimizer.lr", "fast", std::nullopt},
      {"epochs", "3", "3"},
      {"epochs", "3000000000", std::nullopt},
      {"epochs", "three", std::nullopt},
      {"seed", "-5", "-5"},
      {"seed", "1.5", std::nullopt},
      {"evaluation.every_epoch", "yes", "true"},
      {"evaluation.every_epoch", "1", "true"},
      {"evaluation.every_epoch", "FALSE", "false"},
      {"evaluation.every_epoch", "maybe", std::nullopt},
      {"optimizer.kind", "adamw", "ADAMW"},
      {"optimizer.kind", "OPTIMIZER_KIND_UNSPECIFIED", std::nullopt},
      {"optimizer.kind", "adam", std::nullopt},
      {"student.arch", "resnet50", "resnet50"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.path + " = " + c.text);
    v1::ExperimentSpec from_yaml;
    const absl::Status yaml =
        ParseYamlMessage(Yaml(c.path, c.text), "spec.yaml", &from_yaml);
    v1::ExperimentSpec from_axis;
    const absl::Status axis = SetSpecField(c.path, c.text, &from_axis);
    const absl::StatusOr<std::string> where =
        CanonicalFieldValue(c.path, c.text);
    if (!c.stored) {
      EXPECT_FALSE(yaml.ok());
      EXPECT_FALSE(axis.ok());
      EXPECT_FALSE(where.ok());
      continue;
    }
    ASSERT_TRUE(yaml.ok()) << yaml;
    ASSERT_TRUE(axis.ok()) << axis;
    ASSERT_TRUE(where.ok()) << where.status();
    EXPECT_EQ(Stored(from_yaml, c.path), *c.stored);
    EXPECT_EQ(Stored(from_axis, c.path), *c.stored);
    EXPECT_EQ(*where, *c.stored);
  }
}

// The kinds no spec field has yet: float and the unsigned integers.
TEST(ScalarTextTest, FloatAndUnsignedIntegers) {
  google::protobuf::FloatValue f;
  const auto* value = f.GetDescriptor()->FindFieldByName("value");
  EXPECT_EQ(SetScalarFromText("0.5", value, &f), "");
  EXPECT_EQ(f.value(), 0.5f);
  EXPECT_EQ(SetScalarFromText("half", value, &f), "a number");
  google::protobuf::UInt32Value u32;
  value = u32.GetDescriptor()->FindFieldByName("value");
  EXPECT_EQ(SetScalarFromText("7", value, &u32), "");
  EXPECT_EQ(u32.value(), 7u);
  EXPECT_EQ(SetScalarFromText("4294967296", value, &u32), "a 32-bit integer");
  EXPECT_EQ(SetScalarFromText("-1", value, &u32), "a non-negative integer");
  google::protobuf::UInt64Value u64;
  value = u64.GetDescriptor()->FindFieldByName("value");
  EXPECT_EQ(SetScalarFromText("18446744073709551615", value, &u64), "");
  EXPECT_EQ(u64.value(), 18446744073709551615u);
}

}  // namespace
}  // namespace distill
