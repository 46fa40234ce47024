#ifndef DISTILL_WORKER_ENGINE_TRAINER_H_
#define DISTILL_WORKER_ENGINE_TRAINER_H_

#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "worker/engine/models.h"
#include "worker/engine/run_config.h"

namespace distill::engine {

struct Metric {
  int64_t step = 0;
  int64_t epoch = 0;
  std::string key;
  double value = 0;
  int64_t time_ms = 0;
};

// How a run talks to whoever executes it. Each callback is called from the
// training thread and must return quickly.
struct RunHooks {
  // Receives metric points in the order they were measured. May be empty.
  std::function<void(std::vector<Metric>)> on_metrics;
  // Polled once per step; true ends the run early (cancelled or lost lease).
  std::function<bool()> should_stop;
  // kDistill, kEvaluate: a checkpoint written by a kTrainTeacher run.
  std::string teacher_checkpoint;
  // kEvaluate: a checkpoint written by a kDistill run.
  std::string student_checkpoint;
  // Where the final checkpoint is written.
  std::string output_checkpoint;
  // A resume point an earlier attempt of this run wrote (see resume_path):
  // training goes on after its epoch. Empty: from the beginning.
  std::string resume_from;
  // Where the end of every epoch but the last writes a resume point
  // (SaveResumePoint), then calls on_resume_point with the epoch. Empty:
  // none is written.
  std::string resume_path;
  std::function<void(int64_t epoch)> on_resume_point;
  // Where artifacts (tsne.csv) are written; empty: none are.
  std::string artifact_dir;
  // The host's teacher-output cache entry for this run's teacher and data
  // (a file named by their content hashes; see TeacherCacheInputs); empty:
  // no cache. Used only where the teacher's view is deterministic.
  std::string teacher_cache_path;
};

struct RunOutcome {
  // Final values: "eval/top1", "teacher/top1", "train/images_per_sec", ...
  // and "train/resumed_from_epoch" when the run went on from a resume point.
  std::map<std::string, double> results;
  // The run ended because should_stop said so; no checkpoint was written.
  bool stopped = false;
  // Files written under RunHooks::artifact_dir.
  std::vector<std::string> artifacts;
};

// Trains the teacher or distils the student as `config` says. Every LibTorch
// exception is caught and returned as a status naming what failed.
absl::StatusOr<RunOutcome> ExecuteRun(const RunConfig& config,
                                      const RunHooks& hooks);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_TRAINER_H_
