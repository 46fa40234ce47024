// The frozen teacher of a run and its outputs on the run's data: loaded,
// computed once per image in the evaluation view, and kept in the host's
// teacher-output cache for every later run with the same teacher and data.
#ifndef DISTILL_WORKER_ENGINE_TEACHER_OUTPUTS_H_
#define DISTILL_WORKER_ENGINE_TEACHER_OUTPUTS_H_

#include <torch/torch.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "worker/engine/models.h"
#include "worker/engine/run_config.h"
#include "worker/engine/run_hooks.h"
#include "worker/engine/splits.h"
#include "worker/engine/teacher.h"

namespace distill::engine {

// The teacher `config` names: its TorchScript file, else the checkpoint at
// `checkpoint` (a TRAIN_TEACHER run's).
absl::StatusOr<std::unique_ptr<Teacher>> LoadFrozenTeacher(
    const RunConfig& config, const std::string& checkpoint);

// The file that is the teacher: config.teacher_torchscript, else
// `checkpoint`; empty for a run that trains its own ViT.
std::string TeacherFile(const RunConfig& config, const std::string& checkpoint);

// Everything that shapes the frozen teacher's outputs on config's data, as
// text: the content digests of the teacher file and of every data file, the
// data options that change what the teacher sees (data set, limits, image
// size, crop to boxes), and the device. Options that don't (the student,
// losses, optimizer, seed, augmentation of training views, loader threads)
// are left out, so a sweep's members share one entry. Empty when there is
// nothing to key: no teacher file, or data files that cannot be listed or
// read (the run then reports the data). Fails when the teacher file cannot
// be digested.
absl::StatusOr<std::string> TeacherCacheKey(const RunConfig& config,
                                            const std::string& teacher_file,
                                            const TeacherCache& cache);

// The cache entry for `config`'s teacher outputs: dir/<digest of the key>.pt,
// or empty when there is no cache or no key.
absl::StatusOr<std::string> TeacherCacheEntry(const RunConfig& config,
                                              const std::string& teacher_file,
                                              const TeacherCache& cache);

struct TeacherOutputs {
  LogitsAndEmbedding train, test;  // Evaluation views, on the CPU.
  bool from_cache = false;
};

// The frozen teacher's outputs on both splits: read from `entry` when it
// holds them for these splits; else computed with `teacher` (or, when null,
// the teacher LoadFrozenTeacher gives) and written to `entry` when set (a
// damaged entry is replaced).
absl::StatusOr<TeacherOutputs> ComputeTeacherOutputs(
    Data& data, Teacher* teacher, const RunConfig& config,
    const std::string& teacher_checkpoint, const std::string& entry);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_TEACHER_OUTPUTS_H_
