#include "worker/engine/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <optional>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "worker/engine/datasets.h"
#include "worker/engine/evaluation.h"
#include "worker/engine/losses.h"
#include "worker/engine/runtime.h"
#include "worker/engine/splits.h"
#include "worker/engine/teacher.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

constexpr int64_t kEvalBatch = 512;

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Runs `model` over the first `limit` images of `split` (all when 0) in
// the evaluation view without gradient; (logits, embedding) on the CPU.
template <typename Model>
absl::StatusOr<LogitsAndEmbedding> Predict(Model& model, Split& split,
                                           int64_t limit,
                                           const torch::Device& device) {
  torch::NoGradGuard no_grad;
  model->eval();
  std::vector<torch::Tensor> logits, embeddings;
  absl::Status s =
      split.ForEachEvalBatch(limit, [&](const torch::Tensor& images) {
        auto [l, e] = model->forward(images.to(device));
        logits.push_back(l.to(torch::kCPU));
        embeddings.push_back(e.to(torch::kCPU));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return LogitsAndEmbedding{torch::cat(logits), torch::cat(embeddings)};
}

// The frozen teacher's (logits, embedding) for `split`, on the CPU.
absl::StatusOr<LogitsAndEmbedding> PredictTeacher(Teacher& teacher,
                                                  Split& split,
                                                  const torch::Device& device) {
  std::vector<torch::Tensor> logits, embeddings;
  absl::Status s = split.ForEachEvalBatch(
      0, [&](const torch::Tensor& images) -> absl::Status {
        absl::StatusOr<LogitsAndEmbedding> out =
            teacher.Forward(images.to(device));
        if (!out.ok()) return out.status();
        logits.push_back(out->first.to(torch::kCPU));
        embeddings.push_back(out->second.to(torch::kCPU));
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return LogitsAndEmbedding{torch::cat(logits), torch::cat(embeddings)};
}

double Accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
}

// k-NN top-1 of `test` against the `bank`, and NMI / ARI of k-means (k =
// number of classes) on `test`, each key under `prefix`.
std::map<std::string, double> EmbeddingMetrics(
    const std::string& prefix, const torch::Tensor& bank,
    const torch::Tensor& bank_labels, const torch::Tensor& test,
    const torch::Tensor& test_labels, int64_t num_classes, int64_t seed) {
  const torch::Tensor clusters = KMeans(test, num_classes, seed);
  return {{prefix + "knn_top1",
           KnnTopOne(bank, bank_labels, test, test_labels, num_classes)},
          {prefix + "nmi", NormalizedMutualInformation(test_labels, clusters)},
          {prefix + "ari", AdjustedRandIndex(test_labels, clusters)}};
}

// Writes t-SNE maps of the first `points` test embeddings of each model as
// CSV (model,x,y,label); returns the file's path.
absl::StatusOr<std::string> WriteTsne(
    const std::string& dir,
    const std::vector<std::pair<std::string, torch::Tensor>>& models,
    const torch::Tensor& labels, int64_t points, int64_t seed) {
  const std::string path = dir + "/tsne.csv";
  std::ofstream out(path);
  out << "model,x,y,label\n";
  const int64_t n = std::min(points, labels.size(0));
  for (const auto& [name, embedding] : models) {
    torch::Tensor map = Tsne(embedding.slice(0, 0, n), 30, 500, seed);
    auto m = map.accessor<float, 2>();
    auto l = labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < n; ++i) {
      out << name << "," << m[i][0] << "," << m[i][1] << "," << l[i] << "\n";
    }
  }
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

// Learning rate at `step` of `total` under a cosine schedule from base to 0.
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

void SetLr(torch::optim::Optimizer& optimizer, double lr) {
  for (auto& group : optimizer.param_groups()) group.options().set_lr(lr);
}

// The terms of one distillation step, each already weighted by the caller's
// choice of which to compute.
struct StepLosses {
  torch::Tensor total;
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

StepLosses DistillLosses(const LossWeights& w, ResNetStudent& student,
                         const LogitsAndEmbedding& student_out,
                         const torch::Tensor& teacher_logits,
                         const torch::Tensor& teacher_embedding,
                         const torch::Tensor& labels) {
  StepLosses out;
  out.total = torch::zeros({}, student_out.first.options());
  auto add = [&](const char* key, double weight, torch::Tensor value) {
    out.terms.emplace_back(key, value.detach());
    out.total = out.total + weight * value;
  };
  const auto& [logits, embedding] = student_out;
  if (w.ce > 0) add("train/loss_ce", w.ce, CrossEntropyLoss(logits, labels));
  if (w.ikd > 0) {
    add("train/loss_ikd", w.ikd,
        InstanceKdLoss(logits, teacher_logits, w.temperature,
                       w.scale_by_tau_squared));
  }
  if (w.mse > 0 || w.rkd_distance > 0 || w.rkd_angle > 0) {
    torch::Tensor projected = student->Project(embedding);
    if (w.mse > 0) {
      add("train/loss_mse", w.mse,
          EmbeddingMseLoss(projected, teacher_embedding));
    }
    if (w.rkd_distance > 0) {
      add("train/loss_rkd_distance", w.rkd_distance,
          RkdDistanceLoss(projected, teacher_embedding));
    }
    if (w.rkd_angle > 0) {
      add("train/loss_rkd_angle", w.rkd_angle,
          RkdAngleLoss(projected, teacher_embedding));
    }
  }
  return out;
}

class Run {
 public:
  Run(const RunConfig& config, const RunHooks& hooks)
      : config_(config), hooks_(hooks), device_(config.device) {}

  absl::StatusOr<RunOutcome> Execute();

 private:
  // Per batch: its images (undefined when the loop iterates indices only)
  // and their indices.
  using StepLossFn = std::function<absl::StatusOr<StepLosses>(
      const torch::Tensor& images, const torch::Tensor& idx)>;
  using EvaluateFn =
      std::function<absl::StatusOr<std::map<std::string, double>>(
          bool last_epoch)>;

  void Emit(int64_t step, int64_t epoch, std::string key, double value) {
    pending_.push_back({step, epoch, std::move(key), value, NowMs()});
  }
  void Flush() {
    if (hooks_.on_metrics && !pending_.empty())
      hooks_.on_metrics(std::move(pending_));
    pending_.clear();
  }
  bool ShouldStop() const { return hooks_.should_stop && hooks_.should_stop(); }

  // Trains `model` for config.epochs over `train_size` examples: batches of
  // `images` when it is set, of indices alone otherwise. True when stopped.
  absl::StatusOr<bool> TrainLoop(torch::nn::Module& model, Split* images,
                                 int64_t train_size,
                                 const StepLossFn& step_loss,
                                 const EvaluateFn& evaluate);

  absl::StatusOr<RunOutcome> TrainTeacher(Data& data);
  absl::StatusOr<RunOutcome> TrainLinearHead(Data& data);
  absl::StatusOr<RunOutcome> Distill(Data& data);
  absl::StatusOr<RunOutcome> Evaluate(Data& data);

  absl::StatusOr<std::unique_ptr<Teacher>> LoadFrozenTeacher() const {
    return config_.teacher_torchscript.empty()
               ? LoadTeacherCheckpoint(hooks_.teacher_checkpoint, device_)
               : LoadTorchScriptTeacher(config_.teacher_torchscript, device_);
  }

  struct TeacherOutputs {
    LogitsAndEmbedding train, test;  // Evaluation views, on the CPU.
  };
  // The frozen teacher's outputs on both splits: from the host's teacher
  // cache when hooks_.teacher_cache_path names an entry, else computed with
  // `teacher` (loaded here when null) and stored there.
  absl::StatusOr<TeacherOutputs> ComputeTeacherOutputs(Data& data,
                                                       Teacher* teacher);

  // k-NN / NMI / ARI under `prefix` for `model`, whose test embeddings are
  // given; its training embeddings form the k-NN bank.
  template <typename Model>
  absl::StatusOr<std::map<std::string, double>> ModelEmbeddingMetrics(
      const std::string& prefix, Model& model, Data& data,
      const torch::Tensor& test_embedding) {
    const int64_t bank = std::min(config_.knn_bank, data.train->size());
    absl::StatusOr<LogitsAndEmbedding> train =
        Predict(model, *data.train, bank, device_);
    if (!train.ok()) return train.status();
    return EmbeddingMetrics(
        prefix, train->second, data.train->labels().slice(0, 0, bank),
        test_embedding, data.test->labels(), data.num_classes, config_.seed);
  }
  // The same for a frozen teacher's precomputed outputs.
  std::map<std::string, double> OutputEmbeddingMetrics(
      const std::string& prefix, const TeacherOutputs& outputs,
      Data& data) const {
    const int64_t bank = std::min(config_.knn_bank, data.train->size());
    return EmbeddingMetrics(prefix, outputs.train.second.slice(0, 0, bank),
                            data.train->labels().slice(0, 0, bank),
                            outputs.test.second, data.test->labels(),
                            data.num_classes, config_.seed);
  }

  // Writes the t-SNE maps of `maps` (when asked for) as an artifact.
  absl::Status AddTsne(
      RunOutcome& outcome,
      const std::vector<std::pair<std::string, torch::Tensor>>& maps,
      Data& data) const {
    if (config_.tsne_points <= 0 || hooks_.artifact_dir.empty())
      return absl::OkStatus();
    absl::StatusOr<std::string> tsne =
        WriteTsne(hooks_.artifact_dir, maps, data.test->labels(),
                  config_.tsne_points, config_.seed);
    if (!tsne.ok()) return tsne.status();
    outcome.artifacts.push_back(*tsne);
    return absl::OkStatus();
  }

  const RunConfig& config_;
  const RunHooks& hooks_;
  torch::Device device_;
  std::vector<Metric> pending_;
  std::map<std::string, double> results_;
};

absl::StatusOr<bool> Run::TrainLoop(torch::nn::Module& model, Split* images,
                                    int64_t train_size,
                                    const StepLossFn& step_loss,
                                    const EvaluateFn& evaluate) {
  const int64_t batch = config_.batch_size;
  const int64_t steps_per_epoch = train_size / batch;  // Drop the last partial.
  if (steps_per_epoch == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size ", batch, " exceeds the ", train_size, " training images"));
  }
  const int64_t total_steps = steps_per_epoch * config_.epochs;
  const int64_t every = std::max<int64_t>(1, config_.metrics_every_steps);
  auto optimizer = MakeOptimizer(config_.optimizer, model.parameters());
  torch::Generator generator = at::detail::createCPUGenerator(config_.seed);
  Emit(0, 0, "train/total_steps", double(total_steps));
  Flush();

  int64_t first_epoch = 1;
  if (!hooks_.resume_from.empty()) {
    absl::StatusOr<ResumePoint> point = LoadResumePoint(
        hooks_.resume_from, model, *optimizer, steps_per_epoch, device_);
    if (!point.ok()) return point.status();
    if (point->epoch >= config_.epochs) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the resume point ", hooks_.resume_from, " is after epoch ",
          point->epoch, " of a run of ", config_.epochs));
    }
    first_epoch = point->epoch + 1;
    results_["train/resumed_from_epoch"] = double(point->epoch);
    // The epochs done drew their data order from `generator`: drawn again,
    // the epochs to come see the order they would have seen.
    for (int64_t e = 1; e < first_epoch; ++e)
      torch::randperm(train_size, generator, torch::kInt64);
  }
  int64_t step = (first_epoch - 1) * steps_per_epoch;
  double images_per_sec_sum = 0;
  int64_t images_per_sec_count = 0;
  for (int64_t epoch = first_epoch; epoch <= config_.epochs; ++epoch) {
    model.train();
    const torch::Tensor order =
        torch::randperm(train_size, generator, torch::kInt64)
            .slice(0, 0, steps_per_epoch * batch);
    if (images != nullptr) images->StartEpoch(order, batch);
    auto window_start = std::chrono::steady_clock::now();
    int64_t window_images = 0;
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      if (ShouldStop()) return true;
      torch::Tensor batch_images,
          idx = order.slice(0, s * batch, (s + 1) * batch);
      if (images != nullptr) {
        absl::StatusOr<std::optional<Split::Batch>> next =
            images->NextTrainBatch();
        if (!next.ok()) return next.status();
        batch_images = (*next)->images;
        idx = (*next)->indices;
      }
      SetLr(*optimizer, CosineLr(config_.optimizer.lr, step, total_steps));
      ClearGradients(*optimizer);  // Frees last step's before this forward.
      absl::StatusOr<StepLosses> losses = step_loss(batch_images, idx);
      if (!losses.ok()) return losses.status();
      losses->total.backward();
      optimizer->step();
      ++step;
      window_images += batch;
      if (step % every == 0 || s + 1 == steps_per_epoch) {
        const double loss = losses->total.item<double>();
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
        Emit(step, epoch, "train/loss", loss);
        for (const auto& [key, value] : losses->terms)
          Emit(step, epoch, key, value.item<double>());
        Emit(step, epoch, "train/lr",
             CosineLr(config_.optimizer.lr, step - 1, total_steps));
        Emit(step, epoch, "train/images_per_sec", images_per_sec);
        Flush();
        window_start = std::chrono::steady_clock::now();
        window_images = 0;
      }
    }
    absl::StatusOr<std::map<std::string, double>> metrics =
        evaluate(epoch == config_.epochs);
    if (!metrics.ok()) return metrics.status();
    for (const auto& [key, value] : *metrics) {
      Emit(step, epoch, key, value);
      results_[key] = value;
    }
    Flush();
    if (!hooks_.resume_path.empty() && epoch < config_.epochs) {
      absl::Status s = SaveResumePoint(hooks_.resume_path, model, *optimizer,
                                       {epoch, steps_per_epoch});
      if (!s.ok()) return s;
      if (hooks_.on_resume_point) hooks_.on_resume_point(epoch);
    }
  }
  results_["train/images_per_sec"] =
      images_per_sec_sum / std::max<int64_t>(1, images_per_sec_count);
  return false;
}

