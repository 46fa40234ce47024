// A spec's fields as the store indexes them, and a researcher's value
// brought to the same text.
#include "common/spec_fields.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <map>

namespace distill {
namespace {

using ::testing::HasSubstr;

std::map<std::string, std::string> Fields(const v1::ExperimentSpec& spec) {
  std::map<std::string, std::string> out;
  for (auto& [path, value] : FlattenSpec(spec)) out[path] = value;
  return out;
}

TEST(SpecFieldsTest, EveryScalarByItsPathSetOrNot) {
  v1::ExperimentSpec spec;
  spec.set_kind(v1::DISTILL);
  spec.mutable_losses()->mutable_ikd()->set_temperature(4);
  spec.mutable_optimizer()->set_lr(0.05);
  spec.mutable_student()->set_arch("resnet50");
  spec.mutable_dataset()->set_augment(false);
  const auto fields = Fields(spec);
  EXPECT_EQ(fields.at("kind"), "DISTILL");
  EXPECT_EQ(fields.at("losses.ikd.temperature"), "4");
  EXPECT_EQ(fields.at("optimizer.lr"), "0.05");  // Shortest round trip.
  EXPECT_EQ(fields.at("student.arch"), "resnet50");
  EXPECT_EQ(fields.at("dataset.augment"), "false");
  EXPECT_EQ(fields.at("losses.rkd.angle_weight"), "0");  // Not set: 0.
  EXPECT_EQ(fields.at("teacher.vit.width"), "0");
  EXPECT_EQ(fields.at("optimizer.kind"), "OPTIMIZER_KIND_UNSPECIFIED");
  EXPECT_EQ(fields.count("losses"), 0u);  // Messages are not fields.
}

// std::stod threw out_of_range on a subnormal's text, from SubmitRun and
// from a `--where` filter; the text now comes back without throwing.
TEST(SpecFieldsTest, ExtremeNumbersAreTextWithoutThrowing) {
  v1::ExperimentSpec spec;
  const std::pair<double, const char*> cases[] = {
      {1e-310, "1e-310"},
      {4.9406564584124654e-324, "5e-324"},
      {-2.2250738585072014e-308, "-2.2250738585072014e-308"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {-0.0, "0"},
      {std::numeric_limits<double>::infinity(), "inf"}};
  for (const auto& [value, text] : cases) {
    spec.mutable_optimizer()->set_lr(value);
    EXPECT_EQ(Fields(spec).at("optimizer.lr"), text) << value;
  }
  EXPECT_EQ(*CanonicalFieldValue("optimizer.lr", "1e-310"), "1e-310");
  EXPECT_EQ(*CanonicalFieldValue("losses.mse", "-0"), "0");
}

TEST(SpecFieldsTest, ValuesAsWrittenCompareEqualToWhatIsStored) {
  v1::ExperimentSpec spec;
  spec.mutable_optimizer()->set_lr(0.1 + 0.2);  // Not 0.3 in binary.
  spec.mutable_optimizer()->set_kind(v1::ADAMW);
  spec.mutable_teacher()->set_run_id(12);
  const auto fields = Fields(spec);
  EXPECT_EQ(*CanonicalFieldValue("optimizer.kind", "adamw"),
            fields.at("optimizer.kind"));
  EXPECT_EQ(*CanonicalFieldValue("optimizer.lr", "0.30000000000000004"),
            fields.at("optimizer.lr"));
  EXPECT_NE(*CanonicalFieldValue("optimizer.lr", "0.3"),
            fields.at("optimizer.lr"));
  EXPECT_EQ(*CanonicalFieldValue("losses.ikd.temperature", "4.0"), "4");
  EXPECT_EQ(*CanonicalFieldValue("teacher.run_id", "12"),
            fields.at("teacher.run_id"));
  EXPECT_EQ(*CanonicalFieldValue("kind", "distill"), "DISTILL");
  EXPECT_EQ(*CanonicalFieldValue("teacher.vit.width", "192"), "192");
  EXPECT_THAT(
      std::string(
          CanonicalFieldValue("losses.ikd.temp", "4").status().message()),
      HasSubstr("no field \"temp\" in IkdLoss"));
  EXPECT_THAT(
      std::string(CanonicalFieldValue("epochs", "many").status().message()),
      HasSubstr("\"many\" is not an integer"));
  EXPECT_FALSE(CanonicalFieldValue("kind", "TRAIN").ok());
}

}  // namespace
}  // namespace distill
