#include "worker/engine/images.h"

#ifdef DISTILL_HAVE_TURBOJPEG
#include <turbojpeg.h>
#endif

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <unordered_map>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "worker/engine/datasets.h"

namespace distill::engine {
namespace {

namespace F = torch::nn::functional;
namespace fs = std::filesystem;

constexpr float kImageNetMean[] = {0.485f, 0.456f, 0.406f};
constexpr float kImageNetStd[] = {0.229f, 0.224f, 0.225f};

// Reads "<id> <fields...>" lines into id -> fields, naming the file and the
// line of anything malformed.
absl::StatusOr<std::unordered_map<int64_t, std::vector<std::string>>> ReadTable(
    const std::string& path, size_t fields, bool numeric = true) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::unordered_map<int64_t, std::vector<std::string>> table;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    std::istringstream s(line);
    int64_t id;
    std::vector<std::string> values(fields);
    bool ok = bool(s >> id);
    for (auto& v : values) {
      double number;
      ok = ok && bool(s >> v) && (!numeric || absl::SimpleAtod(v, &number));
    }
    if (!ok) {
      return absl::DataLossError(absl::StrCat(path, ":", number,
                                              ": expected an id and ", fields,
                                              " value(s), got \"", line, "\""));
    }
    table[id] = std::move(values);
  }
  return table;
}

}  // namespace

absl::StatusOr<torch::Tensor> DecodeJpeg(const std::string& bytes,
                                         const std::string& name) {
#ifndef DISTILL_HAVE_TURBOJPEG
  // An engine built alone without libturbojpeg (bench/gpu.sh may): the
  // in-memory data sets work, JPEG files do not.
  (void)bytes;
  return absl::FailedPreconditionError(absl::StrCat(
      "cannot decode ", name,
      ": this engine was built without libturbojpeg, so JPEG data sets "
      "(cub-200-2011, image-folder) are unavailable; rebuild with "
      "libturbojpeg0-dev installed"));
#else
  tjhandle handle = tjInitDecompress();
  if (handle == nullptr)
    return absl::InternalError("cannot start the JPEG decoder");
  auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(handle, data,
                          static_cast<unsigned long>(bytes.size()), &width,
                          &height, &subsampling, &colorspace) != 0) {
    const std::string why = tjGetErrorStr2(handle);
    tjDestroy(handle);
    return absl::DataLossError(
        absl::StrCat(name, " is not a readable JPEG: ", why));
  }
  torch::Tensor out = torch::empty({height, width, 3}, torch::kUInt8);
  const int rc = tjDecompress2(
      handle, data, static_cast<unsigned long>(bytes.size()),
      out.data_ptr<uint8_t>(), width, 0, height, TJPF_RGB, TJFLAG_ACCURATEDCT);
  const std::string why = rc != 0 ? tjGetErrorStr2(handle) : "";
  // A warning (e.g. a truncated file) still fails: the pixels are not all
  // there.
  tjDestroy(handle);
  if (rc != 0)
    return absl::DataLossError(
        absl::StrCat(name, ": JPEG decoding failed: ", why));
  return out;
#endif
}

absl::StatusOr<torch::Tensor> ReadJpeg(const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(path);
  if (!bytes.ok()) return bytes.status();
  return DecodeJpeg(*bytes, path);
}

namespace {

// Image `id`'s box from bounding_boxes.txt's `fields` (x, y, width,
// height in pixels); DATA_LOSS naming a field that is none.
absl::StatusOr<std::array<float, 4>> BoxCorners(
    const std::string& root, int64_t id,
    const std::vector<std::string>& fields) {
  std::array<float, 4> corners;
  for (size_t k = 0; k < corners.size(); ++k) {
    double x = 0;
    if (!absl::SimpleAtod(fields[k], &x) || !std::isfinite(x) ||
        std::fabs(x) > 1e9) {
      return absl::DataLossError(
          absl::StrCat(root, "/bounding_boxes.txt: image ", id, " has \"",
                       fields[k], "\" where a pixel coordinate belongs"));
    }
    corners[k] = float(x);
  }
  return corners;
}

}  // namespace