absl::StatusOr<RunOutcome> Run::TrainTeacher(Data& data) {
  const std::vector<int64_t> shape = data.train->image_shape();
  VitConfig vit = config_.teacher;
  vit.in_channels = shape[0];
  vit.image_size = shape[1];
  vit.num_classes = data.num_classes;
  if (vit.image_size % vit.patch_size != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("teacher.vit.patch_size ", vit.patch_size,
                     " does not divide the image size ", vit.image_size));
  }
  if (vit.width % vit.heads != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "teacher.vit.heads ", vit.heads, " does not divide width ", vit.width));
  }
  Vit teacher(vit);
  teacher->to(device_);
  auto step_loss = [&](const torch::Tensor& images,
                       const torch::Tensor& idx) -> absl::StatusOr<StepLosses> {
    auto [logits, embedding] = teacher->forward(images.to(device_));
    StepLosses out;
    out.total = CrossEntropyLoss(
        logits, data.train->labels().index_select(0, idx).to(device_));
    out.terms.emplace_back("train/loss_ce", out.total.detach());
    return out;
  };
  auto evaluate =
      [&](bool last_epoch) -> absl::StatusOr<std::map<std::string, double>> {
    absl::StatusOr<LogitsAndEmbedding> test =
        Predict(teacher, *data.test, 0, device_);
    if (!test.ok()) return test.status();
    std::map<std::string, double> m = {
        {"eval/top1", Accuracy(test->first, data.test->labels())}};
    if (last_epoch || config_.embedding_metrics_every_epoch) {
      auto more = ModelEmbeddingMetrics("eval/", teacher, data, test->second);
      if (!more.ok()) return more.status();
      m.merge(*more);
    }
    return m;
  };
  absl::StatusOr<bool> stopped = TrainLoop(
      *teacher, data.train.get(), data.train->size(), step_loss, evaluate);
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{results_, *stopped};
  if (*stopped) return outcome;
  if (absl::Status s = SaveVitTeacher(teacher, hooks_.output_checkpoint);
      !s.ok())
    return s;
  return outcome;
}

