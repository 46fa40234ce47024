#ifndef DISTILL_WORKER_REPORTER_H_
#define DISTILL_WORKER_REPORTER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "worker/engine/run_hooks.h"

namespace distill {

// Streams one attempt's metric points and heartbeats to the coordinator from
// its own thread, so training never waits on the network. Points go in
// batches, in the order they were added; a batch that cannot be sent is kept
// and sent again with the next (one the coordinator refuses as invalid is
// dropped, with an error logged). The coordinator's word that the attempt
// must end (cancelled, or its lease gone to another attempt) is kept for
// the training thread to poll. Thread-safe.
class Reporter {
 public:
  // `stub` must outlive the reporter. Starts the thread.
  // Stop waits up to `patience` for the last points to be taken.
  Reporter(v1::WorkerService::Stub* stub, const std::string& worker_id,
           int64_t run_id, int32_t attempt, absl::Duration flush,
           absl::Duration heartbeat,
           absl::Duration patience = absl::Seconds(60));
  ~Reporter();

  Reporter(const Reporter&) = delete;
  Reporter& operator=(const Reporter&) = delete;

  void Add(std::vector<engine::Metric> metrics);
  // Provenance entries (common/provenance.h) for the next report, which
  // goes even if it holds no point.
  void AddProvenance(const std::map<std::string, std::string>& entries);

  // True once the coordinator said this attempt must end.
  bool ShouldStop() const { return stop_training_.load(); }
  // True once a heartbeat answered that the worker is to drain.
  bool DrainRequested() const { return drain_requested_.load(); }
  // Why the coordinator asked this attempt to give its worker way (a
  // preemption), or "".
  std::string YieldReason() const;
  std::string why_stopped() const;

  // Sends what is pending from the caller's thread; returns once it was
  // sent (or kept for a retry).
  void Flush();

  // Sends what is pending and ends the thread. Idempotent.
  void Stop();

 private:
  void Loop();
  // True when points are left to send (the coordinator was out of reach).
  bool SendPending();
  void SendHeartbeat();
  // The coordinator says this attempt holds no lease (or not ours).
  static bool LeaseGone(const grpc::Status& status);
  void StopTraining(const std::string& why);

  v1::WorkerService::Stub* const stub_;
  const std::string worker_id_;
  const int64_t run_id_;
  const int32_t attempt_;
  const absl::Duration flush_, heartbeat_, patience_;
  absl::Mutex send_mu_;  // Held while a batch is sent: batches stay in order.
  mutable absl::Mutex mu_;
  absl::CondVar wake_;
  v1::ReportMetricsRequest pending_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::string why_stopped_ ABSL_GUARDED_BY(mu_);
  std::atomic<bool> stop_training_{false};
  std::atomic<bool> drain_requested_{false};
  mutable absl::Mutex yield_mu_;
  std::string yield_reason_ ABSL_GUARDED_BY(yield_mu_);
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_WORKER_REPORTER_H_
