// A lab, simulated against one running coordinator (bench/run.sh lab):
// simulated workers speaking the real protocol (register, long-poll
// LeaseRun, heartbeat, report, upload a checkpoint, complete) that "train"
// for a drawn duration instead of training, in three pools (large GPUs,
// small GPUs, CPU-only), and researchers, one token each: owner-0 submits
// a big sweep first, the other owners theirs over the simulated hour, with
// requirements mixed. Simulated time runs --ms_per_minute real ms a minute.
// Prints, per owner, the wait from submission to lease and its part of the
// worker time; Jain's fairness index over the owners with work; the worker
// time idle while a run it could take was queued; runs placed where they
// did not fit. The coordinator's --queue_policy decides; bench/run.sh runs
// this twice, fifo and fair, with the same seed.
//
//   lab --target=127.0.0.1:PORT --admin_token_file=F --worker_token_file=F
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "bench/bench_client.h"
#include "common/api.h"
#include "common/placement.h"
#include "common/sha256.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"

ABSL_FLAG(std::string, target, distill::kDefaultCoordinator, "the coordinator");
ABSL_FLAG(std::string, admin_token_file, "", "an admin token");
ABSL_FLAG(std::string, worker_token_file, "", "a worker token");
ABSL_FLAG(int, owners, 10, "researchers (owner-0 submits the big sweep)");
ABSL_FLAG(int, big_sweep, 500, "runs of owner-0's sweep, submitted first");
ABSL_FLAG(int, sweep_runs, 24, "runs of each other owner's sweep");
ABSL_FLAG(int, workers_per_pool, 8, "workers in each of the three pools");
ABSL_FLAG(int, ms_per_minute, 200, "real ms a simulated minute lasts");
ABSL_FLAG(int, minutes, 180, "simulated minutes the lab runs");
ABSL_FLAG(int, seed, 1, "the draws of durations, times and requirements");
ABSL_FLAG(std::string, label, "", "a name for this run's lines");
ABSL_FLAG(bool, scale, false,
          "instead of the lab: --scale_runs queued runs of --owners owners, "
          "--scale_workers workers leasing and handing back for --seconds; "
          "LeaseRun's p50 and p99");