absl::StatusOr<RunOutcome> Run::TrainLinearHead(Data& data) {
  // The backbone is frozen: its embeddings (evaluation views) are computed
  // once, and the head trains on them alone.
  absl::StatusOr<TeacherOutputs> outputs = ComputeTeacherOutputs(data, nullptr);
  if (!outputs.ok()) return outputs.status();
  const torch::Tensor& train_embedding = outputs->train.second;
  const torch::Tensor& test_embedding = outputs->test.second;
  torch::manual_seed(config_.seed);  // The same head, cache or not.
  torch::nn::Linear head(train_embedding.size(1), data.num_classes);
  head->to(device_);
  auto step_loss = [&](const torch::Tensor&,
                       const torch::Tensor& idx) -> absl::StatusOr<StepLosses> {
    StepLosses out;
    out.total =
        CrossEntropyLoss(head(train_embedding.index_select(0, idx).to(device_)),
                         data.train->labels().index_select(0, idx).to(device_));
    out.terms.emplace_back("train/loss_ce", out.total.detach());
    return out;
  };
  auto evaluate =
      [&](bool last_epoch) -> absl::StatusOr<std::map<std::string, double>> {
    torch::NoGradGuard no_grad;
    torch::Tensor logits = head(test_embedding.to(device_)).to(torch::kCPU);
    std::map<std::string, double> m = {
        {"eval/top1", Accuracy(logits, data.test->labels())}};
    if (last_epoch || config_.embedding_metrics_every_epoch)
      m.merge(OutputEmbeddingMetrics("eval/", *outputs, data));
    return m;
  };
  absl::StatusOr<bool> stopped =
      TrainLoop(*head, nullptr, data.train->size(), step_loss, evaluate);
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{results_, *stopped};
  if (*stopped) return outcome;
  absl::Status saved = SaveLinearHeadTeacher(config_.teacher_torchscript, head,
                                             hooks_.output_checkpoint);
  if (!saved.ok()) return saved;
  return outcome;
}

