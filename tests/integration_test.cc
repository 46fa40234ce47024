// Coordinator and worker on loopback in one process: a sweep of a teacher
// and two students on 512 Fashion-MNIST images for one epoch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/channel.h"
#include "common/sha256.h"
#include "common/tls.h"
#include "common/token.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "server/coordinator.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"
#include "tests/wait_for.h"
#include "worker/engine/datasets.h"
#include "worker/worker.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class IntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(engine::StandardRoot("fashion-mnist") +
                    "/train-images-idx3-ubyte.gz")) {
      GTEST_SKIP() << "dataset-fashion-mnist is not installed";
    }
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = (dir_ / "coordinator").string();
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    channel_ = grpc::CreateChannel(coordinator_->address(),
                                   grpc::InsecureChannelCredentials());
    experiments_ = v1::ExperimentService::NewStub(channel_);
    WorkerOptions worker_options;
    worker_options.scratch_dir = (dir_ / "worker").string();
    // A root that does not exist: unreadable data, yet allowed.
    worker_options.data_roots = {"/usr/share/datasets", "/nonexistent"};
    worker_options.lease_wait = absl::Seconds(1);
    worker_options.metrics_flush = absl::Milliseconds(100);
    worker_ = std::make_unique<Worker>(channel_, worker_options);
    worker_thread_ =
        std::thread([this] { ASSERT_TRUE(worker_->Serve(stop_).ok()); });
  }

  void TearDown() override {
    stop_ = true;
    if (worker_thread_.joinable()) worker_thread_.join();
    if (coordinator_) coordinator_->Shutdown();
  }

  // Watches the run over gRPC until it ends.
  v1::Run WaitForEnd(int64_t id) {
    v1::WatchRunRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::minutes(5));
    auto reader = experiments_->WatchRun(&context, request);
    v1::RunEvent event;
    v1::Run last;
    while (reader->Read(&event)) last = event.run();
    EXPECT_TRUE(reader->Finish().ok());
    return last;
  }

  TempDir temp_{"distill_integration_test"};
  const fs::path dir_ = temp_.path();
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ExperimentService::Stub> experiments_;
  std::unique_ptr<Worker> worker_;
  std::atomic<bool> stop_{false};
  std::thread worker_thread_;
};

