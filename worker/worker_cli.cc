// distill-worker's command line (worker/worker_cli.h): its flags, the
// slots it forks, and the daemon or the local run they ask for.
#include "worker/worker_cli.h"

#include <prometheus/registry.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api.h"
#include "common/channel.h"
#include "common/flags_usage.h"
#include "common/spec_file.h"
#include "common/token.h"
#include "common/validation.h"
#include "distill/v1/spec.pb.h"
#include "http/metrics_server.h"
#include "worker/data_roots.h"
#include "worker/device_info.h"
#include "worker/engine/trainer.h"
#include "worker/spec_convert.h"
#include "worker/worker.h"

ABSL_FLAG(std::string, coordinator, distill::kDefaultCoordinator,
          "coordinator address (host:port)");
ABSL_FLAG(std::string, device, "cpu", "LibTorch device: cpu, cuda:0, ...");
ABSL_FLAG(int, threads, 0, "LibTorch intra-op threads; 0 means one per core");
ABSL_FLAG(std::string, scratch_dir, "/tmp/distill-worker",
          "where teachers are cached and checkpoints written before upload");
ABSL_FLAG(double, scratch_gb, 20,
          "the most GiB that downloaded checkpoints and teacher-cache entries "
          "in --scratch_dir may take; the least recently used go first");
ABSL_FLAG(bool, teacher_cache, true,
          "reuse the frozen teacher's outputs for the same teacher and data "
          "(scratch_dir/teacher-cache)");
ABSL_FLAG(std::vector<std::string>, data_root, distill::DefaultDataRoots(),
          "directories (comma-separated) inside which every path a spec "
          "names must lie: dataset.root, teacher.torchscript, "
          "student.pretrained");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM CA the coordinator's certificate must chain to: TLS to the "
          "coordinator (plaintext when empty)");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate, for a coordinator that requires one");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(double, drain_seconds, 0,
          "on SIGTERM (or `distill workers drain`) the current run may go on "
          "this long to finish; then it is handed back with a resume point "
          "at the next step boundary. Keep it below the cluster's grace "
          "period (Docker 10 s, Kubernetes terminationGracePeriodSeconds)");
ABSL_FLAG(double, exit_after_idle_seconds, 0,
          "exit (deregistered, status 0) after leasing nothing this long; 0: "
          "never (for Slurm jobs that should not hold an allocation idle)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port for /metrics in Prometheus' text format (the run, step, "
          "images/s, drain state); empty: off");
ABSL_FLAG(int, slots, 1,
          "runs trained at once on --device (1 to 16), each by a worker "
          "process of its own: id NAME-slotK, --threads / N threads, its own "
          "scratch (scratch_dir/slot-K), the teacher cache shared; each "
          "drains on SIGTERM, and dies with this process");
ABSL_FLAG(std::string, labels, "",
          "labels this worker offers for placement, KEY=VALUE,... (e.g. "
          "pool=a100,site=b); a run whose spec's requirements.labels names "
          "one leases only here. device_kind=cpu|cuda is added from --device");
ABSL_FLAG(std::string, name, "",
          "the name this worker registers with (its id starts with it); "
          "default: the host name");
ABSL_FLAG(std::string, token_file, "",
          "file holding this worker's token (role worker); default "
          "$DISTILL_TOKEN_FILE, none when both are empty");
ABSL_FLAG(std::string, run_local, "",
          "run this ExperimentSpec YAML file here, without a coordinator");
ABSL_FLAG(std::string, teacher_checkpoint, "",
          "--run_local: the teacher checkpoint file");
ABSL_FLAG(std::string, output_checkpoint, "checkpoint.pt",
          "--run_local: where the final checkpoint goes");

