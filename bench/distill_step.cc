// Times the distillation step the service runs for Table 1's row H: a
// ResNet-18 student (small stem, width 16) learning from a frozen ViT
// teacher with all four losses (CE, embedding MSE through the projection,
// instance KD at T = 4, RKD distance and angle), batch 128 of 1 x 28 x 28,
// SGD. bench/distill_step.py does the same work in PyTorch's Python API.
//
//   distill_step [--teacher online|cached] [--teacher_width 96]
//                [--student_width 16] [--batch 128] [--device cpu|cuda:0]
//                [--precision fp32|bf16|fp16] [--threads N] [--steps N]
//                [--warmup N] [--lockstep 1] [--peak 1] [--profile FILE]
//                [--size 28 --channels 1 --classes 10 --teacher_patch 7
//                 --teacher_depth 4 --teacher_heads 4]
//
// The paper's size: --size 224 --channels 3 --classes 200 --teacher_patch
// 16 --teacher_width 384 --teacher_depth 12 --teacher_heads 6 (a ViT-S/16)
// --student_width 64; a side of 64 or more takes the ImageNet stem.
//
// online: the teacher's forward pass is part of every step (training views
// with random augmentation); cached: its outputs are looked up, as when the
// worker's teacher cache holds them. --peak 1 instead measures the device's
// 3x3-convolution rate (forward and backward of a large convolution) and
// the student step's share of it, round by round in turn.
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "worker/engine/models.h"
#include "worker/engine/objective.h"
#include "worker/engine/runtime.h"

namespace {

using distill::engine::Precision;

struct Options {
  std::string teacher = "online";
  int teacher_width = 96;
  int student_width = 16;
  int batch = 128;
  std::string device = "cpu";
  std::string precision = "fp32";
  int threads = 2;
  int steps = 20;
  int warmup = 3;
  int lockstep = 0;
  int peak = 0;
  std::string profile;  // Chrome trace of 3 steps, then exit.
  int size = 28;        // Image side.
  int channels = 1;
  int classes = 10;
  int teacher_patch = 7;
  int teacher_depth = 4;
  int teacher_heads = 4;
};

void Synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.index());
}

double Seconds(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
      .count();
}

// The student's convolutions and linear layers, counted from their shapes
// for a batch of `batch` images of side `size`: FLOPs of one training step,
// three matrix products per layer (forward, gradients of the input and of
// the weights) but two for the stem, whose input needs no gradient. For the
// width-64 student at 28 px this gives 349.9 GFLOP a step of 128 images,
// as PyTorch's own counter does (bench/student_flops.py: torch.profiler's
// with_flops on a replica built of torchvision's BasicBlock).
double StudentStepFlops(const distill::engine::StudentConfig& config,
                        int64_t batch, int64_t size) {
  const int64_t w = config.width;
  double macs = 0;
  const double stem_macs = double(config.in_channels) * w * 9 * size * size;
  int64_t side = size, in = w;
  const int64_t planes[4] = {w, 2 * w, 4 * w, 8 * w};
  for (int stage = 0; stage < 4; ++stage) {
    for (int block = 0; block < 2; ++block) {
      const int64_t stride = stage > 0 && block == 0 ? 2 : 1;
      const int64_t out = planes[stage];
      // A 3x3 convolution with padding 1 (and the 1x1 one beside it) gives
      // ceil(side / stride) rows: 7 x 7 maps become 4 x 4, not 3 x 3.
      const int64_t out_side = (side + stride - 1) / stride;
      macs += double(in) * out * 9 * out_side * out_side;   // conv1
      macs += double(out) * out * 9 * out_side * out_side;  // conv2
      if (stride != 1 || in != out)
        macs += double(in) * out * out_side * out_side;  // downsample
      in = out;
      side = out_side;
    }
  }
  macs += double(in) * config.num_classes;
  if (config.teacher_width > 0) macs += double(in) * config.teacher_width;
  return 2 * (3 * macs + 2 * stem_macs) * batch;
}

// The student as the trainer sets it up (channels-last), its optimizer,
// and one fixed batch of images and labels on `device`.
struct Student {
  distill::engine::ResNetStudent model{nullptr};
  std::unique_ptr<torch::optim::SGD> optimizer;
  torch::Tensor images, labels;
};