TEST_F(IntegrationTest, SweepOfATeacherAndTwoStudentsSucceeds) {
  v1::SubmitSweepRequest request;
  *request.mutable_spec() = SmallSweep("integration");
  v1::SubmitSweepResponse sweep;
  grpc::ClientContext context;
  ASSERT_TRUE(experiments_->SubmitSweep(&context, request, &sweep).ok());
  ASSERT_EQ(sweep.runs_size(), 3);

  for (const v1::Run& submitted : sweep.runs()) {
    v1::Run run = WaitForEnd(submitted.id());
    EXPECT_EQ(run.status(), v1::SUCCEEDED)
        << run.member() << ": " << run.message();
  }

  Scheduler& scheduler = coordinator_->scheduler();
  const v1::Run teacher = *scheduler.GetRun(sweep.runs(0).id());
  EXPECT_GT(teacher.results().at("eval/top1"), 0.3) << "teacher at chance";
  for (int i = 1; i < 3; ++i) {
    const v1::Run student = *scheduler.GetRun(sweep.runs(i).id());
    std::cout << "student " << student.member() << " top-1 "
              << student.results().at("eval/top1") << ", teacher top-1 "
              << teacher.results().at("eval/top1") << "\n";
    EXPECT_GT(student.results().at("eval/top1"), 0.2)
        << student.member() << " at chance";
    EXPECT_EQ(student.results().at("teacher/top1"),
              teacher.results().at("eval/top1"));
    // Metrics were stored: the loss at least every 4 steps, top-1 each epoch.
    WatchCursor cursor;
    cursor.include_history = true;
    auto history = *scheduler.PollRunEvent(student.id(), &cursor);
    int losses = 0, evals = 0, terms = 0;
    for (const v1::MetricPoint& m : (*history).metrics()) {
      losses += m.key() == "train/loss";
      evals += m.key() == "eval/top1";
      terms += m.key() == "train/loss_ce";
    }
    EXPECT_GE(losses, 4);
    EXPECT_EQ(evals, 1);
    EXPECT_EQ(terms, losses);
    // Judged beyond accuracy: k-NN and clustering of both embedding spaces.
    for (const char* key :
         {"eval/knn_top1", "eval/nmi", "eval/ari", "eval/teacher_agreement",
          "teacher/knn_top1", "teacher/nmi", "teacher/ari"}) {
      EXPECT_EQ(student.results().count(key), 1u) << key;
    }
    EXPECT_GT(student.results().at("eval/knn_top1"), 0.2);
    // The first student computed the teacher's outputs; the second reused them.
    EXPECT_EQ(student.results().at("teacher/cache_hit"), i == 1 ? 0 : 1)
        << student.member();
    // The t-SNE map came back as a file of the run, and its final training
    // state (what distill fork --continue goes on from).
    std::vector<std::string> names;
    for (const v1::RunFile& f : student.files()) names.push_back(f.name());
    EXPECT_THAT(names, ::testing::UnorderedElementsAre("checkpoint", "tsne.csv",
                                                       "state.pt"));
    v1::DownloadRunFileRequest download;
    download.set_run_id(student.id());
    download.set_name("tsne.csv");
    grpc::ClientContext context;
    auto reader = experiments_->DownloadRunFile(&context, download);
    v1::FileChunk chunk;
    std::string csv;
    while (reader->Read(&chunk)) csv += chunk.data();
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(csv.substr(0, 16), "model,x,y,label\n");
    EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'),
              1 + 2 * 500);  // Teacher, student.
  }
  v1::DownloadRunFileRequest missing;
  missing.set_run_id(sweep.runs(0).id());
  missing.set_name("tsne.csv");  // A teacher run makes no map.
  grpc::ClientContext missing_context;
  auto missing_reader =
      experiments_->DownloadRunFile(&missing_context, missing);
  v1::FileChunk ignored;
  while (missing_reader->Read(&ignored)) {
  }
  EXPECT_EQ(missing_reader->Finish().error_code(), grpc::StatusCode::NOT_FOUND);
  // Every run records the digest of the data files it read: the sha256 of
  // "<file name> <sha256>\n" lines, sorted, computed here on our own.
  std::string manifest;
  for (const char* name :
       {"t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}) {
    absl::StatusOr<std::string> file_sha = Sha256File(
        absl::StrCat(engine::StandardRoot("fashion-mnist"), "/", name));
    ASSERT_TRUE(file_sha.ok()) << file_sha.status();
    absl::StrAppend(&manifest, name, " ", *file_sha, "\n");
  }
  for (const v1::Run& submitted : sweep.runs()) {
    const auto p = scheduler.GetRun(submitted.id())->provenance();
    ASSERT_EQ(p.count("data_sha256"), 1u) << submitted.member();
    EXPECT_EQ(p.at("data_sha256"), Sha256Hex(manifest));
    EXPECT_EQ(p.at("data_files"), "4");
  }
  // The teacher checkpoint arrived intact: the coordinator's file, and the
  // copy the worker downloaded, hash to what was recorded.
  const std::string sha = teacher.checkpoint_sha256();
  ASSERT_TRUE(IsSha256Hex(sha));
  EXPECT_EQ(*Sha256File((dir_ / "coordinator" / "run-files" / sha).string()),
            sha);
  EXPECT_EQ(*Sha256File((dir_ / "worker" / (sha + ".pt")).string()), sha);

  // EVALUATE the teacher and student D on the same data: the same numbers.
  const v1::Run d = *scheduler.GetRun(sweep.runs(1).id());
  v1::SubmitRunRequest evaluate;
  v1::ExperimentSpec* e = evaluate.mutable_spec();
  e->set_kind(v1::EVALUATE);
  *e->mutable_dataset() = d.spec().dataset();
  e->mutable_teacher()->set_run_id(teacher.id());
  e->set_student_run_id(d.id());
  e->mutable_evaluation()->set_tsne_points(100);
  v1::Run evaluation;
  grpc::ClientContext evaluate_context;
  ASSERT_TRUE(
      experiments_->SubmitRun(&evaluate_context, evaluate, &evaluation).ok());
  evaluation = WaitForEnd(evaluation.id());
  ASSERT_EQ(evaluation.status(), v1::SUCCEEDED) << evaluation.message();
  evaluation = *scheduler.GetRun(evaluation.id());
  EXPECT_DOUBLE_EQ(evaluation.results().at("student/top1"),
                   d.results().at("eval/top1"));
  EXPECT_DOUBLE_EQ(evaluation.results().at("teacher/top1"),
                   teacher.results().at("eval/top1"));
  EXPECT_DOUBLE_EQ(evaluation.results().at("eval/teacher_agreement"),
                   d.results().at("eval/teacher_agreement"));
  EXPECT_DOUBLE_EQ(evaluation.results().at("student/knn_top1"),
                   d.results().at("eval/knn_top1"));
  ASSERT_EQ(evaluation.files_size(), 1);
  EXPECT_EQ(evaluation.files(0).name(), "tsne.csv");

  v1::GetSweepResultsRequest results_request;
  results_request.set_sweep("integration");
  v1::SweepResults results;
  grpc::ClientContext results_context;
  ASSERT_TRUE(
      experiments_->GetSweepResults(&results_context, results_request, &results)
          .ok());
  EXPECT_EQ(results.members_size(), 2);
  EXPECT_TRUE(results.members(0).has_top1());
  EXPECT_TRUE(results.has_teacher_top1());
}

