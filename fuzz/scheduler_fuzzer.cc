// libFuzzer, the whole path of what clients send: a session of requests
// (fuzz/proto/fuzz_session.proto: SubmitRun, SubmitSweep, Annotate,
// SetOwnerPolicy and ListOwners,
// ListRuns filters, ReportMetrics, leases, completions, failures, watches,
// cancellations, retries) through the scheduler over a real SQLite store
// and run-file directory, as the gRPC handlers make them. Any call may be
// refused; none may crash, hang, allocate without bound or throw. After
// each submission it checks that a refused one stored nothing (issue 22's
// phantom run) and an accepted one stored exactly its runs, and after
// each request that fair share's groups match the runs.
#include <google/protobuf/stubs/logging.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "distill/fuzz/fuzz_session.pb.h"
#include "server/base/clock.h"
#include "server/base/no_throw.h"
#include "server/scheduling/fair_share.h"
#include "server/scheduling/scheduler.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"

namespace distill {
namespace {

constexpr int kMaxOps = 48;

// One directory for the run files of every input, removed at exit.
const std::string& RunFilesDir() {
  static const std::string* const dir = [] {
    char name[] = "/tmp/distill_scheduler_fuzzer_XXXXXX";
    auto* path = new std::string(::mkdtemp(name));
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(RunFilesDir(), ignored);
    });
    return path;
  }();
  return *dir;
}

int64_t CountRuns(Store& store) {
  absl::StatusOr<std::vector<v1::Run>> runs = store.FindRuns(RunQuery());
  if (!runs.ok()) std::abort();  // The store must stay readable.
  return int64_t(runs->size());
}

// The lease a session holds last, for `as_leased` calls.
struct Leased {
  int64_t run_id = 0;
  int32_t attempt = 0;
  std::string worker_id;
};

void Apply(const fuzz::Op& op, Scheduler& scheduler, Store& store,
           FakeClock& clock, Leased& leased) {
  auto fence = [&](auto* request) {
    if (!op.as_leased()) return;
    request->set_run_id(leased.run_id);
    request->set_attempt(leased.attempt);
  };
  // What the handlers do. An exception is a finding: called bare, it ends
  // the process; caught inside a transaction, it aborts (see Initialize).
  switch (op.op_case()) {
    case fuzz::Op::kSubmitRun: {
      const int64_t before = CountRuns(store);
      const bool ok = scheduler.SubmitRun(op.submit_run()).ok();
      if (CountRuns(store) != before + (ok ? 1 : 0)) std::abort();
      break;
    }
    case fuzz::Op::kSubmitSweep: {
      const int64_t before = CountRuns(store);
      absl::StatusOr<v1::SubmitSweepResponse> r =
          scheduler.SubmitSweep(op.submit_sweep());
      if (CountRuns(store) != before + (r.ok() ? r->runs_size() : 0))
        std::abort();
      break;
    }
    case fuzz::Op::kAnnotate:
      scheduler.Annotate(op.annotate()).status().IgnoreError();
      break;
    case fuzz::Op::kListRuns:
      scheduler.FindRuns(op.list_runs()).status().IgnoreError();
      break;
    case fuzz::Op::kReportMetrics: {
      v1::ReportMetricsRequest request = op.report_metrics();
      fence(&request);
      v1::ReportMetricsResponse response;
      scheduler.ReportMetrics(request, 0, &response).IgnoreError();
      break;
    }
    case fuzz::Op::kLease: {
      absl::StatusOr<v1::RegisterWorkerResponse> worker =
          scheduler.RegisterWorker(op.lease());
      if (!worker.ok()) break;
      absl::StatusOr<v1::LeaseRunResponse> lease =
          scheduler.LeaseRun(worker->worker_id());
      if (lease.ok() && lease->has_run()) {
        leased = {lease->run().id(), lease->run().attempt(),
                  worker->worker_id()};
      }
      break;
    }
    case fuzz::Op::kCompleteRun: {
      v1::CompleteRunRequest request = op.complete_run();
      fence(&request);
      scheduler.CompleteRun(request).IgnoreError();
      break;
    }
    case fuzz::Op::kFailRun: {
      v1::FailRunRequest request = op.fail_run();
      fence(&request);
      scheduler.FailRun(request).IgnoreError();
      break;
    }
    case fuzz::Op::kSweepResults:
      scheduler.SweepResults(op.sweep_results().sweep()).status().IgnoreError();
      break;
    case fuzz::Op::kWatchRun: {
      WatchCursor cursor;
      cursor.include_history = true;
      scheduler.PollRunEvent(op.watch_run(), &cursor).status().IgnoreError();
      break;
    }
    case fuzz::Op::kCancelRun:
      scheduler.CancelRun(op.cancel_run().id()).status().IgnoreError();
      break;
    case fuzz::Op::kRetrySweep:
      scheduler.RetrySweep(op.retry_sweep().sweep()).status().IgnoreError();
      break;
    case fuzz::Op::kCancelSweep:
      scheduler.CancelSweep(op.cancel_sweep().sweep()).status().IgnoreError();
      break;
    case fuzz::Op::kRunMetrics:
      scheduler
          .MetricHistory(op.run_metrics().run_id(),
                         op.run_metrics().page_token(),
                         op.run_metrics().page_size())
          .status()
          .IgnoreError();
      break;
    case fuzz::Op::kHeartbeat: {
      v1::HeartbeatRequest request = op.heartbeat();
      fence(&request);
      if (op.as_leased()) request.set_worker_id(leased.worker_id);
      scheduler.Heartbeat(request).status().IgnoreError();
      break;
    }
    case fuzz::Op::kReleaseRun: {
      v1::ReleaseRunRequest request = op.release_run();
      fence(&request);
      scheduler.ReleaseRun(request).IgnoreError();
      break;
    }
    case fuzz::Op::kAdvanceClockMs:
      clock.AdvanceMs(
          std::clamp<int64_t>(op.advance_clock_ms(), 0, int64_t{1} << 40));
      scheduler.ExpireLeases().IgnoreError();
      break;
    case fuzz::Op::kSetOwnerPolicy:
      scheduler.SetOwnerPolicy(op.set_owner_policy()).status().IgnoreError();
      scheduler.ListOwners().status().IgnoreError();
      break;
    case fuzz::Op::OP_NOT_SET:
      break;
  }
}

}  // namespace
}  // namespace distill

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  // Protobuf's complaints about invalid UTF-8 in what it parsed are the
  // fuzzer's own doing, not findings.
  google::protobuf::SetLogHandler(nullptr);
  // An exception caught at a request's edge (or a transaction's) is a bug
  // found: it aborts, for libFuzzer to report.
  distill::AbortOnCaughtException(true);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace distill;
  fuzz::Session session;
  if (!session.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (session.ops_size() > kMaxOps) return 0;
  absl::StatusOr<std::unique_ptr<Store>> store = Store::OpenSqlite(":memory:");
  absl::StatusOr<std::unique_ptr<RunFileStore>> files =
      RunFileStore::OpenDirectory(RunFilesDir());
  if (!store.ok() || !files.ok()) std::abort();
  FakeClock clock;
  Scheduler scheduler(store->get(), files->get(), &clock);
  Leased leased;
  for (const fuzz::Op& op : session.ops()) {
    Apply(op, scheduler, **store, clock, leased);
    // Fair share's groups, kept by triggers, match the runs after each.
    if (!CheckQueueGroups(**store).ok()) std::abort();
  }
  return 0;
}
