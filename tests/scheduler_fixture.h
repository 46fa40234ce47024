// The scheduler's test fixture: an in-memory store (or a file, for
// FileSchedulerTest: readers on their own connections, reports in groups),
// a fake clock, one registered worker, and the steps of a run's life.
#ifndef DISTILL_TESTS_SCHEDULER_FIXTURE_H_
#define DISTILL_TESTS_SCHEDULER_FIXTURE_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "server/scheduling/scheduler.h"
#include "tests/scheduler_steps.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {

// A TRAIN_TEACHER run outside any sweep: SmallSweep's teacher stage.
inline v1::ExperimentSpec LoneTeacher() {
  const v1::SweepSpec sweep = SmallSweep("x");
  v1::ExperimentSpec spec = sweep.base();
  spec.clear_student();
  spec.MergeFrom(sweep.teacher().train());
  spec.set_kind(v1::TRAIN_TEACHER);
  return spec;
}

// Six members (two rows x three learning rates), 4 epochs each, stopped
// early by `rule`.
inline v1::SweepSpec EarlyStoppingSweep(const std::string& name,
                                        v1::StoppingRule rule) {
  v1::SweepSpec spec = SmallSweep(name);
  spec.mutable_base()->set_epochs(4);
  AddGridAxis(spec, "optimizer.lr", {"0.01", "0.02", "0.03"});
  spec.mutable_early_stopping()->set_rule(rule);
  return spec;
}

// Callers of the tests on owners: two researchers and an admin.
inline const Requester kAlice{"alice", /*admin=*/false};
inline const Requester kBob{"bob", /*admin=*/false};
inline const Requester kAdmin{"root", /*admin=*/true};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(":memory:", dir_); }

  // The scheduler over the database at `database`, run files in `files`,
  // and one registered worker.
  void Start(const std::string& database, const std::filesystem::path& files,
             SchedulerOptions options = {60'000, 10'000}) {
    store_ = *Store::OpenSqlite(database);
    run_files_ = *RunFileStore::OpenDirectory(files.string());
    scheduler_ = std::make_unique<Scheduler>(store_.get(), run_files_.get(),
                                             &clock_, options);
    v1::RegisterWorkerRequest request;
    request.set_hostname("gpu1");
    worker_ = scheduler_->RegisterWorker(request)->worker_id();
  }

  v1::Run Lease() {
    auto response = scheduler_->LeaseRun(worker_);
    EXPECT_TRUE(response.ok()) << response.status();
    EXPECT_TRUE(response->has_run());
    return response->run();
  }

  // The header of an upload of `data` as the run's file `name`.
  static v1::RunFileHeader HeaderFor(const v1::Run& run,
                                     const std::string& data,
                                     const std::string& name = "") {
    return UploadHeader(run, data, name);
  }

  // Uploads `data` as the run's file `name` (its checkpoint when empty).
  void Upload(const v1::Run& run, const std::string& data,
              const std::string& name = "") {
    const absl::Status s = UploadRunFile(*scheduler_, run, data, name);
    ASSERT_TRUE(s.ok()) << s;
  }

  // Uploads `data` as the run's checkpoint and completes it.
  void Succeed(const v1::Run& run, const std::string& data, double top1) {
    Upload(run, data);
    v1::CompleteRunRequest complete;
    complete.set_run_id(run.id());
    complete.set_attempt(run.attempt());
    complete.set_checkpoint_sha256(Sha256Hex(data));
    (*complete.mutable_results())["eval/top1"] = top1;
    ASSERT_TRUE(scheduler_->CompleteRun(complete).ok());
  }

  // The run's worker reports it failed, with `message`.
  void Fail(const v1::Run& run, const std::string& message) {
    v1::FailRunRequest fail;
    fail.set_run_id(run.id());
    fail.set_attempt(run.attempt());
    fail.set_message(message);
    ASSERT_TRUE(scheduler_->FailRun(fail).ok());
  }

  v1::RunStatus StatusOf(int64_t id) {
    return scheduler_->GetRun(id)->status();
  }

  // Another registered worker.
  std::string AddWorker(const std::string& host) {
    v1::RegisterWorkerRequest request;
    request.set_hostname(host);
    return scheduler_->RegisterWorker(request)->worker_id();
  }

  // The run `worker` leases; id 0 when there is none for it.
  v1::Run LeaseAs(const std::string& worker) {
    auto response = scheduler_->LeaseRun(worker);
    EXPECT_TRUE(response.ok()) << response.status();
    return response->run();
  }

  // The run's worker reports its judgement of `epoch`, as the trainer does
  // after each epoch.
  absl::Status ReportEpoch(const v1::Run& run, int epoch, double top1,
                           v1::ReportMetricsResponse* response = nullptr) {
    v1::ReportMetricsRequest request;
    request.set_run_id(run.id());
    request.set_attempt(run.attempt());
    v1::MetricPoint* loss = request.add_points();
    loss->set_key("train/loss");
    loss->set_epoch(epoch);
    loss->set_step(epoch * 10);
    loss->set_value(1.0 / epoch);
    v1::MetricPoint* p = request.add_points();
    p->set_key("eval/top1");
    p->set_epoch(epoch);
    p->set_step(epoch * 10);
    p->set_value(top1);
    return scheduler_->ReportMetrics(request, 0, response);
  }

  // Leases the next member, reports `curve` (one value an epoch) and, when
  // it reached its last epoch, completes it with the last value.
  v1::Run RunMember(const std::vector<double>& curve, int epochs) {
    v1::Run run = Lease();
    for (size_t e = 0; e < curve.size(); ++e) {
      if (!ReportEpoch(run, int(e) + 1, curve[e]).ok()) return run;
    }
    if (int(curve.size()) == epochs)
      Succeed(run, absl::StrCat("m", run.id()), curve.back());
    return run;
  }

  TempDir temp_{"distill_scheduler_test"};
  const std::filesystem::path dir_ = temp_.path();
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RunFileStore> run_files_;
  std::unique_ptr<Scheduler> scheduler_;
  std::string worker_;
};

// The scheduler over a database file: reads on their own connections,
// metric reports written in groups.
class FileSchedulerTest : public SchedulerTest {
 protected:
  void SetUp() override {
    Start((dir_ / "distill.db").string(), dir_ / "files");
  }

  static v1::ReportMetricsRequest Report(const v1::Run& run, int64_t step,
                                         int points) {
    v1::ReportMetricsRequest request;
    request.set_run_id(run.id());
    request.set_attempt(run.attempt());
    for (int i = 0; i < points; ++i) {
      v1::MetricPoint* p = request.add_points();
      p->set_key(i % 2 ? "train/loss" : "train/lr");
      p->set_step(step + i);
      p->set_value(1.0);
    }
    return request;
  }
};

}  // namespace distill

#endif  // DISTILL_TESTS_SCHEDULER_FIXTURE_H_
