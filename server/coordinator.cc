#include "server/coordinator.h"

#include <fcntl.h>
#include <grpcpp/health_check_service_interface.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/log.h"
#include "common/token.h"
#include "server/base/exposure.h"

namespace distill {
namespace {

// Takes data_dir/LOCK (as leveldb does) and writes this process's id into
// it; FAILED_PRECONDITION naming the holder when another coordinator has
// it. The lock goes with the process, however it ends.
absl::StatusOr<ScopedFd> LockDataDirectory(const std::string& data_dir) {
  const std::string path = data_dir + "/LOCK";
  ScopedFd lock(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  const int fd = lock.get();
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    char holder[32] = {};
    const ssize_t n = ::pread(fd, holder, sizeof(holder) - 1, 0);
    return absl::FailedPreconditionError(
        absl::StrCat("the data directory ", data_dir,
                     " is in use by another distill-coordinator (pid ",
                     n > 0 ? absl::StripAsciiWhitespace(holder) : "unknown",
                     "); one coordinator owns a data directory"));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 ||
      ::pwrite(fd, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
    DISTILL_LOG(WARNING) << "cannot write the pid into " << path;
  }
  return lock;
}

// Whether the directories `a` and `b` (made if missing) are on one file
// system.
bool OnOneDisk(const std::string& a, const std::string& b) {
  std::error_code ec;
  std::filesystem::create_directories(b, ec);
  struct stat first, second;
  return ::stat(a.c_str(), &first) == 0 && ::stat(b.c_str(), &second) == 0 &&
         first.st_dev == second.st_dev;
}

// Beyond loopback calls are encrypted and carry tokens, or the operator
// said the network is trusted.
absl::Status CheckExposure(const CoordinatorOptions& options) {
  const std::string missing =
      ExposureGap(options.listen_address, !options.tls.cert.empty(),
                  options.require_tokens);
  if (missing.empty()) return absl::OkStatus();
  if (!options.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.listen_address, " without ", missing,
        ": beyond loopback anyone who reaches the port could read tokens and "
        "runs or lease, fail, upload to and cancel runs. Give --tls_cert and "
        "--tls_key and keep --auth=tokens, listen on 127.0.0.1, or pass "
        "--insecure on a network you trust"));
  }
  DISTILL_LOG(WARNING) << "INSECURE: serving " << options.listen_address
                       << " without " << missing
                       << ": anyone who reaches it may see or control every "
                          "run (--insecure)";
  return absl::OkStatus();
}

}  // namespace

absl::Status Coordinator::OpenData(const CoordinatorOptions& options) {
  std::error_code ec;
  if (!options.restore_from.empty()) {
    absl::StatusOr<RestoreResult> restored =
        RestoreBackup(options.restore_from, options.data_dir);
    if (!restored.ok()) return restored.status();
    DISTILL_LOG(INFO) << "restored " << options.restore_from << " into "
                      << options.data_dir << ": " << restored->files
                      << " run files, each checked; " << restored->requeued
                      << " runs that were leased queued again";
  }
  std::filesystem::create_directories(options.data_dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat(
        "cannot create data directory ", options.data_dir, ": ", ec.message()));
  }
  absl::StatusOr<ScopedFd> lock = LockDataDirectory(options.data_dir);
  if (!lock.ok()) return lock.status();
  lock_ = *std::move(lock);
  absl::StatusOr<std::unique_ptr<Store>> store =
      Store::OpenSqlite(options.data_dir + "/distill.db");
  if (!store.ok()) return store.status();
  store_ = *std::move(store);
  // A data directory from before run files had their name keeps them in
  // checkpoints/: it moves, in one rename.
  const std::string files_dir =
      absl::StrCat(options.data_dir, "/", kRunFilesDir);
  const std::string old_files_dir = options.data_dir + "/checkpoints";
  if (!std::filesystem::exists(files_dir, ec) &&
      std::filesystem::exists(old_files_dir, ec)) {
    std::filesystem::rename(old_files_dir, files_dir, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot rename ", old_files_dir, " to ", files_dir, ": ",
                       ec.message()));
    }
  }
  absl::StatusOr<std::unique_ptr<RunFileStore>> run_files =
      RunFileStore::OpenDirectory(files_dir);
  if (!run_files.ok()) return run_files.status();
  run_files_ = *std::move(run_files);
  return RemoveUnrecordedRunFiles();
}

// What a stop left that no record names: uploads cut short, and files
// published whose record was never written. The coordinator owns the
// directory alone (the lock), and serves nothing yet.
absl::Status Coordinator::RemoveUnrecordedRunFiles() {
  absl::StatusOr<std::vector<RunFileRecord>> records = store_->ListRunFiles();
  if (!records.ok()) return records.status();
  absl::flat_hash_set<std::string> recorded;
  for (const RunFileRecord& record : *records) recorded.insert(record.sha256);
  absl::StatusOr<int64_t> removed = run_files_->RemoveUnrecorded(
      [&](const std::string& sha256) { return recorded.contains(sha256); });
  if (!removed.ok()) return removed.status();
  if (*removed > 0) {
    DISTILL_LOG(INFO) << "removed " << *removed << " run files no record names";
  }
  return absl::OkStatus();
}

