// Numbers for operators, in Prometheus' text format on
// --metrics_listen (prometheus-cpp): runs by status and the queue, workers
// by state, leases granted and expired with the wait before the first
// lease, metric points taken, and failed RPCs by method and code.
#ifndef DISTILL_SERVER_BASE_METRICS_H_
#define DISTILL_SERVER_BASE_METRICS_H_

#include <grpcpp/support/server_interceptor.h>
#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/run.pb.h"

namespace distill {

// Thread-safe (prometheus-cpp's metrics are).
class CoordinatorMetrics {
 public:
  explicit CoordinatorMetrics(prometheus::Registry& registry);

  // A run was leased; `queued_seconds` from its submission for its first
  // lease (negative: a later attempt, not observed).
  void LeaseGranted(double queued_seconds);
  void LeaseExpired();
  void RunReleased();
  void PointsIngested(int64_t n);
  void RpcFailed(const std::string& method, const std::string& code);
  // Replaces the gauges; a status or state not given is 0.
  void SetRuns(const std::map<v1::RunStatus, int64_t>& by_status);
  // Workers by status (labelled state="idle", ...; every status, 0 when
  // none).
  void SetWorkers(const std::map<v1::WorkerStatus, int64_t>& by_status);
  // A backup (server/operations/backups.h) ended: good (taking `took`) or
  // failed.
  void BackupTaken(bool good, absl::Duration took);
  // A notification (server/operations/notifier.h) sent, or given up on
  // after its retries, or dropped from a full queue.
  void Notified(const char* result);
  // Since the last good backup.
  void SetBackupAge(absl::Duration age);
  // The data directory's disk: its free bytes, and whether leasing is
  // paused below --min_free_disk (server/base/disk_guard.h).
  void SetDisk(int64_t free_bytes, bool leasing_paused);
  void UploadRefusedForDisk();
  // Run files (server/scheduling/retention.h): bytes their records hold, bytes
  // a collection would free now, and what collections removed.
  void SetRunFileBytes(int64_t held, int64_t reclaimable);
  void RunFilesCollected(int64_t files, int64_t bytes);
  // Fair share, per owner (labelled owner="..."; at most kMaxOwnerSeries
  // owners, by name): runs queued and running, and GPU (worker) seconds
  // used in all and decayed.
  void SetOwners(const v1::ListOwnersResponse& owners);
  static constexpr size_t kMaxOwnerSeries = 1000;

 private:
  prometheus::Family<prometheus::Gauge>& runs_;
  prometheus::Gauge& queue_;
  prometheus::Family<prometheus::Gauge>& workers_;
  prometheus::Counter& leases_granted_;
  prometheus::Counter& leases_expired_;
  prometheus::Counter& releases_;
  prometheus::Histogram& lease_wait_;
  prometheus::Counter& points_;
  prometheus::Family<prometheus::Counter>& rpc_errors_;
  prometheus::Family<prometheus::Counter>& backups_;
  prometheus::Family<prometheus::Counter>& notifications_;
  prometheus::Gauge& backup_seconds_;
  prometheus::Gauge& backup_age_;
  prometheus::Gauge& disk_free_;
  prometheus::Gauge& leasing_paused_;
  prometheus::Counter& uploads_refused_disk_;
  prometheus::Gauge& run_file_bytes_;
  prometheus::Gauge& reclaimable_bytes_;
  prometheus::Counter& collected_files_;
  prometheus::Counter& collected_bytes_;
  prometheus::Family<prometheus::Gauge>& owner_queued_;
  prometheus::Family<prometheus::Gauge>& owner_running_;
  prometheus::Family<prometheus::Gauge>& owner_gpu_seconds_;
  prometheus::Family<prometheus::Gauge>& owner_decayed_gpu_seconds_;
  // The methods rpc_errors_ has a series for: at most kMaxRpcMethods, so
  // that a client calling made-up methods cannot grow it without bound
  // (the rest count as "other").
  absl::Mutex methods_mu_;
  absl::flat_hash_set<std::string> methods_ ABSL_GUARDED_BY(methods_mu_);
};

// A gRPC server interceptor that counts every call ending in an error, by
// method and code.
std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcErrorCounter(CoordinatorMetrics* metrics);

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_METRICS_H_
