#ifndef DISTILL_WORKER_ENGINE_WEIGHTS_H_
#define DISTILL_WORKER_ENGINE_WEIGHTS_H_

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/engine/models.h"

namespace distill::engine {

// Reads a file that Python's torch.save wrote from a plain dict
// {name: tensor} (tools/export_weights.py writes one from any torchvision
// ResNet). Fails naming the file when it is not such a dict.
absl::StatusOr<std::map<std::string, torch::Tensor>> ReadStateDict(
    const std::string& path);

// Copies every parameter and buffer of `model` from the file at `path`, by
// name. A name under one of `optional_prefixes` (a classifier head for other
// classes, the student's own projection) is copied when the file has it
// with the same shape and otherwise keeps its initial value. Any other name
// missing from the file is NOT_FOUND, a shape that differs is
// INVALID_ARGUMENT, each naming the first such parameter. On error the
// model is unchanged.
absl::Status LoadWeightsByName(
    torch::nn::Module& model, const std::string& path,
    const std::vector<std::string>& optional_prefixes = {});

// The same from the tensors of `from`, by name; `what` names them in errors
// ("weights file x.pt").
absl::Status CopyWeightsByName(
    torch::nn::Module& model, const std::map<std::string, torch::Tensor>& from,
    const std::string& what,
    const std::vector<std::string>& optional_prefixes = {});
// Every parameter and buffer of `model`, by name.
std::map<std::string, torch::Tensor> NamedWeights(torch::nn::Module& model);

// A student checkpoint holds its architecture next to its weights, so the
// file alone rebuilds the model (for evaluation on any data set: on
// `device`, in the memory formats fastest for images of side `image_side`).
absl::Status SaveStudent(ResNetStudent& student, const std::string& path);
absl::StatusOr<ResNetStudent> LoadStudent(const std::string& path,
                                          const torch::Device& device,
                                          int64_t image_side);

// Where a training run stood at the end of an epoch: enough to go on from
// there on another machine as if it had never stopped.
struct ResumePoint {
  int64_t epoch = 0;            // Epochs done.
  int64_t steps_per_epoch = 0;  // What the run's data and batch size gave.
  // Steps done of the next epoch (a drain stops between steps); 0 at an
  // epoch's end; all of them when the run was handed back while it
  // evaluated that epoch.
  int64_t steps_into_epoch = 0;
};

// Writes `model`'s parameters and buffers, `optimizer`'s state, `point` and
// the CPU random-number generator's state to `path` (whole, then renamed).
absl::Status SaveResumePoint(const std::string& path, torch::nn::Module& model,
                             torch::optim::Optimizer& optimizer,
                             const ResumePoint& point);

// Restores what SaveResumePoint wrote into `model` (already on `device`)
// and `optimizer`. FAILED_PRECONDITION when the file was written for a
// different model, or for another number of steps per epoch than
// `steps_per_epoch`; DATA_LOSS when it cannot be read.
absl::StatusOr<ResumePoint> LoadResumePoint(const std::string& path,
                                            torch::nn::Module& model,
                                            torch::optim::Optimizer& optimizer,
                                            int64_t steps_per_epoch,
                                            const torch::Device& device);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_WEIGHTS_H_