void Coordinator::StartBackups(const CoordinatorOptions& options) {
  BackupOptions backup = options.backup;
  backup.database = options.data_dir + "/distill.db";
  // Backups on the data directory's disk leave its floor free, as uploads
  // and leases do.
  if (!backup.dir.empty() && OnOneDisk(options.data_dir, backup.dir))
    backup.keep_free = options.scheduler.min_free_disk_bytes;
  backups_ = std::make_unique<Backups>(
      backup, store_.get(), run_files_.get(),
      absl::StrCat(options.data_dir, "/", kRunFilesDir), metrics_.get(),
      options.clock);
  if (!backups_->enabled()) return;
  backup_thread_ = std::make_unique<PeriodicThread>(
      absl::Seconds(1), PeriodicThread::First::kAfterPeriod,
      [this] { backups_->Tick(); });
}

absl::Status Coordinator::StartScheduler(const CoordinatorOptions& options) {
  SchedulerOptions scheduler_options = options.scheduler;
  const std::string data_dir = options.data_dir;
  scheduler_options.free_disk_bytes = [data_dir] {
    return FreeDiskBytes(data_dir);
  };
  if (!options.metrics_listen.empty()) {
    registry_ = std::make_shared<prometheus::Registry>();
    metrics_ = std::make_unique<CoordinatorMetrics>(*registry_);
    // The pages' server, caps and deadlines, and their TLS: with the
    // coordinator's certificate where it has one.
    MetricsServerOptions metrics_options;
    metrics_options.listen = options.metrics_listen;
    metrics_options.tls_cert = options.tls.cert;
    metrics_options.tls_key = options.tls.key;
    metrics_options.http = options.http;
    absl::StatusOr<std::unique_ptr<MetricsServer>> server =
        MetricsServer::Start(metrics_options, registry_);
    if (!server.ok()) return server.status();
    metrics_server_ = *std::move(server);
    scheduler_options.metrics = metrics_.get();
  }
  if (!options.notifier.url.empty() || !options.notify_allow.empty()) {
    sweep_run_ended_ = std::make_unique<EventQueue>();
    scheduler_options.sweep_run_ended = sweep_run_ended_.get();
    scheduler_options.notify_allow = options.notify_allow;
  }
  scheduler_ = std::make_unique<Scheduler>(store_.get(), run_files_.get(),
                                           options.clock, scheduler_options);
  if (!options.require_tokens) return absl::OkStatus();
  return scheduler_->RequireTokens(
      {.admin = options.admin_token_file.empty()
                    ? options.data_dir + "/admin.token"
                    : options.admin_token_file,
       .worker = options.worker_token_file});
}

absl::Status Coordinator::StartServices(
    const CoordinatorOptions& options,
    std::shared_ptr<grpc::ServerCredentials> credentials) {
  experiments_ = std::make_unique<ExperimentServiceImpl>(
      scheduler_.get(), &scheduler_->authenticator(), options.limits);
  workers_ = std::make_unique<WorkerServiceImpl>(
      scheduler_.get(), &scheduler_->authenticator(), options.limits);
  admin_ = std::make_unique<AdminServiceImpl>(
      scheduler_.get(), &scheduler_->authenticator(), backups_.get());
  if (!options.http_listen.empty()) {
    PageServerOptions pages_options;
    pages_options.listen = options.http_listen;
    pages_options.insecure = options.insecure;
    pages_options.tls = options.tls;
    pages_options.http = options.http;
    absl::StatusOr<std::unique_ptr<PageServer>> pages = PageServer::Start(
        pages_options, scheduler_.get(), &scheduler_->authenticator());
    if (!pages.ok()) return pages.status();
    page_server_ = *std::move(pages);
  }
  if (sweep_run_ended_ != nullptr) {
    NotifierOptions notifier = options.notifier;
    notifier.metrics = metrics_.get();
    if (notifier.pages_url.empty() && page_server_ != nullptr) {
      const std::string& listen = options.http_listen;
      notifier.pages_url =
          absl::StrCat(options.tls.cert.empty() ? "http://" : "https://",
                       listen.substr(0, listen.rfind(':')), ":", http_port());
    }
    notifier_ = std::make_unique<Notifier>(
        scheduler_.get(), sweep_run_ended_.get(), std::move(notifier));
  }
  reflection_ = std::make_unique<ReflectionServiceImpl>(
      &scheduler_->authenticator(),
      std::vector<std::string>{
          v1::ExperimentService::service_full_name(),
          v1::WorkerService::service_full_name(),
          v1::AdminService::service_full_name(), "grpc.health.v1.Health",
          grpc::reflection::v1alpha::ServerReflection::service_full_name()});
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.listen_address, credentials, &port_);
  builder.RegisterService(experiments_.get());
  builder.RegisterService(workers_.get());
  builder.RegisterService(admin_.get());
  builder.RegisterService(reflection_.get());
  builder.SetMaxReceiveMessageSize(16 << 20);
  if (metrics_ != nullptr) {
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(RpcErrorCounter(metrics_.get()));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address));
  }
  host_ = options.listen_address.substr(0, options.listen_address.rfind(':'));
  if (host_ == "0.0.0.0" || host_ == "[::]") host_ = "127.0.0.1";
  return absl::OkStatus();
}