TEST_F(IntegrationTest, UnreadableDataFailsTheRunAndTheWorkerKeepsServing) {
  v1::ExperimentSpec spec = SmallSweep("integration").teacher().train();
  spec.MergeFrom(SmallSweep("integration").base());
  spec.set_kind(v1::TRAIN_TEACHER);
  spec.clear_student();
  spec.mutable_dataset()->set_root("/nonexistent/fashion");
  v1::SubmitRunRequest bad;
  *bad.mutable_spec() = spec;
  v1::Run bad_run, good_run;
  grpc::ClientContext c1, c2;
  ASSERT_TRUE(experiments_->SubmitRun(&c1, bad, &bad_run).ok());
  spec.mutable_dataset()->clear_root();
  spec.mutable_dataset()->set_train_limit(64);
  spec.mutable_dataset()->set_test_limit(64);
  v1::SubmitRunRequest good;
  *good.mutable_spec() = spec;
  ASSERT_TRUE(experiments_->SubmitRun(&c2, good, &good_run).ok());

  v1::Run failed = WaitForEnd(bad_run.id());
  EXPECT_EQ(failed.status(), v1::FAILED);
  EXPECT_THAT(
      failed.message(),
      HasSubstr("cannot open /nonexistent/fashion/train-images-idx3-ubyte.gz"));
  EXPECT_EQ(WaitForEnd(good_run.id()).status(), v1::SUCCEEDED);
}

TEST(CoordinatorTest, AnOldDataDirectoryKeepsItsRunFiles) {
  TempDir temp("distill_coordinator_test");
  const fs::path data = temp.path() / "data";
  fs::create_directories(data / "checkpoints");
  std::ofstream(data / "checkpoints" / "abc") << "model";
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = data.string();
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  (*coordinator)->Shutdown();
  EXPECT_FALSE(fs::exists(data / "checkpoints"));
  EXPECT_TRUE(fs::exists(data / "run-files" / "abc"));
}

TEST_F(IntegrationTest, APathOutsideTheWorkersDataRootsFailsTheRun) {
  v1::ExperimentSpec spec = SmallSweep("integration").teacher().train();
  spec.MergeFrom(SmallSweep("integration").base());
  spec.set_kind(v1::TRAIN_TEACHER);
  spec.clear_student();
  spec.mutable_dataset()->set_name("cifar-10");
  spec.mutable_dataset()->set_root("/etc");
  spec.mutable_dataset()->set_image_size(28);
  v1::SubmitRunRequest request;
  *request.mutable_spec() = spec;
  v1::Run run;
  grpc::ClientContext context;
  ASSERT_TRUE(experiments_->SubmitRun(&context, request, &run).ok());
  v1::Run failed = WaitForEnd(run.id());
  EXPECT_EQ(failed.status(), v1::FAILED);
  EXPECT_THAT(failed.message(),
              HasSubstr("dataset.root /etc is outside the data roots this "
                        "worker allows [/usr/share/datasets, /nonexistent]"));
}

TEST(CoordinatorTest, BeyondLoopbackIsRefusedWithoutTlsAndTokens) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.data_dir = (temp.path() / "data").string();
  options.listen_address = "0.0.0.0:0";
  auto refused = Coordinator::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("refusing to listen on 0.0.0.0:0"));
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("--insecure"));
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("without TLS or tokens"));
  // TLS, even with client certificates, but no tokens: no roles, refused.
  options.tls = {"/certs/server.pem", "/certs/server.key", "/certs/ca.pem"};
  EXPECT_THAT(std::string(Coordinator::Start(options).status().message()),
              HasSubstr("refusing to listen on 0.0.0.0:0 without tokens"));
  // Tokens over plaintext would show them to the network: refused.
  options.tls = {};
  options.require_tokens = true;
  EXPECT_THAT(std::string(Coordinator::Start(options).status().message()),
              HasSubstr("refusing to listen on 0.0.0.0:0 without TLS"));
  // (With TLS and tokens, or --insecure, it would bind every interface:
  // tests stay on loopback, so those cases are left to deployments.)
  for (const char* loopback : {"127.0.0.1:0", "localhost:0", "[::1]:0"}) {
    CoordinatorOptions local;
    local.data_dir = (temp.path() / "local").string();
    local.listen_address = loopback;
    auto started = Coordinator::Start(local);
    // [::1] may be absent in a sandbox; only the refusal matters here.
    if (!started.ok()) {
      EXPECT_THAT(std::string(started.status().message()),
                  ::testing::Not(HasSubstr("refusing")))
          << loopback;
    }
  }
}

