#include "worker/engine/runtime.h"

#include <ATen/autocast_mode.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <cstdlib>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace distill::engine {

void ConfigureRuntime(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
#ifdef __GLIBC__
  // No block is served by mmap (a fixed threshold also stops glibc from
  // moving it), and the heap's free top is never given back.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void ConfigureDevice(const torch::Device& device) {
  if (device.is_cuda()) at::globalContext().setBenchmarkCuDNN(true);
}

torch::Tensor ToDevice(const torch::Tensor& t, const torch::Device& device) {
  if (!t.defined() || t.device() == device) return t;
  if (device.is_cuda() && t.is_cpu()) {
    return t.pin_memory().to(device, /*non_blocking=*/true);
  }
  return t.to(device);
}

torch::Tensor KeepOnDevice(const torch::Tensor& t, const torch::Device& device,
                           int64_t max_bytes) {
  if (!t.defined() || t.device() == device) return t;
  if (int64_t(t.numel() * t.element_size()) > max_bytes) return t;
  return t.to(device);
}

void ClearGradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& parameter : group.params()) {
      if (parameter.mutable_grad().defined()) parameter.mutable_grad().reset();
    }
  }
}

std::string LoadedBlas() {
  std::ifstream maps("/proc/self/maps");
  return BlasInMaps(maps);
}

std::string BlasInMaps(std::istream& maps) {
  std::string line;
  while (std::getline(maps, line)) {
    for (const char* name : {"openblas", "libmkl", "blis", "libblas.so"}) {
      if (absl::StrContains(line, name))
        return line.substr(line.rfind(' ') + 1);
    }
  }
  return "unknown";
}

std::string CpuKernels() {
  const char* aten = std::getenv("ATEN_CPU_CAPABILITY");
  std::string kernels =
      absl::StrCat("ATen ", aten != nullptr && *aten != '\0' ? aten : "auto");
  // OpenBLAS names the core type its dynamic dispatch chose.
  using CoreName = char* (*)();
  if (auto core = reinterpret_cast<CoreName>(
          ::dlsym(RTLD_DEFAULT, "openblas_get_corename"));
      core != nullptr) {
    absl::StrAppend(&kernels, ", OpenBLAS ", core());
  }
  return kernels;
}

namespace {

// LibTorch 2.4 made autocast's switches per device type; 1.13 (Debian) has
// one for CUDA and one for the CPU.
#if TORCH_VERSION_MAJOR > 2 || \
    (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
bool AutocastEnabled(torch::DeviceType type) {
  return at::autocast::is_autocast_enabled(type);
}
void SetAutocastEnabled(torch::DeviceType type, bool on) {
  at::autocast::set_autocast_enabled(type, on);
}
torch::ScalarType AutocastDtype(torch::DeviceType type) {
  return at::autocast::get_autocast_dtype(type);
}
void SetAutocastDtype(torch::DeviceType type, torch::ScalarType dtype) {
  at::autocast::set_autocast_dtype(type, dtype);
}
#else
bool AutocastEnabled(torch::DeviceType type) {
  return type == torch::kCUDA ? at::autocast::is_enabled()
                              : at::autocast::is_cpu_enabled();
}
void SetAutocastEnabled(torch::DeviceType type, bool on) {
  if (type == torch::kCUDA) {
    at::autocast::set_enabled(on);
  } else {
    at::autocast::set_cpu_enabled(on);
  }
}
torch::ScalarType AutocastDtype(torch::DeviceType type) {
  return type == torch::kCUDA ? at::autocast::get_autocast_gpu_dtype()
                              : at::autocast::get_autocast_cpu_dtype();
}
void SetAutocastDtype(torch::DeviceType type, torch::ScalarType dtype) {
  if (type == torch::kCUDA) {
    at::autocast::set_autocast_gpu_dtype(dtype);
  } else {
    at::autocast::set_autocast_cpu_dtype(dtype);
  }
}
#endif

}  // namespace

absl::StatusOr<Precision> ResolvePrecision(std::string_view name,
                                           const torch::Device& device) {
  const bool cuda = device.is_cuda();
  if (name.empty() || name == "auto")
    return cuda ? Precision::kBf16 : Precision::kFp32;
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "fp16") {
    if (!cuda) {
      return absl::InvalidArgumentError(
          absl::StrCat("precision fp16 needs a CUDA device, not ", device.str(),
                       " (bf16 or fp32 on the CPU)"));
    }
    return Precision::kFp16;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown precision \"", std::string(name),
                   "\" (auto, fp32, bf16 or fp16)"));
}

std::string_view PrecisionName(Precision precision) {
  switch (precision) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kFp16:
      return "fp16";
    default:
      return "fp32";
  }
}

AutocastScope::AutocastScope(const torch::Device& device, Precision precision)
    : active_(precision != Precision::kFp32), type_(device.type()) {
  if (!active_) return;
  was_enabled_ = AutocastEnabled(type_);
  was_dtype_ = AutocastDtype(type_);
  SetAutocastEnabled(type_, true);
  SetAutocastDtype(
      type_, precision == Precision::kBf16 ? torch::kBFloat16 : torch::kHalf);
  at::autocast::increment_nesting();
}

AutocastScope::~AutocastScope() {
  if (!active_) return;
  // The weights' casts are cached within the outermost scope only.
  if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
  SetAutocastEnabled(type_, was_enabled_);
  SetAutocastDtype(type_, was_dtype_);
}

AutocastOff::AutocastOff(const torch::Device& device)
    : type_(device.type()), was_enabled_(AutocastEnabled(type_)) {
  if (was_enabled_) SetAutocastEnabled(type_, false);
}

AutocastOff::~AutocastOff() {
  if (was_enabled_) SetAutocastEnabled(type_, true);
}

bool LossScaler::Step(torch::optim::Optimizer& optimizer) {
  if (!enabled_) {
    optimizer.step();
    return true;
  }
  std::vector<torch::Tensor> grads;
  for (auto& group : optimizer.param_groups()) {
    for (auto& parameter : group.params()) {
      if (parameter.grad().defined()) grads.push_back(parameter.grad());
    }
  }
  bool finite = true;
  {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> sums;
    for (torch::Tensor& grad : grads) {
      grad.mul_(1.0 / scale_);
      sums.push_back(grad.sum());
    }
    // One look for all of them: a single device-to-host copy.
    if (!sums.empty())
      finite = torch::stack(sums).isfinite().all().item<bool>();
  }
  if (!finite) {
    scale_ /= 2;
    good_steps_ = 0;
    return false;
  }
  optimizer.step();
  if (++good_steps_ == growth_interval_) {
    scale_ *= 2;
    good_steps_ = 0;
  }
  return true;
}

}  // namespace distill::engine
