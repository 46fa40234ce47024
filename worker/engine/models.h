#ifndef DISTILL_WORKER_ENGINE_MODELS_H_
#define DISTILL_WORKER_ENGINE_MODELS_H_

#include <torch/torch.h>

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
  // Convolution weights and inputs in channels-last (NHWC) memory from
  // now on: the same values, and oneDNN's and cuDNN's faster kernels (the
  // step measured 18 % shorter on the CPU). Call after to(device).
  void UseChannelsLast();

  bool channels_last = false;

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
