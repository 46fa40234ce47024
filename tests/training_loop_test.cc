// The training loop: schedule, metric points, resume points.
#include "worker/engine/training_loop.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"
#include "worker/engine/teacher.h"
#include "worker/engine/trainer.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using TrainingLoopTest = EngineTest;

TEST(CosineLrTest, FallsFromBaseToZero) {
  EXPECT_DOUBLE_EQ(CosineLr(0.1, 0, 100), 0.1);
  EXPECT_NEAR(CosineLr(0.1, 50, 100), 0.05, 1e-12);
  EXPECT_NEAR(CosineLr(0.1, 100, 100), 0, 1e-12);
}

TEST(MetricSinkTest, HandsOverWhatWasEmittedAtEachFlush) {
  std::vector<std::vector<Metric>> batches;
  MetricSink sink([&](std::vector<Metric> m) { batches.push_back(m); });
  sink.Flush();  // Nothing pending: nothing sent.
  sink.Emit(1, 1, "train/loss", 2.5);
  sink.Emit(1, 1, "train/lr", 0.1);
  sink.Flush();
  sink.Emit(2, 1, "train/loss", 2.0);
  sink.Flush();
  ASSERT_EQ(batches.size(), 2u);
  ASSERT_EQ(batches[0].size(), 2u);
  EXPECT_EQ(batches[0][1].key, "train/lr");
  EXPECT_EQ(batches[1][0].step, 2);
  EXPECT_GT(batches[1][0].time_ms, 0);
  MetricSink nowhere(nullptr);  // No hook: points are dropped.
  nowhere.Emit(0, 0, "x", 1);
  nowhere.Flush();
}

// A linear model on 40 indexed examples: the loop alone, without images.
class LoopOnIndices : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.epochs = 2;
    config_.batch_size = 8;
    config_.metrics_every_steps = 2;
    config_.optimizer = {OptimizerKind::kSgd, 0.1, 0, 0};
    hooks_.on_metrics = [&](std::vector<Metric> m) {
      metrics_.insert(metrics_.end(), m.begin(), m.end());
    };
    run_ = std::make_unique<RunContext>(config_, hooks_);
  }
  StepFn Step(double scale = 1) {
    return
        [this, scale](const torch::Tensor& images,
                      const torch::Tensor& idx) -> absl::StatusOr<Objective> {
          EXPECT_FALSE(images.defined());
          Objective o;
          o.total = scale * model_(x_.index_select(0, idx)).pow(2).mean();
          return o;
        };
  }

  RunConfig config_;
  RunHooks hooks_;
  std::unique_ptr<RunContext> run_;
  torch::nn::Linear model_{3, 1};
  const torch::Tensor x_ = torch::randn({40, 3});
  std::vector<Metric> metrics_;
};

TEST_F(LoopOnIndices, ReportsStepsLossesScheduleAndEachEpochsEvaluation) {
  int evaluations = 0;
  auto evaluate =
      [&](bool last) -> absl::StatusOr<std::map<std::string, double>> {
    ++evaluations;
    return std::map<std::string, double>{{"eval/top1", last ? 0.9 : 0.5}};
  };
  absl::StatusOr<bool> stopped =
      TrainLoop(*run_, *model_, nullptr, 40, Step(), evaluate);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_FALSE(*stopped);
  EXPECT_EQ(evaluations, 2);
  EXPECT_EQ(run_->results.at("eval/top1"), 0.9);
  EXPECT_EQ(run_->results.count("train/images_per_sec"), 1u);
  ASSERT_FALSE(metrics_.empty());
  EXPECT_EQ(metrics_[0].key, "train/total_steps");
  EXPECT_EQ(metrics_[0].value, 10);  // 5 steps of 8 a epoch, 2 epochs.
  std::vector<double> lr;
  for (const Metric& m : metrics_) {
    if (m.key == "train/lr") lr.push_back(m.value);
  }
  // Every 2 steps and at each epoch's end: steps 2, 4, 5, 6, 8, 10.
  ASSERT_EQ(lr.size(), 6u);
  EXPECT_TRUE(std::is_sorted(lr.rbegin(), lr.rend()));
}

