#ifndef DISTILL_WORKER_WORKER_H_
#define DISTILL_WORKER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "worker/data_roots.h"
#include "worker/engine/run_hooks.h"
#include "worker/file_transfer.h"
#include "worker/reporter.h"
#include "worker/stage_hook.h"
#include "worker/worker_metrics.h"

namespace distill {

struct WorkerOptions {
  // A LibTorch device: "cpu", "cuda:0", ...
  std::string device = "cpu";
  // Intra-op threads for LibTorch; 0 keeps LibTorch's choice.
  int threads = 0;
  // Every path a spec names (dataset.root, teacher.torchscript,
  // student.pretrained) must lie inside one of these.
  std::vector<std::string> data_roots = DefaultDataRoots();
  // Downloaded teachers and checkpoints before upload.
  std::string scratch_dir = "/tmp/distill-worker";
  std::string hostname;
  // Longest a single LeaseRun long-poll waits.
  absl::Duration lease_wait = absl::Seconds(20);
  // Metric points are sent at most this often (and once more at the end).
  absl::Duration metrics_flush = absl::Milliseconds(500);
  // Keep the frozen teacher's outputs per (teacher, data) content in
  // scratch_dir/teacher-cache, so a sweep pays for its teacher once.
  bool teacher_cache = true;
  // Where the teacher cache lives; empty: scratch_dir/teacher-cache. The
  // slots of one worker (--slots) share one.
  std::string teacher_cache_dir;
  // The most that downloaded checkpoints and teacher-cache entries may
  // take together; after each run the least recently used go first.
  int64_t scratch_max_bytes = int64_t{20} << 30;
  // Once told to drain, the current run may go on this long to finish;
  // then it stops at the next step boundary with a resume point and is
  // handed back. 0: at the next step.
  absl::Duration drain_grace = absl::ZeroDuration();
  // An idle worker that leased nothing this long drains and exits (Slurm
  // jobs); zero: never.
  absl::Duration exit_after_idle = absl::ZeroDuration();
  // Where the worker's gauges and counters go; none when null.
  WorkerMetrics* metrics = nullptr;
  // Called before each stage of a run (worker/stage_hook.h); tests only.
  StageHook* stage_hook = nullptr;
  // Labels it offers for placement besides device_kind (--labels).
  std::vector<std::string> labels;
};

// The worker daemon: registers, long-polls for runs, executes each with the
// engine while a Reporter streams metrics and heartbeats, uploads the
// checkpoint and run files (FileTransfer), and completes or fails the run. One
// run at a time (one worker per device). Serve and ServeOne must be called from
// one thread.
class Worker {
 public:
  Worker(std::shared_ptr<grpc::Channel> channel, WorkerOptions options);

  // LibTorch's version, the device, threads and the BLAS library loaded.
  std::string Describe() const;
  absl::Status Register();
  // Leases and executes runs until told to drain: by `drain` (SIGTERM),
  // by the coordinator (`distill workers drain`), or by being idle for
  // exit_after_idle. A drain stops leasing at once (an idle long-poll is
  // cancelled within 100 ms), lets the current run finish within
  // drain_grace or hands it back with a resume point at the next step
  // boundary, deregisters and returns. Survives the coordinator going away
  // (retries with back-off).
  absl::Status Serve(const std::atomic<bool>& drain);
  // One long-poll; executes the run if one is granted. Returns whether a
  // run was executed. A run that fails is reported FAILED; that is not an
  // error of ServeOne.
  absl::StatusOr<bool> ServeOne(absl::Duration wait);

  const std::string& worker_id() const { return worker_id_; }

 private:
  // How long the next long-poll may wait: the lease wait, or what is left of
  // exit_after_idle since `busy` (the last run's end) when that is sooner.
  absl::Duration PollWait(absl::Time busy) const;
  std::string TeacherCacheDir() const {
    return options_.teacher_cache_dir.empty()
               ? options_.scratch_dir + "/teacher-cache"
               : options_.teacher_cache_dir;
  }
  // Trains `run`; each digest names a file to download first (empty: none):
  // the teacher's and the student's checkpoints, and a resume point an
  // earlier attempt uploaded.
  absl::Status Execute(const v1::Run& run, const std::string& teacher_sha256,
                       const std::string& student_sha256,
                       const std::string& resume_sha256);
  // Execute's steps, in order: the scratch directory made and the spec's
  // paths checked against the data roots; the teacher's and the student's
  // checkpoints fetched; an earlier attempt's resume point, when there is
  // one and it arrives; the host's teacher cache; the engine's hooks to the
  // reporter; then, as the run ended, the hand-back or the completion.
  absl::Status CheckScratchAndPaths(const v1::Run& run);
  absl::Status FetchCheckpoints(const v1::Run& run,
                                const std::string& teacher_sha256,
                                const std::string& student_sha256,
                                engine::RunHooks* hooks);
  void FetchResumePoint(const v1::Run& run, const std::string& sha256,
                        const std::string& dir, engine::RunHooks* hooks);
  void UseTeacherCache(engine::RunHooks* hooks);
  void ConnectReporter(const v1::Run& run, Reporter& reporter,
                       engine::RunHooks* hooks);
  // After a drain or a preemption: the run back to the queue now.
  void HandBack(const v1::Run& run, Reporter& reporter);
  // The attempt's run files, its checkpoint and its results.
  absl::Status Complete(const v1::Run& run, const engine::RunOutcome& outcome,
                        const engine::RunHooks& hooks);
  // A file by digest into `dir` (the shared cache when empty), and a file
  // of this attempt up, each through a coordinator restart.
  absl::StatusOr<std::string> FetchFile(const v1::Run& run,
                                        const std::string& sha256,
                                        const std::string& dir);
  absl::StatusOr<std::string> UploadFile(const v1::Run& run,
                                         const std::string& path,
                                         const std::string& name);
  // Reports the attempt FAILED with `outcome`'s message.
  void Fail(const v1::Run& run, const absl::Status& outcome);
  // options_.stage_hook's turn before `stage`, if there is a hook.
  void BeforeStage(absl::string_view stage) {
    if (options_.stage_hook != nullptr) options_.stage_hook->Before(stage);
  }
  // Whether a drain was asked for (by `drain_signal_` or the coordinator).
  bool DrainAsked() const;
  // The current run must stop for the drain now: asked, and its grace spent.
  bool DrainDue();

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  WorkerOptions options_;
  FileTransfer files_;
  std::string worker_id_;
  absl::Duration heartbeat_interval_ = absl::Seconds(10);
  // How long a call that matters (upload, complete, fail, hand-back) is
  // retried through a coordinator restart: the lease.
  absl::Duration lease_duration_ = absl::Seconds(60);
  // Serve's drain flag (nullptr outside Serve).
  const std::atomic<bool>* drain_signal_ = nullptr;
  // The coordinator asked for a drain.
  std::atomic<bool> drain_from_coordinator_{false};
  // Why the coordinator leases nothing for now, as it last said (logged
  // when it changes).
  std::string paused_reason_;
  std::optional<absl::Time> drain_since_;  // Training thread only.
  // The LeaseRun long-poll in flight, for a drain to cancel.
  absl::Mutex poll_mu_;
  grpc::ClientContext* poll_ ABSL_GUARDED_BY(poll_mu_) = nullptr;
};

}  // namespace distill

#endif  // DISTILL_WORKER_WORKER_H_
