// A load generator for one running coordinator (bench/run.sh coordinator):
// fake workers and researchers over gRPC on loopback, bounded in count and
// time, and, as the limit, SQLite's own insert rate for the same metric
// rows on the same disk. Prints one line per figure.
//
//   coordinator_load --target=127.0.0.1:PORT --admin_token_file=F
//       --worker_token_file=F --scratch_dir=DIR [--seconds=5]
//       [--runs=100000]
#include <grpcpp/grpcpp.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_client.h"
#include "common/api.h"
#include "common/metric_keys.h"
#include "common/token.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "server/storage/migrations.h"

ABSL_FLAG(std::string, target, distill::kDefaultCoordinator, "the coordinator");
ABSL_FLAG(std::string, admin_token_file, "", "a researcher or admin token");
ABSL_FLAG(std::string, worker_token_file, "", "a worker token");
ABSL_FLAG(std::string, scratch_dir, "/tmp",
          "where the SQLite reference databases go (the coordinator's disk)");
ABSL_FLAG(double, seconds, 5, "how long each timed phase lasts");
ABSL_FLAG(int, runs, 100'000, "runs stored before the listing figures");
ABSL_FLAG(int, query_runs, 10'000, "runs stored before the query figures");
ABSL_FLAG(int, points_per_report, 1000, "metric points in one report");
ABSL_FLAG(int64_t, history_points, 10'000'000,
          "metric points of the one run in the history figure");
ABSL_FLAG(std::string, phases,
          "sqlite,ingest,lease,getrun,watch,history,query,list",
          "which figures to measure");
ABSL_FLAG(int, hold_ms, 100,
          "a leasing worker holds its run for 0 to this many ms (uniform) "
          "before it hands it back; 0: at once (a closed loop)");
ABSL_FLAG(int, list_every_ms, 0,
          "each listing client asks for a page this often; 0: back to back");
ABSL_FLAG(int, watches, 10'000, "open WatchRun streams in the watch figure");
ABSL_FLAG(int, coordinator_pid, 0,
          "the coordinator's process, for its thread count");
ABSL_FLAG(int, report_every_ms, 100,
          "during the GetRun figure, each worker reports this often");

namespace distill {
namespace {

namespace fs = std::filesystem;
using v1::ExperimentService;
using v1::WorkerService;

std::string g_admin_token;
std::string g_worker_token;

using bench::Authorize;

// A channel of its own (its own TCP connection), as a separate worker has.
std::shared_ptr<grpc::Channel> NewChannel(int index) {
  return bench::OwnChannel(absl::GetFlag(FLAGS_target), index, 64 << 20);
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& status) {
  bench::Die("coordinator_load", what, status);
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

v1::ExperimentSpec TeacherSpec() {
  v1::ExperimentSpec spec;
  spec.set_kind(v1::TRAIN_TEACHER);
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.mutable_dataset()->set_train_limit(512);
  v1::VitSpec* vit = spec.mutable_teacher()->mutable_vit();
  vit->set_patch_size(7);
  vit->set_width(32);
  vit->set_depth(1);
  vit->set_heads(2);
  spec.set_epochs(1);
  return spec;
}

const char* const kKeys[] = {metric_keys::kLoss,     metric_keys::kLossCe,
                             metric_keys::kLossMse,  metric_keys::kLossIkd,
                             metric_keys::kLr,       metric_keys::kImagesPerSec,
                             metric_keys::kEvalTop1, "train/grad_norm"};

// `n` points from step `step` on, cycling through eight keys.
void FillPoints(int n, int64_t step, v1::ReportMetricsRequest* request) {
  for (int i = 0; i < n; ++i) {
    v1::MetricPoint* p = request->add_points();
    p->set_key(kKeys[i % 8]);
    p->set_step(step + i / 8);
    p->set_epoch(int32_t((step + i / 8) / 1000));
    p->set_value(1.0 / double(step + i + 1));
    p->set_time_ms(1'790'000'000'000 + step);
  }
}

std::vector<int64_t> SubmitRuns(int n) {
  std::vector<int64_t> ids(n);
  std::vector<std::thread> threads;
  std::atomic<int> next{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stub = ExperimentService::NewStub(NewChannel(1000 + t));
      v1::SubmitRunRequest request;
      *request.mutable_spec() = TeacherSpec();
      for (int i = next++; i < n; i = next++) {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::Run run;
        grpc::Status s = stub->SubmitRun(&context, request, &run);
        if (!s.ok()) Die("SubmitRun", s);
        ids[i] = run.id();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return ids;
}

// A fake worker: its own connection, registered, holding one lease.
struct FakeWorker {
  std::unique_ptr<WorkerService::Stub> stub;
  std::string id;
  v1::Run run;

  explicit FakeWorker(int index)
      : stub(WorkerService::NewStub(NewChannel(index))) {
    grpc::ClientContext context;
    Authorize(&context, g_worker_token);
    v1::RegisterWorkerRequest request;
    request.set_hostname(absl::StrCat("bench-", index));
    request.set_device("cpu");
    v1::RegisterWorkerResponse response;
    grpc::Status s = stub->RegisterWorker(&context, request, &response);
    if (!s.ok()) Die("RegisterWorker", s);
    id = response.worker_id();
  }

  // Latency in ms; `run` set when one came.
  double Lease(int64_t wait_ms) {
    grpc::ClientContext context;
    Authorize(&context, g_worker_token);
    v1::LeaseRunRequest request;
    request.set_worker_id(id);
    request.set_wait_ms(wait_ms);
    v1::LeaseRunResponse response;
    const absl::Time start = absl::Now();
    grpc::Status s = stub->LeaseRun(&context, request, &response);
    const double ms = absl::ToDoubleMilliseconds(absl::Now() - start);
    if (!s.ok()) Die("LeaseRun", s);
    run = response.run();
    return ms;
  }

  void Release() {
    grpc::ClientContext context;
    Authorize(&context, g_worker_token);
    v1::ReleaseRunRequest request;
    request.set_run_id(run.id());
    request.set_attempt(run.attempt());
    v1::ReleaseRunResponse response;
    grpc::Status s = stub->ReleaseRun(&context, request, &response);
    if (!s.ok()) Die("ReleaseRun", s);
  }

  void Fail() {
    grpc::ClientContext context;
    Authorize(&context, g_worker_token);
    v1::FailRunRequest request;
    request.set_run_id(run.id());
    request.set_attempt(run.attempt());
    request.set_message("load generator");
    v1::FailRunResponse response;
    grpc::Status s = stub->FailRun(&context, request, &response);
    if (!s.ok()) Die("FailRun", s);
  }
};

// GetRun of `run_id` on a connection of its own (`channel`) until `stop`,
// `pause` after each call: each call's latency (ms).
std::vector<double> TimeGetRuns(int64_t run_id, int channel,
                                const std::atomic<bool>& stop,
                                absl::Duration pause = absl::ZeroDuration()) {
  auto stub = ExperimentService::NewStub(NewChannel(channel));
  v1::GetRunRequest request;
  request.set_id(run_id);
  std::vector<double> latencies;
  while (!stop) {
    grpc::ClientContext context;
    Authorize(&context, g_admin_token);
    v1::Run run;
    const absl::Time start = absl::Now();
    grpc::Status s = stub->GetRun(&context, request, &run);
    if (!s.ok()) Die("GetRun", s);
    latencies.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
    if (pause > absl::ZeroDuration()) absl::SleepFor(pause);
  }
  return latencies;
}

// Reports metrics from `workers` (each holding a lease) until `stop`;
// returns the points acknowledged and each report's latency (ms).
struct Ingested {
  int64_t points = 0;
  std::vector<double> latencies;
};

Ingested Report(std::vector<std::unique_ptr<FakeWorker>>& workers,
                std::atomic<bool>& stop, int every_ms = 0) {
  absl::Mutex mu;
  Ingested total;
  std::vector<std::thread> threads;
  const int per_report = absl::GetFlag(FLAGS_points_per_report);
  for (auto& worker : workers) {
    threads.emplace_back([&, w = worker.get()] {
      Ingested mine;
      int64_t step = 0;
      v1::ReportMetricsRequest request;
      request.set_run_id(w->run.id());
      request.set_attempt(w->run.attempt());
      absl::Time next = absl::Now();
      while (!stop) {
        if (every_ms > 0) {
          // Paced: one report every `every_ms`, as a worker between steps.
          absl::SleepFor(next - absl::Now());
          next += absl::Milliseconds(every_ms);
        }
        request.clear_points();
        FillPoints(per_report, step, &request);
        step += per_report / 8;
        grpc::ClientContext context;
        Authorize(&context, g_worker_token);
        v1::ReportMetricsResponse response;
        const absl::Time start = absl::Now();
        grpc::Status s = w->stub->ReportMetrics(&context, request, &response);
        if (!s.ok()) Die("ReportMetrics", s);
        mine.latencies.push_back(
            absl::ToDoubleMilliseconds(absl::Now() - start));
        mine.points += per_report;
      }
      absl::MutexLock lock(&mu);
      total.points += mine.points;
      total.latencies.insert(total.latencies.end(), mine.latencies.begin(),
                             mine.latencies.end());
    });
  }
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  for (std::thread& t : threads) t.join();
  return total;
}

std::vector<std::unique_ptr<FakeWorker>> LeasingWorkers(int n, int first) {
  SubmitRuns(n);
  std::vector<std::unique_ptr<FakeWorker>> workers;
  for (int i = 0; i < n; ++i) {
    workers.push_back(std::make_unique<FakeWorker>(first + i));
    workers.back()->Lease(5000);
    if (workers.back()->run.id() == 0) {
      std::fprintf(stderr, "coordinator_load: no run to lease\n");
      std::exit(1);
    }
  }
  return workers;
}

// SQLite's own rate for the coordinator's rows (metric_points and
// run_metric_keys as migration 006 makes them), in transactions as large
// as a group commit, WAL and synchronous=FULL as the coordinator uses;
// and the bytes each point takes on disk, this schema and version 5's.
void SqliteReference(int64_t points) {
  const fs::path dir = absl::GetFlag(FLAGS_scratch_dir);
  for (const bool old_schema : {true, false}) {
    const fs::path path =
        dir / (old_schema ? "reference-v5.db" : "reference.db");
    fs::remove(path);
    fs::remove(path.string() + "-wal");
    sqlite3* db = nullptr;
    sqlite3_open(path.c_str(), &db);
    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;",
                 nullptr, nullptr, nullptr);
    const std::vector<Migration>& migrations = Migrations();
    for (size_t v = 0; v < (old_schema ? 5 : migrations.size()); ++v) {
      sqlite3_exec(db, migrations[v].sql.c_str(), nullptr, nullptr, nullptr);
    }
    for (int run = 1; run <= 32; ++run) {
      sqlite3_exec(db,
                   absl::StrCat("INSERT INTO runs(id, kind, spec, status, "
                                "created_ms) VALUES(",
                                run, ", 1, x'', 3, 0)")
                       .c_str(),
                   nullptr, nullptr, nullptr);
    }
    if (!old_schema) {
      for (int k = 0; k < 8; ++k) {
        sqlite3_exec(db,
                     absl::StrCat("INSERT INTO metric_keys(id, key) VALUES(",
                                  k + 1, ", '", kKeys[k], "')")
                         .c_str(),
                     nullptr, nullptr, nullptr);
      }
    }
    sqlite3_stmt* insert = nullptr;
    sqlite3_stmt* summary = nullptr;
    sqlite3_prepare_v2(
        db,
        old_schema ? "INSERT INTO metrics(run_id, attempt, step, epoch, key, "
                     "value, time_ms) VALUES(?1, 1, ?3, ?4, ?5, ?6, ?7)"
                   : "INSERT INTO metric_points(run_id, key_id, sequence, "
                     "attempt, step, epoch, value, time_ms) "
                     "VALUES(?1, ?2, ?8, 1, ?3, ?4, ?6, ?7)",
        -1, &insert, nullptr);
    sqlite3_prepare_v2(db,
                       "INSERT INTO run_metric_keys VALUES(?1, ?2, 125, ?3, "
                       "?4) ON CONFLICT(run_id, key_id) DO UPDATE SET points "
                       "= points + 125, last_sequence = excluded.last_sequence",
                       -1, &summary, nullptr);
    // 32 runs reporting in turn, 1,000 points a report, 8 reports to a
    // transaction (a group commit's size at 32 workers).
    const absl::Time start = absl::Now();
    std::vector<int64_t> sequence(33, 0);
    int64_t written = 0;
    for (int64_t report = 0; written < points; ++report) {
      if (report % 8 == 0) sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
      const int run = int(report % 32) + 1;
      const int64_t step = (report / 32) * 125;
      for (int i = 0; i < 1000; ++i) {
        sqlite3_bind_int64(insert, 1, run);
        sqlite3_bind_int64(insert, 2, i % 8 + 1);
        sqlite3_bind_int64(insert, 3, step + i / 8);
        sqlite3_bind_int64(insert, 4, (step + i / 8) / 1000);
        sqlite3_bind_text(insert, 5, kKeys[i % 8], -1, SQLITE_STATIC);
        sqlite3_bind_double(insert, 6, 1.0 / double(step + i + 1));
        sqlite3_bind_int64(insert, 7, 1'790'000'000'000 + step);
        sqlite3_bind_int64(insert, 8, ++sequence[run]);
        sqlite3_step(insert);
        sqlite3_reset(insert);
      }
      if (!old_schema) {
        for (int k = 0; k < 8; ++k) {
          sqlite3_bind_int64(summary, 1, run);
          sqlite3_bind_int64(summary, 2, k + 1);
          sqlite3_bind_int64(summary, 3, sequence[run] - 999);
          sqlite3_bind_int64(summary, 4, sequence[run]);
          sqlite3_step(summary);
          sqlite3_reset(summary);
        }
      }
      written += 1000;
      if (report % 8 == 7)
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    }
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    sqlite3_finalize(insert);
    sqlite3_finalize(summary);
    sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr,
                 nullptr);
    // The metric tables' pages alone (dbstat is not in Debian's build:
    // the file less an empty database's).
    sqlite3_close(db);
    const double bytes = double(fs::file_size(path));
    if (old_schema) {
      std::printf(
          "bytes per stored metric point, schema version 5 (before): "
          "%.1f (%lld points, %.1f MB)\n",
          bytes / double(written), (long long)written, bytes / 1e6);
    } else {
      std::printf(
          "bytes per stored metric point, schema version 6 (after):  "
          "%.1f (%lld points, %.1f MB)\n",
          bytes / double(written), (long long)written, bytes / 1e6);
      std::printf(
          "SQLite raw insert rate, same rows, same disk: %.0f "
          "points/s\n",
          double(written) / seconds);
    }
    fs::remove(path);
  }
}

// The coordinator's threads now (/proc), 0 without --coordinator_pid.
int CoordinatorThreads() {
  const int pid = absl::GetFlag(FLAGS_coordinator_pid);
  if (pid == 0) return 0;
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return 0;
}

// One open watch: when its run is first seen RUNNING.
class Watcher final : public grpc::ClientReadReactor<v1::RunEvent> {
 public:
  Watcher(ExperimentService::Stub* stub, int64_t run_id,
          std::atomic<int>* started, std::atomic<int>* done)
      : started_(started), done_(done) {
    Authorize(&context_, g_admin_token);
    request_.set_id(run_id);
    stub->async()->WatchRun(&context_, &request_, this);
    StartRead(&event_);
    StartCall();
  }
  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (!first_) {
      first_ = true;
      ++*started_;
    }
    if (event_.run().status() == v1::RUNNING &&
        running_at_.load() == absl::InfiniteFuture()) {
      running_at_ = absl::Now();
    }
    StartRead(&event_);
  }
  void OnDone(const grpc::Status& status) override {
    status_ = status;
    ++*done_;
  }
  void Cancel() { context_.TryCancel(); }
  absl::Time running_at() const { return running_at_; }
  const grpc::Status& status() const { return status_; }

 private:
  grpc::ClientContext context_;
  v1::WatchRunRequest request_;
  v1::RunEvent event_;
  bool first_ = false;
  std::atomic<absl::Time> running_at_{absl::InfiniteFuture()};
  grpc::Status status_;
  std::atomic<int>* started_;
  std::atomic<int>* done_;
};

// --watches open watches on 100 queued runs; then the runs are leased one
// by one: how long until each watcher saw its run RUNNING, and how many
// threads the coordinator has meanwhile.
void Watches() {
  const int n = absl::GetFlag(FLAGS_watches);
  const int runs = 100;
  SubmitRuns(runs);
  // The next runs to be leased: the queue's head (earlier figures may have
  // left runs queued).
  std::vector<int64_t> ids;
  {
    auto stub = ExperimentService::NewStub(NewChannel(7999));
    grpc::ClientContext context;
    Authorize(&context, g_admin_token);
    v1::ListRunsRequest request;
    request.set_status(v1::QUEUED);
    request.set_page_size(runs);
    v1::ListRunsResponse response;
    grpc::Status s = stub->ListRuns(&context, request, &response);
    if (!s.ok()) Die("ListRuns", s);
    for (const v1::Run& run : response.runs()) ids.push_back(run.id());
  }
  const int threads_before = CoordinatorThreads();
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<ExperimentService::Stub>> stubs;
  for (int i = 0; i < 8; ++i) {
    channels.push_back(NewChannel(8000 + i));
    stubs.push_back(ExperimentService::NewStub(channels.back()));
  }
  std::atomic<int> started{0}, done{0};
  std::vector<std::unique_ptr<Watcher>> watchers;
  const absl::Time open_start = absl::Now();
  for (int i = 0; i < n; ++i) {
    watchers.push_back(std::make_unique<Watcher>(
        stubs[i % 8].get(), ids[i % runs], &started, &done));
  }
  while (started < n && done == 0 &&
         absl::Now() - open_start < absl::Seconds(120)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const double open_s = absl::ToDoubleSeconds(absl::Now() - open_start);
  if (started < n) {
    std::fprintf(stderr,
                 "coordinator_load: %d of %d watches started, %d "
                 "ended\n",
                 started.load(), n, done.load());
    for (auto& w : watchers) {
      if (!w->status().ok()) {
        std::fprintf(stderr, "  %s\n", w->status().error_message().c_str());
        break;
      }
    }
    std::exit(1);
  }
  const int threads_open = CoordinatorThreads();
  std::vector<absl::Time> leased_at(runs);
  std::map<int64_t, int> index;
  for (int r = 0; r < runs; ++r) index[ids[r]] = r;
  for (int r = 0; r < runs; ++r) {
    FakeWorker worker(9000 + r);  // A worker runs one run at a time.
    const absl::Time t = absl::Now();
    worker.Lease(0);
    if (worker.run.id() == 0) {
      std::fprintf(stderr, "coordinator_load: no run to lease\n");
      std::exit(1);
    }
    leased_at[index.at(worker.run.id())] = t;
    absl::SleepFor(absl::Milliseconds(20));
  }
  absl::SleepFor(absl::Milliseconds(500));
  std::vector<double> delays;
  int missing = 0;
  for (int i = 0; i < n; ++i) {
    const absl::Time seen = watchers[i]->running_at();
    if (seen == absl::InfiniteFuture()) {
      ++missing;
      continue;
    }
    delays.push_back(absl::ToDoubleMilliseconds(seen - leased_at[i % runs]));
  }
  const int threads_during = CoordinatorThreads();
  for (auto& w : watchers) w->Cancel();
  while (done < n) absl::SleepFor(absl::Milliseconds(20));
  std::printf(
      "%d open watches (opened in %.1f s): status change seen p50 %.1f ms, "
      "p99 %.1f ms, max %.1f ms after the lease call began (%d never); "
      "coordinator threads %d before, %d with them open, %d after the "
      "changes\n",
      n, open_s, Percentile(delays, 0.5), Percentile(delays, 0.99),
      Percentile(delays, 1.0), missing, threads_before, threads_open,
      threads_during);
}

// One run with --history_points points (8 keys): how long `runs show` (a
// watch's first event, history spread over 1,000 points a key) and a page
// of its full history (GetRunMetrics, 10,000 points) take.
void History() {
  const int64_t total = absl::GetFlag(FLAGS_history_points);
  auto workers = LeasingWorkers(1, 9500);
  const v1::Run run = workers[0]->run;
  std::atomic<int64_t> next{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      auto stub = WorkerService::NewStub(NewChannel(9600 + t));
      for (int64_t i = next++; i * 1000 < total; i = next++) {
        v1::ReportMetricsRequest request;
        request.set_run_id(run.id());
        request.set_attempt(run.attempt());
        FillPoints(1000, i * 125, &request);
        grpc::ClientContext context;
        Authorize(&context, g_worker_token);
        v1::ReportMetricsResponse response;
        grpc::Status s = stub->ReportMetrics(&context, request, &response);
        if (!s.ok()) Die("ReportMetrics", s);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double fill_s = absl::ToDoubleSeconds(absl::Now() - start);
  auto stub = ExperimentService::NewStub(NewChannel(9700));
  std::vector<double> show, page;
  int shown = 0;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    Authorize(&context, g_admin_token);
    v1::WatchRunRequest request;
    request.set_id(run.id());
    request.set_include_history(true);
    const absl::Time t = absl::Now();
    auto reader = stub->WatchRun(&context, request);
    v1::RunEvent first;
    if (!reader->Read(&first)) Die("WatchRun", reader->Finish());
    show.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    shown = first.metrics_size();
    context.TryCancel();
    reader->Finish();
  }
  std::string token;
  for (int i = 0; i < 5; ++i) {
    grpc::ClientContext context;
    Authorize(&context, g_admin_token);
    v1::GetRunMetricsRequest request;
    request.set_run_id(run.id());
    request.set_page_token(token);
    v1::GetRunMetricsResponse response;
    const absl::Time t = absl::Now();
    grpc::Status s = stub->GetRunMetrics(&context, request, &response);
    if (!s.ok()) Die("GetRunMetrics", s);
    page.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
    token = response.next_page_token();
  }
  std::printf(
      "a run of %lld points (stored in %.1f s): runs show's first watch event "
      "(%d points) p50 %.1f ms; a GetRunMetrics page of 10,000 points p50 "
      "%.1f ms\n",
      (long long)total, fill_s, shown, Percentile(show, 0.5),
      Percentile(page, 0.5));
  workers[0]->Fail();
}

// `distill runs list` with filters (issue 12): --query_runs runs in
// sweeps of 1,000 members (a grid of 10 KD temperatures x 100 seeds), in a
// database that holds the history phase's run of --history_points points
// when it ran first; each filter timed through ListRuns as the CLI asks.
void Query() {
  auto stub = ExperimentService::NewStub(NewChannel(9800));
  v1::SubmitSweepRequest request;
  v1::SweepSpec* sweep = request.mutable_spec();
  sweep->set_name("query-0");
  *sweep->mutable_base() = TeacherSpec();
  sweep->mutable_base()->set_kind(v1::DISTILL);
  sweep->mutable_base()->clear_teacher();
  sweep->mutable_base()->mutable_student()->set_arch("resnet18");
  sweep->mutable_base()->mutable_losses()->set_ce(1);
  sweep->mutable_base()->mutable_losses()->mutable_ikd()->set_weight(1);
  *sweep->mutable_teacher()->mutable_train() = TeacherSpec();
  v1::GridAxis* axis = sweep->add_grid();
  axis->set_path("losses.ikd.temperature");
  for (int t = 1; t <= 10; ++t) axis->add_values(absl::StrCat(t));
  for (int seed = 1; seed <= 100; ++seed) sweep->add_seeds(seed);
  const absl::Time start = absl::Now();
  int64_t stored = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_query_runs) / 1000; ++i) {
    if (i % 2 == 1) {
      sweep->mutable_base()->mutable_student()->set_arch("resnet34");
    } else {
      sweep->mutable_base()->mutable_student()->set_arch("resnet18");
    }
    // A sweep's name is its own until it ends.
    sweep->set_name(absl::StrCat("query-", i));
    grpc::ClientContext context;
    Authorize(&context, g_admin_token);
    v1::SubmitSweepResponse response;
    grpc::Status s = stub->SubmitSweep(&context, request, &response);
    if (!s.ok()) Die("SubmitSweep", s);
    stored += response.runs_size();
  }
  std::printf("stored %lld runs (sweeps of 1,000 members) in %.1f s\n",
              (long long)stored, absl::ToDoubleSeconds(absl::Now() - start));
  struct Case {
    const char* what;
    v1::ListRunsRequest request;
  };
  std::vector<Case> cases(5);
  cases[0].what = "--where=losses.ikd.temperature=4 --arch=resnet34";
  cases[0].request.add_where("losses.ikd.temperature=4");
  cases[0].request.add_where("student.arch=resnet34");
  cases[1].what = "--member='*/seed=7' --status=WAITING";
  cases[1].request.set_member("*/seed=7");
  cases[1].request.set_status(v1::WAITING);
  cases[2].what = "--kind=DISTILL --sort=-eval/top1 --limit=50";
  cases[2].request.set_kind(v1::DISTILL);
  cases[2].request.set_sort("-eval/top1");
  cases[2].request.set_page_size(50);
  cases[3].what =
      "--dataset=fashion-mnist --where=losses.ikd.temperature=4 "
      "--sort=-eval/top1 --limit=20";
  cases[3].request.add_where("dataset.name=fashion-mnist");
  cases[3].request.add_where("losses.ikd.temperature=4");
  cases[3].request.set_sort("-eval/top1");
  cases[3].request.set_page_size(20);
  cases[4].what = "(none: the first page of 500)";
  for (Case& c : cases) {
    std::vector<double> ms;
    int found = 0;
    for (int i = 0; i < 21; ++i) {
      grpc::ClientContext context;
      Authorize(&context, g_admin_token);
      v1::ListRunsResponse response;
      const absl::Time t = absl::Now();
      grpc::Status s = stub->ListRuns(&context, c.request, &response);
      if (!s.ok()) Die("ListRuns", s);
      ms.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
      found = response.runs_size();
    }
    std::printf(
        "runs list %s: %d runs on the first page, p50 %.1f ms, p95 "
        "%.1f ms\n",
        c.what, found, Percentile(ms, 0.5), Percentile(ms, 0.95));
  }
}

// LeaseRun and GetRun latencies (ms) over `seconds` while 16 workers report
// every 100 ms, 4 lease and hand back and one client reads a run; with
// `backups`, AdminService.Backup called back to back all the while (each
// one's time in `backup_ms`).
struct Latencies {
  std::vector<double> lease, get, report, backup_ms;
  int64_t backup_bytes = 0;
};

void MeasureWhile(std::vector<std::unique_ptr<FakeWorker>>& reporters,
                  std::vector<std::unique_ptr<FakeWorker>>& leasers,
                  bool backups, Latencies* out) {
  std::atomic<bool> stop{false};
  absl::Mutex mu;
  std::vector<std::thread> threads;
  for (auto& leaser : leasers) {
    threads.emplace_back([&, w = leaser.get()] {
      std::vector<double> mine;
      std::mt19937 random(std::hash<std::string>()(w->id));
      while (!stop) {
        mine.push_back(w->Lease(0));
        absl::SleepFor(absl::Milliseconds(
            std::uniform_int_distribution<int>(0, 100)(random)));
        if (w->run.id() != 0) w->Release();
      }
      absl::MutexLock lock(&mu);
      out->lease.insert(out->lease.end(), mine.begin(), mine.end());
    });
  }
  threads.emplace_back([&] {
    const std::vector<double> mine =
        TimeGetRuns(reporters[0]->run.id(), 8100, stop, absl::Milliseconds(5));
    absl::MutexLock lock(&mu);
    out->get.insert(out->get.end(), mine.begin(), mine.end());
  });
  if (backups) {
    threads.emplace_back([&] {
      auto stub = v1::AdminService::NewStub(NewChannel(8200));
      while (!stop) {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::BackupResponse taken;
        grpc::Status s = stub->Backup(&context, v1::BackupRequest(), &taken);
        if (!s.ok()) Die("Backup", s);
        absl::MutexLock lock(&mu);
        out->backup_ms.push_back(double(taken.took_ms()));
        out->backup_bytes = taken.database_bytes();
      }
    });
  }
  // For --seconds; then stops the others.
  Ingested in = Report(reporters, stop, 100);
  for (std::thread& t : threads) t.join();
  out->report.insert(out->report.end(), in.latencies.begin(),
                     in.latencies.end());
}

// A backup of a database of 1,000 runs and 10^6 metric points while
// workers report and lease: its time, and LeaseRun / GetRun with it
// against without it, in alternating rounds. Needs a coordinator with
// --backup_dir and an admin token.
void BackupUnderLoad(int* next_client) {
  auto reporters = LeasingWorkers(16, *next_client);
  *next_client += 16;
  SubmitRuns(1000 - 16);
  std::vector<std::unique_ptr<FakeWorker>> leasers;
  for (int i = 0; i < 4; ++i)
    leasers.push_back(std::make_unique<FakeWorker>((*next_client)++));
  // 10^6 points: 16 workers x 63 reports of 1,000 (the last ones short).
  std::vector<std::thread> fill;
  for (auto& reporter : reporters) {
    fill.emplace_back([w = reporter.get()] {
      v1::ReportMetricsRequest request;
      request.set_run_id(w->run.id());
      request.set_attempt(w->run.attempt());
      for (int i = 0; i < 63; ++i) {
        request.clear_points();
        FillPoints(i < 62 ? 1000 : 500, int64_t{i} * 1000, &request);
        grpc::ClientContext context;
        Authorize(&context, g_worker_token);
        v1::ReportMetricsResponse response;
        grpc::Status s = w->stub->ReportMetrics(&context, request, &response);
        if (!s.ok()) Die("ReportMetrics", s);
      }
    });
  }
  for (std::thread& t : fill) t.join();
  // Then as workers training report: 50 points every 100 ms each (8,000
  // points/s in all), so that the database stays near its size.
  absl::SetFlag(&FLAGS_points_per_report, 50);
  Latencies without, with;
  for (int round = 0; round < 4; ++round) {
    MeasureWhile(reporters, leasers, round % 2 == 1,
                 round % 2 == 1 ? &with : &without);
  }
  std::printf(
      "backup of 1,000 runs and 1,000,000 metric points (database %.1f MB "
      "at the last) while 16 workers report 50 points every 100 ms and 4 "
      "lease: %zu backups, p50 %.0f ms, max %.0f ms\n",
      double(with.backup_bytes) / 1e6, with.backup_ms.size(),
      Percentile(with.backup_ms, 0.5), Percentile(with.backup_ms, 1.0));
  const std::pair<const char*, std::vector<double> Latencies::*> figures[] = {
      {"LeaseRun", &Latencies::lease},
      {"GetRun", &Latencies::get},
      {"ReportMetrics (50 points)", &Latencies::report}};
  for (const auto& [name, member] : figures) {
    const std::vector<double>& a = without.*member;
    const std::vector<double>& b = with.*member;
    std::printf(
        "  %s without / during backups: p50 %.2f / %.2f ms, p99 %.2f / %.2f "
        "ms (%zu / %zu calls)\n",
        name, Percentile(a, 0.5), Percentile(b, 0.5), Percentile(a, 0.99),
        Percentile(b, 0.99), a.size(), b.size());
  }
  for (auto& w : reporters) w->Fail();
}

int Main() {
  g_admin_token = bench::TokenOrDie("coordinator_load",
                                    absl::GetFlag(FLAGS_admin_token_file));
  g_worker_token = bench::TokenOrDie("coordinator_load",
                                     absl::GetFlag(FLAGS_worker_token_file));
  const double seconds = absl::GetFlag(FLAGS_seconds);

  const std::string phases = absl::GetFlag(FLAGS_phases);
  auto wanted = [&](const char* phase) {
    return absl::StrContains(phases, phase);
  };
  if (wanted("sqlite")) SqliteReference(2'000'000);

  // Ingestion with 1, 4, 16 and 32 workers reporting at once.
  int next_client = 0;
  if (wanted("backup")) BackupUnderLoad(&next_client);
  for (const int n : {1, 4, 16, 32}) {
    if (!wanted("ingest")) break;
    auto workers = LeasingWorkers(n, next_client);
    next_client += n;
    std::atomic<bool> stop{false};
    Ingested in = Report(workers, stop);
    std::printf(
        "ingestion, %2d workers: %.0f points/s (report of %d points: p50 "
        "%.1f ms, p99 %.1f ms)\n",
        n, double(in.points) / seconds, absl::GetFlag(FLAGS_points_per_report),
        Percentile(in.latencies, 0.5), Percentile(in.latencies, 0.99));
    for (auto& w : workers) w->Fail();
  }

  // LeaseRun with 32 workers and 2,000 queued runs: each leases, hands the
  // run back (it stays queued), and leases again.
  if (wanted("lease")) {
    SubmitRuns(2000);
    std::vector<std::unique_ptr<FakeWorker>> workers;
    for (int i = 0; i < 32; ++i)
      workers.push_back(std::make_unique<FakeWorker>(next_client++));
    std::atomic<bool> stop{false};
    absl::Mutex mu;
    std::vector<double> latencies;
    std::vector<std::thread> threads;
    for (auto& worker : workers) {
      threads.emplace_back([&, w = worker.get(), seed = next_client] {
        std::vector<double> mine;
        std::mt19937 random(seed);
        const int hold = absl::GetFlag(FLAGS_hold_ms);
        while (!stop) {
          mine.push_back(w->Lease(0));
          if (hold > 0) {
            absl::SleepFor(absl::Milliseconds(
                std::uniform_int_distribution<int>(0, hold)(random)));
          }
          if (w->run.id() != 0) w->Release();
        }
        absl::MutexLock lock(&mu);
        latencies.insert(latencies.end(), mine.begin(), mine.end());
      });
    }
    absl::SleepFor(absl::Seconds(seconds));
    stop = true;
    for (std::thread& t : threads) t.join();
    std::printf(
        "LeaseRun, 32 workers, 2,000 queued runs, each run held 0-%d ms: "
        "p50 %.2f ms, p99 %.2f ms, max %.1f ms (%.0f leases/s)\n",
        absl::GetFlag(FLAGS_hold_ms), Percentile(latencies, 0.5),
        Percentile(latencies, 0.99), Percentile(latencies, 1.0),
        double(latencies.size()) / seconds);
  }

  // GetRun while 4 clients page through listings and 16 workers report.
  if (wanted("getrun")) {
    auto workers = LeasingWorkers(16, next_client);
    next_client += 16;
    std::atomic<bool> stop{false};
    std::vector<std::thread> listers;
    std::atomic<int64_t> pages{0};
    for (int i = 0; i < 4; ++i) {
      listers.emplace_back([&, i] {
        auto stub = ExperimentService::NewStub(NewChannel(5000 + i));
        v1::ListRunsRequest request;
        const int every = absl::GetFlag(FLAGS_list_every_ms);
        while (!stop) {
          if (every > 0) absl::SleepFor(absl::Milliseconds(every));
          grpc::ClientContext context;
          Authorize(&context, g_admin_token);
          v1::ListRunsResponse response;
          grpc::Status s = stub->ListRuns(&context, request, &response);
          if (!s.ok()) Die("ListRuns", s);
          ++pages;
          request.set_page_token(response.next_page_token());
        }
      });
    }
    std::vector<double> latencies;
    std::thread getter(
        [&] { latencies = TimeGetRuns(workers[0]->run.id(), 6000, stop); });
    Ingested in = Report(workers, stop, absl::GetFlag(FLAGS_report_every_ms));
    getter.join();
    for (std::thread& t : listers) t.join();
    std::printf(
        "GetRun while 4 clients list (%lld pages of 500 runs, every %d ms) "
        "and 16 "
        "workers report (every %d ms, %.0f points/s): p50 %.2f ms, p99 "
        "%.2f ms (%zu calls)\n",
        (long long)pages.load(), absl::GetFlag(FLAGS_list_every_ms),
        absl::GetFlag(FLAGS_report_every_ms), double(in.points) / seconds,
        Percentile(latencies, 0.5), Percentile(latencies, 0.99),
        latencies.size());
    for (auto& w : workers) w->Fail();
  }

  if (wanted("watch")) Watches();
  if (wanted("history")) History();
  if (wanted("query")) Query();

  // Listings at --runs runs: sweeps of 1,000 members.
  if (wanted("list")) {
    auto stub = ExperimentService::NewStub(NewChannel(7000));
    v1::SubmitSweepRequest request;
    v1::SweepSpec* sweep = request.mutable_spec();
    sweep->set_name("load");
    *sweep->mutable_base() = TeacherSpec();
    sweep->mutable_base()->set_kind(v1::DISTILL);
    sweep->mutable_base()->clear_teacher();
    sweep->mutable_base()->mutable_student()->set_arch("resnet18");
    *sweep->mutable_teacher()->mutable_train() = TeacherSpec();
    for (int i = 0; i < 1000; ++i) {
      v1::SweepMember* m = sweep->add_members();
      m->set_name(absl::StrCat("m", i));
      m->mutable_losses()->set_ce(1);
      m->mutable_losses()->set_mse(i % 2);
    }
    const absl::Time start = absl::Now();
    int64_t middle_sweep = 0;
    int64_t middle_first_run = 0;
    int64_t submitted = 0;
    const int sweeps = absl::GetFlag(FLAGS_runs) / 1001;
    for (int i = 0; i < sweeps; ++i) {
      grpc::ClientContext context;
      Authorize(&context, g_admin_token);
      v1::SubmitSweepResponse response;
      grpc::Status s = stub->SubmitSweep(&context, request, &response);
      if (!s.ok()) Die("SubmitSweep", s);
      submitted += response.runs_size();
      if (i == sweeps / 2) {
        middle_sweep = response.sweep().id();
        middle_first_run = response.runs(0).id();
      }
    }
    const double submit_s = absl::ToDoubleSeconds(absl::Now() - start);
    const int64_t stored = submitted;
    auto time_calls = [&](const std::function<void()>& call) {
      std::vector<double> v;
      for (int i = 0; i < 21; ++i) {
        const absl::Time t = absl::Now();
        call();
        v.push_back(absl::ToDoubleMilliseconds(absl::Now() - t));
      }
      return std::make_pair(Percentile(v, 0.5), Percentile(v, 0.95));
    };
    std::printf(
        "stored %lld more runs in %d sweeps of 1,000 members in %.1f "
        "s\n",
        (long long)stored, sweeps, submit_s);
    for (const int size : {100, 500}) {
      // A filtered page deep in the table: the WAITING runs from the
      // middle sweep on.
      v1::ListRunsRequest list;
      list.set_status(v1::WAITING);
      list.set_page_size(size);
      // The token of the page that starts at the middle sweep (tokens are
      // opaque: paged to, untimed).
      for (int64_t last = 0; last < middle_first_run;) {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::ListRunsResponse response;
        grpc::Status s = stub->ListRuns(&context, list, &response);
        if (!s.ok() || response.runs().empty()) Die("ListRuns", s);
        last = response.runs(response.runs_size() - 1).id();
        list.set_page_token(response.next_page_token());
      }
      auto [p50, p95] = time_calls([&] {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::ListRunsResponse response;
        grpc::Status s = stub->ListRuns(&context, list, &response);
        if (!s.ok() || response.runs_size() != size) Die("ListRuns", s);
      });
      std::printf(
          "ListRuns, status filter, page of %d in the middle of "
          "%lld+ runs: p50 %.1f ms, p95 %.1f ms\n",
          size, (long long)stored, p50, p95);
    }
    {
      v1::ListRunsRequest list;
      list.set_sweep_id(middle_sweep);
      list.set_page_size(100);
      auto [p50, p95] = time_calls([&] {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::ListRunsResponse response;
        grpc::Status s = stub->ListRuns(&context, list, &response);
        if (!s.ok() || response.runs_size() != 100) Die("ListRuns", s);
      });
      std::printf(
          "ListRuns, sweep filter, page of 100: p50 %.1f ms, p95 %.1f "
          "ms\n",
          p50, p95);
    }
    {
      v1::GetSweepResultsRequest results;
      results.set_sweep(absl::StrCat(middle_sweep));
      auto [p50, p95] = time_calls([&] {
        grpc::ClientContext context;
        Authorize(&context, g_admin_token);
        v1::SweepResults response;
        grpc::Status s = stub->GetSweepResults(&context, results, &response);
        if (!s.ok() || response.members_size() != 1000)
          Die("GetSweepResults", s);
      });
      std::printf(
          "GetSweepResults, 1,000-member sweep: p50 %.1f ms, p95 %.1f "
          "ms\n",
          p50, p95);
    }
  }
  return 0;
}

}  // namespace
}  // namespace distill

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  return distill::Main();
}
