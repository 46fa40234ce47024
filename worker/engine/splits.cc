#include "worker/engine/splits.h"

#include "absl/strings/str_cat.h"

namespace distill::engine {
namespace {

constexpr int64_t kEvalBatch = 256;

class InMemorySplit final : public Split {
 public:
  explicit InMemorySplit(TensorDataset data) : data_(std::move(data)) {}

  int64_t size() const override { return data_.size(); }
  const torch::Tensor& labels() const override { return data_.labels; }
  std::vector<int64_t> image_shape() const override {
    return {data_.images.size(1), data_.images.size(2), data_.images.size(3)};
  }
  bool deterministic() const override { return true; }

  void StartEpoch(const torch::Tensor& order, int64_t batch_size) override {
    order_ = order;
    batch_size_ = batch_size;
    next_ = 0;
  }

  absl::StatusOr<std::optional<Batch>> NextTrainBatch() override {
    if (next_ >= order_.size(0)) return std::nullopt;
    torch::Tensor idx = order_.slice(0, next_, next_ + batch_size_);
    next_ += batch_size_;
    return std::optional<Batch>(Batch{data_.images.index_select(0, idx), idx});
  }

  absl::Status ForEachEvalBatch(
      int64_t limit,
      const std::function<absl::Status(const torch::Tensor&)>& fn) override {
    const int64_t n = limit > 0 ? std::min(limit, size()) : size();
    for (int64_t i = 0; i < n; i += kEvalBatch) {
      if (absl::Status s =
              fn(data_.images.slice(0, i, std::min(n, i + kEvalBatch)));
          !s.ok()) {
        return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  TensorDataset data_;
  torch::Tensor order_;
  int64_t batch_size_ = 1;
  int64_t next_ = 0;
};

class FileSplit final : public Split {
 public:
  FileSplit(ImageList list, int64_t image_size, bool augment, int threads,
            uint64_t seed)
      : list_(std::move(list)),
        labels_(torch::tensor(list_.labels, torch::kInt64)),
        image_size_(image_size),
        augment_(augment),
        train_loader_(list_, {image_size, augment}, threads, 2 * threads, seed),
        eval_loader_(list_, {image_size, false}, threads, 2 * threads, seed) {}

  int64_t size() const override { return list_.size(); }
  const torch::Tensor& labels() const override { return labels_; }
  std::vector<int64_t> image_shape() const override {
    return {3, image_size_, image_size_};
  }
  bool deterministic() const override { return !augment_; }

  void StartEpoch(const torch::Tensor& order, int64_t batch_size) override {
    order_ = order;
    batch_size_ = batch_size;
    next_ = 0;
    train_loader_.Start(order, batch_size);
  }

  absl::StatusOr<std::optional<Batch>> NextTrainBatch() override {
    absl::StatusOr<std::optional<ImageBatch>> batch = train_loader_.Next();
    if (!batch.ok()) return batch.status();
    if (!batch->has_value()) return std::nullopt;
    torch::Tensor idx =
        order_.slice(0, next_, next_ + (*batch)->images.size(0));
    next_ += (*batch)->images.size(0);
    return std::optional<Batch>(Batch{(*batch)->images, idx});
  }

  absl::Status ForEachEvalBatch(
      int64_t limit,
      const std::function<absl::Status(const torch::Tensor&)>& fn) override {
    const int64_t n = limit > 0 ? std::min(limit, size()) : size();
    eval_loader_.Start(torch::arange(n, torch::kInt64), kEvalBatch);
    while (true) {
      absl::StatusOr<std::optional<ImageBatch>> batch = eval_loader_.Next();
      if (!batch.ok()) return batch.status();
      if (!batch->has_value()) return absl::OkStatus();
      if (absl::Status s = fn((*batch)->images); !s.ok()) return s;
    }
  }

 private:
  ImageList list_;
  torch::Tensor labels_;
  int64_t image_size_;
  bool augment_;
  ImageBatchLoader train_loader_, eval_loader_;
  torch::Tensor order_;
  int64_t batch_size_ = 1;
  int64_t next_ = 0;
};

// Keeps the first `limit` images (all when 0).
ImageList Limit(ImageList list, int64_t limit) {
  if (limit <= 0 || limit >= list.size()) return list;
  list.paths.resize(size_t(limit));
  list.labels.resize(size_t(limit));
  if (!list.boxes.empty()) list.boxes.resize(size_t(limit));
  return list;
}

}  // namespace

std::unique_ptr<Split> TensorSplit(TensorDataset data) {
  return std::make_unique<InMemorySplit>(std::move(data));
}

std::unique_ptr<Split> ImageSplit(ImageList list, int64_t image_size,
                                  bool augment, int threads, uint64_t seed) {
  return std::make_unique<FileSplit>(std::move(list), image_size, augment,
                                     threads, seed);
}

namespace {

// The listings of an image-file data set.
absl::StatusOr<ImageSplits> ReadImageSplits(const DatasetInfo& info,
                                            const DatasetConfig& config) {
#ifndef DISTILL_HAVE_TURBOJPEG
  return absl::FailedPreconditionError(absl::StrCat(
      "data set ", config.name,
      " is JPEG files, and this engine was built without libturbojpeg; "
      "rebuild with libturbojpeg0-dev installed"));
#endif
  return info.format == DatasetFormat::kImageFolder
             ? ReadImageFolder(config.root)
             : ReadCub(config.root, config.crop_to_boxes);
}

}  // namespace

std::vector<std::string> DatasetFiles(const DatasetConfig& config) {
  const DatasetInfo* info = FindDataset(config.name);
  if (info != nullptr && IsImageFiles(*info)) {
    absl::StatusOr<ImageSplits> splits = ReadImageSplits(*info, config);
    if (!splits.ok()) return {};
    std::vector<std::string> files;
    if (info->format == DatasetFormat::kCub) {
      for (const char* f : {"images.txt", "image_class_labels.txt",
                            "train_test_split.txt", "bounding_boxes.txt"}) {
        if (std::string(f) != "bounding_boxes.txt" || config.crop_to_boxes) {
          files.push_back(absl::StrCat(config.root, "/", f));
        }
      }
    }
    for (const ImageList* list : {&splits->train, &splits->test}) {
      files.insert(files.end(), list->paths.begin(), list->paths.end());
    }
    return files;
  }
  return TensorDatasetFiles(config);
}

absl::StatusOr<Data> OpenData(const DatasetConfig& config, uint64_t seed) {
  const DatasetInfo* info = FindDataset(config.name);
  if (info != nullptr && IsImageFiles(*info)) {
    if (config.root.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dataset.root must name the ", config.name, " directory"));
    }
    absl::StatusOr<ImageSplits> splits = ReadImageSplits(*info, config);
    if (!splits.ok()) return splits.status();
    if (splits->train.size() == 0) {
      return absl::NotFoundError(
          absl::StrCat(config.root, " has no training images"));
    }
    const int64_t size =
        config.image_size > 0 ? config.image_size : info->native_size;
    const int threads = int(std::max<int64_t>(1, config.loader_threads));
    Data data;
    data.num_classes = int64_t(splits->train.class_names.size());
    data.train = ImageSplit(Limit(std::move(splits->train), config.train_limit),
                            size, config.augment, threads, seed);
    data.test = ImageSplit(Limit(std::move(splits->test), config.test_limit),
                           size, false, threads, seed);
    return data;
  }
  absl::StatusOr<TrainTestData> tensors = LoadDataset(config);
  if (!tensors.ok()) return tensors.status();
  Data data;
  data.num_classes = tensors->train.num_classes;
  data.train = TensorSplit(std::move(tensors->train));
  data.test = TensorSplit(std::move(tensors->test));
  return data;
}

}  // namespace distill::engine