TEST_F(LoopOnIndices, TooFewExamplesAndANonFiniteLossAreErrors) {
  auto evaluate = [](bool) -> absl::StatusOr<std::map<std::string, double>> {
    return std::map<std::string, double>{};
  };
  absl::StatusOr<bool> small =
      TrainLoop(*run_, *model_, nullptr, 5, Step(), evaluate);
  EXPECT_EQ(small.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(small.status().message()),
              HasSubstr("batch_size 8 exceeds the 5 training images"));
  absl::StatusOr<bool> nan =
      TrainLoop(*run_, *model_, nullptr, 40, Step(NAN), evaluate);
  EXPECT_EQ(nan.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(nan.status().message()),
              HasSubstr("loss is nan at step 2 of epoch 1"));
}

// A run that stops after a resume point (its worker lost) and goes on from
// it ends exactly where the uninterrupted run ends: weights, optimizer
// state, data order and random numbers all carried over.
TEST_F(TrainingLoopTest, ResumedRunEndsAsTheUninterruptedRun) {
  torch::set_num_threads(2);
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.optimizer = {OptimizerKind::kAdamW, 3e-3, 0, 0};
  config.epochs = 3;
  config.tsne_points = 0;
  // Uninterrupted, then stopped after the resume point of epoch `stop_after`
  // and resumed from it; the first run's checkpoint is kept beside the last.
  auto twice = [&](RunHooks hooks, int64_t stop_after) {
    const std::string output = hooks.output_checkpoint;
    EXPECT_TRUE(ExecuteRun(config, hooks).ok());
    fs::rename(output, output + ".uninterrupted");
    hooks.resume_path = (dir_ / "resume.pt").string();
    std::vector<int64_t> points;
    hooks.on_resume_point = [&](int64_t epoch) { points.push_back(epoch); };
    hooks.should_stop = [&] {
      return !points.empty() && points.back() == stop_after;
    };
    absl::StatusOr<RunOutcome> stopped = ExecuteRun(config, hooks);
    EXPECT_TRUE(stopped.ok() && stopped->stopped);
    EXPECT_FALSE(fs::exists(output));
    hooks.should_stop = nullptr;
    hooks.resume_from = (dir_ / "resumed-from.pt").string();
    fs::rename(hooks.resume_path, hooks.resume_from);
    absl::StatusOr<RunOutcome> resumed = ExecuteRun(config, hooks);
    EXPECT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(resumed->results.at("train/resumed_from_epoch"), stop_after);
    // Written after every epoch but the last, by one attempt or the other.
    EXPECT_EQ(points, (std::vector<int64_t>{1, 2}));
  };

  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  twice(hooks, 2);
  const fs::path teacher_point = dir_ / "teacher-point.pt";
  fs::copy_file(dir_ / "resumed-from.pt", teacher_point);
  const Vit a =
      *LoadVitTeacher(hooks.output_checkpoint + ".uninterrupted", torch::kCPU);
  const Vit b = *LoadVitTeacher(hooks.output_checkpoint, torch::kCPU);
  for (const auto& p : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()]))
        << p.key();
  }

  config.kind = RunKind::kDistill;
  config.student.width = 4;
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.optimizer = {OptimizerKind::kSgd, 0.05, 0.9, 5e-4};
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  twice(hooks, 1);
  const auto first =
      *LoadStudent(hooks.output_checkpoint + ".uninterrupted", torch::kCPU, 28);
  const auto second = *LoadStudent(hooks.output_checkpoint, torch::kCPU, 28);
  for (const auto& p : first->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), second->named_parameters()[p.key()]))
        << p.key();
  }

  // The teacher's resume point does not fit the student's run; a file that
  // is no resume point is DATA_LOSS; each names the file.
  hooks.resume_from = teacher_point.string();
  absl::StatusOr<RunOutcome> wrong = ExecuteRun(config, hooks);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("teacher-point.pt does not fit this run's model"));
  std::ofstream(dir_ / "junk.pt") << "not an archive";
  hooks.resume_from = (dir_ / "junk.pt").string();
  absl::StatusOr<RunOutcome> junk = ExecuteRun(config, hooks);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("junk.pt"));
}

