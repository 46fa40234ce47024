// Process-wide settings for training with LibTorch on the CPU or a GPU.
#ifndef DISTILL_WORKER_ENGINE_RUNTIME_H_
#define DISTILL_WORKER_ENGINE_RUNTIME_H_

#include <torch/torch.h>

#include <string>

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

// Which BLAS library this process loaded, read from /proc/self/maps
// (e.g. ".../openblas-openmp/libblas.so.3"); "unknown" when none is found.
std::string LoadedBlas();

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_RUNTIME_H_