absl::StatusOr<Run::TeacherOutputs> Run::ComputeTeacherOutputs(
    Data& data, Teacher* teacher) {
  const std::string& cache = hooks_.teacher_cache_path;
  if (!cache.empty() && std::filesystem::exists(cache)) {
    std::vector<torch::Tensor> t;
    try {
      torch::load(t, cache);
    } catch (const c10::Error&) {
      t.clear();  // A damaged entry is recomputed and replaced.
    }
    if (t.size() == 4 && t[0].size(0) == data.train->size() &&
        t[2].size(0) == data.test->size()) {
      results_["teacher/cache_hit"] = 1;
      return TeacherOutputs{{t[0], t[1]}, {t[2], t[3]}};
    }
  }
  std::unique_ptr<Teacher> loaded;
  if (teacher == nullptr) {
    absl::StatusOr<std::unique_ptr<Teacher>> t = LoadFrozenTeacher();
    if (!t.ok()) return t.status();
    loaded = *std::move(t);
    teacher = loaded.get();
  }
  absl::StatusOr<LogitsAndEmbedding> train =
      PredictTeacher(*teacher, *data.train, device_);
  if (!train.ok()) return train.status();
  absl::StatusOr<LogitsAndEmbedding> test =
      PredictTeacher(*teacher, *data.test, device_);
  if (!test.ok()) return test.status();
  results_["teacher/cache_hit"] = 0;
  if (!cache.empty()) {
    // Written whole, then renamed: a concurrent reader never sees half.
    const std::string temp = absl::StrCat(cache, ".tmp-", ::getpid());
    std::vector<torch::Tensor> t = {train->first, train->second, test->first,
                                    test->second};
    torch::save(t, temp);
    std::filesystem::rename(temp, cache);
  }
  return TeacherOutputs{*std::move(train), *std::move(test)};
}