namespace {

// The first SIGTERM or SIGINT drains (the run is handed back with a resume
// point, or finishes within --drain_seconds); a second stops at once, and
// the run's lease then expires as after a crash.
std::atomic<bool> stop_requested{false};
void OnSignal(int) {
  if (stop_requested.exchange(true)) std::_Exit(128 + SIGTERM);
}

int RunLocal(const std::string& path, const std::string& device) {
  distill::v1::ExperimentSpec submitted;
  if (absl::Status s = distill::ReadYamlFile(path, &submitted); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  // The teacher checkpoint, if any, is --teacher_checkpoint's file.
  absl::StatusOr<distill::v1::ExperimentSpec> spec =
      distill::ResolveAndValidate(submitted,
                                  distill::TeacherReference::kProvided);
  if (!spec.ok()) {
    std::cerr << path << ": " << spec.status().message() << "\n";
    return 2;
  }
  distill::engine::RunHooks hooks;
  hooks.teacher_checkpoint = absl::GetFlag(FLAGS_teacher_checkpoint);
  hooks.output_checkpoint = absl::GetFlag(FLAGS_output_checkpoint);
  hooks.on_metrics = [](std::vector<distill::engine::Metric> metrics) {
    for (const auto& m : metrics) {
      std::cout << "epoch " << m.epoch << " step " << m.step << " " << m.key
                << " " << m.value << "\n";
    }
  };
  hooks.should_stop = [] { return stop_requested.load(); };
  auto outcome =
      distill::engine::ExecuteRun(distill::ToRunConfig(*spec, device), hooks);
  if (!outcome.ok()) {
    std::cerr << "run failed: " << outcome.status().message() << "\n";
    return 1;
  }
  for (const auto& [key, value] : outcome->results)
    std::cout << key << " = " << value << "\n";
  return 0;
}

// With --slots N > 1: forks N workers (before any thread starts), each
// returning here with its slot number (1..N) to serve; the parent stays
// and supervises: SIGTERM or SIGINT is passed on to every slot (each
// drains), and the parent exits with the worst status once all have
// ended. A slot dies with the parent (kill -9 of the worker: every slot's
// lease expires and its run is queued again). Returns the slot number, or
// -status for the parent once all are done.
int ForkSlots(int slots) {
  const pid_t parent = ::getpid();
  std::vector<pid_t> children;
  for (int k = 1; k <= slots; ++k) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      std::cerr << "distill-worker: cannot start slot " << k << ": "
                << std::strerror(errno) << "\n";
      for (pid_t child : children) ::kill(child, SIGTERM);
      break;
    }
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) std::_Exit(1);  // The parent went already.
      return k;
    }
    children.push_back(pid);
  }
  int worst = 0;
  bool passed_on = false;
  size_t alive = children.size();
  while (alive > 0) {
    int status = 0;
    const pid_t done = ::waitpid(-1, &status, WNOHANG);
    if (done > 0) {
      --alive;
      const int code =
          WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      worst = std::max(worst, code);
      continue;
    }
    if (stop_requested && !passed_on) {
      for (pid_t child : children) ::kill(child, SIGTERM);
      passed_on = true;
    }
    ::usleep(100'000);
  }
  return -worst;
}

// "host:port" with the port moved by `offset` (0 stays 0: a free one).
std::string OffsetPort(const std::string& listen, int offset) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port == 0) {
    return listen;
  }
  return absl::StrCat(listen.substr(0, colon + 1), port + offset);
}

// The worker's options from its flags; with `slot` > 0, those of that slot
// of `slots` on one device (its threads, scratch, name and /metrics port,
// `*metrics_listen` moved by the slot).
absl::StatusOr<distill::WorkerOptions> OptionsFromFlags(
    int slot, int slots, std::string* metrics_listen) {
  distill::WorkerOptions options;
  options.device = absl::GetFlag(FLAGS_device);
  options.threads =
      absl::GetFlag(FLAGS_threads) > 0
          ? absl::GetFlag(FLAGS_threads)
          : int(std::max(1u, std::thread::hardware_concurrency()));
  options.scratch_dir = absl::GetFlag(FLAGS_scratch_dir);
  options.teacher_cache = absl::GetFlag(FLAGS_teacher_cache);
  options.data_roots = absl::GetFlag(FLAGS_data_root);
  options.scratch_max_bytes =
      int64_t(absl::GetFlag(FLAGS_scratch_gb) * double(int64_t{1} << 30));
  options.drain_grace = absl::Seconds(absl::GetFlag(FLAGS_drain_seconds));
  options.hostname = absl::GetFlag(FLAGS_name);
  absl::StatusOr<std::vector<std::string>> labels =
      distill::ParseLabels(absl::GetFlag(FLAGS_labels));
  if (!labels.ok()) return labels.status();
  options.labels = *std::move(labels);
  if (slot > 0) {
    // Each slot a worker of its own on the same device.
    options.threads = std::max(1, options.threads / slots);
    options.teacher_cache_dir = options.scratch_dir + "/teacher-cache";
    options.scratch_dir = absl::StrCat(options.scratch_dir, "/slot-", slot);
    if (options.hostname.empty()) {
      char host[256] = {};
      ::gethostname(host, sizeof host - 1);
      options.hostname = host;
    }
    options.hostname = absl::StrCat(options.hostname, "-slot", slot);
    *metrics_listen = OffsetPort(*metrics_listen, slot - 1);
  }
  options.exit_after_idle =
      absl::Seconds(absl::GetFlag(FLAGS_exit_after_idle_seconds));
  return options;
}