// The evaluation after the last step reports its stages and hands the run
// back on a drain, in the last epoch's evaluation (k-means) or after it
// (t-SNE); the next attempt trains no step, evaluates again and ends as the
// run that was never drained (issue 32: a drain waited for the whole
// evaluation).
TEST_F(TrainingLoopTest, ADrainWhileEvaluatingHandsBackToEvaluateAgain) {
  torch::set_num_threads(2);
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.epochs = 1;
  config.tsne_points = 0;
  RunHooks hooks;
  ASSERT_NO_FATAL_FAILURE(TrainTeacherThenDistill(config, hooks));
  config.epochs = 2;
  config.losses.ikd = 1;
  config.tsne_points = 40;
  config.knn_bank = 50;
  hooks.run_file_dir = dir_.string();
  absl::StatusOr<RunOutcome> whole = ExecuteRun(config, hooks);
  ASSERT_TRUE(whole.ok()) << whole.status();

  for (const std::string stage : {"evaluating/kmeans", "evaluating/tsne"}) {
    SCOPED_TRACE(stage);
    std::vector<Metric> seen;
    std::vector<int64_t> points;
    RunHooks drained = hooks;
    drained.resume_path = (dir_ / "resume.pt").string();
    drained.on_resume_point = [&](int64_t epoch) { points.push_back(epoch); };
    drained.on_metrics = [&](std::vector<Metric> m) {
      seen.insert(seen.end(), m.begin(), m.end());
    };
    // Asked while that stage of the last epoch goes on.
    drained.should_drain = [&] {
      return std::any_of(seen.begin(), seen.end(), [&](const Metric& m) {
        return m.key == stage && m.epoch == 2;
      });
    };
    absl::StatusOr<RunOutcome> handed = ExecuteRun(config, drained);
    ASSERT_TRUE(handed.ok()) << handed.status();
    EXPECT_TRUE(handed->stopped);
    EXPECT_TRUE(handed->drained);
    // After epoch 1's point, the point of epoch 2's steps (epochs done 1).
    EXPECT_EQ(points, (std::vector<int64_t>{1, 1}));
    // The stages came in order, at the last step.
    std::vector<std::string> stages;
    for (const Metric& m : seen) {
      if (m.key.rfind("evaluating/", 0) == 0 && m.epoch == 2 &&
          (stages.empty() || stages.back() != m.key))
        stages.push_back(m.key);
    }
    EXPECT_EQ(stages.front(), "evaluating/embeddings");
    EXPECT_EQ(stages.back(), stage);

    RunHooks again = hooks;
    again.resume_from = (dir_ / "resumed-from.pt").string();
    fs::rename(drained.resume_path, again.resume_from);
    std::vector<Metric> resumed_points;
    again.on_metrics = [&](std::vector<Metric> m) {
      resumed_points.insert(resumed_points.end(), m.begin(), m.end());
    };
    absl::StatusOr<RunOutcome> resumed = ExecuteRun(config, again);
    ASSERT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_FALSE(resumed->stopped);
    EXPECT_EQ(resumed->results.at("train/resumed_from_epoch"), 2);
    EXPECT_TRUE(
        std::none_of(resumed_points.begin(), resumed_points.end(),
                     [](const Metric& m) { return m.key == "train/loss"; }));
    EXPECT_EQ(resumed->results.at("eval/top1"), whole->results.at("eval/top1"));
    EXPECT_EQ(resumed->results.at("eval/teacher_cka"),
              whole->results.at("eval/teacher_cka"));
    EXPECT_EQ(resumed->run_files.size(), 1u);  // tsne.csv
  }
}

}  // namespace
}  // namespace distill::engine
