#ifndef DISTILL_WORKER_ENGINE_IMAGES_H_
#define DISTILL_WORKER_ENGINE_IMAGES_H_

#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

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

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_IMAGES_H_
