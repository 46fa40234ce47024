#include "worker/reporter.h"

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"

namespace distill {

Reporter::Reporter(v1::WorkerService::Stub* stub, const std::string& worker_id,
                   int64_t run_id, int32_t attempt, absl::Duration flush,
                   absl::Duration heartbeat, absl::Duration patience)
    : stub_(stub),
      worker_id_(worker_id),
      run_id_(run_id),
      attempt_(attempt),
      flush_(flush),
      heartbeat_(heartbeat),
      patience_(patience),
      thread_([this] { Loop(); }) {}

Reporter::~Reporter() { Stop(); }

void Reporter::Add(std::vector<engine::Metric> metrics) {
  absl::MutexLock lock(&mu_);
  for (engine::Metric& m : metrics) {
    v1::MetricPoint* p = pending_.add_points();
    p->set_step(m.step);
    p->set_epoch(int32_t(m.epoch));
    p->set_key(std::move(m.key));
    p->set_value(m.value);
    p->set_time_ms(m.time_ms);
  }
}

void Reporter::AddProvenance(
    const std::map<std::string, std::string>& entries) {
  absl::MutexLock lock(&mu_);
  for (const auto& [key, value] : entries)
    (*pending_.mutable_provenance())[key] = value;
}

std::string Reporter::why_stopped() const {
  absl::MutexLock lock(&mu_);
  return why_stopped_;
}

void Reporter::Flush() { SendPending(); }

void Reporter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (done_) return;
    done_ = true;
    wake_.SignalAll();
  }
  thread_.join();
  // The last points wait out a coordinator that is restarting, within
  // `patience` (the lease): a new attempt would measure them again.
  RetryTransient(patience_, absl::StrCat("run ", run_id_, ": last metrics"),
                 [this] {
                   return SendPending() && !stop_training_
                              ? absl::UnavailableError("points left to send")
                              : absl::OkStatus();
                 })
      .IgnoreError();
}

void Reporter::Loop() {
  absl::Time next_heartbeat = absl::Now() + heartbeat_;
  absl::MutexLock lock(&mu_);
  while (!done_) {
    wake_.WaitWithTimeout(&mu_, flush_);
    if (done_) break;
    mu_.Unlock();
    SendPending();
    if (absl::Now() >= next_heartbeat) {
      SendHeartbeat();
      next_heartbeat = absl::Now() + heartbeat_;
    }
    mu_.Lock();
  }
}

bool Reporter::SendPending() {
  absl::MutexLock sending(&send_mu_);
  v1::ReportMetricsRequest request;
  {
    absl::MutexLock lock(&mu_);
    if (pending_.points_size() == 0 && pending_.provenance().empty())
      return false;
    request.Swap(&pending_);
  }
  request.set_run_id(run_id_);
  request.set_attempt(attempt_);
  v1::ReportMetricsResponse response;
  grpc::Status status = stub_->ReportMetrics(
      ContextWithTimeout(absl::Seconds(30), /*wait_for_ready=*/true).get(),
      request, &response);
  if (LeaseGone(status)) {
    StopTraining(status.error_message());
  } else if (status.ok() && !response.stop_reason().empty()) {
    StopTraining(response.stop_reason());  // This report ended the attempt.
  } else if (status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
    // Refused whole, and it would be refused again: kept, it would hold
    // back every point after it (a coordinator older or newer than this
    // worker may refuse what this one sends).
    DISTILL_LOG(ERROR) << "run " << run_id_ << ": the coordinator refused "
                       << request.points_size()
                       << " metric points, dropped: " << status.error_message();
  } else if (!status.ok()) {
    DISTILL_LOG(WARNING) << "run " << run_id_
                         << ": metrics not sent, will retry: "
                         << status.error_message();
    absl::MutexLock lock(&mu_);
    request.mutable_points()->MergeFrom(pending_.points());
    for (const auto& [key, value] : pending_.provenance())
      (*request.mutable_provenance())[key] = value;
    pending_.Swap(&request);
    return true;
  }
  return false;
}

void Reporter::SendHeartbeat() {
  v1::HeartbeatRequest request;
  request.set_worker_id(worker_id_);
  request.set_run_id(run_id_);
  request.set_attempt(attempt_);
  v1::HeartbeatResponse response;
  grpc::Status status = stub_->Heartbeat(
      ContextWithTimeout(absl::Seconds(10), /*wait_for_ready=*/true).get(),
      request, &response);
  if (LeaseGone(status)) {
    StopTraining(status.error_message());
  } else if (status.ok() && response.cancel_requested()) {
    StopTraining(response.stop_reason().empty() ? "the run was cancelled"
                                                : response.stop_reason());
  } else if (status.ok() && response.drain_requested()) {
    drain_requested_ = true;
  } else if (status.ok() && response.yield_requested()) {
    absl::MutexLock lock(&yield_mu_);
    yield_reason_ =
        response.yield_reason().empty() ? "preempted" : response.yield_reason();
  }
}

std::string Reporter::YieldReason() const {
  absl::MutexLock lock(&yield_mu_);
  return yield_reason_;
}

bool Reporter::LeaseGone(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
         status.error_code() == grpc::StatusCode::PERMISSION_DENIED;
}

void Reporter::StopTraining(const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    why_stopped_ = why;
  }
  stop_training_ = true;
}

}  // namespace distill
