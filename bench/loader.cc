// Times JPEG decoding and the training view (random-resized crop to 224,
// flip, normalise) on the engine's threaded loader: images per second.
// Writes N JPEGs of 500 x 375 (CUB-200-2011's typical size) to a temporary
// folder first.
//
//   loader [--threads 2] [--images 256] [--batch 32]
#include <turbojpeg.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>

#include "worker/engine/image_loader.h"

namespace fs = std::filesystem;

int main(int argc, char** argv) {
  int threads = 2, count = 256, batch = 32;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--images")) count = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--batch")) batch = std::atoi(argv[i + 1]);
  }
  torch::set_num_threads(1);  // The loader's own threads do the work.
  const fs::path dir = fs::temp_directory_path() /
                       ("distill_bench_loader_" + std::to_string(getpid()));
  fs::create_directories(dir);
  distill::engine::ImageList list;
  std::mt19937 rng(1);
  std::vector<unsigned char> rgb(500 * 375 * 3);
  tjhandle handle = tjInitCompress();
  for (int i = 0; i < count; ++i) {
    // Smooth gradients with noise compress like photographs do, roughly.
    for (size_t p = 0; p < rgb.size(); ++p) {
      rgb[p] = static_cast<unsigned char>((p / 3 % 500) / 2 + (p / 1500) / 3 +
                                          rng() % 32);
    }
    unsigned char* out = nullptr;
    unsigned long size = 0;
    tjCompress2(handle, rgb.data(), 500, 0, 375, TJPF_RGB, &out, &size,
                TJSAMP_420, 90, 0);
    const fs::path path = dir / (std::to_string(i) + ".jpg");
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<char*>(out), long(size));
    tjFree(out);
    list.paths.push_back(path.string());
    list.labels.push_back(i % 200);
  }
  tjDestroy(handle);
  distill::engine::ImageBatchLoader loader(list, {224, true}, threads,
                                           2 * threads, 1);
  const auto start = std::chrono::steady_clock::now();
  loader.Start(torch::randperm(count, torch::kInt64), batch);
  int64_t images = 0;
  while (true) {
    auto next = loader.Next();
    if (!next.ok()) {
      std::cerr << next.status() << "\n";
      return 1;
    }
    if (!next->has_value()) break;
    images += (*next)->images.size(0);
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  fs::remove_all(dir);
  std::cout << "loader images/s " << images / seconds << " threads " << threads
            << "\n";
  return 0;
}
