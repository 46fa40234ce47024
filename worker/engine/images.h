#ifndef DISTILL_WORKER_ENGINE_IMAGES_H_
#define DISTILL_WORKER_ENGINE_IMAGES_H_

#include <torch/torch.h>

#include <array>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace distill::engine {

// Image files on disk with their labels: CUB-200-2011 and class-per-folder
// trees. Images are decoded and augmented while training runs.

// Decodes JPEG bytes into an H x W x 3 uint8 RGB tensor; DATA_LOSS naming
// `name` when they are not a decodable JPEG.
absl::StatusOr<torch::Tensor> DecodeJpeg(const std::string& bytes,
                                         const std::string& name);
// Reads and decodes a JPEG file (NOT_FOUND / DATA_LOSS naming it).
absl::StatusOr<torch::Tensor> ReadJpeg(const std::string& path);

// A bounding box in pixels: x, y, width, height (CUB's bounding_boxes.txt).
using Box = std::array<float, 4>;

struct ImageList {
  std::vector<std::string> paths;
  std::vector<int64_t> labels;
  std::vector<Box> boxes;  // Empty, or one per image to crop to first.
  std::vector<std::string> class_names;
  int64_t size() const { return int64_t(paths.size()); }
};

struct ImageSplits {
  ImageList train, test;
};

// CUB-200-2011 from its official files under `root` (images.txt,
// image_class_labels.txt, train_test_split.txt, images/, and
// bounding_boxes.txt when `crop_to_boxes`). Labels become 0-based.
absl::StatusOr<ImageSplits> ReadCub(const std::string& root,
                                    bool crop_to_boxes);

// A class-per-folder tree: root/train/<class>/*.jpg and root/test/<class>/
// (or root/val/<class>/); classes in name order, as torchvision's
// ImageFolder.
absl::StatusOr<ImageSplits> ReadImageFolder(const std::string& root);

// The views: training takes a random-resized crop (scale 0.08-1, aspect
// 3/4-4/3) and a random horizontal flip; evaluation resizes the shorter
// side to size * 256 / 224 and takes the centre crop. Both normalise with
// ImageNet's statistics into a 3 x size x size float tensor.
struct ImageTransform {
  int64_t size = 224;
  bool train = false;
};
torch::Tensor TransformImage(const torch::Tensor& hwc,
                             const ImageTransform& transform,
                             std::mt19937_64& rng, const Box* box = nullptr);

struct ImageBatch {
  torch::Tensor images;  // N x 3 x size x size float.
  torch::Tensor labels;  // N int64.
};

// Decodes and transforms batches of an ImageList on `threads` threads, up to
// `prefetch` batches ahead of the consumer, in order. An unreadable image is
// an error naming it; an image that takes longer than `timeout` is an error
// naming it, not a hang. Next() must be called from one thread.
class ImageBatchLoader {
 public:
  ImageBatchLoader(const ImageList& list, ImageTransform transform, int threads,
                   int prefetch, uint64_t seed,
                   absl::Duration timeout = absl::Seconds(60));
  ~ImageBatchLoader();
  ImageBatchLoader(const ImageBatchLoader&) = delete;
  ImageBatchLoader& operator=(const ImageBatchLoader&) = delete;

  // Begins an epoch over `order` (indices into the list) in batches of
  // `batch_size`; the last partial batch is kept.
  void Start(const torch::Tensor& order, int64_t batch_size);
  // The next batch of the epoch; nullopt after the last.
  absl::StatusOr<std::optional<ImageBatch>> Next();

 private:
  struct Job {
    std::vector<int64_t> indices;
    bool taken = false;
    std::optional<absl::StatusOr<ImageBatch>> result;
    std::string current_file;
  };
  void Work();
  absl::StatusOr<ImageBatch> Load(Job& job, std::mt19937_64& rng);
  void StopWorkers();

  const ImageList& list_;
  const ImageTransform transform_;
  const int prefetch_;
  const uint64_t seed_;
  const absl::Duration timeout_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<int64_t, Job> jobs_;              // Guarded by mu_: queued or done.
  std::vector<std::vector<int64_t>> epoch_;  // Guarded by mu_: every batch.
  int64_t next_to_queue_ = 0;                // Guarded by mu_.
  int64_t next_to_return_ = 0;               // Guarded by mu_.
  int64_t in_flight_ = 0;  // Guarded by mu_: jobs being loaded.
  bool stop_ = false;      // Guarded by mu_.
  std::vector<std::thread> threads_;
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_IMAGES_H_