ABSL_FLAG(int, scale_runs, 100'000, "queued runs at scale");
ABSL_FLAG(int, scale_workers, 1'000, "workers at scale");
ABSL_FLAG(double, seconds, 10, "how long the workers lease at scale");

namespace distill {
namespace {

using Clock = std::chrono::steady_clock;

using bench::Authorize;

std::string ReadToken(const std::string& path) {
  return bench::TokenOrDie("lab", path);
}

std::shared_ptr<grpc::Channel> NewChannel(int index) {
  return bench::OwnChannel(absl::GetFlag(FLAGS_target), index);
}

[[noreturn]] void Die(const std::string& what, const grpc::Status& status) {
  bench::Die("lab", what, status);
}

// The three pools: what each worker offers.
enum Pool { kLarge, kSmall, kCpu };
WorkerOffer OfferOfPool(Pool pool) {
  switch (pool) {
    case kLarge:
      return {"cuda:0", {"device_kind=cuda", "pool=large"}, int64_t{80} << 30};
    case kSmall:
      return {"cuda:0", {"device_kind=cuda", "pool=small"}, int64_t{16} << 30};
    case kCpu:
      return {"cpu", {"device_kind=cpu"}, int64_t{64} << 30};
  }
  return {};
}

// A run of the workload: who submits it, when, what it needs, how long it
// trains (simulated minutes).
struct Job {
  int owner = 0;
  double submit_minute = 0;
  double train_minutes = 0;
  v1::Requirements needs;
  // Filled as it happens (simulated minutes; -1: not yet).
  int64_t run_id = 0;
  double leased = -1, ended = -1;
  int worker = -1;
  double trained = 0;         // Minutes trained so far, over its attempts.
  double segment_start = -1;  // When the attempt under way was leased.
  double used_before = 0;     // Worker minutes of its ended attempts.
  int preempted = 0;
};

// The workload, the same for a given seed: owner-0's big sweep at minute
// 0 (any GPU), then each other owner's sweep at a drawn minute of the
// hour, needing a large GPU, any GPU, or nothing, in turn.
std::vector<Job> Workload() {
  std::mt19937 draw(absl::GetFlag(FLAGS_seed));
  std::uniform_real_distribution<double> minutes(10, 40);
  std::uniform_real_distribution<double> hour(1, 60);
  std::vector<Job> jobs;
  v1::Requirements any_gpu;
  any_gpu.set_device_kind("cuda");
  v1::Requirements large = any_gpu;
  large.set_min_device_memory_gib(40);
  for (int i = 0; i < absl::GetFlag(FLAGS_big_sweep); ++i)
    jobs.push_back({0, 0, minutes(draw), any_gpu});
  for (int owner = 1; owner < absl::GetFlag(FLAGS_owners); ++owner) {
    const double at = hour(draw);
    const v1::Requirements needs = owner % 3 == 0   ? large
                                   : owner % 3 == 1 ? any_gpu
                                                    : v1::Requirements();
    for (int i = 0; i < absl::GetFlag(FLAGS_sweep_runs); ++i)
      jobs.push_back({owner, at, minutes(draw), needs});
  }
  return jobs;
}

v1::ExperimentSpec SpecOf(const Job& job) {
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
  *spec.mutable_requirements() = job.needs;
  return spec;
}

// A researcher's token for each of `owners` owners ("owner-0", ... with
// `prefix` "owner-"): the owner of what it submits.
std::vector<std::string> OwnerTokens(const std::string& admin_token, int owners,
                                     const std::string& prefix = "owner-") {
  auto admin = v1::AdminService::NewStub(NewChannel(0));
  std::vector<std::string> tokens;
  for (int o = 0; o < owners; ++o) {
    grpc::ClientContext context;
    Authorize(&context, admin_token);
    v1::CreateTokenRequest request;
    request.set_name(absl::StrCat(prefix, o));
    request.set_role(v1::ROLE_RESEARCHER);
    v1::CreateTokenResponse response;
    grpc::Status s = admin->CreateToken(&context, request, &response);
    if (!s.ok()) Die("CreateToken", s);
    tokens.push_back(response.secret());
  }
  return tokens;
}

class Lab {
 public:
  Lab() : jobs_(Workload()), start_(Clock::now()) {
    admin_token_ = ReadToken(absl::GetFlag(FLAGS_admin_token_file));
    worker_token_ = ReadToken(absl::GetFlag(FLAGS_worker_token_file));
  }

  int Run();

 private:
  double Now() const {
    return std::chrono::duration<double, std::milli>(Clock::now() - start_)
               .count() /
           absl::GetFlag(FLAGS_ms_per_minute);
  }
  void SleepUntil(double minute) const {
    const double wait = (minute - Now()) * absl::GetFlag(FLAGS_ms_per_minute);
    if (wait > 0) absl::SleepFor(absl::Milliseconds(wait));
  }
  void Submit(const std::vector<std::string>& tokens);
  void Work(int index, Pool pool);
  void Sample();
  void Print() const;

  std::vector<Job> jobs_;
  const Clock::time_point start_;
  std::string admin_token_, worker_token_;
  std::atomic<bool> stop_{false};
  mutable absl::Mutex mu_;
  absl::flat_hash_map<int64_t, size_t> by_run_ ABSL_GUARDED_BY(mu_);
  std::vector<int> holding_ ABSL_GUARDED_BY(mu_);  // Worker -> job, or -1.
  // Worker -> when its LeaseRun under way began (simulated minutes), or -1.
  std::vector<double> asking_since_ ABSL_GUARDED_BY(mu_);
  std::vector<Pool> pools_;
  int misplaced_ ABSL_GUARDED_BY(mu_) = 0;
  // Sampled each simulated minute.
  double jain_sum_ = 0;
  int jain_samples_ = 0;
  int64_t worker_minutes_ = 0, idle_while_fit_ = 0;
};

// Each job submitted at its minute, by its owner's token.
void Lab::Submit(const std::vector<std::string>& tokens) {
  auto stub = v1::ExperimentService::NewStub(NewChannel(1));
  std::vector<size_t> order(jobs_.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return jobs_[a].submit_minute < jobs_[b].submit_minute;
  });
  for (size_t i : order) {
    if (stop_ || jobs_[i].submit_minute >= absl::GetFlag(FLAGS_minutes)) break;
    SleepUntil(jobs_[i].submit_minute);
    grpc::ClientContext context;
    Authorize(&context, tokens[jobs_[i].owner]);
    v1::SubmitRunRequest request;
    *request.mutable_spec() = SpecOf(jobs_[i]);
    v1::Run run;
    grpc::Status s = stub->SubmitRun(&context, request, &run);
    if (!s.ok()) Die("SubmitRun", s);
    absl::MutexLock lock(&mu_);
    jobs_[i].run_id = run.id();
    jobs_[i].submit_minute = Now();
    by_run_[run.id()] = i;
  }
}

// A simulated worker: leases, "trains" for the job's minutes while it
// heartbeats and reports, uploads a checkpoint and completes.
void Lab::Work(int index, Pool pool) {
  auto stub = v1::WorkerService::NewStub(NewChannel(100 + index));
  const WorkerOffer offer = OfferOfPool(pool);
  std::string id;
  {
    grpc::ClientContext context;
    Authorize(&context, worker_token_);
    v1::RegisterWorkerRequest request;
    request.set_hostname(absl::StrCat("lab-", index));
    request.set_device(offer.device);
    for (const std::string& l : offer.labels)
      if (l.rfind("device_kind=", 0) != 0) request.add_labels(l);
    request.set_device_memory_bytes(offer.device_memory_bytes);
    v1::RegisterWorkerResponse response;
    grpc::Status s = stub->RegisterWorker(&context, request, &response);
    if (!s.ok()) Die("RegisterWorker", s);
    id = response.worker_id();
  }
  while (!stop_) {
    grpc::ClientContext context;
    Authorize(&context, worker_token_);
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    v1::LeaseRunRequest request;
    request.set_worker_id(id);
    request.set_wait_ms(1000);
    v1::LeaseRunResponse response;
    {
      absl::MutexLock lock(&mu_);
      asking_since_[index] = Now();
    }
    grpc::Status s = stub->LeaseRun(&context, request, &response);
    {
      absl::MutexLock lock(&mu_);
      asking_since_[index] = -1;
    }
    if (!s.ok()) {
      if (stop_) return;
      Die("LeaseRun", s);
    }
    if (!response.has_run()) continue;
    const v1::Run run = response.run();
    double minutes;
    {
      // The submitter records the run when its answer comes, which may be
      // after this lease.
      auto recorded = [&] {
        absl::MutexLock lock(&mu_);
        return by_run_.contains(run.id());
      };
      while (!recorded()) absl::SleepFor(absl::Milliseconds(1));
      absl::MutexLock lock(&mu_);
      Job& job = jobs_[by_run_.at(run.id())];
      if (job.leased < 0) job.leased = Now();
      job.segment_start = Now();
      job.worker = index;
      holding_[index] = int(by_run_.at(run.id()));
      if (!Meets(offer, job.needs)) ++misplaced_;
      minutes = job.train_minutes - job.trained;  // Resumed at its step.
    }
    const double start = Now(), end = start + minutes;
    bool yielded = false;
    while (Now() < end && !stop_ && !yielded) {
      SleepUntil(std::min(end, Now() + 5));
      grpc::ClientContext hb;
      Authorize(&hb, worker_token_);
      v1::HeartbeatRequest beat;
      beat.set_worker_id(id);
      beat.set_run_id(run.id());
      beat.set_attempt(run.attempt());
      v1::HeartbeatResponse answer;
      yielded = stub->Heartbeat(&hb, beat, &answer).ok() &&
                answer.yield_requested() && Now() < end;
    }
    if (stop_) return;
    if (yielded) {
      // Preempted: hand back at this step (a simulated step loses nothing)
      // and go on serving.
      {
        absl::MutexLock lock(&mu_);
        Job& job = jobs_[by_run_.at(run.id())];
        job.trained += Now() - start;
        job.used_before += Now() - job.segment_start;
        job.segment_start = -1;
        ++job.preempted;
        holding_[index] = -1;
      }
      grpc::ClientContext back;
      Authorize(&back, worker_token_);
      v1::ReleaseRunRequest release;
      release.set_run_id(run.id());
      release.set_attempt(run.attempt());
      release.set_reason("preempted");
      v1::ReleaseRunResponse released;
      s = stub->ReleaseRun(&back, release, &released);
      if (!s.ok()) Die("ReleaseRun", s);
      continue;
    }
    const std::string bytes = absl::StrCat("checkpoint of run ", run.id());
    const std::string digest = Sha256Hex(bytes);
    {
      grpc::ClientContext up;
      Authorize(&up, worker_token_);
      v1::UploadRunFileResponse uploaded;
      auto writer = stub->UploadRunFile(&up, &uploaded);
      v1::RunFileChunk chunk;
      v1::RunFileHeader* header = chunk.mutable_header();
      header->set_run_id(run.id());
      header->set_attempt(run.attempt());
      header->set_sha256(digest);
      header->set_size(int64_t(bytes.size()));
      chunk.set_data(bytes);
      writer->Write(chunk);
      writer->WritesDone();
      grpc::Status s = writer->Finish();
      if (!s.ok()) Die("UploadRunFile", s);
    }
    grpc::ClientContext done;
    Authorize(&done, worker_token_);
    v1::CompleteRunRequest complete;
    complete.set_run_id(run.id());
    complete.set_attempt(run.attempt());
    complete.set_checkpoint_sha256(digest);
    v1::CompleteRunResponse completed;
    s = stub->CompleteRun(&done, complete, &completed);
    if (!s.ok()) Die("CompleteRun", s);
    absl::MutexLock lock(&mu_);
    Job& job = jobs_[by_run_.at(run.id())];
    job.ended = Now();
    job.used_before += job.ended - job.segment_start;
    job.segment_start = -1;
    holding_[index] = -1;
  }
}

// Each simulated minute: the workers each owner holds, among the owners
// with work (Jain's index), and each idle worker whether a run it could
// take was queued.
void Lab::Sample() {
  for (int minute = 1; minute <= absl::GetFlag(FLAGS_minutes); ++minute) {
    SleepUntil(minute);
    absl::MutexLock lock(&mu_);
    const double now = Now();
    std::map<int, int> held;   // Owner -> workers.
    std::map<int, bool> busy;  // Owners with work (queued or running).
    for (size_t w = 0; w < holding_.size(); ++w) {
      if (holding_[w] >= 0) ++held[jobs_[holding_[w]].owner];
    }
    for (const Job& job : jobs_) {
      if (job.run_id != 0 && job.ended < 0) busy[job.owner] = true;
    }
    double sum = 0, squares = 0;
    for (const auto& [owner, active] : busy) {
      const double x = held.count(owner) ? held[owner] : 0;
      sum += x;
      squares += x * x;
    }
    if (!busy.empty() && squares > 0) {
      jain_sum_ += sum * sum / (double(busy.size()) * squares);
      ++jain_samples_;
    }
    for (size_t w = 0; w < holding_.size(); ++w) {
      ++worker_minutes_;
      // Idle: asking for a run for a simulated minute or more (200 ms at
      // the default pace, far above a lease's answer).
      if (holding_[w] >= 0 || asking_since_[w] < 0 ||
          now - asking_since_[w] < 1)
        continue;
      const WorkerOffer offer = OfferOfPool(pools_[w]);
      // A run it could take, queued for a simulated minute or more.
      for (const Job& job : jobs_) {
        if (job.run_id != 0 && job.leased < 0 && now - job.submit_minute >= 1 &&
            Meets(offer, job.needs)) {
          ++idle_while_fit_;
          break;
        }
      }
    }
  }
}

double Quantile(std::vector<double> v, double q) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, size_t(q * double(v.size())))];
}

