#include "worker/engine/datasets.h"

#include <zlib.h>

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace distill::engine {
namespace {

// Fashion-MNIST training-set statistics.
constexpr double kFashionMean = 0.2860;
constexpr double kFashionStd = 0.3530;

absl::StatusOr<std::vector<uint8_t>> ReadGzipOrPlain(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");  // Reads plain files too.
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat("cannot open ", path));
  }
  std::vector<uint8_t> bytes;
  uint8_t buffer[1 << 16];
  while (true) {
    const int n = gzread(file, buffer, sizeof(buffer));
    if (n < 0) {
      int code = 0;
      std::string what = gzerror(file, &code);
      gzclose(file);
      return absl::DataLossError(
          absl::StrCat("cannot read ", path, ": ", what));
    }
    if (n == 0) break;
    bytes.insert(bytes.end(), buffer, buffer + n);
  }
  gzclose(file);
  return bytes;
}

uint32_t BigEndian32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) |
         (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}

// A Fashion-MNIST file: split "train" or "t10k", kind "images-idx3" or
// "labels-idx1".
std::string FashionMnistPath(const DatasetConfig& config, const char* split,
                             const char* kind) {
  return absl::StrCat(config.root.empty() ? kFashionMnistRoot : config.root,
                      "/", split, "-", kind, "-ubyte.gz");
}

absl::StatusOr<TensorDataset> LoadSplit(const DatasetConfig& config,
                                        const char* prefix, int64_t limit) {
  const std::string images_path =
      FashionMnistPath(config, prefix, "images-idx3");
  const std::string labels_path =
      FashionMnistPath(config, prefix, "labels-idx1");
  absl::StatusOr<torch::Tensor> images = ReadIdx(images_path);
  if (!images.ok()) return images.status();
  absl::StatusOr<torch::Tensor> labels = ReadIdx(labels_path);
  if (!labels.ok()) return labels.status();
  if (images->dim() != 3 || labels->dim() != 1 ||
      images->size(0) != labels->size(0)) {
    return absl::DataLossError(absl::StrCat(
        images_path, " and ", labels_path,
        " do not hold matching image (N x H x W) and label (N) arrays"));
  }
  int64_t n = images->size(0);
  if (limit > 0 && limit < n) n = limit;
  TensorDataset out;
  out.num_classes = 10;
  out.labels = labels->slice(0, 0, n).to(torch::kInt64).clone();
  if (out.labels.max().item<int64_t>() >= out.num_classes) {
    return absl::DataLossError(
        absl::StrCat(labels_path, " holds a label >= ", out.num_classes));
  }
  torch::Tensor x = images->slice(0, 0, n).unsqueeze(1).to(torch::kFloat32);
  x = (x / 255.0 - kFashionMean) / kFashionStd;
  if (config.image_size > 0 && config.image_size != x.size(2)) {
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{config.image_size, config.image_size})
               .mode(torch::kBilinear)
               .align_corners(false));
  }
  out.images = x.contiguous();
  return out;
}

}  // namespace

absl::StatusOr<torch::Tensor> ReadIdx(const std::string& path) {
  absl::StatusOr<std::vector<uint8_t>> bytes = ReadGzipOrPlain(path);
  if (!bytes.ok()) return bytes.status();
  const std::vector<uint8_t>& b = *bytes;
  // Magic: two zero bytes, a type byte (0x08 = unsigned byte), the rank.
  if (b.size() < 4 || b[0] != 0 || b[1] != 0) {
    return absl::DataLossError(absl::StrCat(path, " is not an IDX file"));
  }
  if (b[2] != 0x08) {
    return absl::DataLossError(absl::StrCat(
        path, ": IDX element type ", int{b[2]}, " is not 8 (unsigned byte)"));
  }
  const int rank = b[3];
  if (rank < 1 || rank > 4 || b.size() < 4 + 4 * size_t(rank)) {
    return absl::DataLossError(absl::StrCat(path, ": bad IDX rank ", rank));
  }
  std::vector<int64_t> shape;
  int64_t count = 1;
  for (int i = 0; i < rank; ++i) {
    shape.push_back(BigEndian32(&b[4 + 4 * i]));
    count *= shape.back();
  }
  const size_t offset = 4 + 4 * rank;
  if (b.size() - offset != static_cast<size_t>(count)) {
    return absl::DataLossError(absl::StrCat(path, ": header promises ", count,
                                            " bytes of data, found ",
                                            b.size() - offset));
  }
  return torch::from_blob(const_cast<uint8_t*>(b.data() + offset), shape,
                          torch::kUInt8)
      .clone();
}

absl::StatusOr<TrainTestData> LoadFashionMnist(const DatasetConfig& config) {
  TrainTestData data;
  absl::StatusOr<TensorDataset> train =
      LoadSplit(config, "train", config.train_limit);
  if (!train.ok()) return train.status();
  absl::StatusOr<TensorDataset> test =
      LoadSplit(config, "t10k", config.test_limit);
  if (!test.ok()) return test.status();
  data.train = *std::move(train);
  data.test = *std::move(test);
  return data;
}

std::vector<std::string> DatasetFiles(const DatasetConfig& config) {
  std::vector<std::string> files;
  for (const char* split : {"train", "t10k"}) {
    for (const char* kind : {"images-idx3", "labels-idx1"}) {
      files.push_back(FashionMnistPath(config, split, kind));
    }
  }
  return files;
}

absl::StatusOr<TrainTestData> LoadDataset(const DatasetConfig& config) {
  if (config.name == "fashion-mnist") return LoadFashionMnist(config);
  return absl::InvalidArgumentError(
      absl::StrCat("dataset.name must be one of [fashion-mnist], got \"",
                   config.name, "\""));
}

}  // namespace distill::engine