absl::StatusOr<ImageSplits> ReadCub(const std::string& root,
                                    bool crop_to_boxes) {
  auto images = ReadTable(root + "/images.txt", 1, /*numeric=*/false);
  if (!images.ok()) return images.status();
  auto labels = ReadTable(root + "/image_class_labels.txt", 1);
  if (!labels.ok()) return labels.status();
  auto split = ReadTable(root + "/train_test_split.txt", 1);
  if (!split.ok()) return split.status();
  std::unordered_map<int64_t, std::vector<std::string>> boxes;
  if (crop_to_boxes) {
    auto read = ReadTable(root + "/bounding_boxes.txt", 4);
    if (!read.ok()) return read.status();
    boxes = *std::move(read);
  }
  std::vector<int64_t> ids;
  for (const auto& [id, unused] : *images) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  ImageSplits out;
  int64_t max_label = 0;
  for (int64_t id : ids) {
    auto label = labels->find(id);
    auto is_train = split->find(id);
    if (label == labels->end() || is_train == split->end()) {
      return absl::DataLossError(
          absl::StrCat(root, ": image ", id, " of images.txt has no ",
                       label == labels->end() ? "image_class_labels.txt"
                                              : "train_test_split.txt",
                       " entry"));
    }
    double class_number = 0;
    if (!absl::SimpleAtod(label->second[0], &class_number) ||
        !(class_number >= 1 && class_number <= 1e9) ||
        class_number != std::floor(class_number)) {
      return absl::DataLossError(absl::StrCat(
          root, "/image_class_labels.txt: image ", id, " has class \"",
          label->second[0], "\"; classes are whole numbers from 1"));
    }
    const int64_t class_id = int64_t(class_number);
    if (class_id < 1) {
      return absl::DataLossError(
          absl::StrCat(root, "/image_class_labels.txt: image ", id,
                       " has class ", class_id, "; classes start at 1"));
    }
    // A listed file stays under root/images/: no absolute path, no "..".
    const fs::path relative((*images)[id][0]);
    if (relative.is_absolute() ||
        std::find(relative.begin(), relative.end(), "..") != relative.end()) {
      return absl::DataLossError(absl::StrCat(root, "/images.txt: image ", id,
                                              " is ", relative.string(),
                                              ", outside ", root, "/images"));
    }
    ImageList& list = is_train->second[0] == "1" ? out.train : out.test;
    list.paths.push_back(absl::StrCat(root, "/images/", relative.string()));
    list.labels.push_back(class_id - 1);
    max_label = std::max(max_label, class_id);
    if (crop_to_boxes) {
      auto box = boxes.find(id);
      if (box == boxes.end()) {
        return absl::DataLossError(absl::StrCat(
            root, "/bounding_boxes.txt has no box for image ", id));
      }
      absl::StatusOr<std::array<float, 4>> corners =
          BoxCorners(root, id, box->second);
      if (!corners.ok()) return corners.status();
      list.boxes.push_back(
          {(*corners)[0], (*corners)[1], (*corners)[2], (*corners)[3]});
    }
  }
  for (ImageList* list : {&out.train, &out.test}) {
    for (int64_t c = 1; c <= max_label; ++c)
      list->class_names.push_back(absl::StrCat(c));
  }
  return out;
}

absl::StatusOr<ImageSplits> ReadImageFolder(const std::string& root) {
  auto read_split = [&](const fs::path& dir,
                        const std::vector<std::string>& classes)
      -> absl::StatusOr<ImageList> {
    ImageList list;
    list.class_names = classes;
    for (size_t c = 0; c < classes.size(); ++c) {
      std::set<std::string> files;
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(dir / classes[c], ec)) {
        if (entry.is_regular_file()) files.insert(entry.path().string());
      }
      for (const std::string& f : files) {
        list.paths.push_back(f);
        list.labels.push_back(int64_t(c));
      }
    }
    return list;
  };
  const fs::path train_dir = fs::path(root) / "train";
  fs::path test_dir = fs::path(root) / "test";
  if (!fs::is_directory(test_dir)) test_dir = fs::path(root) / "val";
  if (!fs::is_directory(train_dir) || !fs::is_directory(test_dir)) {
    return absl::NotFoundError(
        absl::StrCat(root,
                     " must hold train/<class>/ and test/<class>/ (or "
                     "val/<class>/) folders"));
  }
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(train_dir)) {
    if (entry.is_directory()) names.insert(entry.path().filename().string());
  }
  if (names.empty())
    return absl::NotFoundError(
        absl::StrCat(train_dir.string(), " has no class folders"));
  const std::vector<std::string> classes(names.begin(), names.end());
  for (const auto& entry : fs::directory_iterator(test_dir)) {
    if (entry.is_directory() &&
        !names.count(entry.path().filename().string())) {
      return absl::DataLossError(
          absl::StrCat(entry.path().string(),
                       " is a class the training folder does not have"));
    }
  }
  absl::StatusOr<ImageList> train = read_split(train_dir, classes);
  if (!train.ok()) return train.status();
  absl::StatusOr<ImageList> test = read_split(test_dir, classes);
  if (!test.ok()) return test.status();
  return ImageSplits{*std::move(train), *std::move(test)};
}

