// distill-coordinator: the gRPC server that queues runs, leases them to
// workers and keeps every spec, metric and checkpoint.
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <thread>
#include <tuple>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/api.h"
#include "common/flags_usage.h"
#include "server/base/disk_guard.h"
#include "server/coordinator.h"

ABSL_FLAG(std::string, listen, distill::kDefaultCoordinator,
          "address to serve on (host:port)");
ABSL_FLAG(std::string, data_dir, "distill-data",
          "directory for the database (distill.db) and run files (run-files/)");
ABSL_FLAG(int64_t, lease_seconds, 60,
          "a run whose worker is silent this long is queued again");
ABSL_FLAG(int64_t, heartbeat_seconds, 10, "how often workers send heartbeats");
ABSL_FLAG(int64_t, max_run_file_mb, 8192,
          "the largest run file (checkpoint, resume point, ...) a worker may "
          "upload, in MiB");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain for TLS on --listen (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "when set, clients must present a certificate this PEM CA signed");
ABSL_FLAG(std::string, auth, "tokens",
          "tokens: every call but the health check needs a token whose role "
          "allows it (distill tokens create); none: no tokens (loopback "
          "only, or with --insecure)");
ABSL_FLAG(std::string, admin_token_file, "",
          "where the first admin token is written when none exists "
          "(default DATA_DIR/admin.token)");
ABSL_FLAG(std::string, worker_token_file, "",
          "when set and missing, a worker token is made and written there");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for /metrics in Prometheus' text format (counts only, "
          "no token; HTTPS with --tls_cert/--tls_key, on the pages' server "
          "with its caps and deadlines); empty: off");
ABSL_FLAG(std::string, http_listen, "",
          "host:port for the live pages (an index of sweeps and runs, each "
          "sweep's report, each run's page; read-only): HTTPS with "
          "--tls_cert/--tls_key; beyond loopback as the gRPC port (TLS and "
          "tokens, or --insecure); empty: off");
ABSL_FLAG(std::string, launcher, "",
          "slurm: submit worker jobs (sbatch --slurm_script) while runs are "
          "queued, up to --slurm_max_workers; empty: none");
ABSL_FLAG(int, slurm_max_workers, 4, "the most worker jobs at once");
ABSL_FLAG(std::string, slurm_partition, "", "sbatch --partition");
ABSL_FLAG(std::string, slurm_account, "", "sbatch --account");
ABSL_FLAG(std::string, slurm_time, "", "sbatch --time (the jobs' limit)");
ABSL_FLAG(std::string, slurm_sbatch_args, "",
          "more sbatch arguments, space-separated (e.g. --gpus=1)");
ABSL_FLAG(std::string, slurm_script, "deploy/slurm/distill-worker.sbatch",
          "the batch script each job runs");
ABSL_FLAG(double, launcher_period_seconds, 5,
          "how often the launcher looks at the queue and the jobs");
ABSL_FLAG(bool, insecure, false,
          "serve beyond loopback without TLS or tokens (anyone who reaches "
          "the port controls every run); refused without it");

ABSL_FLAG(int, watches_per_caller, 64,
          "open WatchRun streams one token (or host, without tokens) may "
          "hold at once");
ABSL_FLAG(int, long_polls_per_caller, 64,
          "open LeaseRun long-polls one token (or host) may hold at once");
ABSL_FLAG(int, watch_threads, 2,
          "threads that read for every watch stream together");
ABSL_FLAG(absl::Duration, forget_stopped_workers_after, absl::Hours(24 * 7),
          "a worker stopped this long ago leaves `workers list` (its runs "
          "keep their history); 0: never");
ABSL_FLAG(std::string, backup_dir, "",
          "where backups go (README \"Backup and restore\"); empty: none");
ABSL_FLAG(absl::Duration, backup_every, absl::ZeroDuration(),
          "a backup this long after the last good one, e.g. 6h; 0: only "
          "when asked (distill backup)");
ABSL_FLAG(int, backup_keep, 7, "backups kept in --backup_dir (1 to 10000)");
ABSL_FLAG(std::string, min_free_disk, "1GiB",
          "below this much free space on --data_dir's disk no new run is "
          "leased (runs training go on), e.g. 10GiB; 0: leasing never pauses");
ABSL_FLAG(int, max_priority, 0,
          "the highest priority a researcher may give a sweep (an admin may "
          "set any); higher is refused naming this flag");
ABSL_FLAG(absl::Duration, fair_share_half_life, absl::Hours(24 * 7),
          "GPU time an owner used counts half after this long in fair share "
          "(README \"A lab shares its GPUs\"), e.g. 7d is 168h; 1m to 3650d");
ABSL_FLAG(int, max_running_per_owner, 0,
          "runs of one owner running at once, at most (0: no cap); an admin "
          "sets an owner's own with distill owners set");
