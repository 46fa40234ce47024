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

namespace {

// One TrainLoop: its optimizer, schedule, data order and counters, in
// named steps.
class Loop {
 public:
  Loop(RunContext& run, torch::nn::Module& model, Split* images,
       int64_t train_size, const StepFn& step_objective,
       const EpochEvalFn& evaluate)
      : run_(run),
        config_(run.config),
        hooks_(run.hooks),
        sink_(run.sink),
        model_(model),
        images_(images),
        train_size_(train_size),
        step_objective_(step_objective),
        evaluate_(evaluate),
        batch_(config_.batch_size),
        steps_per_epoch_(train_size / batch_),  // Drop the last partial.
        total_steps_(steps_per_epoch_ * config_.epochs),
        every_(std::max<int64_t>(1, config_.metrics_every_steps)),
        scaler_(run.precision == Precision::kFp16),
        generator_(at::detail::createCPUGenerator(config_.seed)) {}

  absl::StatusOr<bool> Run() {
    if (steps_per_epoch_ == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch_size ", batch_, " exceeds the ", train_size_,
                       " training images"));
    }
    optimizer_ = MakeOptimizer(config_.optimizer, model_.parameters());
    sink_.Emit(0, 0, metric_keys::kTotalSteps, double(total_steps_));
    sink_.Flush();
    if (absl::Status s = Resume(); !s.ok()) return s;
    for (int64_t epoch = first_epoch_; epoch <= config_.epochs; ++epoch) {
      absl::StatusOr<bool> stopped = Epoch(epoch);
      if (!stopped.ok() || *stopped) return stopped;
      stopped = Evaluate(epoch);
      if (!stopped.ok() || *stopped) return stopped;
    }
    // (An attempt that went on to evaluate alone trained no step.)
    if (images_per_sec_count_ > 0) {
      run_.results[metric_keys::kImagesPerSec] =
          images_per_sec_sum_ / images_per_sec_count_;
    }
    return false;
  }

 private:
  // Goes on from hooks.resume_from, when set: the weights, the optimizer,
  // the epoch and step, and the data order of the epochs done.
  absl::Status Resume() {
    if (hooks_.resume_from.empty()) return absl::OkStatus();
    absl::StatusOr<ResumePoint> point = LoadResumePoint(
        hooks_.resume_from, model_, *optimizer_, steps_per_epoch_, run_.device);
    if (!point.ok()) return point.status();
    if (point->epoch >= config_.epochs) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the resume point ", hooks_.resume_from, " is after epoch ",
          point->epoch, " of a run of ", config_.epochs));
    }
    first_epoch_ = point->epoch + 1;
    skip_steps_ = point->steps_into_epoch;
    run_.results[metric_keys::kResumedFromEpoch] =
        double(point->epoch) + double(skip_steps_) / double(steps_per_epoch_);
    // The epochs done drew their data order from `generator_`: drawn
    // again, the epochs to come see the order they would have seen.
    for (int64_t e = 1; e < first_epoch_; ++e)
      torch::randperm(train_size_, generator_, torch::kInt64);
    step_ = (first_epoch_ - 1) * steps_per_epoch_ + skip_steps_;
    return absl::OkStatus();
  }

  // The steps of `epoch`; true when should_stop or should_drain ended it.
  absl::StatusOr<bool> Epoch(int64_t epoch) {
    model_.train();
    const torch::Tensor order =
        torch::randperm(train_size_, generator_, torch::kInt64)
            .slice(0, 0, steps_per_epoch_ * batch_);
    // After a drain the epoch goes on where it stopped, in the same order.
    const int64_t first_step = epoch == first_epoch_ ? skip_steps_ : 0;
    if (images_ != nullptr)
      images_->StartEpoch(order.slice(0, first_step * batch_), batch_);
    window_start_ = std::chrono::steady_clock::now();
    window_images_ = 0;
    for (int64_t s = first_step; s < steps_per_epoch_; ++s) {
      if (run_.ShouldStop()) return true;
      if (run_.ShouldDrain() && !hooks_.resume_path.empty()) {
        sink_.Flush();
        absl::Status saved =
            SaveResumePoint(hooks_.resume_path, model_, *optimizer_,
                            {epoch - 1, steps_per_epoch_, s});
        if (!saved.ok()) return saved;
        if (hooks_.on_resume_point) hooks_.on_resume_point(epoch - 1);
        run_.drained = true;
        return true;
      }
      if (absl::Status st = Step(epoch, s, order); !st.ok()) return st;
    }
    return false;
  }

  // Step `s` of `epoch` on its batch of `order`, and its metric points.
  absl::Status Step(int64_t epoch, int64_t s, const torch::Tensor& order) {
    torch::Tensor batch_images,
        idx = order.slice(0, s * batch_, (s + 1) * batch_);
    if (images_ != nullptr) {
      absl::StatusOr<std::optional<Split::Batch>> next =
          images_->NextTrainBatch();
      if (!next.ok()) return next.status();
      batch_images = (*next)->images;
      idx = (*next)->indices;
    }
    SetLr(*optimizer_, CosineLr(config_.optimizer.lr, step_, total_steps_));
    ClearGradients(*optimizer_);  // Frees last step's before this forward.
    run_.epoch = epoch;           // The step's objective may weigh by it (DKD).
    absl::StatusOr<Objective> objective = step_objective_(batch_images, idx);
    if (!objective.ok()) return objective.status();
    scaler_.Scale(objective->total).backward();
    scaler_.Step(*optimizer_);
    ++step_;
    run_.step = step_;
    window_images_ += batch_;
    if (step_ % every_ == 0 || s + 1 == steps_per_epoch_)
      return Report(epoch, *objective);
    return absl::OkStatus();
  }

  // The step's loss, its terms, the learning rate and the speed since the
  // last report.
  absl::Status Report(int64_t epoch, const Objective& objective) {
    namespace k = metric_keys;
    const double loss = objective.total.item<double>();
    if (!std::isfinite(loss)) {
      return absl::InternalError(absl::StrCat("loss is ", loss, " at step ",
                                              step_, " of epoch ", epoch));
    }
    const double seconds = std::chrono::duration<double>(
                               std::chrono::steady_clock::now() - window_start_)
                               .count();
    const double images_per_sec = window_images_ / std::max(seconds, 1e-9);
    images_per_sec_sum_ += images_per_sec;
    ++images_per_sec_count_;
    sink_.Emit(step_, epoch, k::kLoss, loss);
    for (const auto& [key, value] : objective.terms)
      sink_.Emit(step_, epoch, key, value.item<double>());
    sink_.Emit(step_, epoch, k::kLr,
               CosineLr(config_.optimizer.lr, step_ - 1, total_steps_));
    sink_.Emit(step_, epoch, k::kImagesPerSec, images_per_sec);
    sink_.Flush();
    window_start_ = std::chrono::steady_clock::now();
    window_images_ = 0;
    return absl::OkStatus();
  }

  // `epoch`'s evaluation into run.results, then its resume point; true
  // when a drain or a stop interrupted the evaluation.
  absl::StatusOr<bool> Evaluate(int64_t epoch) {
    run_.step = step_;
    run_.epoch = epoch;
    const bool last = epoch == config_.epochs;
    // The last epoch's steps are kept before its evaluation: a drain there
    // or after (t-SNE) hands the run back to evaluate again, not to train.
    if (absl::Status s = KeepEpochsSteps(run_, model_, *optimizer_, epoch,
                                         steps_per_epoch_, last);
        !s.ok())
      return s;
    absl::StatusOr<std::map<std::string, double>> metrics = evaluate_(last);
    if (IsInterrupted(metrics.status())) {
      const bool drain = run_.interrupted == RunContext::Interrupt::kDrain;
      if (absl::Status s = KeepEpochsSteps(run_, model_, *optimizer_, epoch,
                                           steps_per_epoch_, drain);
          !s.ok())
        return s;
      return run_.HandBack();
    }
    if (!metrics.ok()) return metrics.status();
    for (const auto& [key, value] : *metrics) {
      sink_.Emit(step_, epoch, key, value);
      run_.results[key] = value;
    }
    sink_.Flush();
    if (!hooks_.resume_path.empty() && !last) {
      absl::Status s = SaveResumePoint(hooks_.resume_path, model_, *optimizer_,
                                       {epoch, steps_per_epoch_});
      if (!s.ok()) return s;
      if (hooks_.on_resume_point) hooks_.on_resume_point(epoch);
    }
    return false;
  }

  RunContext& run_;
  const RunConfig& config_;
  const RunHooks& hooks_;
  MetricSink& sink_;
  torch::nn::Module& model_;
  Split* const images_;
  const int64_t train_size_;
  const StepFn& step_objective_;
  const EpochEvalFn& evaluate_;
  const int64_t batch_;
  const int64_t steps_per_epoch_;
  const int64_t total_steps_;
  const int64_t every_;
  LossScaler scaler_;
  torch::Generator generator_;
  std::unique_ptr<torch::optim::Optimizer> optimizer_;
  int64_t first_epoch_ = 1;
  int64_t skip_steps_ = 0;  // Of first_epoch_, done before a drain.
  int64_t step_ = 0;
  double images_per_sec_sum_ = 0;
  int64_t images_per_sec_count_ = 0;
  std::chrono::steady_clock::time_point window_start_;
  int64_t window_images_ = 0;
};

}  // namespace

absl::StatusOr<bool> TrainLoop(RunContext& run, torch::nn::Module& model,
                               Split* images, int64_t train_size,
                               const StepFn& step_objective,
                               const EpochEvalFn& evaluate) {
  return Loop(run, model, images, train_size, step_objective, evaluate).Run();
}

}  // namespace distill::engine