void Coordinator::StartBackground(const CoordinatorOptions& options) {
  reaper_ = std::make_unique<PeriodicThread>(
      absl::Seconds(1), PeriodicThread::First::kAfterPeriod,
      [this, tick = int64_t{0}]() mutable {
        if (absl::Status s = scheduler_->ExpireLeases(); !s.ok())
          DISTILL_LOG(WARNING) << "expiring leases: " << s.message();
        if (tick % 60 == 0) {
          if (absl::StatusOr<int64_t> n = scheduler_->ForgetStoppedWorkers();
              !n.ok()) {
            DISTILL_LOG(WARNING)
                << "forgetting workers: " << n.status().message();
          }
        }
        if (absl::Status s = scheduler_->RefreshGauges(); !s.ok())
          DISTILL_LOG(WARNING) << "metrics: " << s.message();
        ++tick;
      });
  // The WAL is copied into the database file here, once a second, not in
  // the commit of whichever write crosses the WAL's bound (under the
  // scheduler's lock). (Every 200 ms, its fsyncs of the database file
  // delayed the lease grants' WAL fsyncs: LeaseRun p99 8-11 ms against
  // 6-7 ms.)
  checkpointer_ = std::make_unique<PeriodicThread>(
      absl::Seconds(1), PeriodicThread::First::kAfterPeriod, [this] {
        if (absl::Status s = store_->Checkpoint(); !s.ok())
          DISTILL_LOG(WARNING) << "checkpoint: " << s.message();
      });
  // The bytes gauges every 10 minutes; the pass every --gc_every.
  const absl::Duration every = options.gc_every;
  const absl::Duration tick = every > absl::ZeroDuration()
                                  ? std::min(every, absl::Minutes(10))
                                  : absl::Minutes(10);
  collector_ = std::make_unique<PeriodicThread>(
      tick, PeriodicThread::First::kAtStart,
      [this, every, gauges = metrics_ != nullptr,
       next_pass = absl::Now() + every]() mutable {
        if (every > absl::ZeroDuration() && absl::Now() >= next_pass) {
          next_pass = absl::Now() + every;
          v1::CollectGarbageRequest request;
          absl::StatusOr<v1::CollectGarbageResponse> done =
              scheduler_->CollectGarbage(request, absl::Milliseconds(100));
          if (!done.ok())
            DISTILL_LOG(WARNING) << "retention: " << done.status().message();
        } else if (gauges) {
          v1::CollectGarbageRequest request;
          request.set_dry_run(true);
          if (absl::Status s = scheduler_->CollectGarbage(request).status();
              !s.ok()) {
            DISTILL_LOG(WARNING) << "retention: " << s.message();
          }
        }
      });
  if (!options.slurm.has_value()) return;
  launcher_ = std::make_unique<SlurmLauncher>(scheduler_.get(), *options.slurm);
  launcher_thread_ = std::make_unique<PeriodicThread>(
      options.launcher_period, PeriodicThread::First::kAtStart, [this] {
        if (absl::StatusOr<int> s = launcher_->Tick(); !s.ok())
          DISTILL_LOG(WARNING) << "Slurm launcher: " << s.status().message();
      });
}

absl::StatusOr<std::unique_ptr<Coordinator>> Coordinator::Start(
    const CoordinatorOptions& options) {
  if (absl::Status s = CheckExposure(options); !s.ok()) return s;
  // A TLS file that cannot be read fails the start before the data
  // directory is locked or its database migrated.
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      ServerCredentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  std::unique_ptr<Coordinator> c(new Coordinator());
  if (absl::Status s = c->OpenData(options); !s.ok()) return s;
  if (absl::Status s = c->StartScheduler(options); !s.ok()) return s;
  c->StartBackups(options);
  if (absl::Status s = c->StartServices(options, *credentials); !s.ok())
    return s;
  c->StartBackground(options);
  return c;
}

// The members then go in reverse order of declaration (coordinator.h):
// everything that uses the data directory before its lock.
Coordinator::~Coordinator() { Shutdown(); }

int Coordinator::http_port() const {
  return page_server_ == nullptr ? 0 : page_server_->port();
}

int Coordinator::metrics_port() const {
  return metrics_server_ == nullptr ? 0 : metrics_server_->port();
}

std::string Coordinator::address() const {
  return absl::StrCat(host_, ":", port_);
}

void Coordinator::Wait() { server_->Wait(); }

void Coordinator::Shutdown() {
  for (const std::unique_ptr<PeriodicThread>* loop :
       {&reaper_, &checkpointer_, &collector_, &backup_thread_,
        &launcher_thread_}) {
    if (*loop != nullptr) (*loop)->Stop();
  }
  if (scheduler_) scheduler_->Shutdown();  // Ends long-polls and watches.
  if (server_)
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::seconds(5));
}

}  // namespace distill