ABSL_FLAG(std::string, queue_policy, "fair",
          "fair (priority, then the owner furthest below its share, then "
          "submission) or fifo (priority, then submission)");
ABSL_FLAG(std::string, preemption, "priority",
          "off; priority (a waiting run of higher priority that no free "
          "worker meets takes a worker from a lower one at its next step); "
          "fair (also an owner below its share by --preempt_share_margin)");
ABSL_FLAG(absl::Duration, preempt_after, absl::Minutes(10),
          "a run holds its worker this long before it may be preempted");
ABSL_FLAG(absl::Duration, preempt_every, absl::Minutes(10),
          "a worker is asked to give way at most once in this long");
ABSL_FLAG(double, preempt_share_margin, 2,
          "with --preemption=fair: the running owner's GPU time per share "
          "must exceed this many times the waiting owner's (1 to 1000)");
ABSL_FLAG(int, keep_best, -1,
          "a sweep without a retention policy keeps the checkpoints of its "
          "best this many students (by eval/top1; README \"Retention\"); "
          "-1: every one");
ABSL_FLAG(absl::Duration, gc_every, absl::Hours(1),
          "how often the retention policies drop run files, e.g. 30m; 0: "
          "only when asked (distill gc)");
ABSL_FLAG(std::string, notify_url, "",
          "an incoming webhook (Slack, Mattermost) told when each sweep ends: "
          "counts, best member, claims, link; @FILE reads it from FILE (a "
          "webhook's URL is its secret: keep it out of ps)");
ABSL_FLAG(std::vector<std::string>, notify_allow, {},
          "URL prefixes a sweep's own notify.url may start with (e.g. "
          "https://hooks.slack.com/); others are refused");
ABSL_FLAG(std::string, pages_url, "",
          "the pages' address in notifications' links, e.g. "
          "https://distill.lab.example; default: --http_listen's");
ABSL_FLAG(std::string, restore_from, "",
          "a backup's snapshot directory to restore into --data_dir (which "
          "must be missing or empty) before starting");

namespace {
std::atomic<bool> stop_requested{false};
void OnSignal(int) { stop_requested = true; }

absl::Status BackupFromFlags(distill::CoordinatorOptions& options) {
  options.restore_from = absl::GetFlag(FLAGS_restore_from);
  options.backup.dir = absl::GetFlag(FLAGS_backup_dir);
  options.backup.every = absl::GetFlag(FLAGS_backup_every);
  options.backup.keep = absl::GetFlag(FLAGS_backup_keep);
  if (options.backup.keep < 1 || options.backup.keep > 10'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--backup_keep must be 1 to 10000, got ", options.backup.keep));
  }
  if (options.backup.every < absl::ZeroDuration() ||
      (options.backup.every > absl::ZeroDuration() &&
       options.backup.every < absl::Minutes(1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--backup_every must be 0 or at least 1m, got ",
                     absl::FormatDuration(options.backup.every)));
  }
  if (options.backup.every > absl::ZeroDuration() &&
      options.backup.dir.empty()) {
    return absl::InvalidArgumentError("--backup_every needs --backup_dir");
  }
  return absl::OkStatus();
}

// Preemption's flags into `scheduler`.
absl::Status PreemptionFromFlags(distill::SchedulerOptions& scheduler) {
  using Mode = distill::SchedulerOptions::Preemption;
  const std::string mode = absl::GetFlag(FLAGS_preemption);
  if (mode == "off") {
    scheduler.preemption = Mode::kOff;
  } else if (mode == "priority") {
    scheduler.preemption = Mode::kPriority;
  } else if (mode == "fair") {
    scheduler.preemption = Mode::kFair;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--preemption must be off, priority or fair, got \"", mode, "\""));
  }
  for (const auto& [flag, value, out] :
       {std::tuple("--preempt_after", absl::GetFlag(FLAGS_preempt_after),
                   &scheduler.preempt_after_ms),
        std::tuple("--preempt_every", absl::GetFlag(FLAGS_preempt_every),
                   &scheduler.preempt_every_ms)}) {
    if (value < absl::ZeroDuration() || value > absl::Hours(24 * 365)) {
      return absl::InvalidArgumentError(absl::StrCat(
          flag, " must be 0 to 8760h, got ", absl::FormatDuration(value)));
    }
    *out = absl::ToInt64Milliseconds(value);
  }
  scheduler.preempt_share_margin = absl::GetFlag(FLAGS_preempt_share_margin);
  if (!(scheduler.preempt_share_margin >= 1 &&
        scheduler.preempt_share_margin <= 1000)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--preempt_share_margin must be 1 to 1000, got ",
                     scheduler.preempt_share_margin));
  }
  return absl::OkStatus();
}

