// Process-wide runtime settings of the engine.
#include "worker/engine/runtime.h"

#include <dlfcn.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <sstream>

#include "absl/strings/match.h"

namespace distill::engine {
namespace {

// Minor page faults while a 64 MiB tensor is allocated, written and freed
// `rounds` times, as a training step does with its activations.
long FaultsOfFreshTensors(int rounds) {
  rusage before{}, after{};
  getrusage(RUSAGE_SELF, &before);
  for (int i = 0; i < rounds; ++i) {
    torch::Tensor t = torch::ones({16 << 20});  // 64 MiB of float.
    EXPECT_EQ(t[12345].item<float>(), 1.0f);    // Keeps the write.
  }
  getrusage(RUSAGE_SELF, &after);
  return after.ru_minflt - before.ru_minflt;
}

TEST(RuntimeTest, FreedTensorMemoryStaysInTheProcess) {
  constexpr int kRounds = 8;
  constexpr long kPagesPerTensor = (64 << 20) / 4096;
  // glibc's default: each round maps the tensor afresh and faults it in.
  torch::set_num_threads(1);
  const long by_default = FaultsOfFreshTensors(kRounds);
  EXPECT_GT(by_default, kRounds * kPagesPerTensor / 2);

  ConfigureRuntime(1);
  FaultsOfFreshTensors(24);  // The heap grows to its steady state.
  const long configured = FaultsOfFreshTensors(kRounds);
  EXPECT_LT(configured, kPagesPerTensor / 4)
      << "by default: " << by_default << " faults";
  EXPECT_EQ(torch::get_num_threads(), 1);
}

TEST(RuntimeTest, ClearGradientsLeavesTheSameStep) {
  torch::manual_seed(0);
  torch::nn::Linear a(4, 3), b(4, 3);
  b->weight.set_data(a->weight.detach().clone());
  b->bias.set_data(a->bias.detach().clone());
  torch::optim::SGD opt_a(a->parameters(),
                          torch::optim::SGDOptions(0.1).momentum(0.9)),
      opt_b(b->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int step = 0; step < 3; ++step) {
    const torch::Tensor x = torch::randn({8, 4});
    opt_a.zero_grad();
    a(x).square().sum().backward();
    opt_a.step();
    ClearGradients(opt_b);
    for (const auto& p : b->parameters()) EXPECT_FALSE(p.grad().defined());
    b(x).square().sum().backward();
    opt_b.step();
  }
  EXPECT_TRUE(torch::equal(a->weight, b->weight));
  EXPECT_TRUE(torch::equal(a->bias, b->bias));
}

TEST(RuntimeTest, TheBlasIsFoundInAProcesssMaps) {
  std::istringstream openblas(
      "7f1c2a000000-7f1c2a100000 r--p 00000000 08:01 1234 "
      "/usr/lib/x86_64-linux-gnu/libtorch_cpu.so.1.13\n"
      "7f1c2b000000-7f1c2b400000 r-xp 00000000 08:01 5678 "
      "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3\n");
  EXPECT_EQ(BlasInMaps(openblas),
            "/usr/lib/x86_64-linux-gnu/openblas-openmp/libblas.so.3");
  std::istringstream none(
      "7f1c2a000000-7f1c2a100000 r--p 00000000 08:01 1234 /usr/bin/cat\n");
  EXPECT_EQ(BlasInMaps(none), "unknown");
}

// Where LibTorch takes its BLAS from a shared library (Debian's: the
// libblas.so.3 alternative), this process names it; a LibTorch with MKL
// built in (PyTorch's wheels) loads none.
TEST(RuntimeTest, LoadedBlasNamesTheLibraryThisProcessLoaded) {
  (void)torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));
  if (at::hasMKL()) GTEST_SKIP() << "MKL is linked into this LibTorch";
  const std::string blas = LoadedBlas();
  ASSERT_NE(blas, "unknown");
  EXPECT_TRUE(std::filesystem::exists(blas)) << blas;
}

// tests/kernel_matrix.sh reads this line to show which kernels ran.
TEST(RuntimeTest, KernelsInUse) {
  (void)torch::mm(torch::ones({8, 8}), torch::ones({8, 8}));
  const std::string kernels = CpuKernels();
  std::cout << "kernels: " << kernels << std::endl;
  EXPECT_TRUE(absl::StartsWith(kernels, "ATen ")) << kernels;
}

// PyTorch's own libtorch.so (2.x wheels) carries std::filesystem symbols
// of its own, whose remove_all jumps to address 0 (22 engine tests crashed
// so on a GPU machine, 2026-12-06): the programs name libstdc++ before
// LibTorch (worker/CMakeLists.txt), so that their calls bind to it.
TEST(RuntimeTest, StdFilesystemIsLibstdcxxs) {
  using RemoveAll =
      std::uintmax_t (*)(const std::filesystem::path&, std::error_code&);
  const RemoveAll remove_all = &std::filesystem::remove_all;
  Dl_info info{};
  ASSERT_NE(::dladdr(reinterpret_cast<void*>(remove_all), &info), 0);
  ASSERT_NE(info.dli_fname, nullptr);
  EXPECT_THAT(std::string(info.dli_fname), testing::HasSubstr("libstdc++"));
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() /
      ("distill-remove-all-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir / "a" / "b");
  std::error_code ec;
  EXPECT_EQ(std::filesystem::remove_all(dir, ec), 3u) << ec.message();
}

}  // namespace
}  // namespace distill::engine
