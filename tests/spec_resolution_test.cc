// Spec resolution, table-driven: what each kind of spec resolves to, field
// by field; every default comes from common/catalog.h.
#include "common/spec_resolution.h"

#include <gmock/gmock.h>
#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include "common/catalog.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

v1::ExperimentSpec Parse(const std::string& text) {
  v1::ExperimentSpec spec;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &spec))
      << text;
  return spec;
}

struct Case {
  const char* name;
  const char* submitted;  // Text format.
  const char* resolved;
};

class SpecResolutionTest : public ::testing::TestWithParam<Case> {};

TEST_P(SpecResolutionTest, WritesOutEveryDefault) {
  const Case& c = GetParam();
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveSpec(Parse(c.submitted));
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  const v1::ExperimentSpec expected = Parse(c.resolved);
  std::string diff;
  google::protobuf::util::MessageDifferencer differencer;
  differencer.ReportDifferencesToString(&diff);
  EXPECT_TRUE(differencer.Compare(expected, *resolved)) << diff;
  // Idempotent: a stored spec resolved again on read stays the same.
  absl::StatusOr<v1::ExperimentSpec> again = ResolveSpec(*resolved);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(
      google::protobuf::util::MessageDifferencer::Equals(*again, *resolved));
}

INSTANTIATE_TEST_SUITE_P(
    Specs, SpecResolutionTest,
    ::testing::Values(
        Case{"distill_defaults", "kind: DISTILL teacher { run_id: 3 }",
             R"(kind: DISTILL teacher { run_id: 3 }
                dataset { name: "fashion-mnist" image_size: 28 augment: true
                          loader_threads: 2 }
                student { arch: "resnet18" width: 64 stem: SMALL }
                losses { ikd { temperature: 4 scale_by_tau_squared: true } }
                optimizer { kind: SGD lr: 0.1 }
                epochs: 1 batch_size: 128 metrics_every_steps: 10
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"explicit_values_stay",
             R"(kind: DISTILL teacher { run_id: 3 }
                dataset { name: "cifar-10" root: "/d" image_size: 64
                          augment: false loader_threads: 4 }
                student { arch: "resnet50" width: 16 stem: IMAGENET
                          embedding_dim: 128 }
                losses { ce: 1 ikd { weight: 1 temperature: 2
                                     scale_by_tau_squared: false } }
                optimizer { kind: ADAMW lr: 0.01 momentum: 0.5 }
                epochs: 3 batch_size: 32 metrics_every_steps: 5
                max_restarts: 0
                evaluation { tsne_points: -1 knn_bank: 100 every_epoch: true })",
             R"(kind: DISTILL teacher { run_id: 3 }
                dataset { name: "cifar-10" root: "/d" image_size: 64
                          augment: false loader_threads: 4 }
                student { arch: "resnet50" width: 16 stem: IMAGENET
                          embedding_dim: 128 }
                losses { ce: 1 ikd { weight: 1 temperature: 2
                                     scale_by_tau_squared: false } }
                optimizer { kind: ADAMW lr: 0.01 momentum: 0.5 }
                epochs: 3 batch_size: 32 metrics_every_steps: 5
                max_restarts: 0
                evaluation { tsne_points: -1 knn_bank: 100 every_epoch: true })"},
        Case{"adamw_lr", "kind: DISTILL optimizer { kind: ADAMW }",
             R"(kind: DISTILL
                dataset { name: "fashion-mnist" image_size: 28 augment: true
                          loader_threads: 2 }
                student { arch: "resnet18" width: 64 stem: SMALL }
                losses { ikd { temperature: 4 scale_by_tau_squared: true } }
                optimizer { kind: ADAMW lr: 0.001 }
                epochs: 1 batch_size: 128 metrics_every_steps: 10
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"native_sizes",
             R"(kind: EVALUATE student_run_id: 4
                dataset { name: "cub-200-2011" root: "/cub" })",
             R"(kind: EVALUATE student_run_id: 4
                dataset { name: "cub-200-2011" root: "/cub" image_size: 224
                          augment: true loader_threads: 2 }
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"preset_small_28",
             R"(kind: TRAIN_TEACHER teacher { vit { preset: "small-28" } })",
             R"(kind: TRAIN_TEACHER
                teacher { vit { preset: "small-28" patch_size: 7 width: 96
                                depth: 4 heads: 4 mlp_ratio: 4 } }
                dataset { name: "fashion-mnist" image_size: 28 augment: true
                          loader_threads: 2 }
                optimizer { kind: SGD lr: 0.1 }
                epochs: 1 batch_size: 128 metrics_every_steps: 10
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"preset_base_with_override",
             R"(kind: TRAIN_TEACHER dataset { image_size: 224 }
                teacher { vit { preset: "base" depth: 6 mlp_ratio: 2 } })",
             R"(kind: TRAIN_TEACHER
                teacher { vit { preset: "base" patch_size: 16 width: 768
                                depth: 6 heads: 12 mlp_ratio: 2 } }
                dataset { name: "fashion-mnist" image_size: 224 augment: true
                          loader_threads: 2 }
                optimizer { kind: SGD lr: 0.1 }
                epochs: 1 batch_size: 128 metrics_every_steps: 10
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"presets_tiny_small",
             R"(kind: TRAIN_TEACHER teacher { vit { preset: "tiny" } }
                dataset { name: "image-folder" root: "/f" })",
             R"(kind: TRAIN_TEACHER
                teacher { vit { preset: "tiny" patch_size: 16 width: 192
                                depth: 12 heads: 3 mlp_ratio: 4 } }
                dataset { name: "image-folder" root: "/f" image_size: 224
                          augment: true loader_threads: 2 }
                optimizer { kind: SGD lr: 0.1 }
                epochs: 1 batch_size: 128 metrics_every_steps: 10
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"},
        Case{"unknown_dataset_left_for_validation",
             R"(kind: EVALUATE dataset { name: "imagenet" })",
             R"(kind: EVALUATE dataset { name: "imagenet" augment: true
                                         loader_threads: 2 }
                max_restarts: 2
                evaluation { tsne_points: 1000 knn_bank: 5000 })"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