// Fair share's flags into `scheduler`.
absl::Status FairShareFromFlags(distill::SchedulerOptions& scheduler) {
  const absl::Duration half_life = absl::GetFlag(FLAGS_fair_share_half_life);
  if (half_life < absl::Minutes(1) || half_life > absl::Hours(24 * 3650)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--fair_share_half_life must be 1m to 87600h, got ",
                     absl::FormatDuration(half_life)));
  }
  scheduler.fair_share_half_life_ms = absl::ToInt64Milliseconds(half_life);
  scheduler.max_running_per_owner = absl::GetFlag(FLAGS_max_running_per_owner);
  if (scheduler.max_running_per_owner < 0 ||
      scheduler.max_running_per_owner > 1'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_running_per_owner must be 0 to 1000000, got ",
                     scheduler.max_running_per_owner));
  }
  if (absl::Status s = PreemptionFromFlags(scheduler); !s.ok()) return s;
  const std::string policy = absl::GetFlag(FLAGS_queue_policy);
  if (policy == "fair") {
    scheduler.queue_policy = distill::SchedulerOptions::QueuePolicy::kFairShare;
  } else if (policy == "fifo") {
    scheduler.queue_policy = distill::SchedulerOptions::QueuePolicy::kFifo;
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "--queue_policy must be fair or fifo, got \"", policy, "\""));
  }
  return absl::OkStatus();
}

// --notify_url (or @FILE), --notify_allow and --pages_url.
absl::Status NotifierFromFlags(distill::CoordinatorOptions& options) {
  std::string url = absl::GetFlag(FLAGS_notify_url);
  if (absl::StartsWith(url, "@")) {
    std::ifstream file(url.substr(1));
    std::string line;
    if (!file || !std::getline(file, line)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--notify_url: cannot read ", url.substr(1)));
    }
    url = std::string(absl::StripAsciiWhitespace(line));
  }
  if (!url.empty() && !absl::StartsWith(url, "http://") &&
      !absl::StartsWith(url, "https://")) {
    return absl::InvalidArgumentError(
        "--notify_url must be an http:// or https:// URL");
  }
  options.notifier.url = url;
  options.notifier.pages_url = absl::GetFlag(FLAGS_pages_url);
  options.notify_allow = absl::GetFlag(FLAGS_notify_allow);
  for (const std::string& prefix : options.notify_allow) {
    if (!absl::StartsWith(prefix, "http://") &&
        !absl::StartsWith(prefix, "https://")) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--notify_allow: \"", prefix, "\" is not an http(s) URL prefix"));
    }
  }
  return absl::OkStatus();
}

// The scheduler's part of the flags into `scheduler`.
absl::Status SchedulerFromFlags(distill::SchedulerOptions& scheduler) {
  scheduler.max_run_file_bytes = absl::GetFlag(FLAGS_max_run_file_mb) << 20;
  scheduler.lease_duration_ms = absl::GetFlag(FLAGS_lease_seconds) * 1000;
  scheduler.heartbeat_interval_ms =
      absl::GetFlag(FLAGS_heartbeat_seconds) * 1000;
  absl::StatusOr<int64_t> min_free =
      distill::ParseBytes(absl::GetFlag(FLAGS_min_free_disk));
  if (!min_free.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--min_free_disk: ", min_free.status().message()));
  }
  scheduler.min_free_disk_bytes = *min_free;
  scheduler.max_priority = absl::GetFlag(FLAGS_max_priority);
  if (std::abs(scheduler.max_priority) > 1000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--max_priority must be -1000 to 1000, got ", scheduler.max_priority));
  }
  if (absl::Status s = FairShareFromFlags(scheduler); !s.ok()) return s;
  scheduler.default_keep_best = absl::GetFlag(FLAGS_keep_best);
  if (scheduler.default_keep_best < -1 ||
      scheduler.default_keep_best > 1'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat("--keep_best must be -1 to 1000000, got ",
                     scheduler.default_keep_best));
  }
  return absl::OkStatus();
}

