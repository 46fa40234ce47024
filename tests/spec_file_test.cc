// Spec files: YAML whose field names are the proto's.
#include "common/spec_file.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/validation.h"
#include "distill/v1/spec.pb.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(SpecFileTest, ReadsNestedFieldsEnumsAndLists) {
  v1::SweepSpec sweep;
  absl::Status s = ParseYamlMessage(R"(
name: t1
base:
  kind: distill
  dataset: {name: fashion-mnist, train_limit: 512}
  optimizer: {kind: ADAMW, lr: 1e-3}
  batch_size: 64
teacher:
  run_id: 7
members:
  - name: B
    losses:
      ikd: {weight: 1, temperature: 4, scale_by_tau_squared: false}
      rkd: {distance_weight: 1, angle_weight: 2}
)",
                                    "t1.yaml", &sweep);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sweep.base().kind(), v1::DISTILL);
  EXPECT_EQ(sweep.base().dataset().train_limit(), 512);
  EXPECT_EQ(sweep.base().optimizer().kind(), v1::ADAMW);
  EXPECT_DOUBLE_EQ(sweep.base().optimizer().lr(), 1e-3);
  EXPECT_EQ(sweep.teacher().run_id(), 7);
  ASSERT_EQ(sweep.members_size(), 1);
  EXPECT_TRUE(sweep.members(0).losses().ikd().has_scale_by_tau_squared());
  EXPECT_FALSE(sweep.members(0).losses().ikd().scale_by_tau_squared());
  EXPECT_DOUBLE_EQ(sweep.members(0).losses().rkd().angle_weight(), 2);
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* message;
};

class SpecFileErrorTest : public ::testing::TestWithParam<BadCase> {};

TEST_P(SpecFileErrorTest, NamesFileLineAndField) {
  v1::ExperimentSpec spec;
  absl::Status s = ParseYamlMessage(GetParam().yaml, "spec.yaml", &spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Errors, SpecFileErrorTest,
    ::testing::Values(
        BadCase{"unknown_field",
                "epochs: 3\nlosses:\n  ikd:\n    temprature: 4\n",
                "spec.yaml:4: losses.ikd.temprature: unknown field; IkdLoss "
                "has [weight, "
                "temperature, scale_by_tau_squared]"},
        BadCase{"wrong_integer", "epochs: three\n",
                "spec.yaml:1: epochs: expected an integer, got \"three\""},
        BadCase{"int32_overflow", "batch_size: 99999999999\n",
                "spec.yaml:1: batch_size: expected a 32-bit"},
        BadCase{"wrong_number", "\n\nlosses: {ce: high}\n",
                "spec.yaml:3: losses.ce: expected a number, got \"high\""},
        BadCase{"unknown_enum", "kind: TEACH\n",
                "spec.yaml:1: kind: expected one of [TRAIN_TEACHER, DISTILL, "
                "EVALUATE], "
                "got \"TEACH\""},
        BadCase{
            "scalar_for_message", "dataset: fashion-mnist\n",
            "spec.yaml:1: dataset: expected a mapping of DatasetSpec fields"},
        BadCase{"wrong_bool", "losses:\n  ikd: {scale_by_tau_squared: maybe}\n",
                "spec.yaml:2: losses.ikd.scale_by_tau_squared: expected true "
                "or false"},
        BadCase{"list_for_scalar", "epochs: [1, 2]\n",
                "spec.yaml:1: epochs: expected a single value"},
        BadCase{"broken_yaml", "epochs: 1\n  bad indent: [\n", "spec.yaml:2"},
        BadCase{"empty_file", "", "spec.yaml: the file is empty"}),
    [](const ::testing::TestParamInfo<BadCase>& info) {
      return info.param.name;
    });

TEST(SpecFileTest, MissingFileIsNotFound) {
  v1::ExperimentSpec spec;
  absl::Status s = ReadYamlFile("/nonexistent/spec.yaml", &spec);
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("/nonexistent/spec.yaml"));
}

TEST(SpecFileTest, ExamplesParse) {
  v1::SweepSpec sweep;
  absl::Status s = ReadYamlFile(
      DISTILL_SOURCE_DIR "/examples/table1-fashion-mnist.yaml", &sweep);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(sweep.members_size(), 8);
  EXPECT_EQ(sweep.members(0).name(), "A");
  EXPECT_EQ(sweep.members(7).name(), "H");
  EXPECT_TRUE(sweep.teacher().has_train());
  // The paper variant: the same rows, three seeds each.
  v1::SweepSpec paper;
  ASSERT_TRUE(ReadYamlFile(DISTILL_SOURCE_DIR
                           "/examples/table1-fashion-mnist-paper.yaml",
                           &paper)
                  .ok());
  EXPECT_EQ(paper.members_size(), 8);
  EXPECT_EQ(paper.seeds_size(), 3);
  paper.clear_seeds();
  paper.set_name(sweep.name());
  EXPECT_EQ(paper.SerializeAsString(), sweep.SerializeAsString());
  ASSERT_TRUE(
      ReadYamlFile(DISTILL_SOURCE_DIR "/examples/cub-200-2011.yaml", &sweep)
          .ok());
  EXPECT_EQ(sweep.base().student().stem(), v1::IMAGENET);
  EXPECT_FALSE(sweep.teacher().train().dataset().augment());
  EXPECT_EQ(sweep.teacher().train().teacher().torchscript(),
            "/models/dino_vits16.pt");
  // Every sweep file in examples/ reads, and keeps to the sweep's rules.
  int read = 0;
  for (const auto& entry :
       std::filesystem::directory_iterator(DISTILL_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    v1::SweepSpec any;
    absl::Status s = ReadYamlFile(entry.path().string(), &any);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_TRUE(ValidateSweepShape(any).ok()) << ValidateSweepShape(any);
    ++read;
  }
  EXPECT_GE(read, 5);
}

}  // namespace
}  // namespace distill
