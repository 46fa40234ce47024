#include "worker/engine/weights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace distill::engine {
namespace {

std::string Shape(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ", "), "]");
}

}  // namespace

absl::StatusOr<std::map<std::string, torch::Tensor>> ReadStateDict(
    const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat("cannot open weights file ", path));
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)),
                          std::istreambuf_iterator<char>());
  std::map<std::string, torch::Tensor> out;
  try {
    torch::IValue value = torch::pickle_load(bytes);
    if (!value.isGenericDict()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path,
                       " does not hold a dict of tensors (write it with "
                       "tools/export_weights.py)"));
    }
    for (const auto& entry : value.toGenericDict()) {
      if (!entry.key().isString() || !entry.value().isTensor()) {
        return absl::InvalidArgumentError(
            absl::StrCat(path, " holds an entry that is not name -> tensor"));
      }
      out[entry.key().toStringRef()] = entry.value().toTensor();
    }
  } catch (const c10::Error& e) {
    return absl::DataLossError(absl::StrCat("cannot read weights file ", path,
                                            ": ", e.what_without_backtrace()));
  }
  return out;
}

absl::Status LoadWeightsByName(
    torch::nn::Module& model, const std::string& path,
    const std::vector<std::string>& optional_prefixes) {
  absl::StatusOr<std::map<std::string, torch::Tensor>> file =
      ReadStateDict(path);
  if (!file.ok()) return file.status();
  return CopyWeightsByName(model, *file, absl::StrCat("weights file ", path),
                           optional_prefixes);
}

std::map<std::string, torch::Tensor> NamedWeights(torch::nn::Module& model) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : model.named_parameters()) out[p.key()] = p.value();
  for (const auto& b : model.named_buffers()) out[b.key()] = b.value();
  return out;
}

absl::Status CopyWeightsByName(
    torch::nn::Module& model, const std::map<std::string, torch::Tensor>& from,
    const std::string& what,
    const std::vector<std::string>& optional_prefixes) {
  auto optional = [&](const std::string& name) {
    for (const std::string& p : optional_prefixes) {
      if (absl::StartsWith(name, p)) return true;
    }
    return false;
  };
  // Check everything first, so a bad file changes nothing.
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  auto plan = [&](const std::string& name,
                  const torch::Tensor& target) -> absl::Status {
    auto it = from.find(name);
    if (it == from.end()) {
      if (optional(name)) return absl::OkStatus();
      return absl::NotFoundError(
          absl::StrCat(what, " has no parameter ", name));
    }
    if (!it->second.sizes().equals(target.sizes())) {
      if (optional(name)) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("parameter ", name, " has shape ", Shape(it->second),
                       " in ", what, " but ", Shape(target), " in the model"));
    }
    copies.emplace_back(target, it->second);
    return absl::OkStatus();
  };
  for (const auto& p : model.named_parameters()) {
    if (absl::Status s = plan(p.key(), p.value()); !s.ok()) return s;
  }
  for (const auto& b : model.named_buffers()) {
    if (absl::Status s = plan(b.key(), b.value()); !s.ok()) return s;
  }
  torch::NoGradGuard no_grad;
  for (auto& [target, source] : copies)
    target.copy_(source.to(target.device(), target.dtype()));
  return absl::OkStatus();
}

namespace {

constexpr char kStudentConfigKey[] = "distill_student_config";

}  // namespace

absl::Status SaveStudent(ResNetStudent& student, const std::string& path) {
  const StudentConfig& c = student->config;
  int64_t arch = 0;  // The row of kResNets.
  while (arch < int64_t(kResNets.size()) && c.arch != kResNets[arch].arch)
    ++arch;
  try {
    torch::serialize::OutputArchive archive;
    student->save(archive);
    archive.write(
        kStudentConfigKey,
        torch::tensor({arch, int64_t(c.stem), c.in_channels, c.num_classes,
                       c.width, c.embedding_dim, c.teacher_width}));
    archive.save_to(path);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(absl::StrCat(
        "cannot write the student checkpoint ", path, ": ", e.what()));
  }
}

