#include "worker/engine/models.h"

#include <array>
#include <cmath>
#include <map>

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
  for (int64_t i = 0; i < config.depth; ++i) {
    blocks->push_back(
        VitBlock(config.width, config.heads, config.width * config.mlp_ratio));
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

torch::nn::Conv2d Conv1x1(int64_t in, int64_t out, int64_t stride = 1) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, 1).stride(stride).bias(false));
}

// torchvision's downsample branch, or null when the shapes already match.
torch::nn::Sequential Downsample(int64_t in_planes, int64_t out_planes,
                                 int64_t stride) {
  if (stride == 1 && in_planes == out_planes) return nullptr;
  return torch::nn::Sequential(Conv1x1(in_planes, out_planes, stride),
                               torch::nn::BatchNorm2d(out_planes));
}

// One torchvision stage; `in_planes` becomes its output width.
torch::nn::Sequential MakeLayer(bool bottleneck, int64_t& in_planes,
                                int64_t planes, int64_t blocks,
                                int64_t stride) {
  torch::nn::Sequential layer;
  for (int64_t i = 0; i < blocks; ++i) {
    const int64_t s = i == 0 ? stride : 1;
    if (bottleneck) {
      layer->push_back(Bottleneck(in_planes, planes, s));
      in_planes = planes * BottleneckImpl::kExpansion;
    } else {
      layer->push_back(BasicBlock(in_planes, planes, s));
      in_planes = planes;
    }
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
  downsample = Downsample(in_planes, planes, stride);
  if (downsample) register_module("downsample", downsample);
}

// In-place ReLU and residual add where torchvision has them: fewer
// allocations, the same values and gradients.
torch::Tensor BasicBlockImpl::forward(torch::Tensor x) {
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

BottleneckImpl::BottleneckImpl(int64_t in_planes, int64_t planes,
                               int64_t stride)
    : conv1(Conv1x1(in_planes, planes)),
      conv2(Conv3x3(planes, planes, stride)),
      conv3(Conv1x1(planes, planes * kExpansion)),
      bn1(planes),
      bn2(planes),
      bn3(planes * kExpansion) {
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("conv2", conv2);
  register_module("bn2", bn2);
  register_module("conv3", conv3);
  register_module("bn3", bn3);
  downsample = Downsample(in_planes, planes * kExpansion, stride);
  if (downsample) register_module("downsample", downsample);
}

torch::Tensor BottleneckImpl::forward(torch::Tensor x) {
  torch::Tensor out = bn1(conv1(x)).relu_();
  out = bn2(conv2(out)).relu_();
  out = bn3(conv3(out));
  out += downsample ? downsample->forward(x) : x;
  return out.relu_();
}

ResNetStudentImpl::ResNetStudentImpl(const StudentConfig& config)
    : config(config),
      conv1(config.stem == Stem::kImageNet
                ? torch::nn::Conv2d(torch::nn::Conv2dOptions(config.in_channels,
                                                             config.width, 7)
                                        .stride(2)
                                        .padding(3)
                                        .bias(false))
                : Conv3x3(config.in_channels, config.width, 1)),
      bn1(config.width) {
  const ResNetInfo* layout = FindResNet(config.arch);
  TORCH_CHECK(layout != nullptr, "unknown student architecture ", config.arch);
  const int64_t w = config.width;
  int64_t in_planes = w;
  const bool b = layout->bottleneck;
  layer1 = MakeLayer(b, in_planes, w, layout->blocks[0], 1);
  layer2 = MakeLayer(b, in_planes, 2 * w, layout->blocks[1], 2);
  layer3 = MakeLayer(b, in_planes, 4 * w, layout->blocks[2], 2);
  layer4 = MakeLayer(b, in_planes, 8 * w, layout->blocks[3], 2);
  register_module("conv1", conv1);
  register_module("bn1", bn1);
  register_module("layer1", layer1);
  register_module("layer2", layer2);
  register_module("layer3", layer3);
  register_module("layer4", layer4);
  int64_t embedding_dim = in_planes;
  if (config.embedding_dim > 0) {
    embedding = register_module(
        "embedding", torch::nn::Linear(in_planes, config.embedding_dim));
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

bool PrefersChannelsLast(const torch::Device& device, int64_t channels,
                         int64_t side) {
  return !device.is_cpu() || channels < 128 * side;
}

void ResNetStudentImpl::UseChannelsLast(int64_t image_side) {
  const torch::Device device = conv1->weight.device();
  const bool narrow = device.is_cpu() && config.width < kMinChannelsLastWidth;
  auto format = [&](int64_t channels, int64_t side) {
    return !narrow && PrefersChannelsLast(device, channels, side)
               ? torch::MemoryFormat::ChannelsLast
               : torch::MemoryFormat::Contiguous;
  };
  auto halve = [](int64_t side) { return (side + 1) / 2; };
  // The side of the stem's output, then of each stage's 3x3 convolutions'
  // (the first stage keeps its input's side, the others halve it).
  int64_t side = image_side;
  if (config.stem == Stem::kImageNet) side = halve(side);
  formats[0] = format(config.width, side);
  if (config.stem == Stem::kImageNet) side = halve(side);  // The max-pool.
  const torch::nn::Sequential stages[4] = {layer1, layer2, layer3, layer4};
  torch::NoGradGuard no_grad;
  for (auto& p : conv1->parameters()) p.set_data(p.contiguous(formats[0]));
  for (int i = 0; i < 4; ++i) {
    if (i > 0) side = halve(side);
    formats[i + 1] = format(config.width << i, side);
    for (auto& p : stages[i]->parameters()) {
      if (p.dim() == 4) p.set_data(p.contiguous(formats[i + 1]));
    }
  }
}

LogitsAndEmbedding ResNetStudentImpl::forward(torch::Tensor images) {
  torch::Tensor x = bn1(conv1(images.contiguous(formats[0]))).relu_();
  if (config.stem == Stem::kImageNet) {
    x = F::max_pool2d(x, F::MaxPool2dFuncOptions(3).stride(2).padding(1));
  }
  torch::nn::Sequential stages[4] = {layer1, layer2, layer3, layer4};
  for (int i = 0; i < 4; ++i) {
    x = stages[i]->forward(x.contiguous(formats[i + 1]));
  }
  torch::Tensor f =
      F::adaptive_avg_pool2d(x, F::AdaptiveAvgPool2dFuncOptions(1)).flatten(1);
  if (embedding) f = embedding(f);
  return {fc(f), f};
}

torch::Tensor ResNetStudentImpl::Project(const torch::Tensor& embedding) {
  return projection(embedding);
}

}  // namespace distill::engine
