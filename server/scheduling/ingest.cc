#include "server/scheduling/ingest.h"

#include <cmath>
#include <map>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/catalog.h"
#include "common/provenance.h"
#include "common/sha256.h"

namespace distill {
namespace {

// A worker's provenance entries: only the keys it may report
// (provenance::kWorkerKeys), digests as SHA-256 hex, the count a number.
absl::Status CheckWorkerProvenance(
    const google::protobuf::Map<std::string, std::string>& entries) {
  for (const auto& [key, value] : entries) {
    if (!provenance::IsWorkerKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("provenance key \"", absl::CHexEscape(key.substr(0, 64)),
                       "\" is not one a worker reports (",
                       absl::StrJoin(provenance::kWorkerKeys, ", "), ")"));
    }
    int64_t count = 0;
    const bool ok = key == provenance::kDataFiles
                        ? value.size() <= 12 &&
                              absl::SimpleAtoi(value, &count) && count >= 0
                        : IsSha256Hex(value);
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("provenance ", key, ": \"",
                       absl::CHexEscape(value.substr(0, 80)), "\" is not ",
                       key == provenance::kDataFiles ? "a file count"
                                                     : "a SHA-256 hex digest"));
    }
  }
  return absl::OkStatus();
}

// A bad report is refused whole, before anything is stored.
absl::Status CheckReport(const v1::ReportMetricsRequest& request) {
  if (request.points_size() > limits::kMetricPointsPerReport) {
    return absl::InvalidArgumentError(
        absl::StrCat("a report holds at most ", limits::kMetricPointsPerReport,
                     " metric points, got ", request.points_size()));
  }
  for (int i = 0; i < request.points_size(); ++i) {
    const v1::MetricPoint& p = request.points(i);
    if (absl::Status s =
            CheckMetric(absl::StrCat("points[", i, "]"), p.key(), p.value());
        !s.ok()) {
      return s;
    }
  }
  return CheckWorkerProvenance(request.provenance());
}

}  // namespace

absl::Status CheckMetric(const std::string& where, const std::string& key,
                         double value) {
  if (key.empty() || key.size() > limits::kMetricKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a metric key must be 1 to ",
                     limits::kMetricKeyBytes, " bytes, got ", key.size()));
  }
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", key, " must be finite, got ", value));
  }
  return absl::OkStatus();
}

absl::Status Ingest::Report(const v1::ReportMetricsRequest& request,
                            int64_t caller,
                            v1::ReportMetricsResponse* response) {
  if (absl::Status s = CheckReport(request); !s.ok()) return s;
  // Group commit: the first waiting report writes every report queued
  // behind it in one transaction; the others wait for it.
  Batch mine{&request, caller};
  mu_.Lock();
  queue_.push_back(&mine);
  while (!mine.done && queue_.front() != &mine) done_.Wait(&mu_);
  if (!mine.done) {
    std::vector<Batch*> group;
    int64_t points = 0;
    for (Batch* batch : queue_) {
      if (!group.empty() &&
          points + batch->request->points_size() > kPointsPerIngestGroup) {
        break;
      }
      group.push_back(batch);
      points += batch->request->points_size();
    }
    mu_.Unlock();
    WriteGroup(group);
    mu_.Lock();
    for (Batch* batch : group) {
      queue_.pop_front();
      batch->done = true;
    }
    done_.SignalAll();
  }
  mu_.Unlock();
  if (response != nullptr) response->set_stop_reason(mine.stop_reason);
  return mine.status;
}

absl::StatusOr<bool> Ingest::WriteBatchLocked(const Locked& lock,
                                              Batch& batch) {
  const v1::ReportMetricsRequest& request = *batch.request;
  Store& store = core_.store();
  // A report whose lease is gone is refused alone.
  absl::StatusOr<v1::Run> run = core_.CurrentLeaseLocked(
      lock, request.run_id(), request.attempt(), batch.caller);
  batch.status = run.status();
  if (!batch.status.ok()) return false;
  const std::vector<v1::MetricPoint> points(request.points().begin(),
                                            request.points().end());
  if (absl::Status s =
          store.AppendMetrics(request.run_id(), request.attempt(), points);
      !s.ok()) {
    return s;
  }
  if (!request.provenance().empty()) {
    if (absl::Status s = store.SetProvenance(
            request.run_id(),
            std::map<std::string, std::string>(request.provenance().begin(),
                                               request.provenance().end()));
        !s.ok()) {
      return s;
    }
  }
  sweeps_.AssertHeld();  // The same core as ours.
  if (absl::Status s = sweeps_.StopEarlyIfBehindLocked(lock, *run, points,
                                                       &batch.stop_reason);
      !s.ok()) {
    return s;
  }
  return true;
}

void Ingest::WriteGroup(const std::vector<Batch*>& group) {
  std::vector<Batch*> written;
  {
    SchedulerCore::Locked lock(&core_);
    absl::Status s = core_.Write(
        [&]() -> absl::Status {
          core_.AssertHeld();
          for (Batch* batch : group) {
            absl::StatusOr<bool> wrote = WriteBatchLocked(lock, *batch);
            if (!wrote.ok()) return wrote.status();
            if (*wrote) written.push_back(batch);
          }
          return absl::OkStatus();
        },
        Store::Durability::kOnDisk);
    if (!s.ok()) {
      written.clear();
      // Nothing of the group was stored: every report not refused alone
      // gets the transaction's error.
      for (Batch* batch : group) {
        if (batch->status.ok()) batch->status = s;
        batch->stop_reason.clear();
      }
    }
  }
  // On disk before any report is acknowledged, or any watcher told; the
  // fsync outside the lock, shared with every commit before it.
  if (absl::Status s = core_.Durable(absl::OkStatus()); !s.ok()) {
    for (Batch* batch : written) batch->status = s;
  }
  if (written.empty()) return;
  int64_t points = 0;
  for (Batch* batch : written) {
    core_.hub().Notify(batch->request->run_id());
    points += batch->request->points_size();
  }
  if (core_.metrics() != nullptr && points > 0)
    core_.metrics()->PointsIngested(points);
}

}  // namespace distill