TEST(CoordinatorTest, OneHostCannotHoldMoreWatchesThanItsShare) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.limits.watches_per_host = 1;
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto stub = v1::ExperimentService::NewStub(grpc::CreateChannel(
      (*coordinator)->address(), grpc::InsecureChannelCredentials()));
  v1::SubmitRunRequest submit;
  *submit.mutable_spec() = SmallSweep("limits").teacher().train();
  submit.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
  v1::Run run;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub->SubmitRun(&context, submit, &run).ok());
  }
  v1::WatchRunRequest watch;
  watch.set_id(run.id());
  grpc::ClientContext first_context;
  auto first = stub->WatchRun(&first_context, watch);
  v1::RunEvent event;
  ASSERT_TRUE(first->Read(&event));  // Open: the run stays QUEUED.
  grpc::ClientContext second_context;
  auto second = stub->WatchRun(&second_context, watch);
  EXPECT_FALSE(second->Read(&event));
  grpc::Status refused = second->Finish();
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.error_message(),
              HasSubstr("already holds 1 open watches"));
  first_context.TryCancel();
  first->Finish();
}

// Threads of this process now (/proc/self/status).
int ThreadCount() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("Threads:", 0) == 0) return std::atoi(line.c_str() + 8);
  }
  return -1;
}

TEST(CoordinatorTest, LongPollsAndWatchesWaitWithoutAThreadEach) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.limits.watches_per_host = 1000;
  options.limits.long_polls_per_host = 1000;
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto channel = grpc::CreateChannel((*coordinator)->address(),
                                     grpc::InsecureChannelCredentials());
  auto experiments = v1::ExperimentService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  const int threads_before = ThreadCount();

  // 40 workers long-poll an empty queue, 200 watches on one run.
  v1::SubmitRunRequest submit;
  *submit.mutable_spec() = SmallSweep("polls").teacher().train();
  submit.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
  v1::Run watched;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(experiments->SubmitRun(&context, submit, &watched).ok());
  }
  constexpr int kPolls = 40;
  constexpr int kWatches = 200;
  std::vector<std::string> ids;
  for (int i = 0; i < kPolls + 1; ++i) {
    grpc::ClientContext context;
    v1::RegisterWorkerRequest request;
    request.set_hostname(absl::StrCat("w", i));
    v1::RegisterWorkerResponse response;
    ASSERT_TRUE(workers->RegisterWorker(&context, request, &response).ok());
    ids.push_back(response.worker_id());
  }
  {  // The watched run goes to the last worker; the queue is then empty.
    grpc::ClientContext context;
    v1::LeaseRunRequest request;
    request.set_worker_id(ids.back());
    v1::LeaseRunResponse response;
    ASSERT_TRUE(workers->LeaseRun(&context, request, &response).ok());
    ASSERT_EQ(response.run().id(), watched.id());
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> watch_contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::RunEvent>>> watches;
  v1::WatchRunRequest watch;
  watch.set_id(watched.id());
  for (int i = 0; i < kWatches; ++i) {
    watch_contexts.push_back(std::make_unique<grpc::ClientContext>());
    watches.push_back(
        experiments->WatchRun(watch_contexts.back().get(), watch));
    v1::RunEvent first;
    ASSERT_TRUE(watches.back()->Read(&first));
  }
  std::atomic<int> leased{0};
  std::vector<std::thread> polls;
  for (int i = 0; i < kPolls; ++i) {
    polls.emplace_back([&, i] {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(30));
      v1::LeaseRunRequest request;
      request.set_worker_id(ids[i]);
      request.set_wait_ms(20'000);
      v1::LeaseRunResponse response;
      grpc::Status s = workers->LeaseRun(&context, request, &response);
      EXPECT_TRUE(s.ok()) << s.error_message();
      if (response.has_run()) ++leased;
    });
  }
  // Every long-poll has arrived and waits (subscribed to the queue), so
  // the server holds 240 open calls; its threads barely grew (these
  // client threads are in this process too: 40 of them).
  auto& hub = (*coordinator)->scheduler().watch_hub();
  ASSERT_TRUE(WaitFor([&] { return hub.subscriptions() >= kWatches + kPolls; }))
      << hub.subscriptions() << " subscriptions";
  EXPECT_LT(ThreadCount() - threads_before, kPolls + 20);

  // Runs arrive: each goes to one waiting worker, at once.
  const absl::Time start = absl::Now();
  for (int i = 0; i < kPolls; ++i) {
    grpc::ClientContext context;
    v1::Run run;
    ASSERT_TRUE(experiments->SubmitRun(&context, submit, &run).ok());
  }
  for (std::thread& t : polls) t.join();
  EXPECT_EQ(leased.load(), kPolls);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));

  // A status change reaches every watch.
  {
    grpc::ClientContext context;
    v1::CancelRunRequest cancel;
    cancel.set_id(watched.id());
    v1::Run run;
    ASSERT_TRUE(experiments->CancelRun(&context, cancel, &run).ok());
  }
  for (auto& reader : watches) {
    v1::RunEvent event;
    v1::RunStatus last = v1::RUN_STATUS_UNSPECIFIED;
    while (reader->Read(&event)) last = event.run().status();
    EXPECT_EQ(last, v1::CANCELLED);
    EXPECT_TRUE(reader->Finish().ok());
  }
}

