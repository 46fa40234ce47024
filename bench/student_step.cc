// Times the student's training step in the engine: ResNet-18 with the
// small-image stem, batch 128 of 1 x 28 x 28, cross-entropy, SGD. Prints
// images per second of the median step (and the mean);
// bench/student_step.py times the same step in PyTorch.
//
//   student_step [--threads N] [--steps N] [--warmup N] [--size 224 --batch 32]
//                [--lockstep 1] [--defaults 1] [--nhwc_only 1]
//                [--device cuda:0]
//
// --defaults 1 leaves out the engine's runtime settings (ConfigureRuntime,
// ClearGradients, channels-last memory): LibTorch as it comes, to show what
// they are worth. --nhwc_only 1 keeps every stage channels-last, where the
// engine runs a stage whose maps are small for its width in NCHW on the CPU
// (PrefersChannelsLast), to show what that is worth.
//
// --size 224 switches to 3 x 224 x 224 images and the ImageNet stem (what a
// CUB-200-2011 run trains on).
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <numeric>
#include <string>
#include <vector>

#include "worker/engine/losses.h"
#include "worker/engine/models.h"
#include "worker/engine/runtime.h"

int main(int argc, char** argv) {
  int threads = 2, steps = 20, warmup = 3, size = 28, batch = 128, lockstep = 0,
      defaults = 0, nhwc_only = 0;
  std::string device_name = "cpu";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--device")) device_name = argv[i + 1];
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--warmup")) warmup = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--size")) size = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--lockstep")) lockstep = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--defaults")) defaults = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--nhwc_only"))
      nhwc_only = std::atoi(argv[i + 1]);
  }
  const int channels = size >= 64 ? 3 : 1;
  if (defaults) {
    torch::set_num_threads(threads);
  } else {
    distill::engine::ConfigureRuntime(threads);  // As the worker does.
  }
  torch::manual_seed(0);
  distill::engine::StudentConfig config;  // resnet18, small stem, width 64.
  config.in_channels = channels;
  if (size >= 64) config.stem = distill::engine::Stem::kImageNet;
  const torch::Device device(device_name);
  distill::engine::ResNetStudent student(config);
  student->to(device);
  if (!defaults) student->UseChannelsLast(size);  // As the trainer does.
  if (nhwc_only) {
    torch::NoGradGuard no_grad;
    for (auto& p : student->parameters()) {
      if (p.dim() == 4)
        p.set_data(p.contiguous(torch::MemoryFormat::ChannelsLast));
    }
    student->formats.fill(torch::MemoryFormat::ChannelsLast);
  }
  student->train();
  torch::optim::SGD optimizer(
      student->parameters(),
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  const torch::Tensor images =
      torch::randn({batch, channels, size, size}, device);
  const torch::Tensor labels = torch::randint(
      10, {batch}, torch::TensorOptions(device).dtype(torch::kInt64));
  auto step = [&] {
    if (defaults) {
      optimizer.zero_grad();
    } else {
      distill::engine::ClearGradients(optimizer);  // As the trainer does.
    }
    torch::Tensor loss = distill::engine::CrossEntropyLoss(
        student->forward(images).first, labels);
    loss.backward();
    optimizer.step();
    if (device.is_cuda()) torch::cuda::synchronize(device.index());
  };
  for (int i = 0; i < warmup; ++i) step();
  if (lockstep) {
    // bench/lockstep.py alternates this process's steps with a peer's: one
    // step per line read, its seconds printed.
    std::cout << "ready " << batch << std::endl;
    for (std::string line; std::getline(std::cin, line);) {
      const auto start = std::chrono::steady_clock::now();
      step();
      std::cout << std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count()
                << std::endl;
    }
    return 0;
  }
  // Each step timed on its own: the median step is what a shared, noisy
  // machine distorts least; the mean over all steps is printed beside it.
  std::vector<double> seconds;
  for (int i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    seconds.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  }
  const double total = std::accumulate(seconds.begin(), seconds.end(), 0.0);
  std::nth_element(seconds.begin(), seconds.begin() + steps / 2, seconds.end());
  std::cout << "engine images/s " << batch / seconds[steps / 2] << " mean "
            << batch * steps / total << " threads " << threads << " size "
            << size << "\n";
  return 0;
}
