#ifndef DISTILL_WORKER_WORKER_H_
#define DISTILL_WORKER_WORKER_H_

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "worker/data_roots.h"
#include "worker/file_transfer.h"

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
  // The most that downloaded checkpoints and teacher-cache entries may
  // take together; after each run the least recently used go first.
  int64_t scratch_max_bytes = int64_t{20} << 30;
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
  // Leases and executes runs until `stop` is set. Survives the coordinator
  // going away (retries with back-off).
  absl::Status Serve(const std::atomic<bool>& stop);
  // One long-poll; executes the run if one is granted. Returns whether a
  // run was executed. A run that fails is reported FAILED; that is not an
  // error of ServeOne.
  absl::StatusOr<bool> ServeOne(absl::Duration wait);

  const std::string& worker_id() const { return worker_id_; }

 private:
  // Trains `run`; each digest names a file to download first (empty: none):
  // the teacher's and the student's checkpoints, and a resume point an
  // earlier attempt uploaded.
  absl::Status Execute(const v1::Run& run, const std::string& teacher_sha256,
                       const std::string& student_sha256,
                       const std::string& resume_sha256);
  // Reports the attempt FAILED with `outcome`'s message.
  void Fail(const v1::Run& run, const absl::Status& outcome);

  std::unique_ptr<v1::WorkerService::Stub> stub_;
  WorkerOptions options_;
  FileTransfer files_;
  std::string worker_id_;
  absl::Duration heartbeat_interval_ = absl::Seconds(10);
};

}  // namespace distill

#endif  // DISTILL_WORKER_WORKER_H_