// `worker_id`'s lease call that waits for nothing: OK with or without a
// run, or RESOURCE_EXHAUSTED while its caller holds all its long-polls.
grpc::Status LeaseNow(v1::WorkerService::Stub& workers,
                      const std::string& worker_id,
                      v1::LeaseRunResponse* response = nullptr) {
  grpc::ClientContext context;
  v1::LeaseRunRequest request;
  request.set_worker_id(worker_id);
  v1::LeaseRunResponse ignored;
  return workers.LeaseRun(&context, request,
                          response != nullptr ? response : &ignored);
}

// Calls `lease` until it answers `code`; false after 10 s.
bool UntilLeaseAnswers(grpc::StatusCode code,
                       const std::function<grpc::Status()>& lease) {
  for (int i = 0; i < 1000; ++i) {
    if (lease().error_code() == code) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return false;
}

std::string RegisterOn(v1::WorkerService::Stub& workers,
                       const std::string& host) {
  grpc::ClientContext context;
  v1::RegisterWorkerRequest request;
  request.set_hostname(host);
  v1::RegisterWorkerResponse registered;
  const grpc::Status s = workers.RegisterWorker(&context, request, &registered);
  EXPECT_TRUE(s.ok()) << s.error_message();
  return registered.worker_id();
}

// A worker's LeaseRun that waits up to 20 s; asked again while refused for
// the moment (another call of its caller holds the only place), until
// cancelled.
class LongPoll {
 public:
  LongPoll(v1::WorkerService::Stub& workers, std::string worker_id)
      : thread_([this, &workers, worker_id] { Run(workers, worker_id); }) {}
  LongPoll(const LongPoll&) = delete;
  ~LongPoll() {
    if (thread_.joinable()) Cancel();
  }

  // The worker gives up; how its call ended.
  grpc::Status Cancel() {
    {
      absl::MutexLock lock(&mu_);
      stopped_ = true;
      if (context_ != nullptr) context_->TryCancel();
    }
    thread_.join();
    return status_;
  }

 private:
  void Run(v1::WorkerService::Stub& workers, const std::string& worker_id) {
    while (true) {
      grpc::ClientContext context;
      {
        absl::MutexLock lock(&mu_);
        if (stopped_) return;
        context_ = &context;
      }
      v1::LeaseRunRequest request;
      request.set_worker_id(worker_id);
      request.set_wait_ms(20'000);
      v1::LeaseRunResponse response;
      const grpc::Status status =
          workers.LeaseRun(&context, request, &response);
      absl::MutexLock lock(&mu_);
      context_ = nullptr;
      status_ = status;
      if (status.error_code() != grpc::StatusCode::RESOURCE_EXHAUSTED) return;
    }
  }

  absl::Mutex mu_;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status status_;  // Written under mu_, read after join.
  std::thread thread_;   // Last: starts once the rest is made.
};

// A long-poll the worker cancels takes no run submitted after it: the run
// goes to the next worker that asks. With one long-poll a host, a second
// worker's call tells when the server holds the first and when it let go.
// (The first is asked again while the second's call holds the place.)
TEST(CoordinatorTest, ALeaseCallItsWorkerGaveUpOnTakesNoRun) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.limits.long_polls_per_host = 1;
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  auto channel = grpc::CreateChannel((*coordinator)->address(),
                                     grpc::InsecureChannelCredentials());
  auto experiments = v1::ExperimentService::NewStub(channel);
  auto workers = v1::WorkerService::NewStub(channel);
  const std::string gone = RegisterOn(*workers, "gpu1");
  const std::string other = RegisterOn(*workers, "gpu2");
  LongPoll poll(*workers, gone);
  const auto other_leases = [&] { return LeaseNow(*workers, other); };
  const bool held =
      UntilLeaseAnswers(grpc::StatusCode::RESOURCE_EXHAUSTED, other_leases);
  const grpc::Status poll_status = poll.Cancel();  // The worker exits.
  ASSERT_TRUE(held) << "the long-poll never reached the coordinator";
  EXPECT_EQ(poll_status.error_code(), grpc::StatusCode::CANCELLED);
  ASSERT_TRUE(UntilLeaseAnswers(grpc::StatusCode::OK, other_leases))
      << "the cancelled long-poll was never let go";
  v1::SubmitRunRequest submit;
  *submit.mutable_spec() = SmallSweep("late").teacher().train();
  submit.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
  v1::Run run;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(experiments->SubmitRun(&context, submit, &run).ok());
  }
  v1::LeaseRunResponse leased;
  ASSERT_TRUE(LeaseNow(*workers, other, &leased).ok());
  EXPECT_EQ(leased.run().id(), run.id());
  EXPECT_EQ(leased.run().attempt(), 1);
}

