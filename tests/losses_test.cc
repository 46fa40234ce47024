// The losses against values computed independently: closed forms worked by
// hand, and numbers from PyTorch's Python API (tools/make_loss_fixtures.py,
// RKD as the authors' reference code computes it).
#include "worker/engine/losses.h"

#include <gtest/gtest.h>

#include "tests/loss_fixtures.h"

namespace distill::engine {
namespace {

using LossesTest = LossFixtureTest;

constexpr double kTol = 1e-10;

TEST_F(LossesTest, CrossEntropyMatchesPyTorch) {
  EXPECT_NEAR(CrossEntropyLoss(F("student_logits"), Labels()).item<double>(),
              Scalar("ce"), kTol);
}

TEST_F(LossesTest, CrossEntropyOfUniformLogitsIsLogClasses) {
  torch::Tensor logits = torch::zeros({4, 10}, torch::kFloat64);
  torch::Tensor labels = torch::tensor({0, 3, 9, 5}, torch::kInt64);
  EXPECT_NEAR(CrossEntropyLoss(logits, labels).item<double>(), std::log(10.0),
              kTol);
}

TEST_F(LossesTest, EmbeddingMseByHand) {
  // (1-0)^2, (2-0)^2, (0-1)^2, (0-3)^2: mean over all four elements = 15/4.
  torch::Tensor student =
      torch::tensor({{1.0, 2.0}, {0.0, 0.0}}, torch::kFloat64);
  torch::Tensor teacher =
      torch::tensor({{0.0, 0.0}, {1.0, 3.0}}, torch::kFloat64);
  EXPECT_NEAR(EmbeddingMseLoss(student, teacher).item<double>(), 15.0 / 4,
              kTol);
}

TEST_F(LossesTest, EmbeddingMseThroughProjectionMatchesPyTorch) {
  torch::nn::Linear projection(7, 3);
  projection->to(torch::Device(TestDevice()), torch::kFloat64);
  {
    torch::NoGradGuard no_grad;
    projection->weight.copy_(F("projection_weight"));
    projection->bias.copy_(F("projection_bias"));
  }
  torch::Tensor loss = EmbeddingMseLoss(projection(F("student_embedding")),
                                        F("teacher_embedding"));
  EXPECT_NEAR(loss.item<double>(), Scalar("mse_projected"), kTol);
  loss.backward();
  EXPECT_TRUE(torch::allclose(projection->weight.grad(),
                              F("mse_projected_grad_weight"), 1e-9, 1e-12));
}

TEST_F(LossesTest, InstanceKdMatchesPyTorchWithAndWithoutTauSquared) {
  const auto& s = F("student_logits");
  const auto& t = F("teacher_logits");
  EXPECT_NEAR(InstanceKdLoss(s, t, 4.0, true).item<double>(),
              Scalar("ikd_tau4_scaled"), kTol);
  EXPECT_NEAR(InstanceKdLoss(s, t, 4.0, false).item<double>(),
              Scalar("ikd_tau4_unscaled"), kTol);
  EXPECT_NEAR(InstanceKdLoss(s, t, 1.0, true).item<double>(),
              Scalar("ikd_tau1"), kTol);
  // The factor is exactly tau^2.
  EXPECT_NEAR(Scalar("ikd_tau4_scaled"), 16 * Scalar("ikd_tau4_unscaled"),
              1e-9);
}

TEST_F(LossesTest, InstanceKdOfIdenticalLogitsIsZero) {
  torch::Tensor logits = torch::randn({5, 10}, torch::kFloat64);
  EXPECT_NEAR(InstanceKdLoss(logits, logits, 3.0, true).item<double>(), 0.0,
              kTol);
}

TEST_F(LossesTest, InstanceKdByHandForTwoClasses) {
  // Teacher p = (0.5, 0.5), student q = softmax(0, log 3) = (0.25, 0.75):
  // KL = 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75) = 0.5 ln(4/3).
  torch::Tensor student =
      torch::tensor({{0.0, std::log(3.0)}}, torch::kFloat64);
  torch::Tensor teacher = torch::zeros({1, 2}, torch::kFloat64);
  EXPECT_NEAR(InstanceKdLoss(student, teacher, 1.0, false).item<double>(),
              0.5 * std::log(4.0 / 3.0), kTol);
}

TEST_F(LossesTest, RkdDistanceMatchesReferenceCode) {
  torch::Tensor s = F("student_embedding").clone().requires_grad_(true);
  torch::Tensor loss = RkdDistanceLoss(s, F("teacher_embedding"));
  EXPECT_NEAR(loss.item<double>(), Scalar("rkd_distance"), kTol);
  loss.backward();
  EXPECT_TRUE(torch::allclose(s.grad(), F("rkd_distance_grad"), 1e-9, 1e-12));
}

TEST_F(LossesTest, RkdAngleMatchesReferenceCode) {
  torch::Tensor s = F("student_embedding").clone().requires_grad_(true);
  torch::Tensor loss = RkdAngleLoss(s, F("teacher_embedding"));
  EXPECT_NEAR(loss.item<double>(), Scalar("rkd_angle"), kTol);
  loss.backward();
  EXPECT_TRUE(torch::allclose(s.grad(), F("rkd_angle_grad"), 1e-9, 1e-12));
}

TEST_F(LossesTest, RkdWithIdenticalStudentRowsMatchesReferenceCode) {
  EXPECT_NEAR(
      RkdDistanceLoss(F("student_embedding_dup"), F("teacher_embedding"))
          .item<double>(),
      Scalar("rkd_distance_dup"), kTol);
  torch::Tensor angle =
      RkdAngleLoss(F("student_embedding_dup"), F("teacher_embedding"));
  EXPECT_NEAR(angle.item<double>(), Scalar("rkd_angle_dup"), kTol);
  EXPECT_TRUE(std::isfinite(angle.item<double>()));
}

// Embeddings as ViT features are: a large common component (an offset of
// 100 or 1,000 against unit spread) or a few outlier dimensions (+300).
// Both RKD terms in float32 stay within 1e-5 of their float64 values (the
// reference's distance term, from the raw rows' Gram matrix, is 7e-4 and
// 0.66 off at the two offsets).
TEST_F(LossesTest, RkdInFloat32StaysNearFloat64OnOffsetEmbeddings) {
  torch::manual_seed(11);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor student = torch::randn({32, 64}, options);
  const torch::Tensor teacher = torch::randn({32, 96}, options);
  torch::Tensor outliers = torch::zeros({1, 96}, options);
  outliers.index_put_({0, torch::indexing::Slice(0, 4)}, 300.0);
  struct Case {
    const char* name;
    torch::Tensor student, teacher;
  };
  const std::vector<Case> cases = {
      {"offset 100", student + 100, teacher + 100},
      {"offset 1000", student + 1000, teacher + 1000},
      {"outlier dimensions +300", student, teacher + outliers}};
  for (const Case& c : cases) {
    for (const auto& [term, loss] : {std::pair{"distance", &RkdDistanceLoss},
                                     std::pair{"angle", &RkdAngleLoss}}) {
      const double exact = loss(c.student, c.teacher).item<double>();
      const double single =
          loss(c.student.to(torch::kFloat32), c.teacher.to(torch::kFloat32))
              .item<double>();
      EXPECT_LE(std::abs(single - exact), 1e-5 * std::abs(exact))
          << term << " on " << c.name << ": float32 " << single << ", float64 "
          << exact;
    }
  }
}

// Equal rows (a collapsed student early in training): the distance term's
// zero difference is clamped to 1e-6 as the reference does, the angle
// term's cosine at a zero difference is 0 (the reference's normalisation of
// a zero vector) — loss values as the reference's — and both gradients are
// finite and bounded where the reference's angle gradient reaches ~1e9.
TEST_F(LossesTest, RkdOnEqualRowsHasTheReferencesValueAndAFiniteGradient) {
  torch::Tensor student = F("student_embedding_dup").clone();
  for (auto* term : {&RkdDistanceLoss, &RkdAngleLoss}) {
    torch::Tensor s = student.clone().requires_grad_(true);
    torch::Tensor loss = term(s, F("teacher_embedding"));
    loss.backward();
    EXPECT_TRUE(std::isfinite(loss.item<double>()));
    EXPECT_TRUE(torch::isfinite(s.grad()).all().item<bool>());
    EXPECT_LT(s.grad().abs().max().item<double>(), 1e3);
  }
  EXPECT_NEAR(RkdDistanceLoss(student, F("teacher_embedding")).item<double>(),
              Scalar("rkd_distance_dup"), kTol);
  EXPECT_NEAR(RkdAngleLoss(student, F("teacher_embedding")).item<double>(),
              Scalar("rkd_angle_dup"), kTol);
}

TEST_F(LossesTest, PairwiseDistancesByHand) {
  // A 3-4-5 right triangle.
  torch::Tensor e =
      torch::tensor({{0.0, 0.0}, {3.0, 0.0}, {0.0, 4.0}}, torch::kFloat64);
  torch::Tensor expected = torch::tensor(
      {{0.0, 3.0, 4.0}, {3.0, 0.0, 5.0}, {4.0, 5.0, 0.0}}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(PairwiseDistances(e), expected, 1e-9, 1e-12));
}

TEST_F(LossesTest, RkdIsZeroForAScaledRotatedCopyOfTheTeacher) {
  // Relations are invariant to scale and rotation, and RKD takes any widths:
  // a 2-D teacher embedded (rotated, scaled by 3) into 3-D.
  torch::Tensor teacher = torch::randn({8, 2}, torch::kFloat64);
  const double c = std::cos(0.7), s = std::sin(0.7);
  torch::Tensor rotation =
      torch::tensor({{c, -s, 0.0}, {s, c, 0.0}}, torch::kFloat64);
  torch::Tensor student = 3.0 * torch::matmul(teacher, rotation);
  EXPECT_NEAR(RkdDistanceLoss(student, teacher).item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(RkdAngleLoss(student, teacher).item<double>(), 0.0, 1e-12);
}

TEST_F(LossesTest, GradientsFlowToTheStudentOnly) {
  torch::Tensor student_logits =
      F("student_logits").clone().requires_grad_(true);
  torch::Tensor teacher_logits =
      F("teacher_logits").clone().requires_grad_(true);
  torch::Tensor student =
      F("student_embedding").narrow(1, 0, 3).clone().requires_grad_(true);
  torch::Tensor teacher = F("teacher_embedding").clone().requires_grad_(true);
  torch::Tensor total =
      InstanceKdLoss(student_logits, teacher_logits, 4.0, true) +
      EmbeddingMseLoss(student, teacher) + RkdDistanceLoss(student, teacher) +
      RkdAngleLoss(student, teacher);
  total.backward();
  ASSERT_TRUE(student_logits.grad().defined());
  ASSERT_TRUE(student.grad().defined());
  EXPECT_GT(student_logits.grad().abs().sum().item<double>(), 0);
  EXPECT_GT(student.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(teacher_logits.grad().defined());
  EXPECT_FALSE(teacher.grad().defined());
  EXPECT_TRUE(
      torch::allclose(student_logits.grad(), F("ikd_tau4_grad"), 1e-9, 1e-12));
}

}  // namespace
}  // namespace distill::engine
