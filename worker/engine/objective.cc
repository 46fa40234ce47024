#include "worker/engine/objective.h"

#include <algorithm>

#include "common/metric_keys.h"
#include "worker/engine/losses.h"

namespace distill::engine {

bool UsesProjection(const LossWeights& w) {
  return w.mse > 0 || w.rkd_distance > 0 || w.rkd_angle > 0;
}

Objective DistillationObjective(const LossWeights& w, const BatchOutputs& b) {
  Objective out;
  out.total = torch::zeros({}, b.student_logits.options());
  auto add = [&](const char* key, double weight, torch::Tensor value) {
    out.terms.emplace_back(key, value.detach());
    out.total = out.total + weight * value;
  };
  if (w.ce > 0)
    add(metric_keys::kLossCe, w.ce,
        CrossEntropyLoss(b.student_logits, b.labels));
  if (w.ikd > 0) {
    add(metric_keys::kLossIkd, w.ikd,
        InstanceKdLoss(b.student_logits, b.teacher_logits, w.temperature,
                       w.scale_by_tau_squared));
  }
  if (w.mse > 0) {
    add(metric_keys::kLossMse, w.mse,
        EmbeddingMseLoss(b.projected, b.teacher_embedding));
  }
  if (w.rkd_distance > 0) {
    add(metric_keys::kLossRkdDistance, w.rkd_distance,
        RkdDistanceLoss(b.projected, b.teacher_embedding));
  }
  if (w.rkd_angle > 0) {
    add(metric_keys::kLossRkdAngle, w.rkd_angle,
        RkdAngleLoss(b.projected, b.teacher_embedding));
  }
  if (w.sp > 0) {
    add(metric_keys::kLossSp, w.sp,
        SimilarityPreservingLoss(b.student_embedding, b.teacher_embedding));
  }
  if (w.pkt > 0) {
    add(metric_keys::kLossPkt, w.pkt,
        ProbabilisticTransferLoss(b.student_embedding, b.teacher_embedding));
  }
  if (w.dkd > 0) {
    const double warm =
        w.dkd_warmup_epochs > 0 && b.epoch > 0
            ? std::min(1.0, double(b.epoch) / double(w.dkd_warmup_epochs))
            : 1.0;
    add(metric_keys::kLossDkd, w.dkd * warm,
        DecoupledKdLoss(b.student_logits, b.teacher_logits, b.labels,
                        w.dkd_alpha, w.dkd_beta, w.dkd_temperature));
  }
  if (w.cka > 0) {
    add(metric_keys::kLossCka, w.cka,
        CkaLoss(b.student_embedding, b.teacher_embedding));
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
