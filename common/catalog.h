// The facts every part of distill shares about a run: the data sets and
// student architectures it knows, and the value each spec field takes when
// it is left unset. Header-only and free of dependencies, so the engine
// (LibTorch alone), the coordinator and the CLI all read the same table.
#ifndef DISTILL_COMMON_CATALOG_H_
#define DISTILL_COMMON_CATALOG_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace distill {

enum class DatasetFormat {
  kIdx,          // Fashion-MNIST: IDX files, gzip, held in memory.
  kCifarBinary,  // CIFAR-10's binary batches, held in memory.
  kCub,          // CUB-200-2011's official layout of JPEG files.
  kImageFolder,  // root/train/<class>/*.jpg, root/test/<class>/*.jpg.
};

struct DatasetInfo {
  std::string_view name;
  DatasetFormat format;
  int channels;
  int native_size;  // Side of the square images the models see by default.
  int classes;      // 0: read from the files (image-folder).
  // Where the data lives when dataset.root is empty; empty: root required.
  std::string_view standard_root;
};

inline constexpr std::array<DatasetInfo, 4> kDatasets = {{
    {"cifar-10", DatasetFormat::kCifarBinary, 3, 32, 10, ""},
    {"cub-200-2011", DatasetFormat::kCub, 3, 224, 200, ""},
    {"fashion-mnist", DatasetFormat::kIdx, 1, 28, 10,
     "/usr/share/datasets/fashion-mnist"},
    {"image-folder", DatasetFormat::kImageFolder, 3, 224, 0, ""},
}};

// nullptr for a name the table does not hold.
constexpr const DatasetInfo* FindDataset(std::string_view name) {
  for (const DatasetInfo& d : kDatasets) {
    if (d.name == name) return &d;
  }
  return nullptr;
}

inline bool IsImageFiles(const DatasetInfo& d) {
  return d.format == DatasetFormat::kCub ||
         d.format == DatasetFormat::kImageFolder;
}

struct ResNetInfo {
  std::string_view arch;
  bool bottleneck;  // Bottleneck blocks (4x expansion), else BasicBlock.
  std::array<int, 4> blocks;
};

// torchvision's layouts. Student checkpoints store the row's index: add
// rows at the end.
inline constexpr std::array<ResNetInfo, 3> kResNets = {{
    {"resnet18", false, {2, 2, 2, 2}},
    {"resnet34", false, {3, 4, 6, 3}},
    {"resnet50", true, {3, 4, 6, 3}},
}};

constexpr const ResNetInfo* FindResNet(std::string_view arch) {
  for (const ResNetInfo& r : kResNets) {
    if (r.arch == arch) return &r;
  }
  return nullptr;
}

// "[a, b, c]" of a table's names, for error messages.
template <typename Table, typename Name>
std::string NameList(const Table& table, Name name) {
  std::string out = "[";
  for (const auto& row : table) {
    if (out.size() > 1) out += ", ";
    out += std::string(name(row));
  }
  return out + "]";
}
inline std::string DatasetNames() {
  return NameList(kDatasets, [](const DatasetInfo& d) { return d.name; });
}
inline std::string ResNetNames() {
  return NameList(kResNets, [](const ResNetInfo& r) { return r.arch; });
}

// Why a ViT with these sizes cannot take square images of `image_size`
// pixels, naming the spec fields; empty when it can. The coordinator
// refuses such a spec, the engine such a config.
inline std::string VitMisfit(int64_t image_size, int64_t patch_size,
                             int64_t width, int64_t heads) {
  if (heads > 0 && width % heads != 0) {
    return "teacher.vit.heads (" + std::to_string(heads) +
           ") must divide teacher.vit.width (" + std::to_string(width) + ")";
  }
  if (patch_size > 0 && image_size % patch_size != 0) {
    return "teacher.vit.patch_size (" + std::to_string(patch_size) +
           ") must divide the image size (" + std::to_string(image_size) + ")";
  }
  return "";
}

// What an unset spec field means. ResolveSpec (common/spec_resolution.h)
// writes these into every spec the coordinator stores; the engine's
// RunConfig starts from them too.
namespace defaults {
inline constexpr std::string_view kDataset = "fashion-mnist";
inline constexpr int kLoaderThreads = 2;
inline constexpr int kMlpRatio = 4;
inline constexpr std::string_view kStudentArch = "resnet18";
inline constexpr int kStudentWidth = 64;  // torchvision's ResNets.
inline constexpr double kTemperature = 4;
// Decoupled KD's weights (Zhao et al. 2022's CIFAR-100 setting).
inline constexpr double kDkdAlpha = 1;
inline constexpr double kDkdBeta = 8;
inline constexpr double kSgdLr = 0.1;
inline constexpr double kAdamWLr = 1e-3;
inline constexpr int kEpochs = 1;
inline constexpr int kBatchSize = 128;
inline constexpr int kMetricsEverySteps = 10;
inline constexpr int kMaxRestarts = 2;
inline constexpr int kTsnePoints = 1000;
inline constexpr int kMaxTsnePoints = 2000;
inline constexpr int kKnnBank = 5000;
}  // namespace defaults

// The most a spec may ask for. Each bounds work or memory a worker or the
// coordinator would spend on a stranger's request; every one is far above
// what the paper's recipes use (ViT-B/16 at 224 px, ResNet-50, batch 256).
namespace limits {
inline constexpr int kImageSize = 1024;
inline constexpr int kVitWidth = 4096;
inline constexpr int kVitDepth = 48;
inline constexpr int kVitHeads = 64;
inline constexpr int kVitMlpRatio = 8;
inline constexpr int kVitTokens = 4096;  // (image_size / patch_size)^2.
inline constexpr int kStudentWidth = 512;
inline constexpr int kEmbeddingDim = 8192;
inline constexpr int kBatchSize = 4096;
inline constexpr int kEpochs = 10000;
inline constexpr int kLoaderThreads = 64;
inline constexpr int kMetricsEverySteps = 1'000'000;
inline constexpr int kMaxRestarts = 100;
inline constexpr int kKnnBank = 100'000;
inline constexpr double kLossWeight = 1e6;
inline constexpr double kTemperature = 1000;
inline constexpr double kLr = 10;
inline constexpr double kWeightDecay = 1;
inline constexpr size_t kNameBytes = 256;   // Run, sweep and member names.
inline constexpr size_t kPathBytes = 4096;  // Paths on a worker.
inline constexpr int kSweepMembers = 1000;
// Grid axes, random axes, and choices of one random axis.
inline constexpr int kSweepAxes = 32;
inline constexpr int kSweepChoices = 1000;
// A sweep's priority is in [-kSweepPriority, kSweepPriority].
inline constexpr int kSweepPriority = 1000;
// What the coordinator keeps of a worker's failure message.
inline constexpr size_t kMessageBytes = 4096;
// Metric points: a key's length, points in one report.
inline constexpr size_t kMetricKeyBytes = 128;
inline constexpr int kMetricPointsPerReport = 100'000;
inline constexpr int kResults = 1000;  // Final values of one run.
}  // namespace limits

}  // namespace distill

#endif  // DISTILL_COMMON_CATALOG_H_