void Lab::Print() const {
  absl::MutexLock lock(&mu_);
  const double horizon = absl::GetFlag(FLAGS_minutes);
  const std::string label = absl::GetFlag(FLAGS_label);
  std::map<int, std::vector<double>> waits;
  std::map<int, double> first_lease, used;
  std::map<int, double> submitted;
  double total = 0;
  int preemptions = 0;
  for (const Job& job : jobs_) {
    if (job.run_id == 0) continue;
    submitted.try_emplace(job.owner, job.submit_minute);
    if (job.leased >= 0) {
      waits[job.owner].push_back(job.leased - job.submit_minute);
      auto [it, fresh] = first_lease.try_emplace(job.owner, job.leased);
      if (!fresh) it->second = std::min(it->second, job.leased);
      // Its attempts' worker time within the horizon.
      const double open = job.segment_start >= 0
                              ? std::max(0.0, horizon - job.segment_start)
                              : 0;
      used[job.owner] += job.used_before + open;
      total += job.used_before + open;
      preemptions += job.preempted;
    } else {
      // Never leased within the horizon: waited all of it.
      waits[job.owner].push_back(horizon - job.submit_minute);
    }
  }
  std::printf(
      "%s owner   runs  submitted  first lease after  wait p50  wait max  "
      "worker time\n",
      label.c_str());
  for (const auto& [owner, w] : waits) {
    std::printf(
        "%s owner-%-2d %4zu  %8.1f m  %14.1f m  %6.1f m  %6.1f m  %9.1f %%\n",
        label.c_str(), owner, w.size(), submitted.at(owner),
        first_lease.count(owner) ? first_lease.at(owner) - submitted.at(owner)
                                 : horizon - submitted.at(owner),
        Quantile(w, 0.5), Quantile(w, 1.0),
        total > 0 ? 100 * used[owner] / total : 0);
  }
  std::printf(
      "%s Jain's index over owners with work (mean of %d minutes): %.3f\n",
      label.c_str(), jain_samples_,
      jain_samples_ ? jain_sum_ / jain_samples_ : 0);
  std::printf(
      "%s worker time idle while a run it could take was queued: %lld of "
      "%lld worker-minutes (%.2f %%)\n",
      label.c_str(), (long long)idle_while_fit_, (long long)worker_minutes_,
      worker_minutes_
          ? 100.0 * double(idle_while_fit_) / double(worker_minutes_)
          : 0);
  std::printf("%s runs placed where they did not fit: %d\n", label.c_str(),
              misplaced_);
  std::printf(
      "%s preemptions: %d (each handed back at a step, resumed where it "
      "stopped: no simulated work lost; e2e_preempt measures the real one)\n",
      label.c_str(), preemptions);
}

