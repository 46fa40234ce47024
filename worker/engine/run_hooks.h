// How a run talks to whoever executes it (the worker, --run_local, tests):
// what it is given, what it reports, what it returns.
#ifndef DISTILL_WORKER_ENGINE_RUN_HOOKS_H_
#define DISTILL_WORKER_ENGINE_RUN_HOOKS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace distill::engine {

struct Metric {
  int64_t step = 0;
  int64_t epoch = 0;
  std::string key;  // common/metric_keys.h
  double value = 0;
  int64_t time_ms = 0;
};

// The host's teacher-output cache. The engine names each entry by a digest
// of everything that shapes the frozen teacher's outputs (TeacherCacheKey);
// the host provides where entries live and how it digests content.
struct TeacherCache {
  std::string dir;  // Empty: no cache.
  // Hex content digests of a file and of a text (SHA-256 on the worker).
  std::function<absl::StatusOr<std::string>(const std::string& path)>
      file_digest;
  std::function<std::string(const std::string& text)> text_digest;
  // Called with each entry a run reads or writes (the worker marks it used).
  std::function<void(const std::string& entry)> on_use;
};

// Each callback is called from the training thread and must return quickly.
struct RunHooks {
  // Receives metric points in the order they were measured. May be empty.
  std::function<void(std::vector<Metric>)> on_metrics;
  // Polled once per step; true ends the run early (cancelled or lost lease).
  std::function<bool()> should_stop;
  // Polled once per step; true (the worker is draining) writes a resume
  // point at this step boundary (resume_path, then on_resume_point) and
  // ends the run early with RunOutcome::drained, so that another worker
  // goes on from this very step.
  std::function<bool()> should_drain;
  // kDistill, kEvaluate: a checkpoint written by a kTrainTeacher run.
  std::string teacher_checkpoint;
  // kEvaluate: a checkpoint written by a kDistill run.
  std::string student_checkpoint;
  // Where the final checkpoint (the trained model) is written.
  std::string output_checkpoint;
  // A resume point an earlier attempt of this run wrote (see resume_path):
  // training goes on after its epoch. Empty: from the beginning.
  std::string resume_from;
  // Where the end of every epoch but the last writes a resume point
  // (SaveResumePoint), then calls on_resume_point with the epochs done (and
  // a drain, with the steps done of the next). Empty: none is written.
  std::string resume_path;
  std::function<void(int64_t epoch)> on_resume_point;
  // Where run files other than the checkpoint (tsne.csv) are written;
  // empty: none are.
  std::string run_file_dir;
  // Used only where the teacher's view is deterministic.
  TeacherCache teacher_cache;
};

struct RunOutcome {
  // Final values: "eval/top1", "teacher/top1", "train/images_per_sec", ...
  // and "train/resumed_from_epoch" when the run went on from a resume point.
  std::map<std::string, double> results;
  // The run ended because should_stop or should_drain said so; no
  // checkpoint was written.
  bool stopped = false;
  // It was should_drain, and a resume point of this step is in resume_path.
  bool drained = false;
  // Run files written under RunHooks::run_file_dir.
  std::vector<std::string> run_files;
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_RUN_HOOKS_H_
