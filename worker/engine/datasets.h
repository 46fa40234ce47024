#ifndef DISTILL_WORKER_ENGINE_DATASETS_H_
#define DISTILL_WORKER_ENGINE_DATASETS_H_

#include <torch/torch.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/run_config.h"

namespace distill::engine {

// A labelled image set held in memory: images are N x C x H x W float,
// normalised; labels are N int64.
struct TensorDataset {
  torch::Tensor images;
  torch::Tensor labels;
  int64_t num_classes = 0;
  int64_t size() const { return labels.size(0); }
};

struct TrainTestData {
  TensorDataset train;
  TensorDataset test;
};

// Where a data set lives when dataset.root is empty (common/catalog.h);
// empty when it has no standard place.
inline std::string StandardRoot(const std::string& name) {
  const DatasetInfo* info = FindDataset(name);
  return info == nullptr ? "" : std::string(info->standard_root);
}

// The whole file's bytes; NOT_FOUND naming it when it cannot be opened.
absl::StatusOr<std::string> ReadFile(const std::string& path);

// Reads one IDX file (gzip-compressed or plain) into a uint8 tensor whose
// shape is the file's. Fails naming the file on any malformed content.
absl::StatusOr<torch::Tensor> ReadIdx(const std::string& path);

// Fashion-MNIST from `root` (train-images-idx3-ubyte.gz and friends),
// limited, normalised, resized to `image_size` when set.
absl::StatusOr<TrainTestData> LoadFashionMnist(const DatasetConfig& config);

// The files LoadDataset reads for `config`.
std::vector<std::string> TensorDatasetFiles(const DatasetConfig& config);

// CIFAR-10 from the binary batches in `config.root` (data_batch_1..5.bin,
// test_batch.bin), normalised with its channel statistics.
absl::StatusOr<TrainTestData> LoadCifar10(const DatasetConfig& config);

// The data set the config names; INVALID_ARGUMENT for an unknown name.
absl::StatusOr<TrainTestData> LoadDataset(const DatasetConfig& config);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_DATASETS_H_
