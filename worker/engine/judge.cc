#include "worker/engine/judge.h"

#include <algorithm>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/metric_keys.h"
#include "common/run_files.h"
#include "worker/engine/evaluation.h"
#include "worker/engine/runtime.h"
#include "worker/engine/training_loop.h"

namespace distill::engine {

namespace k = metric_keys;

absl::StatusOr<LogitsAndEmbedding> Predict(const ForwardFn& forward,
                                           Split& split, int64_t limit,
                                           const torch::Device& device,
                                           const StageFn& stage) {
  std::vector<torch::Tensor> logits, embeddings;
  const int64_t total =
      limit > 0 ? std::min(limit, split.size()) : split.size();
  int64_t done = 0;
  absl::Status s = split.ForEachEvalBatch(
      limit, [&](const torch::Tensor& images) -> absl::Status {
        if (stage && !stage(k::kEvaluatingEmbeddings,
                            double(done) / std::max<int64_t>(1, total)))
          return Interrupted();
        absl::StatusOr<LogitsAndEmbedding> out = forward(images.to(device));
        if (!out.ok()) return out.status();
        logits.push_back(out->first.to(torch::kCPU));
        embeddings.push_back(out->second.to(torch::kCPU));
        done += images.size(0);
        return absl::OkStatus();
      });
  if (!s.ok()) return s;
  return LogitsAndEmbedding{torch::cat(logits), torch::cat(embeddings)};
}

double Accuracy(const torch::Tensor& logits, const torch::Tensor& labels) {
  return logits.argmax(1).eq(labels).to(torch::kFloat64).mean().item<double>();
}

absl::StatusOr<std::map<std::string, double>> Judge(
    const std::string& prefix, const LogitsAndEmbedding& test,
    const torch::Tensor& bank, Data& data, const RunConfig& config,
    const StageFn& stage) {
  std::map<std::string, double> out;
  const torch::Tensor& labels = data.test->labels();
  if (test.first.defined())
    out[prefix + k::kTop1] = Accuracy(test.first, labels);
  if (!bank.defined()) return out;
  const torch::Tensor clusters = KMeans(
      test.second, data.num_classes, config.seed, 100,
      stage
          ? ProgressFn([&](double f) { return stage(k::kEvaluatingKmeans, f); })
          : ProgressFn());
  if (!clusters.defined()) return Interrupted();
  // The k-NN search (a bank x test product) on the run's device; k-means
  // and the scores on the CPU.
  if (stage && !stage(k::kEvaluatingKnn, 0)) return Interrupted();
  const torch::Device device(config.device);
  out[prefix + k::kKnnTop1] =
      KnnTopOne(KeepOnDevice(bank, device),
                data.train->labels().slice(0, 0, bank.size(0)),
                KeepOnDevice(test.second, device), labels, data.num_classes);
  out[prefix + k::kNmi] = NormalizedMutualInformation(labels, clusters);
  out[prefix + k::kAri] = AdjustedRandIndex(labels, clusters);
  return out;
}

absl::StatusOr<Judgement> JudgeModel(const ForwardFn& forward,
                                     const std::string& prefix,
                                     bool embedding_metrics, Data& data,
                                     const RunConfig& config,
                                     const StageFn& stage) {
  const torch::Device device(config.device);
  absl::StatusOr<LogitsAndEmbedding> test =
      Predict(forward, *data.test, 0, device, stage);
  if (!test.ok()) return test.status();
  torch::Tensor bank;
  if (embedding_metrics) {
    absl::StatusOr<LogitsAndEmbedding> train =
        Predict(forward, *data.train,
                std::min(config.knn_bank, data.train->size()), device, stage);
    if (!train.ok()) return train.status();
    bank = train->second;
  }
  absl::StatusOr<std::map<std::string, double>> metrics =
      Judge(prefix, *test, bank, data, config, stage);
  if (!metrics.ok()) return metrics.status();
  return Judgement{*std::move(metrics), *std::move(test)};
}

absl::StatusOr<std::string> WriteTsne(
    const std::string& dir,
    const std::vector<std::pair<std::string, torch::Tensor>>& models,
    const torch::Tensor& labels, const RunConfig& config,
    const StageFn& stage) {
  const std::string path = absl::StrCat(dir, "/", kTsneFile);
  std::ofstream out(path);
  out << "model,x,y,label\n";
  const int64_t n = std::min(config.tsne_points, labels.size(0));
  for (size_t model = 0; model < models.size(); ++model) {
    const auto& [name, embedding] = models[model];
    // The maps' progress as one stage.
    ProgressFn progress;
    if (stage) {
      progress = [&](double f) {
        return stage(k::kEvaluatingTsne, (double(model) + f) / models.size());
      };
    }
    torch::Tensor map =
        Tsne(embedding.slice(0, 0, n), 30, 500, config.seed, progress);
    if (!map.defined()) return Interrupted();
    auto m = map.accessor<float, 2>();
    auto l = labels.accessor<int64_t, 1>();
    for (int64_t i = 0; i < n; ++i) {
      out << name << "," << m[i][0] << "," << m[i][1] << "," << l[i] << "\n";
    }
  }
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return path;
}

}  // namespace distill::engine
