#include "server/base/metrics.h"

#include <grpcpp/support/server_interceptor.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "common/worker_status.h"

namespace distill {
namespace {

class RpcErrorInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcErrorInterceptor(CoordinatorMetrics* metrics, std::string method)
      : metrics_(metrics), method_(std::move(method)) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      const grpc::Status status = methods->GetSendStatus();
      if (!status.ok()) {
        metrics_->RpcFailed(
            method_, absl::StatusCodeToString(
                         static_cast<absl::StatusCode>(status.error_code())));
      }
    }
    methods->Proceed();
  }

 private:
  CoordinatorMetrics* const metrics_;
  const std::string method_;
};

class RpcErrorInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcErrorInterceptorFactory(CoordinatorMetrics* metrics)
      : metrics_(metrics) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new RpcErrorInterceptor(metrics_, info->method());
  }

 private:
  CoordinatorMetrics* const metrics_;
};

// A family of one series without labels, registered in `registry`.
prometheus::Gauge& OneGauge(prometheus::Registry& registry,
                            const std::string& name, const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      {});
}
prometheus::Counter& OneCounter(prometheus::Registry& registry,
                                const std::string& name,
                                const std::string& help) {
  return prometheus::BuildCounter()
      .Name(name)
      .Help(help)
      .Register(registry)
      .Add({});
}

prometheus::Family<prometheus::Counter>& CounterFamily(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(registry);
}

prometheus::Family<prometheus::Gauge>& GaugeFamily(
    prometheus::Registry& registry, const std::string& name,
    const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry);
}

}  // namespace

CoordinatorMetrics::CoordinatorMetrics(prometheus::Registry& registry)
    : runs_(prometheus::BuildGauge()
                .Name("distill_runs")
                .Help("Runs by status")
                .Register(registry)),
      queue_(OneGauge(registry, "distill_queue_length",
                      "Runs queued for a worker")),
      workers_(prometheus::BuildGauge()
                   .Name("distill_workers")
                   .Help("Workers by state")
                   .Register(registry)),
      leases_granted_(OneCounter(registry, "distill_leases_granted_total",
                                 "Runs leased to a worker")),
      leases_expired_(OneCounter(registry, "distill_leases_expired_total",
                                 "Leases whose worker went silent")),
      releases_(OneCounter(registry, "distill_runs_handed_back_total",
                           "Runs a draining worker handed back")),
      lease_wait_(
          prometheus::BuildHistogram()
              .Name("distill_lease_wait_seconds")
              .Help("From submission to a run's first lease")
              .Register(registry)
              .Add({},
                   prometheus::Histogram::BucketBoundaries{
                       0.1, 1, 5, 30, 60, 300, 1800, 3600, 14400, 86400})),
      points_(OneCounter(registry, "distill_metric_points_ingested_total",
                         "Metric points workers reported and were stored")),
      rpc_errors_(
          CounterFamily(registry, "distill_rpc_errors_total",
                        "RPCs that ended in an error, by method and code")),
      backups_(CounterFamily(registry, "distill_backups_total",
                             "Backups taken, by result (good, failed)")),
      notifications_(CounterFamily(registry, "distill_notifications_total",
                                   "Sweep notifications to webhooks, by "
                                   "result (sent, failed, dropped)")),
      backup_seconds_(OneGauge(registry, "distill_backup_duration_seconds",
                               "How long the last good backup took")),
      backup_age_(
          OneGauge(registry, "distill_backup_age_seconds",
                   "Since the last good backup (0 until there is one)")),
      disk_free_(OneGauge(registry, "distill_disk_free_bytes",
                          "Free bytes on the data directory's disk")),
      leasing_paused_(OneGauge(registry, "distill_leasing_paused",
                               "1 while no run is leased: the data "
                               "directory's disk is below --min_free_disk")),
      uploads_refused_disk_(prometheus::BuildCounter()
                                .Name("distill_uploads_refused_total")
                                .Help("Run file uploads refused before their "
                                      "first chunk, by reason")
                                .Register(registry)
                                .Add({{"reason", "disk"}})),
      run_file_bytes_(OneGauge(registry, "distill_run_file_bytes",
                               "Bytes of run files the runs' records hold")),
      reclaimable_bytes_(OneGauge(registry, "distill_gc_reclaimable_bytes",
                                  "Bytes the retention policies would free "
                                  "now (distill gc --dry-run)")),
      collected_files_(OneCounter(registry, "distill_gc_removed_files_total",
                                  "Run file records the retention policies "
                                  "removed")),
      collected_bytes_(OneCounter(registry, "distill_gc_removed_bytes_total",
                                  "Bytes of run files the retention policies "
                                  "freed")),
      owner_queued_(GaugeFamily(registry, "distill_owner_queued_runs",
                                "Runs queued, by owner")),
      owner_running_(GaugeFamily(registry, "distill_owner_running_runs",
                                 "Runs running, by owner")),
      owner_gpu_seconds_(GaugeFamily(
          registry, "distill_owner_gpu_seconds",
          "Worker seconds an owner's runs used, in all (fair share)")),
      owner_decayed_gpu_seconds_(
          GaugeFamily(registry, "distill_owner_decayed_gpu_seconds",
                      "Worker seconds an owner's runs used, decayed by "
                      "--fair_share_half_life: what fair share compares")) {
  backups_.Add({{"result", "good"}});
  backups_.Add({{"result", "failed"}});
  for (const char* result : {"sent", "failed", "dropped"})
    notifications_.Add({{"result", result}});
  SetRuns({});
  SetWorkers({});
}

