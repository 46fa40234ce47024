// The cost of one scheduling decision (bench/run.sh lab): the coordinator's
// own store on disk holding N queued runs of 50 owners with three sets of
// requirements and two priorities, a tenth as many running (at most
// 1,000: one a worker); the time of
// the lease's choice (server/scheduling/fair_share.h) for a large GPU, a small
// GPU and a CPU worker, fair share and first in first out, against reading the
// queue in order (what a choice that scans it would cost at least), at
// N = 1,000, 10,000 and 100,000: a choice that does not scan stays flat.
//
//   fair_share_decision [--dir=/tmp] [--calls=2000] [--owners=50]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "common/placement.h"
#include "server/scheduling/fair_share.h"
#include "server/storage/store.h"

ABSL_FLAG(std::string, dir, "/tmp", "where the stores go (removed after)");
ABSL_FLAG(int, calls, 2000, "choices timed per figure");
ABSL_FLAG(int, owners, 50, "owners of the queued runs");

namespace distill {
namespace {

v1::Run QueuedRun(int owner, int kind, int32_t priority) {
  v1::Run run;
  run.set_status(v1::QUEUED);
  run.set_owner(absl::StrCat("owner-", owner));
  run.set_priority(priority);
  run.set_created_ms(1);
  v1::ExperimentSpec* spec = run.mutable_spec();
  spec->set_kind(v1::TRAIN_TEACHER);
  if (kind >= 1) spec->mutable_requirements()->set_device_kind("cuda");
  if (kind == 2) spec->mutable_requirements()->set_min_device_memory_gib(40);
  return run;
}

void Die(const absl::Status& s) {
  std::fprintf(stderr, "fair_share_decision: %s\n", s.ToString().c_str());
  std::exit(1);
}

// A store of `n` queued runs (and n/10 running, at most 1,000), in one
// transaction.
std::unique_ptr<Store> Fill(const std::string& path, int n) {
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenSqlite(path);
  if (!store.ok()) Die(store.status());
  std::mt19937 draw(7);
  const int owners = absl::GetFlag(FLAGS_owners);
  absl::Status s = (*store)->InTransaction(
      [&]() -> absl::Status {
        // At most 1,000 running: a worker's each.
        const int running = std::min(n / 10, 1000);
        for (int i = 0; i < n + running; ++i) {
          v1::Run run = QueuedRun(int(draw() % owners), int(draw() % 3),
                                  draw() % 20 == 0 ? 10 : 0);
          absl::StatusOr<int64_t> id = (*store)->InsertRun(run);
          if (!id.ok()) return id.status();
          if (i < n) continue;
          run.set_id(*id);
          run.set_status(v1::RUNNING);  // Owners' loads differ.
          if (absl::Status u = (*store)->UpdateRun(run); !u.ok()) return u;
        }
        // Decayed use that differs by owner.
        return (*store)->AccrueUsage(0.5, 60'000);
      },
      Store::Durability::kInWal);
  if (!s.ok()) Die(s);
  return *std::move(store);
}

template <typename F>
double MicrosPerCall(F&& f) {
  const int calls = absl::GetFlag(FLAGS_calls);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i) f();
  return std::chrono::duration<double, std::micro>(
             std::chrono::steady_clock::now() - start)
             .count() /
         calls;
}

int Main() {
  const WorkerOffer offers[] = {
      {"cuda:0", {"device_kind=cuda"}, int64_t{80} << 30},
      {"cuda:0", {"device_kind=cuda"}, int64_t{16} << 30},
      {"cpu", {"device_kind=cpu"}, int64_t{64} << 30}};
  std::printf("%9s  %-6s  %11s  %11s  %11s  %13s\n", "queued", "policy",
              "large GPU", "small GPU", "CPU", "queue in order");
  for (int n : {1'000, 10'000, 100'000}) {
    const std::string path = absl::StrCat(absl::GetFlag(FLAGS_dir),
                                          "/fair_share_decision_", n, ".db");
    std::unique_ptr<Store> store = Fill(path, n);
    // What a scheduler that reads the queue pays at least: every queued
    // run's id and priority in lease order (the covering index).
    const double scan = MicrosPerCall([&] {
      if (!store->QueueOrder(n).ok()) std::exit(1);
    });
    for (auto policy : {SchedulerOptions::QueuePolicy::kFairShare,
                        SchedulerOptions::QueuePolicy::kFifo}) {
      SchedulerOptions options;
      options.queue_policy = policy;
      double us[3];
      for (int o = 0; o < 3; ++o) {
        us[o] = MicrosPerCall([&] {
          absl::StatusOr<std::optional<v1::Run>> next =
              NextRunFor(*store, options, offers[o]);
          if (!next.ok() || !next->has_value()) std::exit(1);
        });
      }
      std::printf(
          "%9d  %-6s  %8.1f us  %8.1f us  %8.1f us  %10.0f us\n", n,
          policy == SchedulerOptions::QueuePolicy::kFifo ? "fifo" : "fair",
          us[0], us[1], us[2], scan);
    }
    store.reset();
    for (const char* suffix : {"", "-wal", "-shm"})
      std::filesystem::remove(path + suffix);
  }
  return 0;
}

}  // namespace
}  // namespace distill

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return distill::Main();
}
