// The ViT teacher and the ResNet students: shapes and parameter names.
#include "worker/engine/models.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using ModelsTest = EngineTest;

TEST_F(ModelsTest, ModelsReturnLogitsAndEmbedding) {
  VitConfig vit;
  vit.patch_size = 7;
  vit.width = 32;
  vit.depth = 2;
  vit.heads = 4;
  const torch::Device device(TestDevice());
  Vit teacher(vit);
  teacher->to(device);
  auto [t_logits, t_embedding] =
      teacher->forward(torch::randn({5, 1, 28, 28}, device));
  EXPECT_EQ(t_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(t_embedding.sizes(), (std::vector<int64_t>{5, 32}));

  StudentConfig sc;
  sc.width = 8;
  sc.teacher_width = 32;
  ResNetStudent student(sc);
  student->to(device);
  auto [s_logits, s_embedding] =
      student->forward(torch::randn({5, 1, 28, 28}, device));
  EXPECT_EQ(s_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(s_embedding.sizes(), (std::vector<int64_t>{5, 64}));  // 8 x width.
  EXPECT_EQ(student->Project(s_embedding).sizes(),
            (std::vector<int64_t>{5, 32}));
  sc.embedding_dim = 24;
  EXPECT_EQ(
      ResNetStudent(sc)->forward(torch::randn({2, 1, 28, 28})).second.size(1),
      24);
}

TEST_F(ModelsTest, StudentHasTorchvisionParameterNames) {
  StudentConfig sc;
  sc.width = 8;
  ResNetStudent student(sc);
  auto params = student->named_parameters();
  for (const char* name :
       {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight", "layer4.1.bn2.bias", "fc.weight"}) {
    EXPECT_NE(params.find(name), nullptr) << name;
  }
}

TEST_F(ModelsTest, ChannelsLastWhereItIsFasterOnTheCpuAlwaysOnCuda) {
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA, 0);
  // oneDNN's NCHW kernels win where the maps are small for the width.
  EXPECT_FALSE(PrefersChannelsLast(cpu, 512, 4));
  EXPECT_FALSE(PrefersChannelsLast(cpu, 1024, 7));
  EXPECT_FALSE(PrefersChannelsLast(cpu, 256, 2));
  EXPECT_TRUE(PrefersChannelsLast(cpu, 256, 4));
  EXPECT_TRUE(PrefersChannelsLast(cpu, 512, 7));
  EXPECT_TRUE(PrefersChannelsLast(cpu, 64, 28));
  EXPECT_TRUE(PrefersChannelsLast(cuda, 512, 4));
  EXPECT_TRUE(PrefersChannelsLast(cuda, 1024, 2));
}

// oneDNN's weight gradient of a 1 x 1 stride-2 convolution over 2 to 6
// channels-last channels writes past its buffer on one thread (width 4's
// first downsample): such a student stays NCHW on the CPU.
TEST_F(ModelsTest, ANarrowStudentStaysNchwOnTheCpu) {
  StudentConfig sc;
  sc.width = 4;
  ResNetStudent narrow(sc);
  narrow->UseChannelsLast(32);
  for (torch::MemoryFormat format : narrow->formats)
    EXPECT_EQ(format, torch::MemoryFormat::Contiguous);
  EXPECT_TRUE(narrow->named_parameters()["layer2.0.downsample.0.weight"]
                  .is_contiguous());
  sc.width = kMinChannelsLastWidth;
  ResNetStudent wider(sc);
  wider->UseChannelsLast(32);
  EXPECT_EQ(wider->formats[1], torch::MemoryFormat::ChannelsLast);
}

TEST_F(ModelsTest, StudentMemoryFormatsPerStageKeepItsValues) {
  const torch::Device device(TestDevice());
  StudentConfig sc;  // Width 64: the last stage has 512 channels on 4 x 4.
  torch::manual_seed(1);
  ResNetStudent plain(sc), fast(sc);
  {
    torch::NoGradGuard no_grad;
    auto from = plain->named_parameters();
    for (auto& p : fast->named_parameters()) p.value().copy_(from[p.key()]);
  }
  plain->to(device);
  fast->to(device);
  fast->UseChannelsLast(28);

  const auto cl = torch::MemoryFormat::ChannelsLast;
  const auto nchw = torch::MemoryFormat::Contiguous;
  const bool cpu = device.is_cpu();
  EXPECT_EQ(fast->formats[0], cl);
  EXPECT_EQ(fast->formats[1], cl);               // 64 channels on 28 x 28.
  EXPECT_EQ(fast->formats[3], cl);               // 256 on 7 x 7.
  EXPECT_EQ(fast->formats[4], cpu ? nchw : cl);  // 512 on 4 x 4.
  auto params = fast->named_parameters();
  EXPECT_TRUE(params["layer3.1.conv2.weight"].is_contiguous(cl));
  EXPECT_FALSE(params["layer3.1.conv2.weight"].is_contiguous());
  EXPECT_EQ(params["layer4.1.conv2.weight"].is_contiguous(), cpu);
  // (A 1 x 1 kernel, as the downsample's, is the same bytes in both.)
  EXPECT_EQ(params["layer4.0.conv1.weight"].is_contiguous(), cpu);
  EXPECT_TRUE(plain->named_parameters()["layer3.1.conv2.weight"]
                  .is_contiguous());  // Untouched without the call.

  // The same outputs and gradients, in training mode (batch statistics),
  // up to rounding: channels-last's batch-norm kernels sum in float (1e-5
  // relative a layer at batch 128 against fp64, NCHW's 1e-7), which the
  // layers above amplify to ~0.6 % of the stem's largest gradient at batch
  // 6, as with every stage channels-last; a mixed-up layout is off by O(1).
  // On CUDA in fp32 without TF32 (cuDNN's default), whose 10-bit
  // mantissa puts the two layouts 1e-3 apart on an H100.
  const bool tf32 = at::globalContext().allowTF32CuDNN();
  at::globalContext().setAllowTF32CuDNN(false);
  const torch::Tensor images = torch::randn({6, 1, 28, 28}, device);
  auto [plain_logits, plain_f] = plain->forward(images);
  auto [fast_logits, fast_f] = fast->forward(images);
  EXPECT_TRUE(torch::allclose(fast_logits, plain_logits, 1e-4, 1e-4));
  plain_logits.square().sum().backward();
  fast_logits.square().sum().backward();
  auto plain_params = plain->named_parameters();
  for (const char* name : {"conv1.weight", "layer1.0.conv1.weight",
                           "layer4.1.conv2.weight", "fc.weight"}) {
    const torch::Tensor want = plain_params[name].grad();
    const double error =
        (params[name].grad() - want).abs().max().item<double>();
    EXPECT_LE(error, 2e-2 * want.abs().max().item<double>()) << name;
  }
  at::globalContext().setAllowTF32CuDNN(tf32);

  // 224-px images through the ImageNet stem: the last stage's maps are
  // 7 x 7, channels-last all through.
  sc.stem = Stem::kImageNet;
  sc.in_channels = 3;
  ResNetStudent big(sc);
  big->to(device);
  big->UseChannelsLast(224);
  for (torch::MemoryFormat f : big->formats) EXPECT_EQ(f, cl);
}

}  // namespace
}  // namespace distill::engine