// With tokens, the long-polls a caller may hold count against its token,
// not its host: a second worker of the same token is refused, a worker of
// another token on the same host is not.
TEST(CoordinatorTest, LongPollsCountAgainstTheCallersToken) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.require_tokens = true;
  options.worker_token_file = (temp.path() / "worker.token").string();
  options.limits.long_polls_per_host = 1;
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const std::string address = (*coordinator)->address();
  v1::CreateTokenResponse created;
  {
    auto admin = v1::AdminService::NewStub(
        *Dial(address, {}, *ReadTokenFile(options.data_dir + "/admin.token")));
    grpc::ClientContext context;
    v1::CreateTokenRequest request;
    request.set_name("rack2");
    request.set_role(v1::ROLE_WORKER);
    ASSERT_TRUE(admin->CreateToken(&context, request, &created).ok());
  }
  const std::string second_secret = created.secret();
  auto first = v1::WorkerService::NewStub(
      *Dial(address, {}, *ReadTokenFile(options.worker_token_file)));
  auto second = v1::WorkerService::NewStub(*Dial(address, {}, second_secret));
  const std::string waiting = RegisterOn(*first, "gpu1");
  const std::string same_token = RegisterOn(*first, "gpu2");
  const std::string other_token = RegisterOn(*second, "gpu3");
  LongPoll poll(*first, waiting);
  std::string refusal;
  const bool refused =
      UntilLeaseAnswers(grpc::StatusCode::RESOURCE_EXHAUSTED, [&] {
        grpc::Status s = LeaseNow(*first, same_token);
        refusal = s.error_message();
        return s;
      });
  const grpc::Status other = LeaseNow(*second, other_token);
  poll.Cancel();
  ASSERT_TRUE(refused) << "a second long-poll of one token was let in";
  EXPECT_THAT(refusal, HasSubstr("token"));
  EXPECT_TRUE(other.ok()) << other.error_message();
}

