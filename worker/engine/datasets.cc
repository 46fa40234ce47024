#include "worker/engine/datasets.h"

#include <zlib.h>

#include <cstdint>
#include <fstream>
#include <iterator>
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

// uint8 N x C x H x W -> float, per-channel normalised, resized to
// `image_size` (bilinear) when that is set and differs.
torch::Tensor Normalise(const torch::Tensor& pixels,
                        const std::vector<double>& mean,
                        const std::vector<double>& std, int64_t image_size) {
  const int64_t c = pixels.size(1);
  torch::Tensor x = pixels.to(torch::kFloat32) / 255.0;
  x = (x - torch::tensor(mean, torch::kFloat32).view({1, c, 1, 1})) /
      torch::tensor(std, torch::kFloat32).view({1, c, 1, 1});
  if (image_size > 0 && image_size != x.size(2)) {
    x = torch::nn::functional::interpolate(
        x, torch::nn::functional::InterpolateFuncOptions()
               .size(std::vector<int64_t>{image_size, image_size})
               .mode(torch::kBilinear)
               .align_corners(false));
  }
  return x.contiguous();
}

// A Fashion-MNIST file: split "train" or "t10k", kind "images-idx3" or
// "labels-idx1".
std::string FashionMnistPath(const DatasetConfig& config, const char* split,
                             const char* kind) {
  return absl::StrCat(
      config.root.empty() ? StandardRoot("fashion-mnist") : config.root, "/",
      split, "-", kind, "-ubyte.gz");
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
  out.images = Normalise(images->slice(0, 0, n).unsqueeze(1), {kFashionMean},
                         {kFashionStd}, config.image_size);
  return out;
}

// CIFAR-10's binary batches: records of a label byte and 3 x 32 x 32
// pixel bytes (R, G, B planes).
absl::StatusOr<TensorDataset> LoadCifarFiles(
    const DatasetConfig& config, const std::vector<std::string>& paths,
    int64_t limit) {
  constexpr int64_t kRecord = 1 + 3 * 32 * 32;
  std::vector<torch::Tensor> records;
  int64_t total = 0;
  for (const std::string& path : paths) {
    if (limit > 0 && total >= limit) break;
    absl::StatusOr<std::vector<uint8_t>> bytes = ReadGzipOrPlain(path);
    if (!bytes.ok()) return bytes.status();
    if (bytes->empty() || bytes->size() % kRecord != 0) {
      return absl::DataLossError(
          absl::StrCat(path, " is not CIFAR-10 binary: ", bytes->size(),
                       " bytes is not a multiple of ", kRecord));
    }
    const int64_t n = int64_t(bytes->size()) / kRecord;
    records.push_back(
        torch::from_blob(bytes->data(), {n, kRecord}, torch::kUInt8).clone());
    total += n;
  }
  torch::Tensor all = torch::cat(records);
  if (limit > 0 && limit < all.size(0)) all = all.slice(0, 0, limit);
  TensorDataset out;
  out.num_classes = 10;
  out.labels = all.select(1, 0).to(torch::kInt64);
  if (out.labels.max().item<int64_t>() >= 10) {
    return absl::DataLossError(
        absl::StrCat(paths.front(), " holds a label >= 10"));
  }
  out.images = Normalise(all.slice(1, 1).reshape({-1, 3, 32, 32}),
                         {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616},
                         config.image_size);
  return out;
}

std::vector<std::string> CifarFiles(const DatasetConfig& config, bool train) {
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) {
      files.push_back(absl::StrCat(config.root, "/data_batch_", i, ".bin"));
    }
  } else {
    files.push_back(config.root + "/test_batch.bin");
  }
  return files;
}

}  // namespace

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  return std::string((std::istreambuf_iterator<char>(in)),
                     std::istreambuf_iterator<char>());
}

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

std::vector<std::string> TensorDatasetFiles(const DatasetConfig& config) {
  const DatasetInfo* info = FindDataset(config.name);
  if (info == nullptr || IsImageFiles(*info)) return {};
  if (info->format == DatasetFormat::kCifarBinary) {
    std::vector<std::string> files = CifarFiles(config, true);
    files.push_back(CifarFiles(config, false).front());
    return files;
  }
  std::vector<std::string> files;
  for (const char* split : {"train", "t10k"}) {
    for (const char* kind : {"images-idx3", "labels-idx1"}) {
      files.push_back(FashionMnistPath(config, split, kind));
    }
  }
  return files;
}

absl::StatusOr<TrainTestData> LoadCifar10(const DatasetConfig& config) {
  if (config.root.empty()) {
    return absl::InvalidArgumentError(
        "dataset.root must name the cifar-10-batches-bin directory for "
        "cifar-10");
  }
  absl::StatusOr<TensorDataset> train =
      LoadCifarFiles(config, CifarFiles(config, true), config.train_limit);
  if (!train.ok()) return train.status();
  absl::StatusOr<TensorDataset> test =
      LoadCifarFiles(config, CifarFiles(config, false), config.test_limit);
  if (!test.ok()) return test.status();
  return TrainTestData{*std::move(train), *std::move(test)};
}

absl::StatusOr<TrainTestData> LoadDataset(const DatasetConfig& config) {
  const DatasetInfo* info = FindDataset(config.name);
  if (info != nullptr && info->format == DatasetFormat::kIdx)
    return LoadFashionMnist(config);
  if (info != nullptr && info->format == DatasetFormat::kCifarBinary)
    return LoadCifar10(config);
  return absl::InvalidArgumentError(
      absl::StrCat("dataset.name must be one of the data sets held in memory "
                   "[cifar-10, fashion-mnist], got \"",
                   config.name, "\""));
}

}  // namespace distill::engine