absl::StatusOr<ResNetStudent> LoadStudent(const std::string& path,
                                          const torch::Device& device,
                                          int64_t image_side) {
  try {
    torch::serialize::InputArchive archive;
    archive.load_from(path);
    torch::Tensor c;
    if (!archive.try_read(kStudentConfigKey, c) || c.numel() != 7 ||
        c[0].item<int64_t>() < 0 ||
        c[0].item<int64_t>() >= int64_t(kResNets.size())) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is not a student checkpoint"));
    }
    auto v = c.accessor<int64_t, 1>();
    StudentConfig config;
    config.arch = kResNets[v[0]].arch;
    config.stem = Stem(v[1]);
    config.in_channels = v[2];
    config.num_classes = v[3];
    config.width = v[4];
    config.embedding_dim = v[5];
    config.teacher_width = v[6];
    ResNetStudent student(config);
    student->load(archive);
    student->to(device);
    student->UseChannelsLast(image_side);
    student->eval();
    return student;
  } catch (const c10::Error& e) {
    return absl::DataLossError(
        absl::StrCat("cannot load the student checkpoint ", path, ": ",
                     e.what_without_backtrace()));
  }
}

absl::Status SaveResumePoint(const std::string& path, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer,
                             const ResumePoint& point) {
  const std::string temp = absl::StrCat(path, ".tmp");
  try {
    torch::serialize::OutputArchive archive, model_archive, optimizer_archive;
    model.save(model_archive);
    optimizer.save(optimizer_archive);
    archive.write("model", model_archive);
    archive.write("optimizer", optimizer_archive);
    archive.write("point", torch::tensor({point.epoch, point.steps_per_epoch,
                                          point.steps_into_epoch}));
    archive.write("cpu_rng", at::detail::getDefaultCPUGenerator().get_state());
    archive.save_to(temp);
    std::filesystem::rename(temp, path);
    return absl::OkStatus();
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("cannot write the resume point ", path, ": ", e.what()));
  }
}

absl::StatusOr<ResumePoint> LoadResumePoint(const std::string& path,
                                            torch::nn::Module& model,
                                            torch::optim::Optimizer& optimizer,
                                            int64_t steps_per_epoch,
                                            const torch::Device& device) {
  torch::serialize::InputArchive archive, model_archive, optimizer_archive;
  torch::Tensor point, rng;
  try {
    archive.load_from(path, device);
    // Points written before drains stopped mid-epoch hold two numbers.
    if (!archive.try_read("point", point) ||
        (point.numel() != 2 && point.numel() != 3) ||
        !archive.try_read("cpu_rng", rng) ||
        !archive.try_read("model", model_archive) ||
        !archive.try_read("optimizer", optimizer_archive)) {
      return absl::DataLossError(
          absl::StrCat(path, " is not a resume point of this system"));
    }
  } catch (const std::exception& e) {
    return absl::DataLossError(
        absl::StrCat("cannot read the resume point ", path, ": ", e.what()));
  }
  point = point.to(torch::kCPU);
  ResumePoint out{point[0].item<int64_t>(), point[1].item<int64_t>(),
                  point.numel() == 3 ? point[2].item<int64_t>() : 0};
  // All the steps of an epoch in: its evaluation is to do.
  if (out.steps_into_epoch < 0 || out.steps_into_epoch > steps_per_epoch) {
    return absl::DataLossError(
        absl::StrCat("the resume point ", path, " is ", out.steps_into_epoch,
                     " steps into an epoch of ", steps_per_epoch));
  }
  if (out.steps_per_epoch != steps_per_epoch) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the resume point ", path, " was written at ", out.steps_per_epoch,
        " steps per epoch; this run has ", steps_per_epoch));
  }
  try {
    model.load(model_archive);
    optimizer.load(optimizer_archive);
  } catch (const std::exception& e) {
    return absl::FailedPreconditionError(
        absl::StrCat("the resume point ", path,
                     " does not fit this run's model: ", e.what()));
  }
  at::Generator generator = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(generator.mutex());
  generator.set_state(rng.to(torch::kCPU));
  return out;
}

}  // namespace distill::engine