void CoordinatorMetrics::LeaseGranted(double queued_seconds) {
  leases_granted_.Increment();
  if (queued_seconds >= 0) lease_wait_.Observe(queued_seconds);
}

void CoordinatorMetrics::LeaseExpired() { leases_expired_.Increment(); }

void CoordinatorMetrics::RunReleased() { releases_.Increment(); }

void CoordinatorMetrics::PointsIngested(int64_t n) {
  points_.Increment(double(n));
}

void CoordinatorMetrics::RpcFailed(const std::string& method,
                                   const std::string& code) {
  // The services have 26 methods; anything past that is made up.
  constexpr size_t kMaxRpcMethods = 64;
  std::string label = method;
  {
    absl::MutexLock lock(&methods_mu_);
    if (!methods_.contains(method)) {
      if (methods_.size() < kMaxRpcMethods && method.size() <= 128) {
        methods_.insert(method);
      } else {
        label = "other";
      }
    }
  }
  rpc_errors_.Add({{"method", label}, {"code", code}}).Increment();
}

void CoordinatorMetrics::SetRuns(
    const std::map<v1::RunStatus, int64_t>& by_status) {
  const google::protobuf::EnumDescriptor* statuses = v1::RunStatus_descriptor();
  for (int i = 0; i < statuses->value_count(); ++i) {
    const auto status = v1::RunStatus(statuses->value(i)->number());
    if (status == v1::RUN_STATUS_UNSPECIFIED) continue;
    const auto it = by_status.find(status);
    runs_.Add({{"status", v1::RunStatus_Name(status)}})
        .Set(it == by_status.end() ? 0 : double(it->second));
  }
  const auto queued = by_status.find(v1::QUEUED);
  queue_.Set(queued == by_status.end() ? 0 : double(queued->second));
}

void CoordinatorMetrics::SetOwners(const v1::ListOwnersResponse& owners) {
  size_t series = 0;
  for (const v1::Owner& o : owners.owners()) {
    if (++series > kMaxOwnerSeries) break;
    const std::map<std::string, std::string> label = {{"owner", o.name()}};
    owner_queued_.Add(label).Set(double(o.queued()));
    owner_running_.Add(label).Set(double(o.running()));
    owner_gpu_seconds_.Add(label).Set(o.gpu_seconds_total());
    owner_decayed_gpu_seconds_.Add(label).Set(o.gpu_seconds());
  }
}

void CoordinatorMetrics::SetWorkers(
    const std::map<v1::WorkerStatus, int64_t>& by_status) {
  const google::protobuf::EnumDescriptor* statuses =
      v1::WorkerStatus_descriptor();
  for (int i = 0; i < statuses->value_count(); ++i) {
    const auto status = v1::WorkerStatus(statuses->value(i)->number());
    if (status == v1::WORKER_STATUS_UNSPECIFIED) continue;
    const auto it = by_status.find(status);
    workers_.Add({{"state", WorkerStatusWord(status)}})
        .Set(it == by_status.end() ? 0 : double(it->second));
  }
}

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>
RpcErrorCounter(CoordinatorMetrics* metrics) {
  return std::make_unique<RpcErrorInterceptorFactory>(metrics);
}

}  // namespace distill

namespace distill {

void CoordinatorMetrics::Notified(const char* result) {
  notifications_.Add({{"result", result}}).Increment();
}

void CoordinatorMetrics::BackupTaken(bool good, absl::Duration took) {
  backups_.Add({{"result", good ? "good" : "failed"}}).Increment();
  if (good) backup_seconds_.Set(absl::ToDoubleSeconds(took));
}

void CoordinatorMetrics::SetBackupAge(absl::Duration age) {
  backup_age_.Set(absl::ToDoubleSeconds(age));
}

}  // namespace distill

namespace distill {

void CoordinatorMetrics::SetDisk(int64_t free_bytes, bool leasing_paused) {
  disk_free_.Set(double(free_bytes));
  leasing_paused_.Set(leasing_paused ? 1 : 0);
}

void CoordinatorMetrics::UploadRefusedForDisk() {
  uploads_refused_disk_.Increment();
}

void CoordinatorMetrics::SetRunFileBytes(int64_t held, int64_t reclaimable) {
  run_file_bytes_.Set(double(held));
  reclaimable_bytes_.Set(double(reclaimable));
}

void CoordinatorMetrics::RunFilesCollected(int64_t files, int64_t bytes) {
  collected_files_.Increment(double(files));
  collected_bytes_.Increment(double(bytes));
}

}  // namespace distill
