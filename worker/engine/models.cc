#include "worker/engine/models.h"

#include <cmath>

namespace distill::engine {
namespace F = torch::nn::functional;

VitBlockImpl::VitBlockImpl(int64_t width, int64_t heads, int64_t mlp_hidden)
    : heads(heads),
      norm1(torch::nn::LayerNormOptions({width}).eps(1e-6)),
      norm2(torch::nn::LayerNormOptions({width}).eps(1e-6)),
      qkv(width, 3 * width),
      proj(width, width),
      fc1(width, mlp_hidden),
      fc2(mlp_hidden, width) {
  register_module("norm1", norm1);
  register_module("qkv", qkv);
  register_module("proj", proj);
  register_module("norm2", norm2);
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

torch::Tensor VitBlockImpl::forward(torch::Tensor x) {
  const int64_t b = x.size(0), t = x.size(1), w = x.size(2);
  const int64_t d = w / heads;
  // (3, B, heads, T, d)
  torch::Tensor qkv_out =
      qkv(norm1(x)).reshape({b, t, 3, heads, d}).permute({2, 0, 3, 1, 4});
  torch::Tensor q = qkv_out[0], k = qkv_out[1], v = qkv_out[2];
  torch::Tensor attention = torch::softmax(
      torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(d)), -1);
  torch::Tensor mixed =
      torch::matmul(attention, v).transpose(1, 2).reshape({b, t, w});
  x = x + proj(mixed);
  return x + fc2(F::gelu(fc1(norm2(x))));
}

VitImpl::VitImpl(const VitConfig& config)
    : config(config),
      patch_embed(torch::nn::Conv2dOptions(config.in_channels, config.width,
                                           config.patch_size)
                      .stride(config.patch_size)),
      norm(torch::nn::LayerNormOptions({config.width}).eps(1e-6)),
      head(config.width, config.num_classes) {
  const int64_t grid = config.image_size / config.patch_size;
  register_module("patch_embed", patch_embed);
  cls_token = register_parameter("cls_token",
                                 torch::randn({1, 1, config.width}) * 0.02);
  pos_embed = register_parameter(
      "pos_embed", torch::randn({1, grid * grid + 1, config.width}) * 0.02);
  const int64_t mlp_ratio = config.mlp_ratio > 0 ? config.mlp_ratio : 4;
  for (int64_t i = 0; i < config.depth; ++i) {
    blocks->push_back(
        VitBlock(config.width, config.heads, config.width * mlp_ratio));
  }
  register_module("blocks", blocks);
  register_module("norm", norm);
  register_module("head", head);
}

LogitsAndEmbedding VitImpl::forward(torch::Tensor images) {
  torch::Tensor x = patch_embed(images).flatten(2).transpose(1, 2);  // B,T,W
  x = torch::cat({cls_token.expand({x.size(0), 1, config.width}), x}, 1);
  x = x + pos_embed;
  for (const auto& block : *blocks) x = block->as<VitBlock>()->forward(x);
  torch::Tensor embedding = norm(x).select(1, 0);
  return {head(embedding), embedding};
}

namespace {

torch::nn::Conv2d Conv3x3(int64_t in, int64_t out, int64_t stride) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3)
                               .stride(stride)
                               .padding(1)
                               .bias(false));
}

torch::nn::Sequential MakeLayer(int64_t& in_planes, int64_t planes,
                                int64_t blocks, int64_t stride) {
  torch::nn::Sequential layer;
  layer->push_back(BasicBlock(in_planes, planes, stride));
  in_planes = planes;
  for (int64_t i = 1; i < blocks; ++i) {
    layer->push_back(BasicBlock(in_planes, planes, 1));
  }
  return layer;
}

}  // namespace

BasicBlockImpl::BasicBlockImpl(int64_t in_planes, int64_t planes,
                               int64_t stride)
    : conv1(Conv3x3(in_planes, planes, stride)),
      conv2(Conv3x3(planes, planes, 1)),
      bn1(planes),
      bn2(planes) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  if (stride != 1 || in_planes != planes) {
    downsample = torch::nn::Sequential(
        torch::nn::Conv2d(torch::nn::Conv2dOptions(in_planes, planes, 1)
                              .stride(stride)
                              .bias(false)),
        torch::nn::BatchNorm2d(planes));
    register_module("downsample", downsample);
  }
}

torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  torch::Tensor out = torch::relu(bn1(conv1(x)));
  out = bn2(conv2(out));
  torch::Tensor identity = downsample ? downsample->forward(x) : x;
  return torch::relu(out + identity);
}

ResNetStudentImpl::ResNetStudentImpl(const StudentConfig& config)
    : config(config),
      conv1(Conv3x3(config.in_channels, config.width, 1)),
      bn1(config.width) {
  const int64_t w = config.width;
  int64_t in_planes = w;
  layer1 = MakeLayer(in_planes, w, 2, 1);
  layer2 = MakeLayer(in_planes, 2 * w, 2, 2);
  layer3 = MakeLayer(in_planes, 4 * w, 2, 2);
  layer4 = MakeLayer(in_planes, 8 * w, 2, 2);
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("layer1", layer1);
  register_module("layer2", layer2);
  register_module("layer3", layer3);
  register_module("layer4", layer4);
  int64_t embedding_dim = 8 * w;
  if (config.embedding_dim > 0) {
    embedding = register_module("embedding",
                                torch::nn::Linear(8 * w, config.embedding_dim));
    embedding_dim = config.embedding_dim;
  }
  fc = register_module("fc",
                       torch::nn::Linear(embedding_dim, config.num_classes));
  if (config.teacher_width > 0) {
    projection = register_module(
        "projection", torch::nn::Linear(embedding_dim, config.teacher_width));
  }
  for (auto& module : modules(/*include_self=*/false)) {
    if (auto* conv = module->as<torch::nn::Conv2d>()) {
      torch::nn::init::kaiming_normal_(conv->weight, 0.0, torch::kFanOut,
                                       torch::kReLU);
    }
  }
}

LogitsAndEmbedding ResNetStudentImpl::forward(torch::Tensor images) {
  torch::Tensor x = torch::relu(bn1(conv1(images)));
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  torch::Tensor f =
      F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  if (embedding) f = embedding(f);
  return {fc(f), f};
}

torch::Tensor ResNetStudentImpl::Project(const torch::Tensor& embedding) {
  return projection(embedding);
}

}  // namespace distill::engine
