// Spec validation, table-driven: each bad spec, once resolved, gets
// INVALID_ARGUMENT naming the field and the value.
#include "common/validation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>

namespace distill {
namespace {

using ::testing::HasSubstr;

v1::ExperimentSpec GoodDistill() {
  v1::ExperimentSpec s;
  s.set_kind(v1::DISTILL);
  s.mutable_dataset()->set_name("fashion-mnist");
  s.mutable_teacher()->set_run_id(1);
  s.mutable_student()->set_arch("resnet18");
  s.mutable_losses()->set_ce(1);
  s.mutable_losses()->mutable_ikd()->set_weight(1);
  s.mutable_losses()->mutable_ikd()->set_temperature(4);
  s.mutable_losses()->mutable_rkd()->set_distance_weight(1);
  s.mutable_optimizer()->set_lr(0.1);
  s.set_epochs(1);
  s.set_batch_size(64);
  return s;
}

v1::ExperimentSpec GoodTeacher() {
  v1::ExperimentSpec s;
  s.set_kind(v1::TRAIN_TEACHER);
  s.mutable_dataset()->set_name("fashion-mnist");
  auto* vit = s.mutable_teacher()->mutable_vit();
  vit->set_patch_size(7);
  vit->set_width(64);
  vit->set_depth(2);
  vit->set_heads(4);
  s.mutable_optimizer()->set_lr(0.001);
  s.set_epochs(1);
  s.set_batch_size(64);
  return s;
}

struct Case {
  const char* name;
  std::function<v1::ExperimentSpec()> spec;
  const char* message;  // nullptr: valid.
};

class ValidationTest : public ::testing::TestWithParam<Case> {};

TEST_P(ValidationTest, ChecksTheSpec) {
  const Case& c = GetParam();
  absl::Status status = ResolveAndValidate(c.spec()).status();
  if (c.message == nullptr) {
    EXPECT_TRUE(status.ok()) << status;
  } else {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()), HasSubstr(c.message));
  }
}

template <typename F>
std::function<v1::ExperimentSpec()> Distill(F change) {
  return [change] {
    v1::ExperimentSpec s = GoodDistill();
    change(s);
    return s;
  };
}

template <typename F>
std::function<v1::ExperimentSpec()> Teacher(F change) {
  return [change] {
    v1::ExperimentSpec s = GoodTeacher();
    change(s);
    return s;
  };
}

