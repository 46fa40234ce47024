// The structure-transfer losses of issue 34 (similarity-preserving KD, PKT,
// decoupled KD, 1 - linear CKA) against float64 references of their
// published formulas, as their authors' code computes them
// (tools/make_loss_fixtures.py): values and gradients, odd shapes, equal
// rows, large offsets; and their float32 error against float64.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "tests/loss_fixtures.h"
#include "worker/engine/losses.h"

namespace distill::engine {
namespace {

using StructureLossesTest = LossFixtureTest;
using Embeddings = torch::Tensor (*)(const torch::Tensor&,
                                     const torch::Tensor&);

constexpr double kReferenceTol = 1e-10;

const std::vector<std::pair<std::string, Embeddings>>& EmbeddingLosses() {
  static const auto* const kLosses =
      new std::vector<std::pair<std::string, Embeddings>>{
          {"sp", &SimilarityPreservingLoss},
          {"pkt", &ProbabilisticTransferLoss},
          {"cka", &CkaLoss}};
  return *kLosses;
}

// The loss of `student` against `teacher` and its gradient with respect to
// the student.
std::pair<double, torch::Tensor> ValueAndGrad(Embeddings loss,
                                              const torch::Tensor& student,
                                              const torch::Tensor& teacher) {
  torch::Tensor s = student.clone().requires_grad_(true);
  torch::Tensor value = loss(s, teacher);
  value.backward();
  return {value.item<double>(), s.grad()};
}

// One line of the parity table: a value against its reference, and a
// gradient against its reference when given.
void Parity(const std::string& loss, const std::string& case_name, double value,
            double reference, const torch::Tensor& grad = {},
            const torch::Tensor& grad_reference = {}) {
  const double abs = std::abs(value - reference);
  std::printf("%-5s %-28s %-11.4g %-9.2g %-9.2g", loss.c_str(),
              case_name.c_str(), reference, abs, abs / std::abs(reference));
  if (grad.defined()) {
    const torch::Tensor d = (grad - grad_reference).abs();
    std::printf(
        " %-9.2g %-9.2g", d.max().item<double>(),
        (d / grad_reference.abs().clamp_min(1e-300)).max().item<double>());
  }
  std::printf("\n");
  EXPECT_LE(abs, kReferenceTol * std::max(1.0, std::abs(reference)))
      << loss << " " << case_name;
  if (grad.defined()) {
    EXPECT_TRUE(torch::allclose(grad, grad_reference, 1e-9, 1e-12))
        << loss << " " << case_name << ": "
        << (grad - grad_reference).abs().max();
  }
}

TEST_F(StructureLossesTest, EmbeddingLossesMatchTheirReferences) {
  std::printf("%-5s %-28s %-11s %-9s %-9s %-9s %-9s\n", "loss", "case",
              "reference", "abs", "rel", "grad abs", "grad rel");
  for (const auto& [name, loss] : EmbeddingLosses()) {
    const auto [value, grad] =
        ValueAndGrad(loss, F("student_embedding"), F("teacher_embedding"));
    Parity(name, "6 x 7 vs 6 x 3", value, Scalar(name), grad,
           F(name + "_grad"));
    const auto [odd, odd_grad] =
        ValueAndGrad(loss, F("odd_student"), F("odd_teacher"));
    Parity(name, "5 x 1 vs 5 x 11", odd, Scalar(name + "_odd"), odd_grad,
           F(name + "_odd_grad"));
    Parity(
        name, "two equal rows",
        loss(F("student_embedding_dup"), F("teacher_embedding")).item<double>(),
        Scalar(name + "_dup"));
    Parity(name, "offsets +1000 / +100",
           loss(F("student_embedding") + 1000, F("teacher_embedding") + 100)
               .item<double>(),
           Scalar(name + "_offset"));
  }
}

TEST_F(StructureLossesTest, DecoupledKdMatchesTheReferenceForEachWeighting) {
  struct Case {
    double alpha, beta, temperature;
    const char* key;
  };
  for (const Case& c :
       {Case{1, 8, 4, "dkd_a1_b8_t4"}, Case{0, 1, 1, "dkd_a0_b1_t1"},
        Case{2, 0.5, 2, "dkd_a2_b0.5_t2"}}) {
    torch::Tensor logits = F("student_logits").clone().requires_grad_(true);
    torch::Tensor value = DecoupledKdLoss(logits, F("teacher_logits"), Labels(),
                                          c.alpha, c.beta, c.temperature);
    value.backward();
    char case_name[64];
    std::snprintf(case_name, sizeof(case_name), "a %g b %g T %g, 6 x 5",
                  c.alpha, c.beta, c.temperature);
    Parity("dkd", case_name, value.item<double>(), Scalar(c.key), logits.grad(),
           F(std::string(c.key) + "_grad"));
  }
  Parity("dkd", "logits +1000 / -500",
         DecoupledKdLoss(F("student_logits") + 1000, F("teacher_logits") - 500,
                         Labels(), 1, 8, 4)
             .item<double>(),
         Scalar("dkd_offset"));
}

TEST_F(StructureLossesTest, IdenticalInputsCostNothing) {
  const torch::Tensor& e = F("student_embedding");
  EXPECT_NEAR(SimilarityPreservingLoss(e, e).item<double>(), 0, kReferenceTol);
  EXPECT_NEAR(ProbabilisticTransferLoss(e, e).item<double>(), 0, kReferenceTol);
  EXPECT_NEAR(CkaLoss(e, e).item<double>(), 0, kReferenceTol);
  // CKA does not see a rotation or a scale of either side.
  const torch::Tensor q =
      std::get<0>(torch::linalg::qr(torch::randn({7, 7}, e.options())));
  EXPECT_NEAR(CkaLoss(3 * torch::matmul(e, q), e).item<double>(), 0, 1e-9);
  const torch::Tensor& l = F("student_logits");
  EXPECT_NEAR(DecoupledKdLoss(l, l, Labels(), 1, 8, 4).item<double>(), 0,
              kReferenceTol);
}

// A batch whose rows are all equal (a collapsed student): CKA has no
// variance to compare, the loss is 1 and its gradient 0; a zero row in PKT
// keeps a finite gradient (the reference's sqrt gives NaN there); SP of a
// zero row stays finite.
TEST_F(StructureLossesTest, ZeroVarianceAndZeroRowsStayFinite) {
  const torch::Tensor& t = F("teacher_embedding");
  const torch::Tensor same =
      F("student_embedding").narrow(0, 0, 1).expand({6, 7}).contiguous();
  const auto [cka, cka_grad] = ValueAndGrad(&CkaLoss, same, t);
  EXPECT_EQ(cka, 1);
  EXPECT_EQ(cka_grad.abs().max().item<double>(), 0);
  torch::Tensor zero_row = F("student_embedding").clone();
  zero_row[2].zero_();
  for (const auto& [name, loss] : EmbeddingLosses()) {
    const auto [value, grad] = ValueAndGrad(loss, zero_row, t);
    EXPECT_TRUE(std::isfinite(value)) << name;
    EXPECT_TRUE(torch::isfinite(grad).all().item<bool>()) << name;
  }
}

// Each loss in float32 against float64 on 64 x 128 students and 64 x 192
// teachers, as ViT features are (unit spread, a common offset of 0, 100
// and 1,000); the largest relative error stays under its bound, and the
// table is printed (README's parity table).
TEST_F(StructureLossesTest, Float32StaysNearFloat64) {
  torch::manual_seed(34);
  const auto options = torch::TensorOptions().dtype(torch::kFloat64);
  const torch::Tensor student = torch::randn({64, 128}, options);
  const torch::Tensor teacher = torch::randn({64, 192}, options);
  const torch::Tensor logits = torch::randn({64, 10}, options) * 3;
  const torch::Tensor teacher_logits = torch::randn({64, 10}, options) * 3;
  const torch::Tensor labels = torch::randint(10, {64}, torch::kInt64);
  std::printf("%-5s %-8s %-13s %-10s %-10s\n", "loss", "offset", "float64",
              "abs. error", "rel. error");
  for (const double offset : {0.0, 100.0, 1000.0}) {
    std::vector<std::pair<std::string, std::pair<double, double>>> values;
    for (const auto& [name, loss] : EmbeddingLosses()) {
      values.push_back(
          {name,
           {loss(student + offset, teacher + offset).item<double>(),
            loss((student + offset).to(torch::kFloat32),
                 (teacher + offset).to(torch::kFloat32))
                .item<double>()}});
    }
    values.push_back(
        {"dkd",
         {DecoupledKdLoss(logits + offset, teacher_logits + offset, labels, 1,
                          8, 4)
              .item<double>(),
          DecoupledKdLoss((logits + offset).to(torch::kFloat32),
                          (teacher_logits + offset).to(torch::kFloat32), labels,
                          1, 8, 4)
              .item<double>()}});
    for (const auto& [name, v] : values) {
      const double error = std::abs(v.second - v.first);
      std::printf("%-5s %-8g %-13.6g %-10.2g %-10.2g\n", name.c_str(), offset,
                  v.first, error, error / std::abs(v.first));
      // SP's and PKT's published formulas take the raw rows (no centring):
      // a common offset makes every row one direction, and their values
      // fall to 1e-8 and below (their structure is lost to the offset, in
      // float64 too); the error is then bounded absolutely.
      EXPECT_LE(error, (name == "sp" ? 1e-3 : 1e-5) * std::abs(v.first) + 1e-9)
          << name << " at offset " << offset << ": float32 " << v.second
          << ", float64 " << v.first;
    }
  }
}

}  // namespace
}  // namespace distill::engine
