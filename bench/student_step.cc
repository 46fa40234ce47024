// Times the student's training step in the engine: ResNet-18 with the
// small-image stem, batch 128 of 1 x 28 x 28, cross-entropy, SGD. Prints
// images per second; bench/student_step.py times the same step in PyTorch.
//
//   student_step [--threads N] [--steps N] [--warmup N] [--size 224 --batch 32]
//
// --size 224 switches to 3 x 224 x 224 images and the ImageNet stem (what a
// CUB-200-2011 run trains on).
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "worker/engine/losses.h"
#include "worker/engine/models.h"

int main(int argc, char** argv) {
  int threads = 2, steps = 20, warmup = 3, size = 28, batch = 128;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--warmup")) warmup = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--size")) size = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
  }
  const int channels = size >= 64 ? 3 : 1;
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  distill::engine::StudentConfig config;  // resnet18, small stem, width 64.
  config.in_channels = channels;
  if (size >= 64) config.stem = distill::engine::Stem::kImageNet;
  distill::engine::ResNetStudent student(config);
  student->train();
  torch::optim::SGD optimizer(
      student->parameters(),
      torch::optim::SGDOptions(0.05).momentum(0.9).weight_decay(5e-4));
  const torch::Tensor images = torch::randn({batch, channels, size, size});
  const torch::Tensor labels = torch::randint(10, {batch}, torch::kInt64);
  auto step = [&] {
    optimizer.zero_grad();
    torch::Tensor loss = distill::engine::CrossEntropyLoss(
        student->forward(images).first, labels);
    loss.backward();
    optimizer.step();
  };
  for (int i = 0; i < warmup; ++i) step();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cout << "engine images/s " << double(batch) * steps / seconds
            << " threads " << threads << " size " << size << "\n";
  return 0;
}