absl::StatusOr<RunOutcome> Run::Distill(Data& data) {
  // Where the training view is deterministic the frozen teacher runs once
  // per image, or not at all when this host's cache has its outputs; with
  // random augmentation it runs online on every batch.
  std::unique_ptr<Teacher> online;
  if (!data.train->deterministic()) {
    absl::StatusOr<std::unique_ptr<Teacher>> t = LoadFrozenTeacher();
    if (!t.ok()) return t.status();
    online = *std::move(t);
  }
  absl::StatusOr<TeacherOutputs> outputs =
      ComputeTeacherOutputs(data, online.get());
  if (!outputs.ok()) return outputs.status();
  const auto& [teacher_logits, teacher_embedding] = outputs->train;
  const torch::Tensor& teacher_test_logits = outputs->test.first;
  results_["teacher/top1"] = Accuracy(teacher_test_logits, data.test->labels());
  results_["teacher/online"] = online ? 1 : 0;
  results_.merge(OutputEmbeddingMetrics("teacher/", *outputs, data));

  StudentConfig sc = config_.student;
  sc.in_channels = data.train->image_shape()[0];
  sc.num_classes = data.num_classes;
  sc.teacher_width = teacher_embedding.size(1);
  // Whether the teacher was loaded (drawing random numbers for its initial
  // weights) or its outputs came from the cache, the student starts the same.
  torch::manual_seed(config_.seed);
  ResNetStudent student(sc);
  if (!sc.pretrained.empty()) {
    // A head for other classes and the student's own layers start fresh.
    absl::Status s = LoadWeightsByName(*student, sc.pretrained,
                                       {"fc.", "embedding.", "projection."});
    if (!s.ok()) return s;
  }
  student->to(device_);

  auto step_loss = [&](const torch::Tensor& images,
                       const torch::Tensor& idx) -> absl::StatusOr<StepLosses> {
    torch::Tensor on_device = images.to(device_);
    torch::Tensor t_logits, t_embedding;
    if (online) {
      absl::StatusOr<LogitsAndEmbedding> t = online->Forward(on_device);
      if (!t.ok()) return t.status();
      std::tie(t_logits, t_embedding) = *t;
    } else {
      t_logits = teacher_logits.index_select(0, idx).to(device_);
      t_embedding = teacher_embedding.index_select(0, idx).to(device_);
    }
    return DistillLosses(config_.losses, student, student->forward(on_device),
                         t_logits, t_embedding,
                         data.train->labels().index_select(0, idx).to(device_));
  };
  torch::Tensor student_test_embedding;
  auto evaluate =
      [&](bool last_epoch) -> absl::StatusOr<std::map<std::string, double>> {
    absl::StatusOr<LogitsAndEmbedding> test =
        Predict(student, *data.test, 0, device_);
    if (!test.ok()) return test.status();
    std::map<std::string, double> m = {
        {"eval/top1", Accuracy(test->first, data.test->labels())},
        {"eval/teacher_agreement",
         TopOneAgreement(test->first, teacher_test_logits)}};
    if (last_epoch) student_test_embedding = test->second;
    if (last_epoch || config_.embedding_metrics_every_epoch) {
      auto more = ModelEmbeddingMetrics("eval/", student, data, test->second);
      if (!more.ok()) return more.status();
      m.merge(*more);
    }
    return m;
  };
  absl::StatusOr<bool> stopped = TrainLoop(
      *student, data.train.get(), data.train->size(), step_loss, evaluate);
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{results_, *stopped};
  if (*stopped) return outcome;
  if (absl::Status s = SaveStudent(student, hooks_.output_checkpoint); !s.ok())
    return s;
  absl::Status tsne = AddTsne(
      outcome,
      {{"teacher", outputs->test.second}, {"student", student_test_embedding}},
      data);
  if (!tsne.ok()) return tsne;
  return outcome;
}