TEST(SpecResolutionTest, UnknownPresetIsNamed) {
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveSpec(
      Parse(R"(kind: TRAIN_TEACHER teacher { vit { preset: "huge" } })"));
  EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(resolved.status().message()),
              HasSubstr("[base, small, small-28, tiny], got \"huge\""));
}

TEST(SpecResolutionTest, SmallPreset) {
  v1::VitSpec vit;
  vit.set_preset("small");
  absl::StatusOr<v1::VitSpec> resolved = ResolveVit(vit);
  ASSERT_TRUE(resolved.ok());
  EXPECT_EQ(resolved->patch_size(), 16);
  EXPECT_EQ(resolved->width(), 384);
  EXPECT_EQ(resolved->depth(), 12);
  EXPECT_EQ(resolved->heads(), 6);
}

TEST(SpecResolutionTest, MaxRestartsUnsetIsTheDefaultAndZeroStaysZero) {
  v1::ExperimentSpec spec;
  spec.set_kind(v1::DISTILL);
  EXPECT_EQ(ResolveSpec(spec)->max_restarts(), defaults::kMaxRestarts);
  spec.set_max_restarts(0);
  EXPECT_EQ(ResolveSpec(spec)->max_restarts(), 0);
  // Before max_restarts was `optional`, 0 meant "unset" and proto3 wrote
  // no field for it; a 0 written on the wire is an explicit 0.
  v1::ExperimentSpec read;
  // kind DISTILL, then max_restarts 0 (field 12, varint).
  ASSERT_TRUE(read.ParseFromString(std::string("\x08\x02\x60\x00", 4)));
  EXPECT_TRUE(read.has_max_restarts());
  EXPECT_EQ(ResolveSpec(read)->max_restarts(), 0);
  // An old stored spec that left it at 0 has no such field.
  ASSERT_TRUE(read.ParseFromString(std::string("\x08\x02", 2)));
  EXPECT_FALSE(read.has_max_restarts());
  EXPECT_EQ(ResolveSpec(read)->max_restarts(), defaults::kMaxRestarts);
}

}  // namespace
}  // namespace distill