// The options the flags give; an error naming the bad flag otherwise.
absl::StatusOr<distill::CoordinatorOptions> OptionsFromFlags() {
  distill::CoordinatorOptions options;
  options.listen_address = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  const std::string auth = absl::GetFlag(FLAGS_auth);
  if (auth != "tokens" && auth != "none") {
    return absl::InvalidArgumentError(
        absl::StrCat("--auth must be tokens or none, got \"", auth, "\""));
  }
  options.require_tokens = auth == "tokens";
  options.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  options.worker_token_file = absl::GetFlag(FLAGS_worker_token_file);
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.http_listen = absl::GetFlag(FLAGS_http_listen);
  if (const std::string launcher = absl::GetFlag(FLAGS_launcher);
      launcher == "slurm") {
    distill::SlurmLauncherOptions slurm;
    slurm.max_workers = absl::GetFlag(FLAGS_slurm_max_workers);
    slurm.partition = absl::GetFlag(FLAGS_slurm_partition);
    slurm.account = absl::GetFlag(FLAGS_slurm_account);
    slurm.time_limit = absl::GetFlag(FLAGS_slurm_time);
    slurm.sbatch_args = absl::StrSplit(absl::GetFlag(FLAGS_slurm_sbatch_args),
                                       ' ', absl::SkipEmpty());
    slurm.script = absl::GetFlag(FLAGS_slurm_script);
    options.slurm = slurm;
    options.launcher_period =
        absl::Seconds(absl::GetFlag(FLAGS_launcher_period_seconds));
  } else if (!launcher.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--launcher must be slurm or empty, got \"", launcher, "\""));
  }
  options.tls = {absl::GetFlag(FLAGS_tls_cert), absl::GetFlag(FLAGS_tls_key),
                 absl::GetFlag(FLAGS_tls_client_ca)};
  if (absl::Status s = SchedulerFromFlags(options.scheduler); !s.ok()) return s;
  if (absl::Status s = NotifierFromFlags(options); !s.ok()) return s;
  options.gc_every = absl::GetFlag(FLAGS_gc_every);
  if (options.gc_every < absl::ZeroDuration() ||
      (options.gc_every > absl::ZeroDuration() &&
       options.gc_every < absl::Minutes(1))) {
    return absl::InvalidArgumentError(
        absl::StrCat("--gc_every must be 0 or at least 1m, got ",
                     absl::FormatDuration(options.gc_every)));
  }
  options.scheduler.forget_stopped_workers_after_ms = absl::ToInt64Milliseconds(
      absl::GetFlag(FLAGS_forget_stopped_workers_after));
  options.limits.watches_per_host = absl::GetFlag(FLAGS_watches_per_caller);
  options.limits.long_polls_per_host =
      absl::GetFlag(FLAGS_long_polls_per_caller);
  options.limits.watch_threads = absl::GetFlag(FLAGS_watch_threads);
  if (options.limits.watches_per_host < 1 ||
      options.limits.watches_per_host > 1'000'000 ||
      options.limits.long_polls_per_host < 1 ||
      options.limits.long_polls_per_host > 1'000'000 ||
      options.limits.watch_threads < 1 || options.limits.watch_threads > 64) {
    return absl::InvalidArgumentError(
        "--watches_per_caller and --long_polls_per_caller must be 1 to "
        "1000000, --watch_threads 1 to 64");
  }
  if (absl::Status s = BackupFromFlags(options); !s.ok()) return s;
  return options;
}

// Where it serves, for the operator and the tests that start it.
void SayWhere(const distill::CoordinatorOptions& options,
              distill::Coordinator& coordinator) {
  std::cerr << "distill-coordinator: serving on " << options.listen_address
            << " (port " << coordinator.port() << "), data in "
            << options.data_dir << std::endl;
  if (const int port = coordinator.metrics_port(); port != 0) {
    std::cerr << "distill-coordinator: metrics on "
              << (options.tls.cert.empty() ? "" : "https://")
              << options.metrics_listen.substr(
                     0, options.metrics_listen.rfind(':'))
              << ":" << port << "/metrics" << std::endl;
  }
  if (const int port = coordinator.http_port(); port != 0) {
    std::cerr << "distill-coordinator: pages on "
              << (options.tls.cert.empty() ? "http://" : "https://")
              << options.http_listen.substr(0, options.http_listen.rfind(':'))
              << ":" << port << "/" << std::endl;
  }
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "distill-coordinator --listen=HOST:PORT --data_dir=DIR "
      "[--auth=tokens|none] [--tls_cert=PEM --tls_key=PEM]");
  distill::SetFlagsUsage(distill::BuildLine("distill-coordinator", ""),
                         {"server/coordinator_main.cc"});
  absl::ParseCommandLine(argc, argv);
  absl::StatusOr<distill::CoordinatorOptions> options = OptionsFromFlags();
  if (!options.ok()) {
    std::cerr << "distill-coordinator: " << options.status().message() << "\n";
    return 2;
  }
  auto coordinator = distill::Coordinator::Start(*options);
  if (!coordinator.ok()) {
    std::cerr << "distill-coordinator: " << coordinator.status().message()
              << "\n";
    return 1;
  }
  SayWhere(*options, **coordinator);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  std::thread waiter([&] { (*coordinator)->Wait(); });
  while (!stop_requested)
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::cerr << "distill-coordinator: shutting down" << std::endl;
  (*coordinator)->Shutdown();
  waiter.join();
  return 0;
}
