#include "worker/engine/training_loop.h"

#include <ATen/CPUGeneratorImpl.h>

#include <chrono>
#include <cmath>
#include <numbers>
#include <optional>

#include "absl/strings/str_cat.h"
#include "common/metric_keys.h"
#include "worker/engine/runtime.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void SetLr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// With `keep` and a resume path, writes the resume point of `epoch`'s
// steps all done, its evaluation not (epochs done epoch - 1, all steps of
// epoch in): an attempt going on from it evaluates `epoch` again (once).
absl::Status KeepEpochsSteps(RunContext& run, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer, int64_t epoch,
                             int64_t steps_per_epoch, bool keep) {
  if (!keep || run.hooks.resume_path.empty() ||
      run.final_resume_point == epoch - 1)
    return absl::OkStatus();
  absl::Status s =
      SaveResumePoint(run.hooks.resume_path, model, optimizer,
                      {epoch - 1, steps_per_epoch, steps_per_epoch});
  if (s.ok()) run.final_resume_point = epoch - 1;
  return s;
}

}  // namespace

void MetricSink::Emit(int64_t step, int64_t epoch, std::string key,
                      double value) {
  pending_.push_back({step, epoch, std::move(key), value, NowMs()});
}

void MetricSink::Flush() {
  if (on_metrics_ && !pending_.empty()) on_metrics_(std::move(pending_));
  pending_.clear();
}

bool RunContext::Evaluating(const char* stage, double fraction) {
  const auto now = std::chrono::steady_clock::now();
  if (stage != stage_ || step != stage_step_ ||
      now - stage_reported_ >= std::chrono::seconds(1)) {
    sink.Emit(step, epoch, stage, fraction);
    sink.Flush();
    stage_ = stage;
    stage_step_ = step;
    stage_reported_ = now;
  }
  if (ShouldStop()) {
    interrupted = Interrupt::kStop;
  } else if (ShouldDrain()) {
    interrupted = Interrupt::kDrain;
  }
  return interrupted == Interrupt::kNone;
}

bool RunContext::HandBack() {
  if (interrupted != Interrupt::kDrain) return true;
  sink.Flush();
  if (final_resume_point >= 0 && hooks.on_resume_point)
    hooks.on_resume_point(final_resume_point);
  drained = true;
  return true;
}

absl::Status Interrupted() {
  return absl::CancelledError("the evaluation was interrupted");
}

bool IsInterrupted(const absl::Status& status) {
  return absl::IsCancelled(status) &&
         status.message() == Interrupted().message();
}

double CosineLr(double base, int64_t step, int64_t total) {
  return 0.5 * base *
         (1 + std::cos(std::numbers::pi * double(step) / double(total)));
}

std::unique_ptr<torch::optim::Optimizer> MakeOptimizer(
    const OptimizerConfig& config, std::vector<torch::Tensor> parameters) {
  if (config.kind == OptimizerKind::kAdamW) {
    return std::make_unique<torch::optim::AdamW>(
        parameters, torch::optim::AdamWOptions(config.lr).weight_decay(
                        config.weight_decay));
  }
  return std::make_unique<torch::optim::SGD>(
      parameters, torch::optim::SGDOptions(config.lr)
                      .momentum(config.momentum)
                      .weight_decay(config.weight_decay));
}