Student MakeStudent(const Options& o, int64_t teacher_width,
                    const torch::Device& device) {
  distill::engine::StudentConfig sc;
  sc.width = o.student_width;
  sc.teacher_width = teacher_width;
  sc.in_channels = o.channels;
  sc.num_classes = o.classes;
  if (o.size >= 64) sc.stem = distill::engine::Stem::kImageNet;
  Student s;
  s.model = distill::engine::ResNetStudent(sc);
  s.model->to(device);
  s.model->UseChannelsLast(o.size);
  s.model->train();
  s.optimizer = std::make_unique<torch::optim::SGD>(
      s.model->parameters(),
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  s.images = torch::randn({o.batch, o.channels, o.size, o.size}, device);
  s.labels = torch::randint(o.classes, {o.batch},
                            torch::TensorOptions(device).dtype(torch::kInt64));
  return s;
}

// The median of `values` (which it reorders).
double Median(std::vector<double>& values) {
  std::nth_element(values.begin(), values.begin() + values.size() / 2,
                   values.end());
  return values[values.size() / 2];
}

int MeasurePeak(const Options& o, const torch::Device& device) {
  // A 3x3 convolution big enough to saturate the device: 128 -> 128
  // channels on 128 x 28 x 28 (the shapes of a width-64 student's first
  // stage), forward and both backward products, as a training step runs it;
  // in both memory formats, the faster one counting.
  torch::manual_seed(0);
  const double conv_flops = 3 * 2 * double(o.batch) * 128 * 128 * 9 * 28 * 28;
  std::vector<std::function<void()>> convs;
  for (auto format :
       {torch::MemoryFormat::Contiguous, torch::MemoryFormat::ChannelsLast}) {
    torch::nn::Conv2d conv(
        torch::nn::Conv2dOptions(128, 128, 3).padding(1).bias(false));
    conv->to(device);
    {
      torch::NoGradGuard no_grad;
      conv->weight.set_data(conv->weight.contiguous(format));
    }
    torch::Tensor x = torch::randn({o.batch, 128, 28, 28}, device)
                          .contiguous(format)
                          .requires_grad_(true);
    convs.push_back([conv, x]() mutable {
      x.mutable_grad().reset();
      conv->weight.mutable_grad().reset();
      conv(x).sum().backward();
    });
  }
  // The CE-only student step at this width (bench/student_step.cc's work).
  Student st = MakeStudent(o, 0, device);
  auto student_step = [&] {
    distill::engine::ClearGradients(*st.optimizer);
    torch::nn::functional::cross_entropy(st.model->forward(st.images).first,
                                         st.labels)
        .backward();
    st.optimizer->step();
  };
  auto time = [&](const std::function<void()>& step) {
    const auto start = std::chrono::steady_clock::now();
    step();
    Synchronize(device);
    return Seconds(start);
  };
  for (int i = 0; i < o.warmup; ++i) {
    for (auto& conv : convs) conv();
    student_step();
  }
  Synchronize(device);
  // Round by round, each convolution and then the student step, so that
  // the rate and the step are measured at the same moments of a shared
  // machine; the medians count.
  std::vector<double> nchw, nhwc, step;
  for (int i = 0; i < o.steps; ++i) {
    nchw.push_back(conv_flops / time(convs[0]));
    nhwc.push_back(conv_flops / time(convs[1]));
    step.push_back(time(student_step));
  }
  const double nchw_rate = Median(nchw), nhwc_rate = Median(nhwc);
  const double peak = std::max(nchw_rate, nhwc_rate);
  std::cout << "3x3 convolution GFLOP/s NCHW " << nchw_rate / 1e9 << "\n"
            << "3x3 convolution GFLOP/s NHWC " << nhwc_rate / 1e9 << "\n"
            << "3x3 convolution peak GFLOP/s " << peak / 1e9 << " device "
            << device.str() << " threads " << o.threads << "\n";
  const double seconds = Median(step);
  const double step_flops = StudentStepFlops(st.model->config, o.batch, 28);
  const double rate = step_flops / seconds;
  std::cout << "student step width " << o.student_width << " GFLOP/s "
            << rate / 1e9 << " = " << 100 * rate / peak
            << " % of the convolution peak (" << step_flops / 1e9
            << " GFLOP a step, images/s " << o.batch / seconds << ", median of "
            << o.steps << " rounds)\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  const std::map<std::string, std::string*> words = {
      {"--teacher", &o.teacher},
      {"--device", &o.device},
      {"--precision", &o.precision},
      {"--profile", &o.profile}};
  const std::map<std::string, int*> numbers = {
      {"--teacher_width", &o.teacher_width},
      {"--student_width", &o.student_width},
      {"--batch", &o.batch},
      {"--threads", &o.threads},
      {"--steps", &o.steps},
      {"--warmup", &o.warmup},
      {"--lockstep", &o.lockstep},
      {"--peak", &o.peak},
      {"--size", &o.size},
      {"--channels", &o.channels},
      {"--classes", &o.classes},
      {"--teacher_patch", &o.teacher_patch},
      {"--teacher_depth", &o.teacher_depth},
      {"--teacher_heads", &o.teacher_heads}};
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (auto w = words.find(flag); w != words.end()) {
      *w->second = value;
    } else if (auto n = numbers.find(flag); n != numbers.end()) {
      *n->second = std::stoi(value);
    } else {
      std::cerr << "distill_step: unknown flag " << flag << "\n";
      return 2;
    }
  }
  distill::engine::ConfigureRuntime(o.threads);  // As the worker does.
  const torch::Device device(o.device);
  if (o.peak) return MeasurePeak(o, device);
  auto precision = distill::engine::ResolvePrecision(o.precision, device);
  if (!precision.ok()) {
    std::cerr << "distill_step: " << precision.status().message() << "\n";
    return 2;
  }
  const bool online = o.teacher == "online";
  torch::manual_seed(0);

  distill::engine::VitConfig vc;  // 28 px, patch 7, depth 4, 4 heads.
  vc.width = o.teacher_width;
  vc.image_size = o.size;
  vc.in_channels = o.channels;
  vc.num_classes = o.classes;
  vc.patch_size = o.teacher_patch;
  vc.depth = o.teacher_depth;
  vc.heads = o.teacher_heads;
  distill::engine::Vit teacher(vc);
  teacher->to(device);
  teacher->eval();
  for (auto& p : teacher->parameters()) p.requires_grad_(false);

  Student st = MakeStudent(o, o.teacher_width, device);
  auto& student = st.model;
  auto& optimizer = *st.optimizer;
  distill::engine::LossScaler scaler(*precision == Precision::kFp16);

  distill::engine::LossWeights row_h;
  row_h.ce = 1;
  row_h.mse = 1;
  row_h.ikd = 1;
  row_h.temperature = 4;
  row_h.rkd_distance = 1;
  row_h.rkd_angle = 2;

  const torch::Tensor& images = st.images;
  const torch::Tensor& labels = st.labels;
  // cached: the teacher's outputs for a pool of 8 batches, looked up by
  // index as the trainer does.
  torch::Tensor pool_logits, pool_embedding;
  if (!online) {
    torch::NoGradGuard no_grad;
    std::vector<torch::Tensor> l, e;
    for (int i = 0; i < 8; ++i) {
      auto [logits, embedding] = teacher->forward(images);
      l.push_back(logits.cpu());
      e.push_back(embedding.cpu());
    }
    pool_logits = torch::cat(l);
    pool_embedding = torch::cat(e);
  }
  auto step = [&] {
    distill::engine::ClearGradients(optimizer);
    torch::Tensor t_logits, t_embedding, logits, embedding, projected;
    {
      distill::engine::AutocastScope amp(device, *precision);
      if (online) {
        torch::NoGradGuard no_grad;
        std::tie(t_logits, t_embedding) = teacher->forward(images);
      } else {
        const torch::Tensor idx =
            torch::randperm(pool_logits.size(0), torch::kInt64)
                .slice(0, 0, o.batch);
        t_logits = pool_logits.index_select(0, idx).to(device);
        t_embedding = pool_embedding.index_select(0, idx).to(device);
      }
      std::tie(logits, embedding) = student->forward(images);
      projected = student->Project(embedding);
    }
    distill::engine::Objective objective =
        distill::engine::DistillationObjective(
            row_h, {.student_logits = logits.to(torch::kFloat),
                    .student_embedding = embedding.to(torch::kFloat),
                    .projected = projected.to(torch::kFloat),
                    .teacher_logits = t_logits.to(torch::kFloat),
                    .teacher_embedding = t_embedding.to(torch::kFloat),
                    .labels = labels});
    scaler.Scale(objective.total).backward();
    scaler.Step(optimizer);
    Synchronize(device);
  };
  for (int i = 0; i < o.warmup; ++i) step();
  if (!o.profile.empty()) {
    torch::autograd::profiler::RecordProfile profile(o.profile);
    for (int i = 0; i < 3; ++i) step();
    return 0;
  }
  if (o.lockstep) {
    std::cout << "ready " << o.batch << std::endl;
    for (std::string line; std::getline(std::cin, line);) {
      const auto start = std::chrono::steady_clock::now();
      step();
      std::cout << Seconds(start) << std::endl;
    }
    return 0;
  }
  std::vector<double> seconds;
  for (int i = 0; i < o.steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(Seconds(start));
  }
  const double total = std::accumulate(seconds.begin(), seconds.end(), 0.0);
  std::cout << "engine distill step images/s " << o.batch / Median(seconds)
            << " mean " << o.batch * o.steps / total << " teacher " << o.teacher
            << " width " << o.teacher_width << " precision "
            << distill::engine::PrecisionName(*precision) << " device "
            << device.str() << "\n";
  return 0;
}
