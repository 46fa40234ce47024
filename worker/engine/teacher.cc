#include "worker/engine/teacher.h"

#include <fstream>
#include <iterator>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "worker/engine/datasets.h"

namespace distill::engine {
namespace {

constexpr char kVitConfigKey[] = "distill_vit_config";
constexpr char kTorchScriptKey[] = "distill_torchscript";

std::string Shape(torch::IntArrayRef sizes) {
  return absl::StrCat("[", absl::StrJoin(sizes, ", "), "]");
}

class VitTeacher final : public Teacher {
 public:
  explicit VitTeacher(Vit vit) : vit_(std::move(vit)) {
    vit_->eval();
    for (auto& p : vit_->parameters()) p.set_requires_grad(false);
  }

  absl::StatusOr<LogitsAndEmbedding> Forward(
      const torch::Tensor& images) override {
    const VitConfig& c = vit_->config;
    if (images.dim() != 4 || images.size(1) != c.in_channels ||
        images.size(2) != c.image_size || images.size(3) != c.image_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the teacher takes N x ", c.in_channels, " x ", c.image_size, " x ",
          c.image_size, " images, got ", Shape(images.sizes())));
    }
    torch::NoGradGuard no_grad;
    return vit_->forward(images);
  }

  std::string Describe() const override {
    const VitConfig& c = vit_->config;
    return absl::StrCat("native ViT (patch ", c.patch_size, ", width ", c.width,
                        ", depth ", c.depth, ", heads ", c.heads, ")");
  }

 private:
  Vit vit_;
};

// A TorchScript module, optionally with a head that replaces its logits.
class ScriptTeacher final : public Teacher {
 public:
  ScriptTeacher(torch::jit::Module module, std::string name,
                torch::Device device)
      : module_(std::move(module)), name_(std::move(name)) {
    module_.eval();
    for (auto p : module_.parameters()) p.set_requires_grad(false);
    if (module_.hasattr("input_shape")) {
      torch::Tensor shape =
          module_.attr("input_shape").toTensor().to(torch::kCPU);
      for (int64_t i = 0; i < shape.numel(); ++i)
        input_shape_.push_back(shape[i].item<int64_t>());
    }
    device_ = device;
  }

  void SetHead(torch::nn::Linear head) {
    head_ = std::move(head);
    head_->to(device_);
    head_->eval();
    for (auto& p : head_->parameters()) p.set_requires_grad(false);
  }

  absl::StatusOr<LogitsAndEmbedding> Forward(
      const torch::Tensor& images) override {
    if (!input_shape_.empty() &&
        images.sizes().slice(1) != torch::IntArrayRef(input_shape_)) {
      return absl::InvalidArgumentError(
          absl::StrCat("TorchScript teacher ", name_, " takes N x ",
                       absl::StrJoin(input_shape_, " x "), " images, got ",
                       Shape(images.sizes())));
    }
    torch::NoGradGuard no_grad;
    torch::IValue out = module_.forward({images});
    if (!out.isTuple() || out.toTuple()->elements().size() != 2 ||
        !out.toTuple()->elements()[0].isTensor() ||
        !out.toTuple()->elements()[1].isTensor()) {
      return absl::InvalidArgumentError(
          absl::StrCat("TorchScript teacher ", name_,
                       ": forward(images) must return (logits, embedding)"));
    }
    torch::Tensor logits = out.toTuple()->elements()[0].toTensor();
    torch::Tensor embedding = out.toTuple()->elements()[1].toTensor();
    if (head_) logits = head_(embedding);
    return LogitsAndEmbedding{logits, embedding};
  }

  std::string Describe() const override {
    return absl::StrCat("TorchScript ", name_,
                        head_ ? " with a fitted linear head" : "");
  }

 private:
  torch::jit::Module module_;
  std::string name_;
  torch::Device device_ = torch::kCPU;
  std::vector<int64_t> input_shape_;
  torch::nn::Linear head_{nullptr};
};

torch::Tensor ConfigTensor(const VitConfig& c) {
  return torch::tensor({c.image_size, c.in_channels, c.num_classes,
                        c.patch_size, c.width, c.depth, c.heads, c.mlp_ratio},
                       torch::kInt64);
}

}  // namespace

std::unique_ptr<Teacher> NativeTeacher(Vit vit) {
  return std::make_unique<VitTeacher>(std::move(vit));
}

absl::StatusOr<std::unique_ptr<Teacher>> LoadTorchScriptTeacher(
    const std::string& path, const torch::Device& device) {
  try {
    return std::make_unique<ScriptTeacher>(torch::jit::load(path, device), path,
                                           device);
  } catch (const c10::Error& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot load TorchScript teacher ", path, ": ",
                     e.what_without_backtrace()));
  }
}

absl::Status SaveVitTeacher(Vit& teacher, const std::string& path) {
  try {
    torch::serialize::OutputArchive archive;
    teacher->save(archive);
    archive.write(kVitConfigKey, ConfigTensor(teacher->config));
    archive.save_to(path);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "cannot write the teacher checkpoint ", path, ": ", e.what()));
  }
}

absl::StatusOr<Vit> LoadVitTeacher(const std::string& path,
                                   const torch::Device& device) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor c;
    if (!archive.try_read(kVitConfigKey, c) || c.numel() != 8) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a native ViT checkpoint"));
    }
    auto v = c.accessor<int64_t, 1>();
    Vit teacher(VitConfig{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]});
    teacher->load(archive);
    teacher->to(device);
    teacher->eval();
    return teacher;
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load the teacher checkpoint ", path, ": ",
                     e.what_without_backtrace()));
  }
}

absl::Status SaveLinearHeadTeacher(const std::string& torchscript_path,
                                   torch::nn::Linear& head,
                                   const std::string& path) {
  absl::StatusOr<std::string> bytes = ReadFile(torchscript_path);
  if (!bytes.ok()) return bytes.status();
  try {
    torch::serialize::OutputArchive archive;
    torch::serialize::OutputArchive head_archive;
    head->save(head_archive);
    archive.write("head", head_archive);
    archive.write(
        kTorchScriptKey,
        torch::from_blob(bytes->data(), {int64_t(bytes->size())}, torch::kUInt8)
            .clone());
    archive.write("distill_head_shape",
                  torch::tensor({head->options.in_features(),
                                 head->options.out_features()}));
    archive.save_to(path);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "cannot write the teacher checkpoint ", path, ": ", e.what()));
  }
}

absl::StatusOr<std::unique_ptr<Teacher>> LoadTeacherCheckpoint(
    const std::string& path, const torch::Device& device) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor script;
    if (!archive.try_read(kTorchScriptKey, script)) {
      absl::StatusOr<Vit> vit = LoadVitTeacher(path, device);
      if (!vit.ok()) return vit.status();
      return NativeTeacher(*std::move(vit));
    }
    torch::Tensor shape;
    archive.read("distill_head_shape", shape);
    torch::nn::Linear head(shape[0].item<int64_t>(), shape[1].item<int64_t>());
    torch::serialize::InputArchive head_archive;
    archive.read("head", head_archive);
    head->load(head_archive);
    std::istringstream stream(std::string(
        static_cast<const char*>(script.data_ptr()), size_t(script.numel())));
    auto teacher = std::make_unique<ScriptTeacher>(
        torch::jit::load(stream, device), path + " (embedded TorchScript)",
        device);
    teacher->SetHead(head);
    return teacher;
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load the teacher checkpoint ", path, ": ",
                     e.what_without_backtrace()));
  }
}

}  // namespace distill::engine
