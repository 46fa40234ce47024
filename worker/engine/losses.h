#ifndef DISTILL_WORKER_ENGINE_LOSSES_H_
#define DISTILL_WORKER_ENGINE_LOSSES_H_

#include <torch/torch.h>

namespace distill::engine {

// The four distillation losses exactly as shared/DESIGN.md defines them,
// and four structure-transfer losses after them.
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

// The structure-transfer losses beyond the paper's four (issue 34), each as
// its authors' code computes it. The embeddings are any two N x d tensors
// (the widths may differ): they compare relations within the batch.

// Similarity-preserving KD (Tung & Mori 2019): each side's Gram matrix
// E E^T with its rows L2-normalised (a zero row stays zero);
// ||G_s - G_t||_F^2 / N^2. REQUIRES: N >= 1.
torch::Tensor SimilarityPreservingLoss(const torch::Tensor& student,
                                       const torch::Tensor& teacher);

// Probabilistic knowledge transfer (Passalis & Tefas 2018), as the
// authors' code: rows normalised by |e| + 1e-7, cosine similarities mapped
// to (s + 1) / 2 and each row divided by its sum (a distribution over the
// batch, itself included); mean over the N^2 entries of
// p_t log((p_t + 1e-7) / (p_s + 1e-7)). A zero row has similarity 1/2 to
// every row (and a finite gradient, where the reference's sqrt gives NaN).
torch::Tensor ProbabilisticTransferLoss(const torch::Tensor& student,
                                        const torch::Tensor& teacher);

// Decoupled KD (Zhao et al. 2022), as the authors' mdistiller code:
// alpha TCKD + beta NCKD, where TCKD is the KL divergence of the binary
// (target class, the rest) distributions at `temperature` and NCKD that of
// the distributions over the non-target classes, each summed over the
// batch, times temperature^2, over N. No warm-up: the weight is constant.
torch::Tensor DecoupledKdLoss(const torch::Tensor& student_logits,
                              const torch::Tensor& teacher_logits,
                              const torch::Tensor& labels, double alpha,
                              double beta, double temperature);

// 1 - linear CKA (Kornblith et al. 2019) of the batch's embeddings:
// 1 - <K, L>_F / (|K|_F |L|_F) with K, L the Gram matrices of the
// column-centred rows. A side with no variance (all rows equal) has CKA 0:
// the loss is 1 and its gradient 0. REQUIRES: N >= 2.
torch::Tensor CkaLoss(const torch::Tensor& student,
                      const torch::Tensor& teacher);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_LOSSES_H_