// At scale: the queue filled by every owner, then each client thread
// leases and hands back in turn for its share of the workers.
int Scale() {
  const std::string admin_token =
      ReadToken(absl::GetFlag(FLAGS_admin_token_file));
  const std::string worker_token =
      ReadToken(absl::GetFlag(FLAGS_worker_token_file));
  const int owners = absl::GetFlag(FLAGS_owners);
  const int runs = absl::GetFlag(FLAGS_scale_runs);
  // Owners of their own (a token's name is one owner; the lab's may be on
  // this coordinator already).
  const std::vector<std::string> tokens =
      OwnerTokens(admin_token, owners, "scale-owner-");
  const absl::Time filling = absl::Now();
  std::atomic<int> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto stub = v1::ExperimentService::NewStub(NewChannel(10 + t));
      for (int i = next++; i < runs; i = next++) {
        Job job;
        if (i % 3 >= 1) job.needs.set_device_kind("cuda");
        if (i % 3 == 2) job.needs.set_min_device_memory_gib(40);
        grpc::ClientContext context;
        Authorize(&context, tokens[i % owners]);
        v1::SubmitRunRequest request;
        *request.mutable_spec() = SpecOf(job);
        v1::Run run;
        grpc::Status s = stub->SubmitRun(&context, request, &run);
        if (!s.ok()) Die("SubmitRun", s);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  threads.clear();
  std::printf("scale: %d runs of %d owners queued in %.0f s\n", runs, owners,
              absl::ToDoubleSeconds(absl::Now() - filling));
  const int workers = absl::GetFlag(FLAGS_scale_workers);
  constexpr int kClients = 16;
  absl::Mutex mu;
  std::vector<double> latencies;
  std::atomic<bool> stop{false};
  std::atomic<int> registered{0};
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = v1::WorkerService::NewStub(NewChannel(100 + c));
      std::vector<std::string> ids;
      for (int w = c; w < workers; w += kClients) {
        const WorkerOffer offer = OfferOfPool(Pool(w % 3));
        grpc::ClientContext context;
        Authorize(&context, worker_token);
        v1::RegisterWorkerRequest request;
        request.set_hostname(absl::StrCat("scale-", w));
        request.set_device(offer.device);
        request.set_device_memory_bytes(offer.device_memory_bytes);
        v1::RegisterWorkerResponse response;
        grpc::Status s = stub->RegisterWorker(&context, request, &response);
        if (!s.ok()) Die("RegisterWorker", s);
        ids.push_back(response.worker_id());
      }
      ++registered;
      while (registered < kClients) absl::SleepFor(absl::Milliseconds(10));
      std::vector<double> mine;
      for (size_t i = 0; !stop; i = (i + 1) % ids.size()) {
        grpc::ClientContext context;
        Authorize(&context, worker_token);
        v1::LeaseRunRequest request;
        request.set_worker_id(ids[i]);
        v1::LeaseRunResponse response;
        const absl::Time start = absl::Now();
        grpc::Status s = stub->LeaseRun(&context, request, &response);
        mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - start));
        if (!s.ok()) Die("LeaseRun", s);
        if (!response.has_run()) continue;
        grpc::ClientContext back;
        Authorize(&back, worker_token);
        v1::ReleaseRunRequest release;
        release.set_run_id(response.run().id());
        release.set_attempt(response.run().attempt());
        v1::ReleaseRunResponse released;
        s = stub->ReleaseRun(&back, release, &released);
        if (!s.ok()) Die("ReleaseRun", s);
      }
      absl::MutexLock lock(&mu);
      latencies.insert(latencies.end(), mine.begin(), mine.end());
    });
  }
  while (registered < kClients) absl::SleepFor(absl::Milliseconds(10));
  absl::SleepFor(absl::Seconds(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  for (std::thread& t : threads) t.join();
  std::sort(latencies.begin(), latencies.end());
  auto at = [&](double q) {
    return latencies.empty()
               ? 0.0
               : latencies[std::min(latencies.size() - 1,
                                    size_t(q * double(latencies.size())))];
  };
  std::printf(
      "scale: %s %d workers (%d client threads), %d queued, %d owners: "
      "LeaseRun p50 %.2f ms, p99 %.2f ms (%zu leases, each handed back)\n",
      absl::GetFlag(FLAGS_label).c_str(), workers, kClients, runs, owners,
      at(0.5), at(0.99), latencies.size());
  return 0;
}

int Lab::Run() {
  const std::vector<std::string> tokens =
      OwnerTokens(admin_token_, absl::GetFlag(FLAGS_owners));
  const int per_pool = absl::GetFlag(FLAGS_workers_per_pool);
  {
    absl::MutexLock lock(&mu_);
    holding_.assign(3 * per_pool, -1);
    asking_since_.assign(3 * per_pool, -1);
  }
  for (Pool pool : {kLarge, kSmall, kCpu})
    for (int i = 0; i < per_pool; ++i) pools_.push_back(pool);
  std::vector<std::thread> threads;
  for (size_t w = 0; w < pools_.size(); ++w)
    threads.emplace_back([this, w] { Work(int(w), pools_[w]); });
  std::thread submitter([&] { Submit(tokens); });
  Sample();
  stop_ = true;
  submitter.join();
  for (std::thread& t : threads) t.join();
  Print();
  return 0;
}

}  // namespace
}  // namespace distill

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  if (absl::GetFlag(FLAGS_scale)) return distill::Scale();
  distill::Lab lab;
  return lab.Run();
}
