#ifndef DISTILL_WORKER_ENGINE_RUN_CONFIG_H_
#define DISTILL_WORKER_ENGINE_RUN_CONFIG_H_

#include <cstdint>
#include <string>

#include "common/catalog.h"

namespace distill::engine {

// The engine's own view of a run: plain values, no protobuf, so the engine
// links LibTorch and nothing else. The worker fills it from a resolved wire
// spec (worker/spec_convert.h); the initial values are the spec's defaults
// (common/catalog.h), which tests that build a config by hand start from.

struct DatasetConfig {
  std::string name{defaults::kDataset};
  std::string root;  // Empty: the data set's standard place.
  int64_t train_limit = 0;
  int64_t test_limit = 0;
  int64_t image_size = 0;  // 0: the data set's native size.
  // Image files only: random-resized crop and flip for training views (the
  // teacher then runs online), crop to CUB's boxes, decoding threads.
  bool augment = true;
  bool crop_to_boxes = false;
  int64_t loader_threads = defaults::kLoaderThreads;
};

struct VitConfig {
  int64_t image_size = 28;
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  int64_t patch_size = 7;
  int64_t width = 64;
  int64_t depth = 4;
  int64_t heads = 4;
  int64_t mlp_ratio = defaults::kMlpRatio;
};

// kSmall: 3x3 stride-1 convolution, no max-pool (28-64 px images).
// kImageNet: torchvision's 7x7 stride-2 convolution and 3x3 max-pool (224 px).
enum class Stem { kSmall, kImageNet };

struct StudentConfig {
  std::string arch{defaults::kStudentArch};  // A row of kResNets.
  Stem stem = Stem::kSmall;
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  int64_t width = defaults::kStudentWidth;
  int64_t embedding_dim = 0;  // 0: the pooled features (8 or 32 x width).
  int64_t teacher_width = 0;  // Output of the projection g; 0: none.
  // A weights file (tools/export_weights.py) to start from; empty: random.
  std::string pretrained;
};

struct LossWeights {
  double ce = 0;
  double mse = 0;
  double ikd = 0;
  double temperature = defaults::kTemperature;
  bool scale_by_tau_squared = true;
  double rkd_distance = 0;
  double rkd_angle = 0;
  double sp = 0;
  double pkt = 0;
  double dkd = 0;
  double dkd_alpha = defaults::kDkdAlpha;
  double dkd_beta = defaults::kDkdBeta;
  double dkd_temperature = defaults::kTemperature;
  // DKD's weight at epoch e (from 1): min(e / dkd_warmup_epochs, 1); 0: none.
  int64_t dkd_warmup_epochs = 0;
  double cka = 0;
};

enum class OptimizerKind { kSgd, kAdamW };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::kSgd;
  double lr = defaults::kSgdLr;
  double momentum = 0;
  double weight_decay = 0;
};

// kEvaluate judges a teacher and/or a student checkpoint on a data set.
enum class RunKind { kTrainTeacher, kDistill, kEvaluate };

struct RunConfig {
  RunKind kind = RunKind::kDistill;
  DatasetConfig dataset;
  VitConfig teacher;  // kTrainTeacher of a native ViT.
  // A TorchScript teacher file: kTrainTeacher fits a linear head on its
  // embedding; kDistill distils from it (instead of a teacher checkpoint).
  std::string teacher_torchscript;
  StudentConfig student;
  LossWeights losses;
  OptimizerConfig optimizer;
  int64_t epochs = defaults::kEpochs;
  int64_t batch_size = defaults::kBatchSize;
  int64_t seed = 0;
  int64_t metrics_every_steps = defaults::kMetricsEverySteps;
  // End-of-run embedding evaluation: t-SNE points (0: no map) and k-NN bank.
  int64_t tsne_points = defaults::kTsnePoints;
  int64_t knn_bank = defaults::kKnnBank;
  bool embedding_metrics_every_epoch = false;
  std::string device = "cpu";
  // Mixed precision (worker/engine/runtime.h): "auto" is bf16 on CUDA and
  // fp32 on the CPU; "fp32", "bf16", "fp16" (CUDA, with loss scaling).
  std::string precision = "auto";
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_RUN_CONFIG_H_