INSTANTIATE_TEST_SUITE_P(
    Specs, ValidationTest,
    ::testing::Values(
        Case{"good_distill", GoodDistill, nullptr},
        Case{"good_teacher", GoodTeacher, nullptr},
        Case{"no_kind", Distill([](auto& s) {
               s.set_kind(v1::EXPERIMENT_KIND_UNSPECIFIED);
             }),
             "kind must be TRAIN_TEACHER, DISTILL or EVALUATE"},
        Case{"unknown_dataset", Distill([](auto& s) {
               s.mutable_dataset()->set_name("cifar-100");
             }),
             "dataset.name must be one of [cifar-10, cub-200-2011, "
             "fashion-mnist, "
             "image-folder], got \"cifar-100\""},
        Case{"bf16", Distill([](auto& s) { s.set_precision(v1::BF16); }),
             nullptr},
        Case{"unknown_precision", Distill([](auto& s) {
               s.set_precision(static_cast<v1::Precision>(7));
             }),
             "precision must be PRECISION_AUTO, FP32, BF16 or FP16, got 7"},
        Case{"cifar_without_root", Distill([](auto& s) {
               s.mutable_dataset()->set_name("cifar-10");
             }),
             "dataset.root must name the cifar-10 directory"},
        Case{"cifar", Distill([](auto& s) {
               s.mutable_dataset()->set_name("cifar-10");
               s.mutable_dataset()->set_root("/data/cifar-10-batches-bin");
             }),
             nullptr},
        Case{"evaluate_student",
             [] {
               v1::ExperimentSpec s;
               s.set_kind(v1::EVALUATE);
               s.mutable_dataset()->set_name("fashion-mnist");
               s.set_student_run_id(4);
               return s;
             },
             nullptr},
        Case{"evaluate_nothing",
             [] {
               v1::ExperimentSpec s;
               s.set_kind(v1::EVALUATE);
               s.mutable_dataset()->set_name("fashion-mnist");
               return s;
             },
             "an EVALUATE run needs teacher.run_id, teacher.torchscript or "
             "student_run_id"},
        Case{"evaluate_vit",
             [] {
               v1::ExperimentSpec s = GoodTeacher();
               s.set_kind(v1::EVALUATE);
               return s;
             },
             "teacher.vit is for TRAIN_TEACHER; EVALUATE names"},
        Case{"unknown_student", Distill([](auto& s) {
               s.mutable_student()->set_arch("resnet101");
             }),
             "student.arch must be one of [resnet18, resnet34, resnet50], got "
             "\"resnet101\""},
        Case{"resnet50", Distill([](auto& s) {
               s.mutable_student()->set_arch("resnet50");
             }),
             nullptr},
        Case{"torchscript_and_run", Distill([](auto& s) {
               s.mutable_teacher()->set_torchscript("/models/dino.pt");
             }),
             "only one of teacher.vit, teacher.run_id and teacher.torchscript"},
        Case{"torchscript_only", Distill([](auto& s) {
               s.mutable_teacher()->set_run_id(0);
               s.mutable_teacher()->set_torchscript("/models/dino.pt");
             }),
             nullptr},
        Case{"vit_for_distill", Distill([](auto& s) {
               s.mutable_teacher()->set_run_id(0);
               s.mutable_teacher()->mutable_vit()->set_width(8);
             }),
             "teacher.vit is for TRAIN_TEACHER"},
        Case{"linear_head_teacher", Teacher([](auto& s) {
               s.mutable_teacher()->clear_vit();
               s.mutable_teacher()->set_torchscript("/models/dino.pt");
             }),
             nullptr},
        Case{"no_loss", Distill([](auto& s) { s.clear_losses(); }),
             "at least one loss weight > 0"},
        Case{"negative_weight",
             Distill([](auto& s) { s.mutable_losses()->set_mse(-0.5); }),
             "losses.mse must be in [0, 1e+06], got -0.5"},
        Case{"nan_weight", Distill([](auto& s) {
               s.mutable_losses()->mutable_rkd()->set_angle_weight(
                   std::nan(""));
             }),
             "losses.rkd.angle_weight must be a finite number, got nan"},
        Case{"infinite_weight",
             Distill([](auto& s) { s.mutable_losses()->set_ce(INFINITY); }),
             "losses.ce must be a finite number, got inf"},
        Case{"temperature_negative", Distill([](auto& s) {
               s.mutable_losses()->mutable_ikd()->set_temperature(-1);
             }),
             "losses.ikd.temperature must be in (0, 1000], got -1"},
        Case{"dkd_warmup_too_long", Distill([](auto& s) {
               s.mutable_losses()->mutable_dkd()->set_weight(1);
               s.mutable_losses()->mutable_dkd()->set_warmup_epochs(10001);
             }),
             "losses.dkd.warmup_epochs must be at most 10000, got 10001"},
        Case{"dkd_warmup", Distill([](auto& s) {
               s.mutable_losses()->mutable_dkd()->set_weight(1);
               s.mutable_losses()->mutable_dkd()->set_warmup_epochs(20);
             }),
             nullptr},
        Case{"temperature_zero_means_the_default", Distill([](auto& s) {
               s.mutable_losses()->mutable_ikd()->set_temperature(0);
             }),
             nullptr},
        Case{"temperature_unused_is_fine", Distill([](auto& s) {
               s.mutable_losses()->mutable_ikd()->set_weight(0);
               s.mutable_losses()->mutable_ikd()->set_temperature(0);
             }),
             nullptr},
        Case{"rkd_small_batch", Distill([](auto& s) { s.set_batch_size(2); }),
             "batch_size must be >= 3 when RKD is on, got 2"},
        Case{"small_batch_without_rkd", Distill([](auto& s) {
               s.set_batch_size(2);
               s.mutable_losses()->clear_rkd();
             }),
             nullptr},
        Case{"negative_epochs", Distill([](auto& s) { s.set_epochs(-1); }),
             "epochs must be in [1, 10000], got -1"},
        Case{"negative_batch", Distill([](auto& s) { s.set_batch_size(-3); }),
             "batch_size must be in [1, 4096], got -3"},
        Case{"no_restarts", Distill([](auto& s) { s.set_max_restarts(0); }),
             nullptr},
        Case{"negative_restarts",
             Distill([](auto& s) { s.set_max_restarts(-1); }),
             "max_restarts must be in [0, 100], got -1"},
        Case{"default_dataset",
             Distill([](auto& s) { s.mutable_dataset()->clear_name(); }),
             nullptr},
        Case{"default_student",
             Distill([](auto& s) { s.mutable_student()->clear_arch(); }),
             nullptr},
        Case{"negative_width",
             Distill([](auto& s) { s.mutable_student()->set_width(-8); }),
             "student.width must be in [1, 512], got -8"},
        Case{"tsne_points_below_off", Distill([](auto& s) {
               s.mutable_evaluation()->set_tsne_points(-2);
             }),
             "evaluation.tsne_points must be -1 (off) or 1 to 2000, got -2"},
        Case{"tsne_points_over", Distill([](auto& s) {
               s.mutable_evaluation()->set_tsne_points(2001);
             }),
             "evaluation.tsne_points must be -1 (off) or 1 to 2000, got 2001"},
        Case{"batch_over_limit",
             Distill([](auto& s) { s.mutable_dataset()->set_train_limit(10); }),
             "batch_size (64) must not exceed dataset.train_limit (10)"},
        Case{"no_teacher_run",
             Distill([](auto& s) { s.mutable_teacher()->set_run_id(0); }),
             "teacher.run_id must be the id of a TRAIN_TEACHER run (or set "
             "teacher.torchscript), got 0"},
        Case{"default_lr",
             Distill([](auto& s) { s.mutable_optimizer()->set_lr(0); }),
             nullptr},
        Case{"negative_lr",
             Distill([](auto& s) { s.mutable_optimizer()->set_lr(-0.1); }),
             "optimizer.lr must be in (0, 10], got -0.1"},
        Case{"momentum_one",
             Distill([](auto& s) { s.mutable_optimizer()->set_momentum(1); }),
             "optimizer.momentum must be in [0, 1), got 1"},
        Case{"teacher_heads", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_heads(5);
             }),
             "teacher.vit.heads (5) must divide teacher.vit.width (64)"},
        Case{"teacher_patch", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_patch_size(5);
             }),
             "teacher.vit.patch_size (5) must divide the image size (28)"},
        Case{"teacher_preset", Teacher([](auto& s) {
               s.mutable_teacher()->clear_vit();
               s.mutable_teacher()->mutable_vit()->set_preset("small-28");
             }),
             nullptr},
        Case{"teacher_preset_at_224", Teacher([](auto& s) {
               s.mutable_dataset()->set_image_size(224);
               s.mutable_teacher()->clear_vit();
               s.mutable_teacher()->mutable_vit()->set_preset("base");
             }),
             nullptr},
        Case{"teacher_preset_wrong_size", Teacher([](auto& s) {
               s.mutable_teacher()->clear_vit();
               s.mutable_teacher()->mutable_vit()->set_preset("tiny");
             }),
             "teacher.vit.patch_size (16) must divide the image size (28)"},
        Case{"teacher_preset_unknown", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_preset("huge");
             }),
             "teacher.vit.preset must be one of [base, small, small-28, tiny], "
             "got \"huge\""},
        Case{"teacher_depth", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_depth(0);
             }),
             "teacher.vit.depth must be in [1, 48], got 0"},
        // Bounds on what sizes work or memory, and strings.
        Case{"huge_depth", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_depth(2147483647);
             }),
             "teacher.vit.depth must be in [1, 48], got 2147483647"},
        Case{"huge_width", Teacher([](auto& s) {
               s.mutable_teacher()->mutable_vit()->set_width(1 << 20);
               s.mutable_teacher()->mutable_vit()->set_heads(1);
             }),
             "teacher.vit.width must be in [1, 4096], got 1048576"},
        Case{"too_many_patches", Teacher([](auto& s) {
               s.mutable_dataset()->set_image_size(1024);
               s.mutable_teacher()->mutable_vit()->set_patch_size(8);
             }),
             "cuts 1024-px images into 16384 patches; at most 4096"},
        Case{"huge_image", Distill([](auto& s) {
               s.mutable_dataset()->set_image_size(100000);
             }),
             "dataset.image_size must be in [8, 1024], got 100000"},
        Case{"huge_epochs", Distill([](auto& s) { s.set_epochs(2147483647); }),
             "epochs must be in [1, 10000], got 2147483647"},
        Case{"huge_batch", Distill([](auto& s) { s.set_batch_size(1 << 20); }),
             "batch_size must be in [1, 4096], got 1048576"},
        Case{"huge_restarts",
             Distill([](auto& s) { s.set_max_restarts(2147483647); }),
             "max_restarts must be in [0, 100], got 2147483647"},
        Case{"huge_lr",
             Distill([](auto& s) { s.mutable_optimizer()->set_lr(1e308); }),
             "optimizer.lr must be in (0, 10], got 1e+308"},
        // Floating-point fields: 0 or a normal number (docs: README).
        Case{"subnormal_lr",
             Teacher([](auto& s) { s.mutable_optimizer()->set_lr(1e-310); }),
             "optimizer.lr must be 0 or at least 2.2250738585072014e-308 in "
             "magnitude (a subnormal number is 0 in the engine's float32), "
             "got 1e-310"},
        Case{"subnormal_weight",
             Distill([](auto& s) { s.mutable_losses()->set_mse(4.9e-324); }),
             "losses.mse must be 0 or at least"},
        Case{"subnormal_temperature", Distill([](auto& s) {
               s.mutable_losses()->mutable_ikd()->set_temperature(-1e-310);
             }),
             "losses.ikd.temperature must be 0 or at least"},
        Case{"infinite_momentum", Distill([](auto& s) {
               s.mutable_optimizer()->set_momentum(
                   std::numeric_limits<double>::infinity());
             }),
             "optimizer.momentum must be a finite number, got inf"},
        Case{"smallest_normal_lr", Distill([](auto& s) {
               s.mutable_optimizer()->set_lr(2.2250738585072014e-308);
             }),
             nullptr},
        Case{"negative_zero_weight",
             Distill([](auto& s) { s.mutable_losses()->set_mse(-0.0); }),
             nullptr},
        Case{"huge_student",
             Distill([](auto& s) { s.mutable_student()->set_width(100000); }),
             "student.width must be in [1, 512], got 100000"},
        Case{"unknown_optimizer", Distill([](auto& s) {
               s.mutable_optimizer()->set_kind(v1::OptimizerKind(99));
             }),
             "optimizer.kind must be SGD or ADAMW, got 99"},
        Case{"unknown_stem", Distill([](auto& s) {
               s.mutable_student()->set_stem(v1::Stem(7));
             }),
             "student.stem must be SMALL or IMAGENET, got 7"},
        Case{"long_name",
             Distill([](auto& s) { s.set_name(std::string(15 << 20, 'x')); }),
             "name must be at most 256 bytes, got 15728640"},
        Case{"long_root", Distill([](auto& s) {
               s.mutable_dataset()->set_name("cifar-10");
               s.mutable_dataset()->set_root(std::string(5000, 'd'));
             }),
             "dataset.root must be at most 4096 bytes, got 5000"},
        Case{"huge_knn_bank", Distill([](auto& s) {
               s.mutable_evaluation()->set_knn_bank(1 << 30);
             }),
             "evaluation.knn_bank must be in [1, 100000], got 1073741824"},
        Case{"teacher_patch_resized",
             Teacher([](auto& s) { s.mutable_dataset()->set_image_size(32); }),
             "teacher.vit.patch_size (7) must divide the image size (32)"}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

