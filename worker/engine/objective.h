// What a training step minimises: the weighted sum of shared/DESIGN.md's
// losses (worker/engine/losses.h), with each term kept for reporting.
#ifndef DISTILL_WORKER_ENGINE_OBJECTIVE_H_
#define DISTILL_WORKER_ENGINE_OBJECTIVE_H_

#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "worker/engine/run_config.h"

namespace distill::engine {

struct Objective {
  torch::Tensor total;  // What backward() starts from.
  // Each term that is on, unweighted and detached, by its metric key
  // (common/metric_keys.h), in the order they are summed: CE, IKD, MSE,
  // RKD distance, RKD angle, SP, PKT, DKD, CKA.
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

// Whether any term compares the student's projected embedding g(f) with the
// teacher's embedding (MSE, RKD).
bool UsesProjection(const LossWeights& weights);

// What a distillation step's losses compare, for one batch.
struct BatchOutputs {
  torch::Tensor student_logits;
  torch::Tensor student_embedding;  // f: needed by SP, PKT and CKA.
  torch::Tensor projected;  // g(f); REQUIRES: defined when UsesProjection.
  torch::Tensor teacher_logits;
  torch::Tensor teacher_embedding;
  torch::Tensor labels;
  // The step's epoch, from 1, for DKD's warm-up; 0: none applied.
  int64_t epoch = 0;
};

// total = w_ce CE + w_mse MSE + w_ikd IKD + w_rkd_d RKD_D + w_rkd_a RKD_A
//   + w_sp SP + w_pkt PKT + w_dkd DKD + w_cka CKA,
// each term computed only when its weight is > 0; w_dkd times
// min(epoch / dkd_warmup_epochs, 1) while a warm-up lasts.
Objective DistillationObjective(const LossWeights& weights,
                                const BatchOutputs& batch);

// Cross-entropy with the labels alone: how teachers and heads train.
Objective LabelsObjective(const torch::Tensor& logits,
                          const torch::Tensor& labels);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_OBJECTIVE_H_