torch::Tensor TransformImage(const torch::Tensor& hwc, const ImageTransform& t,
                             std::mt19937_64& rng, const Box* box) {
  torch::Tensor x =
      hwc.permute({2, 0, 1}).to(torch::kFloat32).div_(255.0f);  // C, H, W
  if (box != nullptr) {
    const int64_t h = x.size(1), w = x.size(2);
    const int64_t x0 = std::clamp<int64_t>(int64_t((*box)[0]), 0, w - 1);
    const int64_t y0 = std::clamp<int64_t>(int64_t((*box)[1]), 0, h - 1);
    const int64_t x1 = std::clamp<int64_t>(
        int64_t(std::ceil((*box)[0] + (*box)[2])), x0 + 1, w);
    const int64_t y1 = std::clamp<int64_t>(
        int64_t(std::ceil((*box)[1] + (*box)[3])), y0 + 1, h);
    x = x.slice(1, y0, y1).slice(2, x0, x1);
  }
  const int64_t h = x.size(1), w = x.size(2);
  int64_t top = 0, left = 0, crop_h = h, crop_w = w;
  if (t.train) {
    // torchvision's RandomResizedCrop: 10 tries, then the centre crop.
    std::uniform_real_distribution<double> scale(0.08, 1.0);
    std::uniform_real_distribution<double> log_ratio(std::log(3.0 / 4),
                                                     std::log(4.0 / 3));
    bool found = false;
    for (int attempt = 0; attempt < 10 && !found; ++attempt) {
      const double area = h * w * scale(rng);
      const double ratio = std::exp(log_ratio(rng));
      const int64_t cw = std::llround(std::sqrt(area * ratio));
      const int64_t ch = std::llround(std::sqrt(area / ratio));
      if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
        crop_w = cw, crop_h = ch;
        top = std::uniform_int_distribution<int64_t>(0, h - ch)(rng);
        left = std::uniform_int_distribution<int64_t>(0, w - cw)(rng);
        found = true;
      }
    }
    if (!found) {
      crop_h = crop_w = std::min(h, w);
      top = (h - crop_h) / 2, left = (w - crop_w) / 2;
    }
    x = x.slice(1, top, top + crop_h)
            .slice(2, left, left + crop_w)
            .unsqueeze(0);
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{t.size, t.size})
                              .mode(torch::kBilinear)
                              .align_corners(false))
            .squeeze(0);
    if (std::bernoulli_distribution(0.5)(rng)) x = x.flip({2});
  } else {
    // Shorter side to size * 256 / 224, then the centre size x size.
    const int64_t shorter = t.size * 256 / 224;
    const int64_t nh = h <= w ? shorter : std::llround(double(h) * shorter / w);
    const int64_t nw = h <= w ? std::llround(double(w) * shorter / h) : shorter;
    x = F::interpolate(x.unsqueeze(0), F::InterpolateFuncOptions()
                                           .size(std::vector<int64_t>{nh, nw})
                                           .mode(torch::kBilinear)
                                           .align_corners(false))
            .squeeze(0);
    const int64_t y0 = (nh - t.size) / 2, x0 = (nw - t.size) / 2;
    x = x.slice(1, y0, y0 + t.size).slice(2, x0, x0 + t.size);
  }
  const torch::Tensor mean =
      torch::from_blob(const_cast<float*>(kImageNetMean), {3, 1, 1});
  const torch::Tensor std =
      torch::from_blob(const_cast<float*>(kImageNetStd), {3, 1, 1});
  return ((x - mean) / std).contiguous();
}

}  // namespace distill::engine