// The secret in --token_file (or $DISTILL_TOKEN_FILE); "" without one.
absl::StatusOr<std::string> TokenFromFlags() {
  std::string token_file = absl::GetFlag(FLAGS_token_file);
  if (const char* env = std::getenv("DISTILL_TOKEN_FILE");
      token_file.empty() && env != nullptr) {
    token_file = env;
  }
  if (token_file.empty()) return std::string();
  return distill::ReadTokenFile(token_file);
}

// What --help and --version say.
void SetUsage() {
  absl::SetProgramUsageMessage(
      "distill-worker --coordinator=HOST:PORT [--device=cuda:0]\n"
      "       distill-worker --run_local=spec.yaml "
      "[--teacher_checkpoint=FILE]");
  distill::SetFlagsUsage(
      distill::BuildLine(
          "distill-worker",
          absl::StrCat("LibTorch ", TORCH_VERSION_MAJOR, ".",
                       TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH)),
      {"worker/worker_cli.cc"});
}

}  // namespace

int distill::WorkerMain(int argc, char** argv, StageHook* stage_hook) {
  SetUsage();
  absl::ParseCommandLine(argc, argv);
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);
  const int slots = absl::GetFlag(FLAGS_slots);
  if (slots < 1 || slots > 16) {
    std::cerr << "distill-worker: --slots must be 1 to 16, got " << slots
              << "\n";
    return 2;
  }
  int slot = 0;  // 0: the one worker of a single slot.
  if (slots > 1 && absl::GetFlag(FLAGS_run_local).empty()) {
    slot = ForkSlots(slots);
    if (slot <= 0) return -slot;
  }
  const std::string device = absl::GetFlag(FLAGS_device);
  std::string metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  absl::StatusOr<distill::WorkerOptions> flagged =
      OptionsFromFlags(slot, slots, &metrics_listen);
  if (!flagged.ok()) {
    std::cerr << "distill-worker: " << flagged.status().message() << "\n";
    return 2;
  }
  distill::WorkerOptions& options = *flagged;
  options.stage_hook = stage_hook;
  absl::StatusOr<std::string> token = TokenFromFlags();
  if (!token.ok()) {
    std::cerr << "distill-worker: " << token.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      distill::Dial(absl::GetFlag(FLAGS_coordinator),
                    {absl::GetFlag(FLAGS_tls_cert),
                     absl::GetFlag(FLAGS_tls_key), absl::GetFlag(FLAGS_tls_ca)},
                    *token);
  if (!channel.ok()) {
    std::cerr << "distill-worker: " << channel.status().message() << "\n";
    return 2;
  }
  // /metrics, when asked for: the registry and the exposer live as long as
  // the worker.
  auto registry = std::make_shared<prometheus::Registry>();
  distill::WorkerMetrics metrics(*registry);
  std::unique_ptr<distill::MetricsServer> metrics_server;
  if (const std::string& listen = metrics_listen; !listen.empty()) {
    absl::StatusOr<std::unique_ptr<distill::MetricsServer>> server =
        distill::MetricsServer::Start(listen, registry);
    if (!server.ok()) {
      std::cerr << "distill-worker: " << server.status().message() << "\n";
      return 2;
    }
    metrics_server = *std::move(server);
    options.metrics = &metrics;
    std::cerr << "distill-worker: metrics on "
              << listen.substr(0, listen.rfind(':')) << ":"
              << metrics_server->port() << "/metrics" << std::endl;
  }
  distill::Worker worker(*channel, options);
  std::cerr << "distill-worker: " << worker.Describe() << std::endl;
  if (!absl::GetFlag(FLAGS_run_local).empty()) {
    return RunLocal(absl::GetFlag(FLAGS_run_local), device);
  }
  std::cerr << "distill-worker: serving coordinator "
            << absl::GetFlag(FLAGS_coordinator) << std::endl;
  absl::Status status = worker.Serve(stop_requested);
  if (!status.ok()) {
    std::cerr << "distill-worker: " << status.message() << "\n";
    return 1;
  }
  return 0;
}
