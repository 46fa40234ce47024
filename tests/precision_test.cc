// Mixed precision (worker/engine/runtime.h): which precision a run gets,
// autocast switched on and off, fp16's loss scaling, and a step of Table
// 1's row H in bf16 (and fp16 on CUDA) against the same step in fp32. Runs
// on $DISTILL_TEST_DEVICE (tests/test_device.h).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "tests/test_device.h"
#include "worker/engine/models.h"
#include "worker/engine/objective.h"
#include "worker/engine/runtime.h"

namespace distill::engine {
namespace {

TEST(PrecisionTest, AutoIsBf16OnCudaAndFp32OnTheCpu) {
  EXPECT_EQ(*ResolvePrecision("auto", torch::Device("cuda:0")),
            Precision::kBf16);
  EXPECT_EQ(*ResolvePrecision("", torch::Device("cuda:0")), Precision::kBf16);
  EXPECT_EQ(*ResolvePrecision("auto", torch::Device("cpu")), Precision::kFp32);
  EXPECT_EQ(*ResolvePrecision("bf16", torch::Device("cpu")), Precision::kBf16);
  EXPECT_EQ(*ResolvePrecision("fp16", torch::Device("cuda:1")),
            Precision::kFp16);
  EXPECT_EQ(*ResolvePrecision("fp32", torch::Device("cuda:0")),
            Precision::kFp32);
}

TEST(PrecisionTest, UnknownNamesAndFp16OnTheCpuAreRefusedNamingThem) {
  absl::StatusOr<Precision> fp8 = ResolvePrecision("fp8", torch::Device("cpu"));
  EXPECT_EQ(fp8.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(fp8.status().message()).find("\"fp8\""),
            std::string::npos)
      << fp8.status();
  absl::StatusOr<Precision> fp16 =
      ResolvePrecision("fp16", torch::Device("cpu"));
  EXPECT_EQ(fp16.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(fp16.status().message()).find("fp16 needs a CUDA"),
            std::string::npos)
      << fp16.status();
}

TEST(PrecisionTest, AutocastScopeLowersMatrixProductsAndRestores) {
  const torch::Device device(TestDevice());
  const torch::Tensor a = torch::randn({8, 8}, device);
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
  {
    AutocastScope amp(device, Precision::kBf16);
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
    {
      AutocastOff off(device);
      EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
    }
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
    AutocastScope nothing(device, Precision::kFp32);
    EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kBFloat16);
  }
  EXPECT_EQ(torch::matmul(a, a).scalar_type(), torch::kFloat);
}

TEST(PrecisionTest, LossScalerSkipsAStepWithAnOverflowAndHalvesTheScale) {
  torch::nn::Linear layer(3, 1);
  torch::optim::SGD optimizer(layer->parameters(), torch::optim::SGDOptions(1));
  const torch::Tensor before = layer->weight.clone().detach();
  LossScaler scaler(/*enabled=*/true, /*initial_scale=*/1024,
                    /*growth_interval=*/2);
  // An overflow: the step is skipped, the weights stay, the scale halves.
  scaler.Scale(layer(torch::full({1, 3}, 1e38)).sum()).backward();
  EXPECT_FALSE(scaler.Step(optimizer));
  EXPECT_TRUE(torch::equal(layer->weight, before));
  EXPECT_EQ(scaler.scale(), 512);
  // Finite gradients are unscaled before the step: the update is the
  // gradient of the unscaled loss (x = 1 for each weight, lr 1).
  for (int i = 0; i < 2; ++i) {
    ClearGradients(optimizer);
    const torch::Tensor w = layer->weight.clone().detach();
    scaler.Scale(layer(torch::ones({1, 3})).sum()).backward();
    EXPECT_TRUE(scaler.Step(optimizer));
    EXPECT_TRUE(torch::allclose(layer->weight, w - 1, 1e-6, 1e-6));
  }
  EXPECT_EQ(scaler.scale(), 1024);  // Two good steps in a row double it.
  LossScaler off(/*enabled=*/false);
  EXPECT_TRUE(torch::equal(off.Scale(torch::ones({2})), torch::ones({2})));
}

// The terms of row H's objective (all four losses) for one batch, the
// forward passes in `precision`, the losses in fp32 as the trainer does.
std::vector<double> RowHTerms(Precision precision, const torch::Device& device,
                              Vit& teacher, ResNetStudent& student,
                              const torch::Tensor& images,
                              const torch::Tensor& labels) {
  LossWeights w;
  w.ce = w.mse = w.ikd = w.rkd_distance = 1;
  w.rkd_angle = 2;
  w.temperature = 4;
  torch::Tensor t_logits, t_embedding, logits, projected;
  {
    AutocastScope amp(device, precision);
    torch::NoGradGuard no_grad;
    std::tie(t_logits, t_embedding) = teacher->forward(images);
    torch::Tensor embedding;
    std::tie(logits, embedding) = student->forward(images);
    projected = student->Project(embedding);
    if (precision != Precision::kFp32) {
      EXPECT_NE(logits.scalar_type(), torch::kFloat);
    }
  }
  Objective o = DistillationObjective(
      w, {.student_logits = logits.to(torch::kFloat),
          .projected = projected.to(torch::kFloat),
          .teacher_logits = t_logits.to(torch::kFloat),
          .teacher_embedding = t_embedding.to(torch::kFloat),
          .labels = labels});
  EXPECT_EQ(o.total.scalar_type(), torch::kFloat);
  std::vector<double> out = {o.total.item<double>()};
  for (const auto& [key, value] : o.terms) out.push_back(value.item<double>());
  return out;
}

TEST(PrecisionTest, AMixedPrecisionStepsLossesMatchTheFp32Steps) {
  const torch::Device device(TestDevice());
  torch::manual_seed(3);
  VitConfig vc;
  vc.width = 32;
  vc.depth = 2;
  Vit teacher(vc);
  teacher->to(device);
  teacher->eval();
  StudentConfig sc;
  sc.width = 8;
  sc.teacher_width = 32;
  ResNetStudent student(sc);
  student->to(device);
  student->eval();  // Batch statistics alike for both passes.
  const torch::Tensor images = torch::randn({32, 1, 28, 28}, device);
  const torch::Tensor labels = torch::randint(
      10, {32}, torch::TensorOptions(device).dtype(torch::kInt64));
  const std::vector<double> fp32 =
      RowHTerms(Precision::kFp32, device, teacher, student, images, labels);
  std::vector<Precision> lower = {Precision::kBf16};
  if (device.is_cuda()) lower.push_back(Precision::kFp16);
  for (Precision p : lower) {
    const std::vector<double> amp =
        RowHTerms(p, device, teacher, student, images, labels);
    ASSERT_EQ(amp.size(), fp32.size());
    // bf16 keeps 8 bits of mantissa (fp16 11): each term within 3 % of its
    // fp32 value, or 0.01 absolute for terms near zero.
    for (size_t i = 0; i < amp.size(); ++i) {
      EXPECT_NEAR(amp[i], fp32[i], std::max(0.03 * std::abs(fp32[i]), 0.01))
          << PrecisionName(p) << " term " << i;
    }
  }
}

}  // namespace
}  // namespace distill::engine
