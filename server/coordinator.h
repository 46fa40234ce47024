#ifndef DISTILL_SERVER_COORDINATOR_H_
#define DISTILL_SERVER_COORDINATOR_H_

#include <grpcpp/grpcpp.h>
#include <prometheus/registry.h>

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/api.h"
#include "common/scoped_fd.h"
#include "common/tls.h"
#include "http/metrics_server.h"
#include "server/base/clock.h"
#include "server/base/metrics.h"
#include "server/base/periodic_thread.h"
#include "server/operations/notifier.h"
#include "server/operations/slurm_launcher.h"
#include "server/rpc/reflection.h"
#include "server/rpc/services.h"
#include "server/scheduling/scheduler.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"
#include "server/web/pages.h"

namespace distill {

struct CoordinatorOptions {
  // host:port; port 0 picks a free one (see Coordinator::port()).
  std::string listen_address = kDefaultCoordinator;
  // Every call but the health check must carry a token whose role allows
  // it (server/scheduling/auth.h). The binary's default; off here for tests
  // that are not about tokens.
  bool require_tokens = false;
  // With tokens: when no valid admin token exists (a new data directory),
  // one is made and its secret written here (0600); empty means
  // data_dir/admin.token.
  std::string admin_token_file;
  // With tokens: when set and missing, a worker token is made and written
  // here (for Compose and clusters that share a file with their workers).
  // Either file, when it exists with a token this database does not know
  // (a Kubernetes secret), is imported with its role.
  std::string worker_token_file;
  // Listening beyond loopback without TLS and tokens serves anyone on the
  // network: refused unless this is set.
  bool insecure = false;
  // TLS on the port (common/tls.h); plaintext when unset.
  TlsFiles tls;
  // Holds distill.db and run-files/ (checkpoints and the other run files).
  std::string data_dir = "distill-data";
  // A snapshot of a backup (server/operations/backup.h) to restore into
  // data_dir, which must then be missing or empty, before starting from it.
  std::string restore_from;
  // Backups on demand and on a schedule (server/operations/backups.h).
  BackupOptions backup;
  SchedulerOptions scheduler;
  // host:port for /metrics in Prometheus' text format (no token: counts
  // only, no names or secrets); empty: none. Port 0 picks a free one.
  std::string metrics_listen;
  // The live pages (server/web/pages.h): host:port; empty: none. Port 0 picks a
  // free one (see Coordinator::http_port()).
  std::string http_listen;
  // The pages' limits and deadlines (http/http_server.h).
  HttpServerOptions http;
  // Workers on demand from Slurm (server/operations/slurm_launcher.h); none
  // when unset.
  std::optional<SlurmLauncherOptions> slurm;
  absl::Duration launcher_period = absl::Seconds(5);
  ServiceLimits limits;
  // How often the retention policies' pass drops run files (README
  // "Retention"); 0: only when asked (distill gc).
  absl::Duration gc_every = absl::ZeroDuration();
  // Word when a sweep ends (server/operations/notifier.h): posted to
  // notifier.url and to a sweep's notify.url when that starts with one of
  // notify_allow. notifier.pages_url empty: the pages' address when they
  // listen.
  NotifierOptions notifier;
  std::vector<std::string> notify_allow;
  Clock* clock = Clock::Real();
};

// The whole coordinator: store, run files, scheduler, tokens and the gRPC
// server with its three services, health checking and reflection (with
// a token); once a second
// it queues again the runs whose worker went silent (so that they do not
// wait for the next worker to ask). Thread-safe.
class Coordinator {
 public:
  static absl::StatusOr<std::unique_ptr<Coordinator>> Start(
      const CoordinatorOptions& options);
  ~Coordinator();

  int port() const { return port_; }
  // The /metrics port; 0 without metrics_listen.
  int metrics_port() const;
  // The live pages' port; 0 without http_listen.
  int http_port() const;
  // The live pages; REQUIRES: http_listen was set.
  PageServer& page_server() { return *page_server_; }
  // REQUIRES: started with metrics_listen.
  MetricsServer& metrics_server() { return *metrics_server_; }
  std::string address() const;
  Scheduler& scheduler() { return *scheduler_; }
  // Blocks until Shutdown is called.
  void Wait();
  void Shutdown();

 private:
  Coordinator() = default;

  // The steps of Start, in order: the data directory (locked) with its
  // database and run files; metrics, the scheduler and the tokens; the
  // services, the pages and the gRPC server; the threads that expire
  // leases, checkpoint the WAL and launch Slurm jobs; backups.
  absl::Status OpenData(const CoordinatorOptions& options);
  absl::Status RemoveUnrecordedRunFiles();
  absl::Status StartScheduler(const CoordinatorOptions& options);
  absl::Status StartServices(
      const CoordinatorOptions& options,
      std::shared_ptr<grpc::ServerCredentials> credentials);
  void StartBackups(const CoordinatorOptions& options);
  void StartBackground(const CoordinatorOptions& options);

  // In the order each needs the ones before: destroyed in reverse, the
  // threads first and the data directory's lock last.
  // Held (flock) for the coordinator's life: one coordinator owns a data
  // directory.
  ScopedFd lock_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<CoordinatorMetrics> metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RunFileStore> run_files_;
  std::unique_ptr<Backups> backups_;
  // What the scheduler tells the notifier (a sweep's run ended).
  std::unique_ptr<EventQueue> sweep_run_ended_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Notifier> notifier_;
  std::unique_ptr<ExperimentServiceImpl> experiments_;
  std::unique_ptr<WorkerServiceImpl> workers_;
  std::unique_ptr<AdminServiceImpl> admin_;
  std::unique_ptr<ReflectionServiceImpl> reflection_;
  std::unique_ptr<MetricsServer> metrics_server_;
  std::unique_ptr<PageServer> page_server_;
  std::unique_ptr<grpc::Server> server_;
  std::string host_;
  int port_ = 0;
  std::unique_ptr<SlurmLauncher> launcher_;
  std::unique_ptr<PeriodicThread> reaper_;
  std::unique_ptr<PeriodicThread> checkpointer_;
  std::unique_ptr<PeriodicThread>
      collector_;  // server/scheduling/retention.h's pass.
  std::unique_ptr<PeriodicThread> backup_thread_;
  std::unique_ptr<PeriodicThread> launcher_thread_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_COORDINATOR_H_
