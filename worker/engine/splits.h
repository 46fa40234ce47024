#ifndef DISTILL_WORKER_ENGINE_SPLITS_H_
#define DISTILL_WORKER_ENGINE_SPLITS_H_

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/engine/datasets.h"
#include "worker/engine/image_loader.h"
#include "worker/engine/images.h"
#include "worker/engine/run_config.h"

namespace distill::engine {

// One split of a data set as training and evaluation read it, whether its
// images are tensors in memory or files decoded on the fly. Not
// thread-safe.
class Split {
 public:
  virtual ~Split() = default;
  virtual int64_t size() const = 0;
  // N int64, on the CPU.
  virtual const torch::Tensor& labels() const = 0;
  // C, H, W of every image.
  virtual std::vector<int64_t> image_shape() const = 0;
  // Whether the training view of an image is the same every time (so a
  // frozen teacher's outputs on it can be computed once and reused).
  virtual bool deterministic() const = 0;

  // Begins an epoch over `order` (indices) in batches of `batch_size`.
  virtual void StartEpoch(const torch::Tensor& order, int64_t batch_size) = 0;
  // The next batch of the epoch in the training view and the indices of its
  // images; nullopt after the last. Errors name the file at fault.
  struct Batch {
    torch::Tensor images;
    torch::Tensor indices;
  };
  virtual absl::StatusOr<std::optional<Batch>> NextTrainBatch() = 0;

  // Calls `fn` on consecutive batches of the first `limit` images (all when
  // `limit` is 0) in the evaluation view, in order.
  virtual absl::Status ForEachEvalBatch(
      int64_t limit,
      const std::function<absl::Status(const torch::Tensor&)>& fn) = 0;
};

struct Data {
  std::unique_ptr<Split> train, test;
  int64_t num_classes = 0;
};

// Wraps a data set held in memory (its one view is deterministic).
std::unique_ptr<Split> TensorSplit(TensorDataset data);

// An image-file split: decoded on `threads` threads; the training view
// augments when `augment`.
std::unique_ptr<Split> ImageSplit(ImageList list, int64_t image_size,
                                  bool augment, int threads, uint64_t seed);

// Every file OpenData reads for `config` (for image files: the listings
// and each image): what a cache of results derived from the data must be
// keyed by. Empty when the listing cannot be read.
std::vector<std::string> DatasetFiles(const DatasetConfig& config);

// The data set `config` names, ready for training: Fashion-MNIST and
// CIFAR-10 in memory, CUB-200-2011 and image-folder trees from files.
absl::StatusOr<Data> OpenData(const DatasetConfig& config, uint64_t seed);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_SPLITS_H_
