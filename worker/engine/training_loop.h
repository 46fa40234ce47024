// The loop every training job shares: epochs of shuffled batches, the
// optimizer and its cosine schedule, metric points, per-epoch evaluation and
// resume points.
#ifndef DISTILL_WORKER_ENGINE_TRAINING_LOOP_H_
#define DISTILL_WORKER_ENGINE_TRAINING_LOOP_H_

#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/objective.h"
#include "worker/engine/run_config.h"
#include "worker/engine/run_hooks.h"
#include "worker/engine/runtime.h"
#include "worker/engine/splits.h"

namespace distill::engine {

// Collects metric points and hands them to RunHooks::on_metrics in
// batches. Not thread-safe: the training thread owns it.
class MetricSink {
 public:
  explicit MetricSink(std::function<void(std::vector<Metric>)> on_metrics)
      : on_metrics_(std::move(on_metrics)) {}
  void Emit(int64_t step, int64_t epoch, std::string key, double value);
  void Flush();

 private:
  std::function<void(std::vector<Metric>)> on_metrics_;
  std::vector<Metric> pending_;
};

// What the jobs of one run share: its config and hooks, where its metrics
// go, and the results it has so far.
struct RunContext {
  RunContext(const RunConfig& config, const RunHooks& hooks,
             Precision precision = Precision::kFp32)
      : config(config),
        hooks(hooks),
        device(config.device),
        precision(precision),
        sink(hooks.on_metrics) {}
  bool ShouldStop() const { return hooks.should_stop && hooks.should_stop(); }
  bool ShouldDrain() const {
    return hooks.should_drain && hooks.should_drain();
  }
  // Reports evaluation stage `stage` (metric_keys::kEvaluating*) at
  // `fraction` done: a point at its start, then at most one a second.
  // False when the run must end (should_stop) or be handed back
  // (should_drain): `interrupted` says which, and the evaluation returns
  // Interrupted().
  bool Evaluating(const char* stage, double fraction);
  // Evaluating as a StageFn (judge.h).
  std::function<bool(const char*, double)> Stages() {
    return [this](const char* stage, double fraction) {
      return Evaluating(stage, fraction);
    };
  }
  enum class Interrupt { kNone, kStop, kDrain };
  // Hands the run back after an interrupted evaluation: with a drain and
  // a resume point written for it (final_resume_point), uploads that point
  // (on_resume_point) and sets `drained`. Returns the outcome's `stopped`.
  bool HandBack();

  const RunConfig& config;
  const RunHooks& hooks;
  const torch::Device device;
  // Forward passes autocast to it; losses, weights and updates are fp32.
  const Precision precision;
  MetricSink sink;
  std::map<std::string, double> results;
  // TrainLoop ended early on should_drain, with a resume point written.
  bool drained = false;
  Interrupt interrupted = Interrupt::kNone;
  // The step and epoch evaluation stages report at (the last trained; the
  // epoch is the current step's while it runs).
  int64_t step = 0;
  int64_t epoch = 0;
  // Epochs done when TrainLoop wrote the resume point of its last epoch's
  // steps (before that epoch's evaluation); -1: none written.
  int64_t final_resume_point = -1;

 private:
  std::string stage_;  // Of the last stage point, and its step.
  int64_t stage_step_ = -1;
  std::chrono::steady_clock::time_point stage_reported_;
};

// What an evaluation the run interrupted (RunContext::Evaluating) returns.
absl::Status Interrupted();
// Whether `status` is Interrupted()'s.
bool IsInterrupted(const absl::Status& status);

// Learning rate at `step` of `total` under a cosine schedule from base to 0.
double CosineLr(double base, int64_t step, int64_t total);

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const OptimizerConfig& config, std::vector<torch::Tensor> parameters);

// One step's objective for a batch: its images (undefined when the loop
// iterates indices alone) and their indices into the training split.
using StepFn = std::function<absl::StatusOr<Objective>(
    const torch::Tensor& images, const torch::Tensor& indices)>;
// The metrics after an epoch; `last_epoch` for the final one.
using EpochEvalFn = std::function<absl::StatusOr<std::map<std::string, double>>(
    bool last_epoch)>;

// Trains `model` for config.epochs over `train_size` examples (batches of
// `images` when set, of indices alone otherwise), going on from
// hooks.resume_from when set. Emits the training metrics, then each epoch's
// evaluation into run.results. True when should_stop ended it early.
absl::StatusOr<bool> TrainLoop(RunContext& run, torch::nn::Module& model,
                               Split* images, int64_t train_size,
                               const StepFn& step, const EpochEvalFn& evaluate);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_TRAINING_LOOP_H_
