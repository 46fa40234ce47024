// The weighted distillation objective against PyTorch's Python API
// (tools/make_loss_fixtures.py): the sum, its gradient, and which terms run.
#include "worker/engine/objective.h"

#include <gtest/gtest.h>

#include "common/metric_keys.h"
#include "tests/loss_fixtures.h"
#include "worker/engine/losses.h"

namespace distill::engine {
namespace {

using ObjectiveTest = LossFixtureTest;

// g(f) as the fixture script computes it: s W^T + b.
torch::Tensor Projected(const torch::Tensor& s, const torch::Tensor& w,
                        const torch::Tensor& b) {
  return torch::addmm(b, s, w.t());
}

TEST_F(ObjectiveTest, WeightedSumAndItsGradientMatchPyTorch) {
  const torch::Tensor ow = F("objective_weights");
  LossWeights w;
  w.ce = ow[0].item<double>();
  w.mse = ow[1].item<double>();
  w.ikd = ow[2].item<double>();
  w.temperature = ow[3].item<double>();
  w.scale_by_tau_squared = true;
  w.rkd_distance = ow[4].item<double>();
  w.rkd_angle = ow[5].item<double>();
  torch::Tensor logits = F("student_logits").clone().requires_grad_(true);
  const Objective o = DistillationObjective(
      w, {.student_logits = logits,
          .projected = Projected(F("student_embedding"), F("projection_weight"),
                                 F("projection_bias")),
          .teacher_logits = F("teacher_logits"),
          .teacher_embedding = F("teacher_embedding"),
          .labels = Labels()});
  EXPECT_NEAR(o.total.item<double>(), Scalar("objective_total"), 1e-10);
  o.total.backward();
  EXPECT_TRUE(
      torch::allclose(logits.grad(), F("objective_grad_logits"), 1e-9, 1e-12));
  // Each term is reported unweighted, by its metric key, in summing order.
  ASSERT_EQ(o.terms.size(), 5u);
  EXPECT_EQ(o.terms[0].first, metric_keys::kLossCe);
  EXPECT_NEAR(o.terms[0].second.item<double>(), Scalar("ce"), 1e-10);
  EXPECT_EQ(o.terms[1].first, metric_keys::kLossIkd);
  EXPECT_NEAR(o.terms[1].second.item<double>(), Scalar("ikd_tau4_scaled"),
              1e-10);
  EXPECT_EQ(o.terms[2].first, metric_keys::kLossMse);
  EXPECT_NEAR(o.terms[2].second.item<double>(), Scalar("mse_projected"), 1e-10);
  EXPECT_EQ(o.terms[3].first, metric_keys::kLossRkdDistance);
  EXPECT_EQ(o.terms[4].first, metric_keys::kLossRkdAngle);
  for (const auto& [key, value] : o.terms)
    EXPECT_FALSE(value.requires_grad()) << key;
}

TEST_F(ObjectiveTest, OnlyTermsWithAWeightRunAndNeedNoProjection) {
  LossWeights w;
  w.ce = 2;
  w.ikd = 0;
  EXPECT_FALSE(UsesProjection(w));
  // Without a projection-using term, the projected embedding may be absent.
  const Objective o =
      DistillationObjective(w, {.student_logits = F("student_logits"),
                                .teacher_logits = F("teacher_logits"),
                                .labels = Labels()});
  ASSERT_EQ(o.terms.size(), 1u);
  EXPECT_NEAR(o.total.item<double>(), 2 * Scalar("ce"), 1e-10);
  w.rkd_angle = 1;
  EXPECT_TRUE(UsesProjection(w));
}

// DKD's warm-up, as the authors' code weighs it: min(epoch / warm-up, 1)
// times the weight; the term itself reported unweighted.
TEST_F(ObjectiveTest, DkdWarmsUpOverItsEpochsAndThenWeighsInFull) {
  LossWeights w;
  w.dkd = 2;
  w.dkd_warmup_epochs = 4;
  BatchOutputs batch{.student_logits = F("student_logits"),
                     .teacher_logits = F("teacher_logits"),
                     .labels = Labels()};
  const double dkd =
      DecoupledKdLoss(batch.student_logits, batch.teacher_logits, batch.labels,
                      w.dkd_alpha, w.dkd_beta, w.dkd_temperature)
          .item<double>();
  ASSERT_GT(dkd, 0);
  for (const auto& [epoch, weight] :
       {std::pair{1, 0.5}, std::pair{3, 1.5}, std::pair{4, 2.0},
        std::pair{9, 2.0}, std::pair{0, 2.0}}) {
    batch.epoch = epoch;
    const Objective o = DistillationObjective(w, batch);
    EXPECT_NEAR(o.total.item<double>(), weight * dkd, 1e-10) << epoch;
    ASSERT_EQ(o.terms.size(), 1u);
    EXPECT_NEAR(o.terms[0].second.item<double>(), dkd, 1e-10) << epoch;
  }
  w.dkd_warmup_epochs = 0;  // None: full weight from the first epoch.
  batch.epoch = 1;
  EXPECT_NEAR(DistillationObjective(w, batch).total.item<double>(), 2 * dkd,
              1e-10);
}

TEST_F(ObjectiveTest, LabelsObjectiveIsCrossEntropy) {
  const Objective o = LabelsObjective(F("student_logits"), Labels());
  EXPECT_NEAR(o.total.item<double>(), Scalar("ce"), 1e-10);
  ASSERT_EQ(o.terms.size(), 1u);
  EXPECT_EQ(o.terms[0].first, metric_keys::kLossCe);
}

}  // namespace
}  // namespace distill::engine
