// Whole runs through ExecuteRun: learning, a frozen teacher, errors, stops,
// determinism.
#include "worker/engine/trainer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"
#include "worker/engine/teacher.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using TrainerTest = EngineTest;

// The teacher's checkpoint is only read; that the teacher stays frozen in
// memory is teacher_test's AStudentLearnsFromATeacherThatDoesNotMove.
TEST_F(TrainerTest, TrainingLearnsAndDistillingLeavesTheTeachersFileAlone) {
  WriteFashionMnist(200);
  RunConfig config;
  config.kind = RunKind::kTrainTeacher;
  config.dataset.root = dir_.string();
  config.teacher = {28, 1, 10, 7, 32, 1, 4, 2};
  config.optimizer = {OptimizerKind::kAdamW, 3e-3, 0, 0};
  config.device = TestDevice();
  config.epochs = 3;
  config.batch_size = 20;
  config.metrics_every_steps = 1;
  std::vector<double> losses;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  hooks.on_metrics = [&](std::vector<Metric> metrics) {
    for (const Metric& m : metrics) {
      if (m.key == "train/loss") losses.push_back(m.value);
    }
  };
  absl::StatusOr<RunOutcome> teacher = ExecuteRun(config, hooks);
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  ASSERT_GT(losses.size(), 10u);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_GT(teacher->results.at("eval/top1"),
            0.5);  // Trivially separable images.

  const auto before = *LoadVitTeacher(hooks.output_checkpoint, torch::kCPU);
  config.kind = RunKind::kDistill;
  config.student.width = 8;
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.losses.mse = 1;
  config.optimizer = {OptimizerKind::kSgd, 0.05, 0.9, 0};
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  absl::StatusOr<RunOutcome> student = ExecuteRun(config, hooks);
  ASSERT_TRUE(student.ok()) << student.status();
  EXPECT_TRUE(fs::exists(hooks.output_checkpoint));
  EXPECT_EQ(student->results.count("eval/teacher_agreement"), 1u);
  const auto after = *LoadVitTeacher(hooks.teacher_checkpoint, torch::kCPU);
  for (const auto& p : before->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), after->named_parameters()[p.key()]))
        << p.key();
  }
}

TEST_F(TrainerTest, MissingDataFailsNamingTheFile) {
  RunConfig config;
  config.kind = RunKind::kTrainTeacher;
  config.dataset.root = (dir_ / "missing").string();
  absl::StatusOr<RunOutcome> outcome = ExecuteRun(config, RunHooks{});
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(outcome.status().message()),
              HasSubstr("missing/train-images-idx3-ubyte.gz"));
}

TEST_F(TrainerTest, StopRequestEndsTheRunWithoutACheckpoint) {
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "never.pt").string();
  int polls = 0;
  hooks.should_stop = [&] { return ++polls > 3; };
  absl::StatusOr<RunOutcome> outcome = ExecuteRun(config, hooks);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->stopped);
  EXPECT_FALSE(fs::exists(hooks.output_checkpoint));
}

TEST_F(TrainerTest, SameSpecAndSeedGiveTheSameMetrics) {
  torch::set_num_threads(2);  // As a worker on this machine runs.
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.epochs = 2;
  config.metrics_every_steps = 1;
  auto run = [&] {
    std::vector<double> values;
    RunHooks hooks;
    hooks.output_checkpoint = (dir_ / "t.pt").string();
    hooks.on_metrics = [&](std::vector<Metric> metrics) {
      for (const Metric& m : metrics) {
        if (m.key != "train/images_per_sec") values.push_back(m.value);
      }
    };
    EXPECT_TRUE(ExecuteRun(config, hooks).ok());
    return values;
  };
  const std::vector<double> first = run();
  EXPECT_GT(first.size(), 40u);
  EXPECT_EQ(first, run());
  config.seed = 1;
  EXPECT_NE(first, run());
}

// The loop hands each step's epoch to the objective: with DKD alone and a
// warm-up of 2 epochs, each reported loss is min(epoch / 2, 1) times the
// DKD term reported beside it.
TEST_F(TrainerTest, ADkdStudentWarmsUpByTheEpochOfEachStep) {
  WriteFashionMnist(60);
  RunConfig config = TinyTeacherRun();
  config.epochs = 1;
  RunHooks hooks;
  ASSERT_NO_FATAL_FAILURE(TrainTeacherThenDistill(config, hooks));
  config.losses.ce = 0;
  config.losses.dkd = 1;
  config.losses.dkd_warmup_epochs = 2;
  config.epochs = 3;
  config.metrics_every_steps = 1;
  std::map<std::pair<int64_t, int64_t>, std::map<std::string, double>> steps;
  hooks.on_metrics = [&](std::vector<Metric> metrics) {
    for (const Metric& m : metrics) steps[{m.step, m.epoch}][m.key] = m.value;
  };
  ASSERT_TRUE(ExecuteRun(config, hooks).ok());
  std::set<int64_t> epochs;
  for (const auto& [at, values] : steps) {
    if (values.count("train/loss_dkd") == 0) continue;
    const double warm = std::min(1.0, at.second / 2.0);
    EXPECT_NEAR(values.at("train/loss"), warm * values.at("train/loss_dkd"),
                1e-5 * values.at("train/loss_dkd"))
        << "step " << at.first << " of epoch " << at.second;
    epochs.insert(at.second);
  }
  EXPECT_EQ(epochs, (std::set<int64_t>{1, 2, 3}));
}

TEST_F(TrainerTest, ATeacherThatDoesNotFitTheImagesIsRefusedNamingTheField) {
  WriteFashionMnist(20);
  RunConfig config = TinyTeacherRun();
  config.teacher.patch_size = 5;
  absl::StatusOr<RunOutcome> outcome = ExecuteRun(config, RunHooks{});
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(outcome.status().message()),
              HasSubstr("teacher.vit.patch_size (5) must divide the image "
                        "size (28)"));
}

}  // namespace
}  // namespace distill::engine
