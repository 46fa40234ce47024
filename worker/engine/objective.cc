#include "worker/engine/objective.h"

#include "common/metric_keys.h"
#include "worker/engine/losses.h"

namespace distill::engine {

bool UsesProjection(const LossWeights& w) {
  return w.mse > 0 || w.rkd_distance > 0 || w.rkd_angle > 0;
}

Objective DistillationObjective(const LossWeights& w,
                                const torch::Tensor& student_logits,
                                const torch::Tensor& projected,
                                const torch::Tensor& teacher_logits,
                                const torch::Tensor& teacher_embedding,
                                const torch::Tensor& labels) {
  Objective out;
  out.total = torch::zeros({}, student_logits.options());
  auto add = [&](const char* key, double weight, torch::Tensor value) {
    out.terms.emplace_back(key, value.detach());
    out.total = out.total + weight * value;
  };
  if (w.ce > 0)
    add(metric_keys::kLossCe, w.ce, CrossEntropyLoss(student_logits, labels));
  if (w.ikd > 0) {
    add(metric_keys::kLossIkd, w.ikd,
        InstanceKdLoss(student_logits, teacher_logits, w.temperature,
                       w.scale_by_tau_squared));
  }
  if (w.mse > 0) {
    add(metric_keys::kLossMse, w.mse,
        EmbeddingMseLoss(projected, teacher_embedding));
  }
  if (w.rkd_distance > 0) {
    add(metric_keys::kLossRkdDistance, w.rkd_distance,
        RkdDistanceLoss(projected, teacher_embedding));
  }
  if (w.rkd_angle > 0) {
    add(metric_keys::kLossRkdAngle, w.rkd_angle,
        RkdAngleLoss(projected, teacher_embedding));
  }
  return out;
}

Objective LabelsObjective(const torch::Tensor& logits,
                          const torch::Tensor& labels) {
  Objective out;
  out.total = CrossEntropyLoss(logits, labels);
  out.terms.emplace_back(metric_keys::kLossCe, out.total.detach());
  return out;
}

}  // namespace distill::engine
