#ifndef DISTILL_WORKER_ENGINE_TEACHER_H_
#define DISTILL_WORKER_ENGINE_TEACHER_H_

#include <torch/script.h>
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "worker/engine/models.h"

namespace distill::engine {

// A frozen teacher: a native ViT trained here, a TorchScript file whose
// forward(images) returns (logits, embedding), or such a backbone with a
// linear head fitted here. Not thread-safe.
class Teacher {
 public:
  virtual ~Teacher() = default;
  // (logits, embedding) of a batch, on the teacher's device, without
  // gradient. Fails naming the expected input when the shape is wrong.
  virtual absl::StatusOr<LogitsAndEmbedding> Forward(
      const torch::Tensor& images) = 0;
  virtual std::string Describe() const = 0;
};

std::unique_ptr<Teacher> NativeTeacher(Vit vit);

// Loads a TorchScript teacher file (tools/export_teacher.py) onto `device`,
// in eval mode with every parameter frozen.
absl::StatusOr<std::unique_ptr<Teacher>> LoadTorchScriptTeacher(
    const std::string& path, const torch::Device& device);

// A checkpoint written by a TRAIN_TEACHER run: a native ViT (SaveVitTeacher)
// or a TorchScript backbone with a fitted head (SaveLinearHeadTeacher).
// Each holds everything needed to rebuild it.
absl::StatusOr<std::unique_ptr<Teacher>> LoadTeacherCheckpoint(
    const std::string& path, const torch::Device& device);

absl::Status SaveVitTeacher(Vit& teacher, const std::string& path);
absl::StatusOr<Vit> LoadVitTeacher(const std::string& path,
                                   const torch::Device& device);

// Stores the TorchScript file's bytes and the head, so the checkpoint alone
// is the teacher wherever it is downloaded.
absl::Status SaveLinearHeadTeacher(const std::string& torchscript_path,
                                   torch::nn::Linear& head,
                                   const std::string& path);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_TEACHER_H_