absl::StatusOr<bool> TrainLoop(RunContext& run, torch::nn::Module& model,
                               Split* images, int64_t train_size,
                               const StepFn& step_objective,
                               const EpochEvalFn& evaluate) {
  namespace k = metric_keys;
  const RunConfig& config = run.config;
  const RunHooks& hooks = run.hooks;
  MetricSink& sink = run.sink;
  const int64_t batch = config.batch_size;
  const int64_t steps_per_epoch = train_size / batch;  // Drop the last partial.
  if (steps_per_epoch == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size ", batch, " exceeds the ", train_size, " training images"));
  }
  const int64_t total_steps = steps_per_epoch * config.epochs;
  const int64_t every = std::max<int64_t>(1, config.metrics_every_steps);
  auto optimizer = MakeOptimizer(config.optimizer, model.parameters());
  LossScaler scaler(run.precision == Precision::kFp16);
  torch::Generator generator = at::detail::createCPUGenerator(config.seed);
  sink.Emit(0, 0, k::kTotalSteps, double(total_steps));
  sink.Flush();

  int64_t first_epoch = 1;
  int64_t skip_steps = 0;  // Of first_epoch, done before a drain.
  if (!hooks.resume_from.empty()) {
    absl::StatusOr<ResumePoint> point = LoadResumePoint(
        hooks.resume_from, model, *optimizer, steps_per_epoch, run.device);
    if (!point.ok()) return point.status();
    if (point->epoch >= config.epochs) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the resume point ", hooks.resume_from, " is after epoch ",
          point->epoch, " of a run of ", config.epochs));
    }
    first_epoch = point->epoch + 1;
    skip_steps = point->steps_into_epoch;
    run.results[k::kResumedFromEpoch] =
        double(point->epoch) + double(skip_steps) / double(steps_per_epoch);
    // The epochs done drew their data order from `generator`: drawn again,
    // the epochs to come see the order they would have seen.
    for (int64_t e = 1; e < first_epoch; ++e)
      torch::randperm(train_size, generator, torch::kInt64);
  }
  int64_t step = (first_epoch - 1) * steps_per_epoch + skip_steps;
  double images_per_sec_sum = 0;
  int64_t images_per_sec_count = 0;
  for (int64_t epoch = first_epoch; epoch <= config.epochs; ++epoch) {
    model.train();
    const torch::Tensor order =
        torch::randperm(train_size, generator, torch::kInt64)
            .slice(0, 0, steps_per_epoch * batch);
    // After a drain the epoch goes on where it stopped, in the same order.
    const int64_t first_step = epoch == first_epoch ? skip_steps : 0;
    if (images != nullptr)
      images->StartEpoch(order.slice(0, first_step * batch), batch);
    auto window_start = std::chrono::steady_clock::now();
    int64_t window_images = 0;
    for (int64_t s = first_step; s < steps_per_epoch; ++s) {
      if (run.ShouldStop()) return true;
      if (run.ShouldDrain() && !hooks.resume_path.empty()) {
        sink.Flush();
        absl::Status saved =
            SaveResumePoint(hooks.resume_path, model, *optimizer,
                            {epoch - 1, steps_per_epoch, s});
        if (!saved.ok()) return saved;
        if (hooks.on_resume_point) hooks.on_resume_point(epoch - 1);
        run.drained = true;
        return true;
      }
      torch::Tensor batch_images,
          idx = order.slice(0, s * batch, (s + 1) * batch);
      if (images != nullptr) {
        absl::StatusOr<std::optional<Split::Batch>> next =
            images->NextTrainBatch();
        if (!next.ok()) return next.status();
        batch_images = (*next)->images;
        idx = (*next)->indices;
      }
      SetLr(*optimizer, CosineLr(config.optimizer.lr, step, total_steps));
      ClearGradients(*optimizer);  // Frees last step's before this forward.
      absl::StatusOr<Objective> objective = step_objective(batch_images, idx);
      if (!objective.ok()) return objective.status();
      scaler.Scale(objective->total).backward();
      scaler.Step(*optimizer);
      ++step;
      run.step = step;
      run.epoch = epoch;
      window_images += batch;
      if (step % every == 0 || s + 1 == steps_per_epoch) {
        const double loss = objective->total.item<double>();
        if (!std::isfinite(loss)) {
          return absl::InternalError(absl::StrCat("loss is ", loss, " at step ",
                                                  step, " of epoch ", epoch));
        }
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() -
                                          window_start)
                .count();
        const double images_per_sec = window_images / std::max(seconds, 1e-9);
        images_per_sec_sum += images_per_sec;
        ++images_per_sec_count;
        sink.Emit(step, epoch, k::kLoss, loss);
        for (const auto& [key, value] : objective->terms)
          sink.Emit(step, epoch, key, value.item<double>());
        sink.Emit(step, epoch, k::kLr,
                  CosineLr(config.optimizer.lr, step - 1, total_steps));
        sink.Emit(step, epoch, k::kImagesPerSec, images_per_sec);
        sink.Flush();
        window_start = std::chrono::steady_clock::now();
        window_images = 0;
      }
    }
    run.step = step;
    run.epoch = epoch;
    // The last epoch's steps are kept before its evaluation: a drain there
    // or after (t-SNE) hands the run back to evaluate again, not to train.
    if (absl::Status s =
            KeepEpochsSteps(run, model, *optimizer, epoch, steps_per_epoch,
                            epoch == config.epochs);
        !s.ok())
      return s;
    absl::StatusOr<std::map<std::string, double>> metrics =
        evaluate(epoch == config.epochs);
    if (IsInterrupted(metrics.status())) {
      if (absl::Status s =
              KeepEpochsSteps(run, model, *optimizer, epoch, steps_per_epoch,
                              run.interrupted == RunContext::Interrupt::kDrain);
          !s.ok())
        return s;
      return run.HandBack();
    }
    if (!metrics.ok()) return metrics.status();
    for (const auto& [key, value] : *metrics) {
      sink.Emit(step, epoch, key, value);
      run.results[key] = value;
    }
    sink.Flush();
    if (!hooks.resume_path.empty() && epoch < config.epochs) {
      absl::Status s = SaveResumePoint(hooks.resume_path, model, *optimizer,
                                       {epoch, steps_per_epoch});
      if (!s.ok()) return s;
      if (hooks.on_resume_point) hooks.on_resume_point(epoch);
    }
  }
  // (An attempt that went on to evaluate alone trained no step.)
  if (images_per_sec_count > 0)
    run.results[k::kImagesPerSec] = images_per_sec_sum / images_per_sec_count;
  return false;
}

}  // namespace distill::engine
