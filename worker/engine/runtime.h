// Process-wide settings for training with LibTorch on the CPU or a GPU.
#ifndef DISTILL_WORKER_ENGINE_RUNTIME_H_
#define DISTILL_WORKER_ENGINE_RUNTIME_H_

#include <torch/torch.h>

#include <istream>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace distill::engine {

// Sets LibTorch's intra-op thread count (when `threads` > 0) and makes
// freed tensor memory stay in the process.
//
// LibTorch's CPU allocator hands each tensor to malloc. glibc serves a large
// block with mmap and returns it to the kernel when it is freed, so every
// training step page-faults its activations in afresh: ~75,000 faults a
// step for ResNet-18 at batch 128 x 28 x 28, ~250,000 at batch 32 x 224 x
// 224. Serving every block from the heap and never trimming it keeps those
// pages mapped for the next step; the process holds its peak memory, as
// PyTorch's CUDA caching allocator does on a GPU. Call it once, before the
// first tensor, from the process's main thread.
void ConfigureRuntime(int threads);

// Drops every gradient of `optimizer`'s parameters, so that the next
// backward() writes fresh gradient tensors instead of adding into zeroed
// ones (PyTorch's `zero_grad(set_to_none=True)`). The optimizers skip
// parameters without a gradient.
void ClearGradients(torch::optim::Optimizer& optimizer);

// Sets what a run on `device` wants process-wide: on CUDA, cuDNN's
// autotuning (each convolution shape tries the algorithms once and keeps
// the fastest; the shapes of a run do not change).
void ConfigureDevice(const torch::Device& device);

// `t` on `device`; from the CPU to a GPU through pinned memory with a
// copy that does not wait (the next kernels queue behind it).
torch::Tensor ToDevice(const torch::Tensor& t, const torch::Device& device);

// `t` kept on `device` for a whole run where it fits in `max_bytes` (the
// frozen teacher's outputs, the labels: each step then gathers its batch
// there); otherwise left where it is.
torch::Tensor KeepOnDevice(const torch::Tensor& t, const torch::Device& device,
                           int64_t max_bytes = int64_t{2} << 30);

// Which BLAS library this process loaded, read from /proc/self/maps
// (e.g. ".../openblas-openmp/libblas.so.3"); "unknown" when none is found.
std::string LoadedBlas();
// The same, read from `maps` (as /proc/PID/maps lists a process's files).
std::string BlasInMaps(std::istream& maps);

// The CPU kernels this process runs: LibTorch's (its ATEN_CPU_CAPABILITY
// when set, else "auto": the best the CPU has) and OpenBLAS's core type
// where OpenBLAS is loaded ("ATen auto, OpenBLAS Zen"). Two machines whose
// kernels differ round differently (tests/kernel_matrix.sh).
std::string CpuKernels();

// Mixed precision: within an AutocastScope the operations autocast lists
// (convolutions, matrix products, linear layers) run in bf16 or fp16, the
// rest in fp32; weights, gradients and optimizer state stay fp32.
enum class Precision { kFp32, kBf16, kFp16 };

// A run's precision from its spec's name for it on `device`: "auto" (bf16
// on CUDA, fp32 elsewhere), "fp32", "bf16", "fp16" (CUDA only, with loss
// scaling). InvalidArgument names any other value.
absl::StatusOr<Precision> ResolvePrecision(std::string_view name,
                                           const torch::Device& device);
std::string_view PrecisionName(Precision precision);

// Autocast on `device`'s type in `precision` while it lives (nothing for
// kFp32); nests, and restores what was on before.
class AutocastScope {
 public:
  AutocastScope(const torch::Device& device, Precision precision);
  ~AutocastScope();
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_ = false;
  torch::DeviceType type_ = torch::kCPU;
  bool was_enabled_ = false;
  torch::ScalarType was_dtype_ = torch::kFloat;
};

// Autocast off while it lives: the losses run in fp32 on upcast inputs.
class AutocastOff {
 public:
  explicit AutocastOff(const torch::Device& device);
  ~AutocastOff();
  AutocastOff(const AutocastOff&) = delete;
  AutocastOff& operator=(const AutocastOff&) = delete;

 private:
  torch::DeviceType type_;
  bool was_enabled_;
};

// fp16's dynamic loss scaling (PyTorch's GradScaler): the loss is
// multiplied by scale() before backward; Step() unscales the gradients and
// steps the optimizer only when they are all finite, halving the scale when
// they are not and doubling it after `growth_interval` good steps in a row.
class LossScaler {
 public:
  explicit LossScaler(bool enabled, double initial_scale = 65536.0,
                      int growth_interval = 2000)
      : enabled_(enabled),
        scale_(initial_scale),
        growth_interval_(growth_interval) {}
  torch::Tensor Scale(const torch::Tensor& loss) const {
    return enabled_ ? loss * scale_ : loss;
  }
  // Returns whether the optimizer stepped.
  bool Step(torch::optim::Optimizer& optimizer);
  double scale() const { return scale_; }

 private:
  bool enabled_;
  double scale_;
  int growth_interval_;
  int good_steps_ = 0;
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_RUNTIME_H_
