#ifndef DISTILL_WORKER_ENGINE_LOSSES_H_
#define DISTILL_WORKER_ENGINE_LOSSES_H_

#include <torch/torch.h>

namespace distill::engine {

// The four distillation losses exactly as shared/DESIGN.md defines them.
// Teacher-side arguments never carry gradient (they are detached here).

// Cross-entropy of student logits with the labels, mean over the batch.
torch::Tensor CrossEntropyLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& labels);

// Mean over all elements of (projected - teacher_embedding)^2.
torch::Tensor EmbeddingMseLoss(const torch::Tensor& projected_student,
                               const torch::Tensor& teacher_embedding);

// Hinton's KL(softmax(t/tau) || softmax(s/tau)), summed over classes,
// averaged over the batch, times tau^2 when `scale_by_tau_squared`.
torch::Tensor InstanceKdLoss(const torch::Tensor& student_logits,
                             const torch::Tensor& teacher_logits,
                             double temperature, bool scale_by_tau_squared);

// Park et al.'s RKD terms, as the authors' reference code computes them.
// Takes any two N x d tensors (the widths may differ). REQUIRES: N >= 3.
torch::Tensor RkdDistanceLoss(const torch::Tensor& student,
                              const torch::Tensor& teacher);
torch::Tensor RkdAngleLoss(const torch::Tensor& student,
                           const torch::Tensor& teacher);

// Euclidean distance matrix with a zero diagonal (the reference `pdist`).
torch::Tensor PairwiseDistances(const torch::Tensor& e);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_LOSSES_H_
