#include "worker/engine/losses.h"

namespace distill::engine {
namespace F = torch::nn::functional;

torch::Tensor CrossEntropyLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& labels) {
  return F::cross_entropy(student_logits, labels);
}

torch::Tensor EmbeddingMseLoss(const torch::Tensor& projected_student,
                               const torch::Tensor& teacher_embedding) {
  return F::mse_loss(projected_student, teacher_embedding.detach());
}

torch::Tensor InstanceKdLoss(const torch::Tensor& student_logits,
                             const torch::Tensor& teacher_logits,
                             double temperature, bool scale_by_tau_squared) {
  torch::Tensor log_p_student =
      torch::log_softmax(student_logits / temperature, 1);
  torch::Tensor log_p_teacher =
      torch::log_softmax(teacher_logits.detach() / temperature, 1);
  torch::Tensor kl = F::kl_div(
      log_p_student, log_p_teacher,
      F::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true));
  return scale_by_tau_squared ? kl * (temperature * temperature) : kl;
}

torch::Tensor PairwiseDistances(const torch::Tensor& e) {
  torch::Tensor square = e.pow(2).sum(1);
  torch::Tensor product = torch::matmul(e, e.t());
  torch::Tensor d = (square.unsqueeze(1) + square.unsqueeze(0) - 2 * product)
                        .clamp_min(1e-12)
                        .sqrt();
  // Zero the diagonal without an in-place write on a tensor autograd needs.
  return d * (1 - torch::eye(e.size(0), d.options()));
}

namespace {

torch::Tensor NormalisedDistances(const torch::Tensor& e) {
  torch::Tensor d = PairwiseDistances(e);
  return d / d.masked_select(d > 0).mean();
}

// N x N x N cosines of the angle at vertex i between (e_j - e_i) and
// (e_k - e_i), flattened.
torch::Tensor Angles(const torch::Tensor& e) {
  torch::Tensor diff = e.unsqueeze(0) - e.unsqueeze(1);
  torch::Tensor unit =
      F::normalize(diff, F::NormalizeFuncOptions().p(2).dim(2));
  return torch::bmm(unit, unit.transpose(1, 2)).view({-1});
}

// smooth-L1 between a relation of the student's embeddings and the same
// relation of the teacher's, which carries no gradient.
torch::Tensor RelationLoss(const torch::Tensor& student,
                           const torch::Tensor& teacher,
                           torch::Tensor (*relation)(const torch::Tensor&)) {
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = relation(teacher.detach());
  }
  return F::smooth_l1_loss(relation(student), target);
}

}  // namespace

torch::Tensor RkdDistanceLoss(const torch::Tensor& student,
                              const torch::Tensor& teacher) {
  return RelationLoss(student, teacher, NormalisedDistances);
}

torch::Tensor RkdAngleLoss(const torch::Tensor& student,
                           const torch::Tensor& teacher) {
  return RelationLoss(student, teacher, Angles);
}

}  // namespace distill::engine
