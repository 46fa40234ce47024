// How a run judges a model: its predictions on a split, top-1, the
// embedding metrics of evaluation.h, and t-SNE maps as a run file.
#ifndef DISTILL_WORKER_ENGINE_JUDGE_H_
#define DISTILL_WORKER_ENGINE_JUDGE_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/models.h"
#include "worker/engine/run_config.h"
#include "worker/engine/splits.h"

namespace distill::engine {

// A model's (logits, embedding) for a batch on its device, without
// gradient.
using ForwardFn = std::function<absl::StatusOr<LogitsAndEmbedding>(
    const torch::Tensor& images)>;

// `model` (a Vit or ResNetStudent holder) in eval mode, as a ForwardFn.
template <typename Model>
ForwardFn Frozen(Model& model) {
  model->eval();
  return
      [&model](
          const torch::Tensor& images) -> absl::StatusOr<LogitsAndEmbedding> {
        torch::NoGradGuard no_grad;
        return model->forward(images);
      };
}

// An evaluation stage's progress: `stage` (metric_keys::kEvaluating*) is
// `fraction` done; false stops the evaluation, which then returns
// Interrupted() (training_loop.h). Empty: not reported, never stopped.
using StageFn = std::function<bool(const char* stage, double fraction)>;

// (logits, embedding) on the CPU for the first `limit` images of `split`
// (all when 0), in its evaluation view; `stage` hears of each batch as
// kEvaluatingEmbeddings.
absl::StatusOr<LogitsAndEmbedding> Predict(const ForwardFn& forward,
                                           Split& split, int64_t limit,
                                           const torch::Device& device,
                                           const StageFn& stage = {});

double Accuracy(const torch::Tensor& logits, const torch::Tensor& labels);

// What a run reports of one model, each key under `prefix`: top-1 of the
// test logits (when defined); and with `bank` (the embeddings of the first
// training images, labelled as data.train) defined, k-NN top-1 of the test
// embeddings against it and k-means NMI / ARI.
absl::StatusOr<std::map<std::string, double>> Judge(
    const std::string& prefix, const LogitsAndEmbedding& test,
    const torch::Tensor& bank, Data& data, const RunConfig& config,
    const StageFn& stage = {});

struct Judgement {
  std::map<std::string, double> metrics;
  LogitsAndEmbedding test;  // The test split's outputs, on the CPU.
};

// Predicts the test split and, with `embedding_metrics`, config.knn_bank
// training images for the bank; then Judge.
absl::StatusOr<Judgement> JudgeModel(const ForwardFn& forward,
                                     const std::string& prefix,
                                     bool embedding_metrics, Data& data,
                                     const RunConfig& config,
                                     const StageFn& stage = {});

// Writes t-SNE maps of the first config.tsne_points test embeddings of
// each named model to dir/tsne.csv (model,x,y,label); returns its path.
absl::StatusOr<std::string> WriteTsne(
    const std::string& dir,
    const std::vector<std::pair<std::string, torch::Tensor>>& models,
    const torch::Tensor& labels, const RunConfig& config,
    const StageFn& stage = {});

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_JUDGE_H_