absl::StatusOr<RunOutcome> Run::Evaluate(Data& data) {
  const bool has_teacher = !hooks_.teacher_checkpoint.empty() ||
                           !config_.teacher_torchscript.empty();
  std::vector<std::pair<std::string, torch::Tensor>> maps;
  torch::Tensor teacher_logits;
  if (has_teacher) {
    absl::StatusOr<TeacherOutputs> outputs =
        ComputeTeacherOutputs(data, nullptr);
    if (!outputs.ok()) return outputs.status();
    teacher_logits = outputs->test.first;
    results_["teacher/top1"] = Accuracy(teacher_logits, data.test->labels());
    results_.merge(OutputEmbeddingMetrics("teacher/", *outputs, data));
    maps.emplace_back("teacher", outputs->test.second);
  }
  if (!hooks_.student_checkpoint.empty()) {
    absl::StatusOr<ResNetStudent> student =
        LoadStudent(hooks_.student_checkpoint, device_);
    if (!student.ok()) return student.status();
    const StudentConfig& sc = (*student)->config;
    if (sc.in_channels != data.test->image_shape()[0] ||
        sc.num_classes != data.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the student takes ", sc.in_channels, "-channel images and has ",
          sc.num_classes, " classes; the data set has ",
          data.test->image_shape()[0], " and ", data.num_classes));
    }
    absl::StatusOr<LogitsAndEmbedding> test =
        Predict(*student, *data.test, 0, device_);
    if (!test.ok()) return test.status();
    results_["student/top1"] = Accuracy(test->first, data.test->labels());
    auto more = ModelEmbeddingMetrics("student/", *student, data, test->second);
    if (!more.ok()) return more.status();
    results_.merge(*more);
    if (has_teacher) {
      results_["eval/teacher_agreement"] =
          TopOneAgreement(test->first, teacher_logits);
    }
    maps.emplace_back("student", test->second);
  }
  std::vector<Metric> points;
  for (const auto& [key, value] : results_)
    points.push_back({0, 0, key, value, NowMs()});
  if (hooks_.on_metrics) hooks_.on_metrics(std::move(points));
  RunOutcome outcome{results_, false};
  if (absl::Status s = AddTsne(outcome, maps, data); !s.ok()) return s;
  return outcome;
}

absl::StatusOr<RunOutcome> Run::Execute() {
  torch::manual_seed(config_.seed);
  absl::StatusOr<Data> data = OpenData(config_.dataset, uint64_t(config_.seed));
  if (!data.ok()) return data.status();
  if (config_.kind == RunKind::kEvaluate) return Evaluate(*data);
  if (config_.kind == RunKind::kTrainTeacher) {
    return config_.teacher_torchscript.empty() ? TrainTeacher(*data)
                                               : TrainLinearHead(*data);
  }
  return Distill(*data);
}

}  // namespace

absl::StatusOr<RunOutcome> ExecuteRun(const RunConfig& config,
                                      const RunHooks& hooks) {
  try {
    Run run(config, hooks);
    return run.Execute();
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

}  // namespace distill::engine