// A GetRun of a run that does not exist, over `credentials`: NOT_FOUND
// means the call got through.
grpc::Status ProbeCoordinator(
    const std::string& address,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  auto stub = v1::ExperimentService::NewStub(
      grpc::CreateChannel(address, std::move(credentials)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::GetRunRequest request;
  request.set_id(42);
  v1::Run run;
  return stub->GetRun(&context, request, &run);
}

TEST(CoordinatorTest, TlsServesOnlyClientsThatTrustItsCertificate) {
  TempDir temp("distill_tls_test");
  const std::string dir = temp.path().string();
  ASSERT_EQ(
      std::system(
          ("bash " DISTILL_SOURCE_DIR "/tests/tls_certs.sh " + dir).c_str()),
      0)
      << "openssl could not make the test certificates";
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = dir + "/data";
  options.tls = {dir + "/server.pem", dir + "/server.key", ""};
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  const std::string address = (*coordinator)->address();

  auto trusted = ChannelCredentials({"", "", dir + "/ca.pem"});
  ASSERT_TRUE(trusted.ok()) << trusted.status();
  EXPECT_EQ(ProbeCoordinator(address, *trusted).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // Plaintext against the TLS port, and TLS trusting another CA: refused.
  EXPECT_EQ(ProbeCoordinator(address, grpc::InsecureChannelCredentials())
                .error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto stranger = ChannelCredentials({"", "", dir + "/other-ca.pem"});
  ASSERT_TRUE(stranger.ok());
  EXPECT_EQ(ProbeCoordinator(address, *stranger).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  // Client certificates required: the CA alone is not enough.
  options.tls = {dir + "/server.pem", dir + "/server.key", dir + "/ca.pem"};
  options.data_dir = dir + "/data3";
  auto strict = Coordinator::Start(options);
  ASSERT_TRUE(strict.ok()) << strict.status();
  EXPECT_EQ(ProbeCoordinator((*strict)->address(), *trusted).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  auto with_cert = ChannelCredentials(
      {dir + "/client.pem", dir + "/client.key", dir + "/ca.pem"});
  ASSERT_TRUE(with_cert.ok()) << with_cert.status();
  EXPECT_EQ(ProbeCoordinator((*strict)->address(), *with_cert).error_code(),
            grpc::StatusCode::NOT_FOUND);
  // A key without its certificate is a clear error, not a plaintext port.
  options.tls = {"", dir + "/server.key", ""};
  options.data_dir = dir + "/data2";
  EXPECT_THAT(std::string(Coordinator::Start(options).status().message()),
              HasSubstr("needs both --tls_cert and --tls_key"));
  options.tls = {dir + "/missing.pem", dir + "/server.key", ""};
  EXPECT_THAT(
      std::string(Coordinator::Start(options).status().message()),
      HasSubstr("cannot read the TLS certificate " + dir + "/missing.pem"));
}

// The first start with tokens leaves a way in: an admin token in a file
// only its owner reads, and a worker token where asked; later starts keep
// them, and a new admin token comes only when none is valid.
TEST(CoordinatorTest, TokensAreMadeOnFirstStartAndKept) {
  TempDir temp("distill_tokens_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.require_tokens = true;
  options.worker_token_file = (temp.path() / "worker.token").string();
  const std::string admin_file = options.data_dir + "/admin.token";
  std::string admin;
  {
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    admin = *ReadTokenFile(admin_file);
    EXPECT_EQ(fs::status(admin_file).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    ASSERT_TRUE(ReadTokenFile(options.worker_token_file).ok());
    // The admin token works through Dial; no token does not.
    auto as_admin = v1::ExperimentService::NewStub(
        *Dial((*coordinator)->address(), {}, admin));
    auto anonymous = v1::ExperimentService::NewStub(
        *Dial((*coordinator)->address(), {}, ""));
    for (auto* stub : {as_admin.get(), anonymous.get()}) {
      grpc::ClientContext context;
      v1::ListRunsResponse response;
      grpc::Status status =
          stub->ListRuns(&context, v1::ListRunsRequest(), &response);
      EXPECT_EQ(status.error_code(), stub == as_admin.get()
                                         ? grpc::StatusCode::OK
                                         : grpc::StatusCode::UNAUTHENTICATED);
    }
  }
  const std::string worker = *ReadTokenFile(options.worker_token_file);
  {
    auto again = Coordinator::Start(options);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(*ReadTokenFile(admin_file), admin);
    EXPECT_EQ(*ReadTokenFile(options.worker_token_file), worker);
    EXPECT_EQ((*again)->scheduler().ListTokens()->size(), 2u);
    // Every admin token revoked: the next start makes a new one.
    const std::vector<TokenRecord> tokens = *(*again)->scheduler().ListTokens();
    for (const TokenRecord& t : tokens) {
      if (t.role == v1::ROLE_ADMIN)
        ASSERT_TRUE((*again)->scheduler().RevokeToken(t.id).ok());
    }
  }
  auto third = Coordinator::Start(options);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_NE(*ReadTokenFile(admin_file), admin);
  EXPECT_EQ((*third)->scheduler().ListTokens()->size(), 3u);
}

// Secrets an operator made (Kubernetes) are imported once; a revoked one
// stays revoked across restarts.
TEST(CoordinatorTest, ATokenFileMadeByTheOperatorIsImported) {
  TempDir temp("distill_tokens_test");
  const std::string secret = "distill_" + std::string(64, 'a');
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.require_tokens = true;
  options.worker_token_file = (temp.path() / "worker.token").string();
  ASSERT_TRUE(WriteTokenFile(options.worker_token_file, secret).ok());
  auto register_with = [&](Coordinator& c) {
    auto stub = v1::WorkerService::NewStub(*Dial(c.address(), {}, secret));
    grpc::ClientContext context;
    v1::RegisterWorkerResponse response;
    return stub
        ->RegisterWorker(&context, v1::RegisterWorkerRequest(), &response)
        .error_code();
  };
  {
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    EXPECT_EQ(*ReadTokenFile(options.worker_token_file), secret);  // Kept.
    EXPECT_EQ(register_with(**coordinator), grpc::StatusCode::OK);
    const std::vector<TokenRecord> tokens =
        *(*coordinator)->scheduler().ListTokens();
    for (const TokenRecord& t : tokens) {
      if (t.role == v1::ROLE_WORKER)
        ASSERT_TRUE((*coordinator)->scheduler().RevokeToken(t.id).ok());
    }
  }
  auto again = Coordinator::Start(options);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(register_with(**again), grpc::StatusCode::UNAUTHENTICATED);
  // Too short to be a token: refused with the file named.
  options.data_dir = (temp.path() / "data2").string();
  const std::string weak = (temp.path() / "weak.token").string();
  ASSERT_TRUE(WriteTokenFile(weak, "secret").ok());
  options.worker_token_file = weak;
  EXPECT_THAT(std::string(Coordinator::Start(options).status().message()),
              HasSubstr("the token in " + weak + " is 6 characters"));
}

TEST(CoordinatorTest, OneCoordinatorOwnsADataDirectory) {
  TempDir temp("distill_coordinator_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  auto first = Coordinator::Start(options);
  ASSERT_TRUE(first.ok()) << first.status();
  auto second = Coordinator::Start(options);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      std::string(second.status().message()),
      HasSubstr(absl::StrCat("in use by another distill-coordinator (pid ",
                             ::getpid(), ")")));
  first->reset();  // The first goes: the directory is free again.
  auto third = Coordinator::Start(options);
  EXPECT_TRUE(third.ok()) << third.status();
}

// Issue 22's reproduction: `lr: 1e-310` killed the coordinator (std::stod
// threw out_of_range storing the run's fields) after the run was
// committed, so a restart found a QUEUED run its submitter was told had
// failed. Now it is refused by name, the coordinator stays up, and
// nothing is stored, before or after a restart; a filter on the same
// value answers instead of throwing.
TEST(CoordinatorTest, ASubnormalLearningRateIsRefusedAndLeavesNoRun) {
  TempDir temp("distill_subnormal_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  auto list = [](v1::ExperimentService::Stub& stub, const char* where) {
    v1::ListRunsRequest request;
    if (where != nullptr) request.add_where(where);
    v1::ListRunsResponse response;
    grpc::ClientContext context;
    grpc::Status status = stub.ListRuns(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.runs_size();
  };
  v1::ExperimentSpec spec;
  spec.set_kind(v1::TRAIN_TEACHER);
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.mutable_dataset()->set_train_limit(256);
  spec.mutable_dataset()->set_test_limit(128);
  spec.mutable_teacher()->mutable_vit()->set_preset("small-28");
  spec.mutable_optimizer()->set_kind(v1::SGD);
  spec.mutable_optimizer()->set_lr(1e-310);
  spec.set_epochs(1);
  spec.set_batch_size(64);
  {
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    auto stub = v1::ExperimentService::NewStub(grpc::CreateChannel(
        (*coordinator)->address(), grpc::InsecureChannelCredentials()));
    v1::SubmitRunRequest request;
    *request.mutable_spec() = spec;
    v1::Run run;
    grpc::ClientContext context;
    grpc::Status status = stub->SubmitRun(&context, request, &run);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(),
                HasSubstr("optimizer.lr must be 0 or at least "
                          "2.2250738585072014e-308"));
    EXPECT_THAT(status.error_message(), HasSubstr("got 1e-310"));
    // The same value as a sweep's grid axis.
    v1::SubmitSweepRequest sweep;
    sweep.mutable_spec()->set_name("tiny-lr");
    *sweep.mutable_spec()->mutable_teacher()->mutable_train() = spec;
    sweep.mutable_spec()
        ->mutable_teacher()
        ->mutable_train()
        ->mutable_optimizer()
        ->set_lr(0.01);
    v1::ExperimentSpec& base = *sweep.mutable_spec()->mutable_base();
    base.set_kind(v1::DISTILL);
    base.mutable_losses()->set_ce(1);
    v1::GridAxis* axis = sweep.mutable_spec()->add_grid();
    axis->set_path("optimizer.lr");
    axis->add_values("1e-310");
    v1::SubmitSweepResponse swept;
    grpc::ClientContext sweep_context;
    status = stub->SubmitSweep(&sweep_context, sweep, &swept);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr("optimizer.lr"));
    // Alive, and nothing stored; the filter answers.
    EXPECT_EQ(list(*stub, nullptr), 0);
    EXPECT_EQ(list(*stub, "optimizer.lr=1e-310"), 0);
    // The smallest normal rate is a run like any other, found by its value.
    request.mutable_spec()->mutable_optimizer()->set_lr(
        2.2250738585072014e-308);
    grpc::ClientContext accepted;
    ASSERT_TRUE(stub->SubmitRun(&accepted, request, &run).ok());
    EXPECT_EQ(list(*stub, "optimizer.lr=2.2250738585072014e-308"), 1);
  }
  auto again = Coordinator::Start(options);
  ASSERT_TRUE(again.ok()) << again.status();
  auto stub = v1::ExperimentService::NewStub(grpc::CreateChannel(
      (*again)->address(), grpc::InsecureChannelCredentials()));
  EXPECT_EQ(list(*stub, nullptr), 1);  // No phantom run after a restart.
}

TEST_F(IntegrationTest, HealthServiceAnswersServing) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(health->Check(&context, request, &response).ok());
  EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
}

// A worker told to exit after 1 s idle (a Slurm job's DISTILL_IDLE_SECONDS)
// stops then, not when its 30-s long-poll would have ended.
TEST_F(IntegrationTest, AnIdleWorkerStopsWhenItsIdleTimeIsUpNotAPollLater) {
  WorkerOptions options;
  options.scratch_dir = (dir_ / "idle").string();
  options.lease_wait = absl::Seconds(30);
  options.exit_after_idle = absl::Seconds(1);
  Worker idle(channel_, options);
  const std::atomic<bool> never{false};
  const absl::Time start = absl::Now();
  ASSERT_TRUE(idle.Serve(never).ok());
  EXPECT_LT(absl::Now() - start, absl::Seconds(15));
}

TEST_F(IntegrationTest, BadSpecIsInvalidArgumentOverTheWire) {
  v1::SubmitRunRequest request;
  request.mutable_spec()->set_kind(v1::DISTILL);
  request.mutable_spec()->mutable_dataset()->set_name("cub-200");
  v1::Run run;
  grpc::ClientContext context;
  grpc::Status status = experiments_->SubmitRun(&context, request, &run);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("dataset.name"));
  EXPECT_THAT(status.error_message(), HasSubstr("\"cub-200\""));
}

}  // namespace
}  // namespace distill
