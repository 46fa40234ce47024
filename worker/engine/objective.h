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
  // RKD distance, RKD angle.
  std::vector<std::pair<std::string, torch::Tensor>> terms;
};

// Whether any term compares the student's projected embedding g(f) with the
// teacher's embedding (MSE, RKD).
bool UsesProjection(const LossWeights& weights);

// total = w_ce CE + w_mse MSE + w_ikd IKD + w_rkd_d RKD_D + w_rkd_a RKD_A,
// each term computed only when its weight is > 0. `projected` is g(f) of
// the student's embedding; REQUIRES: defined when UsesProjection(weights).
Objective DistillationObjective(const LossWeights& weights,
                                const torch::Tensor& student_logits,
                                const torch::Tensor& projected,
                                const torch::Tensor& teacher_logits,
                                const torch::Tensor& teacher_embedding,
                                const torch::Tensor& labels);

// Cross-entropy with the labels alone: how teachers and heads train.
Objective LabelsObjective(const torch::Tensor& logits,
                          const torch::Tensor& labels);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_OBJECTIVE_H_