// -0 is 0: resolved to +0, so that the stored spec, its fields (a
// `--where losses.mse=0`) and the engine all say 0.
TEST(ResolutionTest, NegativeZeroBecomesZero) {
  v1::ExperimentSpec spec = GoodDistill();
  spec.mutable_losses()->set_mse(-0.0);
  spec.mutable_optimizer()->set_weight_decay(-0.0);
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveAndValidate(spec);
  ASSERT_TRUE(resolved.ok()) << resolved.status();
  EXPECT_FALSE(std::signbit(resolved->losses().mse()));
  EXPECT_FALSE(std::signbit(resolved->optimizer().weight_decay()));
}

TEST(SweepShapeTest, ChecksNameMembersAndTeacherStage) {
  v1::SweepSpec sweep;
  sweep.set_name("t1");
  sweep.mutable_teacher()->set_run_id(3);
  EXPECT_THAT(std::string(ValidateSweepShape(sweep).message()),
              HasSubstr("at least one member"));
  sweep.add_members()->set_name("A");
  EXPECT_TRUE(ValidateSweepShape(sweep).ok());
  sweep.add_members()->set_name("A");
  EXPECT_THAT(std::string(ValidateSweepShape(sweep).message()),
              HasSubstr("members[1].name \"A\" is used twice"));
  sweep.mutable_members(1)->set_name("B");
  *sweep.mutable_teacher()->mutable_train() = GoodTeacher();
  EXPECT_THAT(std::string(ValidateSweepShape(sweep).message()),
              HasSubstr("exactly one of teacher.train"));
  sweep.mutable_teacher()->clear_train();
  sweep.mutable_members(1)->set_name(std::string(300, 'm'));
  EXPECT_THAT(std::string(ValidateSweepShape(sweep).message()),
              HasSubstr("members[1].name must be at most 256 bytes, got 300"));
  sweep.mutable_members(1)->set_name("B");
  for (int i = 0; i < 1000; ++i)
    sweep.add_members()->set_name("m" + std::to_string(i));
  EXPECT_THAT(std::string(ValidateSweepShape(sweep).message()),
              HasSubstr("members must list at most 1000 members, got 1002"));
}

}  // namespace
}  // namespace distill
