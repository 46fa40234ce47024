#ifndef DISTILL_WORKER_ENGINE_MODELS_H_
#define DISTILL_WORKER_ENGINE_MODELS_H_

#include <torch/torch.h>

#include <array>
#include <utility>

#include "worker/engine/run_config.h"

namespace distill::engine {

// Both models return (logits, embedding).
using LogitsAndEmbedding = std::pair<torch::Tensor, torch::Tensor>;

// Pre-norm transformer block: x + MSA(LN(x)), then x + MLP(LN(x)).
struct VitBlockImpl : torch::nn::Module {
  VitBlockImpl(int64_t width, int64_t heads, int64_t mlp_hidden);
  torch::Tensor forward(torch::Tensor x);

  int64_t heads;
  torch::nn::LayerNorm norm1, norm2;
  torch::nn::Linear qkv, proj, fc1, fc2;
};
TORCH_MODULE(VitBlock);

// Vision transformer: patch embedding, CLS token, learned positions,
// `depth` blocks, final norm. The embedding is the CLS token's final state.
struct VitImpl : torch::nn::Module {
  explicit VitImpl(const VitConfig& config);
  LogitsAndEmbedding forward(torch::Tensor images);

  VitConfig config;
  torch::nn::Conv2d patch_embed;
  torch::Tensor cls_token, pos_embed;
  torch::nn::ModuleList blocks;
  torch::nn::LayerNorm norm;
  torch::nn::Linear head;
};
TORCH_MODULE(Vit);

// torchvision's BasicBlock, with its parameter names.
struct BasicBlockImpl : torch::nn::Module {
  BasicBlockImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv2d conv1, conv2;
  torch::nn::BatchNorm2d bn1, bn2;
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(BasicBlock);

// torchvision's Bottleneck (ResNet-50), with its parameter names.
struct BottleneckImpl : torch::nn::Module {
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t in_planes, int64_t planes, int64_t stride);
  torch::Tensor forward(torch::Tensor x);

  torch::nn::Conv2d conv1, conv2, conv3;
  torch::nn::BatchNorm2d bn1, bn2, bn3;
  torch::nn::Sequential downsample{nullptr};
};
TORCH_MODULE(Bottleneck);

// Whether a 3x3 convolution of `channels` channels on maps of side `side`
// runs faster in channels-last (NHWC) memory than in NCHW on `device`. On
// CUDA always (cuDNN's tensor-core kernels take NHWC). On the CPU unless
// channels >= 128 * side: oneDNN 2.6's NHWC kernels lose to its blocked
// NCHW ones when the maps are small for their width (bench/conv_formats.py,
// forward and both backward products, batch 128, 2 threads: 512 channels
// on 4 x 4 maps 411 GFLOP/s in NCHW against 324 in NHWC, 256 on 4 x 4 406
// against 459, 512 on 7 x 7 422 against 472; the rule picks the faster
// format on 14 or 15 of the 15 shapes measured there, the odd one a
// near-tie that flips between runs: 64 channels on 2 x 2).
bool PrefersChannelsLast(const torch::Device& device, int64_t channels,
                         int64_t side);

// oneDNN (LibTorch 1.13's and 2.11's) computes the weight gradient of a 1 x 1
// stride-2 convolution over 2 to 6 channels-last input channels past the end
// of its buffer when it runs on one thread (valgrind: an 8-byte write after
// a 4,224-byte block; glibc aborts "double free or corruption" in a later
// free), as a width-4 student's first downsample does. Students this narrow
// stay NCHW on the CPU, where that kernel is correct.
inline constexpr int64_t kMinChannelsLastWidth = 8;

// ResNet-18/34/50 (common/catalog.h's kResNets) with torchvision's layer layout
// and parameter names, and either the small-image stem or the 224-px ImageNet
// stem. `embedding` (an optional linear bottleneck) and `projection` (the
// learned g that maps the embedding to the teacher's width for the losses that
// compare embeddings directly) are the student's own additions.
struct ResNetStudentImpl : torch::nn::Module {
  explicit ResNetStudentImpl(const StudentConfig& config);
  LogitsAndEmbedding forward(torch::Tensor images);
  // g(f): REQUIRES config.teacher_width > 0.
  torch::Tensor Project(const torch::Tensor& embedding);
  // Convolution weights and inputs from now on in the memory format each
  // part (the stem, then each stage) runs fastest in on the model's device
  // for images of side `image_side` (PrefersChannelsLast): the same values,
  // faster kernels. Channels-last made the step 18 % shorter on the CPU;
  // width 64's last stage (512 channels, 4 x 4 maps at 28 px) back in NCHW
  // 6 % more. Call after to(device). On the CPU a student narrower than
  // kMinChannelsLastWidth stays NCHW all through (see there).
  void UseChannelsLast(int64_t image_side);

  // The memory format of the stem's and each stage's weights and inputs;
  // NCHW all through until UseChannelsLast.
  std::array<torch::MemoryFormat, 5> formats{
      torch::MemoryFormat::Contiguous, torch::MemoryFormat::Contiguous,
      torch::MemoryFormat::Contiguous, torch::MemoryFormat::Contiguous,
      torch::MemoryFormat::Contiguous};

  StudentConfig config;
  torch::nn::Conv2d conv1;
  torch::nn::BatchNorm2d bn1;
  torch::nn::Sequential layer1, layer2, layer3, layer4;
  torch::nn::Linear embedding{nullptr};
  torch::nn::Linear fc{nullptr};
  torch::nn::Linear projection{nullptr};
};
TORCH_MODULE(ResNetStudent);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_MODELS_H_
