// The scheduler: sweep dependencies, leases and their fencing, expiry,
// cancellation and results. An in-memory store and a fake clock.
#include "server/scheduler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <thread>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "tests/scheduler_steps.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start(":memory:", dir_); }

  // The scheduler over the database at `database`, run files in `files`,
  // and one registered worker.
  void Start(const std::string& database, const fs::path& files) {
    store_ = *Store::OpenSqlite(database);
    run_files_ = *RunFileStore::OpenDirectory(files.string());
    scheduler_ =
        std::make_unique<Scheduler>(store_.get(), run_files_.get(), &clock_,
                                    SchedulerOptions{60'000, 10'000});
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
  const fs::path dir_ = temp_.path();
  FakeClock clock_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RunFileStore> run_files_;
  std::unique_ptr<Scheduler> scheduler_;
  std::string worker_;
};

TEST_F(SchedulerTest, SweepStudentsWaitForTheTeacherThenQueue) {
  auto sweep = scheduler_->SubmitSweep(SmallSweep("table1"));
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->runs_size(), 3);
  const v1::Run& teacher = sweep->runs(0);
  EXPECT_EQ(teacher.spec().kind(), v1::TRAIN_TEACHER);
  EXPECT_EQ(teacher.status(), v1::QUEUED);
  EXPECT_FALSE(teacher.spec().has_losses());
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(sweep->runs(i).status(), v1::WAITING);
    EXPECT_EQ(sweep->runs(i).spec().teacher().run_id(), teacher.id());
    EXPECT_EQ(sweep->runs(i).teacher_run_id(), teacher.id());
  }
  v1::Run leased = Lease();
  EXPECT_EQ(leased.id(), teacher.id());
  EXPECT_EQ(leased.attempt(), 1);
  EXPECT_EQ(leased.lease_expires_ms(), clock_.NowMs() + 60'000);
  // Nothing else is runnable yet: another worker gets nothing.
  v1::RegisterWorkerRequest other;
  other.set_hostname("gpu2");
  const std::string second = scheduler_->RegisterWorker(other)->worker_id();
  EXPECT_FALSE(scheduler_->LeaseRun(second)->has_run());
  // The holder asking again never got its answer: the same run, same
  // attempt, not a wait for the lease to expire.
  auto again = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(again.ok() && again->has_run());
  EXPECT_EQ(again->run().id(), teacher.id());
  EXPECT_EQ(again->run().attempt(), 1);
  Succeed(leased, "teacher weights", 0.8);
  EXPECT_EQ(StatusOf(sweep->runs(1).id()), v1::QUEUED);
  auto student = scheduler_->LeaseRun(worker_);
  EXPECT_EQ(student->run().id(), sweep->runs(1).id());
  EXPECT_EQ(student->teacher_checkpoint_sha256(), Sha256Hex("teacher weights"));
}

TEST_F(SchedulerTest, TwoRunsMayUploadIdenticalCheckpoints) {
  // Same spec and seed give the same bytes: both runs still complete.
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  Succeed(Lease(), "teacher", 0.8);
  Succeed(Lease(), "identical student", 0.5);
  Succeed(Lease(), "identical student", 0.5);
  EXPECT_EQ(StatusOf(sweep.runs(1).id()), v1::SUCCEEDED);
  EXPECT_EQ(StatusOf(sweep.runs(2).id()), v1::SUCCEEDED);
}

TEST_F(SchedulerTest, AFailedTeacherFailsItsStudentsNamingIt) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run teacher = Lease();
  Fail(teacher, "cannot open /data/train-images-idx3-ubyte.gz");
  v1::Run student = *scheduler_->GetRun(sweep.runs(2).id());
  EXPECT_EQ(student.status(), v1::FAILED);
  EXPECT_THAT(student.message(),
              HasSubstr("teacher run " + std::to_string(teacher.id()) +
                        " ended FAILED"));
  EXPECT_THAT(student.message(), HasSubstr("train-images-idx3-ubyte.gz"));
}

TEST_F(SchedulerTest, SweepResultsFollowTheMembers) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  Succeed(Lease(), "t", 0.81);
  Succeed(Lease(), "a", 0.1);
  auto results = scheduler_->SweepResults("table1");
  ASSERT_TRUE(results.ok()) << results.status();
  EXPECT_EQ(results->sweep().id(), sweep.sweep().id());
  EXPECT_DOUBLE_EQ(results->teacher_top1(), 0.81);
  ASSERT_EQ(results->members_size(), 2);
  EXPECT_EQ(results->members(0).name(), "D");
  EXPECT_DOUBLE_EQ(results->members(0).top1(), 0.1);
  EXPECT_EQ(results->members(1).status(), v1::QUEUED);
  EXPECT_FALSE(results->members(1).has_top1());
  EXPECT_TRUE(
      scheduler_->SweepResults(std::to_string(sweep.sweep().id())).ok());
  EXPECT_EQ(scheduler_->SweepResults("nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, AGridSweepRunsEachNamedMemberAndReportsThemInOrder) {
  v1::SweepSpec spec = SmallSweep("grid");
  AddGridAxis(spec, "optimizer.lr", {"0.1", "0.01"});
  spec.add_seeds(3);
  auto sweep = scheduler_->SubmitSweep(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->runs_size(), 1 + 2 * 2);  // Teacher, 2 rows x 2 lr.
  const std::string row = spec.members(0).name();
  EXPECT_EQ(sweep->runs(1).member(), row + "/lr=0.1/seed=3");
  EXPECT_EQ(sweep->runs(2).member(), row + "/lr=0.01/seed=3");
  EXPECT_DOUBLE_EQ(sweep->runs(2).spec().optimizer().lr(), 0.01);
  EXPECT_EQ(sweep->runs(2).spec().seed(), 3);
  EXPECT_EQ(sweep->runs(2).spec().teacher().run_id(), sweep->runs(0).id());
  Succeed(Lease(), "t", 0.8);
  Succeed(Lease(), "s", 0.4);
  auto results = scheduler_->SweepResults("grid");
  ASSERT_TRUE(results.ok()) << results.status();
  ASSERT_EQ(results->members_size(), 4);
  EXPECT_EQ(results->members(0).name(), row + "/lr=0.1/seed=3");
  EXPECT_DOUBLE_EQ(results->members(0).top1(), 0.4);
  EXPECT_EQ(results->members(1).name(), row + "/lr=0.01/seed=3");
  EXPECT_EQ(results->members(3).status(), v1::QUEUED);
  // Refused with the axis named; nothing stored.
  v1::SweepSpec bad = SmallSweep("bad");
  bad.add_grid()->set_path("optimizer.momentum");
  bad.mutable_grid(0)->add_values("lots");
  auto refused = scheduler_->SubmitSweep(bad);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(refused.status().message()),
      HasSubstr("grid[0] optimizer.momentum: \"lots\" is not a number"));
  EXPECT_EQ(scheduler_->SweepResults("bad").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, RetryQueuesExactlyTheFailedAndCancelledMembersAgain) {
  v1::SweepSpec spec = SmallSweep("retry");
  spec.add_seeds(1);
  spec.add_seeds(2);  // Teacher, then 2 rows x 2 seeds.
  auto sweep = *scheduler_->SubmitSweep(spec);
  ASSERT_EQ(sweep.runs_size(), 5);
  Succeed(Lease(), "t", 0.8);
  Succeed(Lease(), "s", 0.5);  // runs(1) SUCCEEDED
  v1::Run failing = Lease();   // runs(2) FAILED
  Fail(failing, "loss is nan");
  ASSERT_TRUE(scheduler_->CancelRun(sweep.runs(3).id()).ok());  // CANCELLED
  // runs(4) is still QUEUED: not retried.
  auto retried = scheduler_->RetrySweep("retry");
  ASSERT_TRUE(retried.ok()) << retried.status();
  ASSERT_EQ(retried->runs_size(), 2);
  EXPECT_EQ(retried->runs(0).member(), sweep.runs(2).member());
  EXPECT_EQ(retried->runs(1).member(), sweep.runs(3).member());
  for (const v1::Run& run : retried->runs()) {
    EXPECT_EQ(run.status(), v1::QUEUED);
    EXPECT_EQ(run.teacher_run_id(), sweep.runs(0).id());
  }
  EXPECT_EQ(retried->runs(0).spec().seed(), sweep.runs(2).spec().seed());
  // The results show the newest run of each member; the old ones stay.
  auto results = *scheduler_->SweepResults("retry");
  ASSERT_EQ(results.members_size(), 4);
  EXPECT_EQ(results.members(1).run_id(), retried->runs(0).id());
  EXPECT_EQ(results.members(1).status(), v1::QUEUED);
  EXPECT_EQ(results.members(0).status(), v1::SUCCEEDED);
  EXPECT_EQ(StatusOf(failing.id()), v1::FAILED);
  // Nothing left to retry: an empty answer, not an error.
  EXPECT_EQ(scheduler_->RetrySweep("retry")->runs_size(), 0);
}

TEST_F(SchedulerTest, RetryOfASweepWhoseTeacherFailedTrainsItAgainFirst) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("t-fails"));
  v1::Run teacher = Lease();
  Fail(teacher, "out of memory");
  EXPECT_EQ(StatusOf(sweep.runs(1).id()), v1::FAILED);
  auto retried = *scheduler_->RetrySweep(std::to_string(sweep.sweep().id()));
  ASSERT_EQ(retried.runs_size(), 3);  // The teacher, then both students.
  const v1::Run& new_teacher = retried.runs(0);
  EXPECT_EQ(new_teacher.spec().kind(), v1::TRAIN_TEACHER);
  EXPECT_EQ(new_teacher.status(), v1::QUEUED);
  EXPECT_EQ(retried.sweep().teacher_run_id(), new_teacher.id());
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(retried.runs(i).status(), v1::WAITING);
    EXPECT_EQ(retried.runs(i).spec().teacher().run_id(), new_teacher.id());
  }
  Succeed(Lease(), "t", 0.8);
  EXPECT_EQ(StatusOf(retried.runs(1).id()), v1::QUEUED);
}

// A TRAIN_TEACHER run outside any sweep: SmallSweep's teacher stage.
v1::ExperimentSpec LoneTeacher() {
  const v1::SweepSpec sweep = SmallSweep("x");
  v1::ExperimentSpec spec = sweep.base();
  spec.clear_student();
  spec.MergeFrom(sweep.teacher().train());
  spec.set_kind(v1::TRAIN_TEACHER);
  return spec;
}

// Six members (two rows x three learning rates), 4 epochs each, stopped
// early by `rule`.
v1::SweepSpec EarlyStoppingSweep(const std::string& name,
                                 v1::StoppingRule rule) {
  v1::SweepSpec spec = SmallSweep(name);
  spec.mutable_base()->set_epochs(4);
  AddGridAxis(spec, "optimizer.lr", {"0.01", "0.02", "0.03"});
  spec.mutable_early_stopping()->set_rule(rule);
  return spec;
}

TEST_F(SchedulerTest, TheMedianRuleStopsAMemberBehindAndItsWorkerHears) {
  v1::SweepSpec spec = EarlyStoppingSweep("median", v1::MEDIAN);
  spec.mutable_early_stopping()->set_min_completed(2);  // Warm-up: 1 epoch.
  auto sweep = scheduler_->SubmitSweep(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->runs_size(), 1 + 6);
  Succeed(Lease(), "t", 0.8);
  RunMember({0.5, 0.6, 0.7, 0.75}, 4);
  // Only one member completed: the rule does not judge yet.
  v1::Run second = RunMember({0.3, 0.4, 0.5, 0.55}, 4);
  EXPECT_EQ(StatusOf(second.id()), v1::SUCCEEDED);
  // Epoch 1 is the warm-up; at epoch 2 the median of the two completed
  // members is 0.5.
  v1::Run behind = Lease();
  v1::ReportMetricsResponse answer;
  ASSERT_TRUE(ReportEpoch(behind, 1, 0.1, &answer).ok());
  EXPECT_EQ(StatusOf(behind.id()), v1::RUNNING);
  EXPECT_EQ(answer.stop_reason(), "");
  ASSERT_TRUE(ReportEpoch(behind, 2, 0.2, &answer).ok());
  v1::Run pruned = *scheduler_->GetRun(behind.id());
  EXPECT_EQ(pruned.status(), v1::PRUNED);
  EXPECT_EQ(pruned.message(),
            "pruned at epoch 2 by the median rule: 0.2 is lower than the "
            "median 0.5 of 2 completed members");
  // The report that pruned it says so in its answer: the worker stops then,
  // without waiting for a heartbeat.
  EXPECT_EQ(answer.stop_reason(), pruned.message());
  // Its worker hears through the heartbeat, as with cancel; what it sends
  // after is refused.
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(behind.id());
  beat.set_attempt(behind.attempt());
  auto heard = scheduler_->Heartbeat(beat);
  ASSERT_TRUE(heard.ok()) << heard.status();
  EXPECT_TRUE(heard->cancel_requested());
  EXPECT_EQ(heard->stop_reason(), pruned.message());
  EXPECT_EQ(ReportEpoch(behind, 3, 0.3).code(),
            absl::StatusCode::kFailedPrecondition);
  // At the median it goes on; at its last epoch it completes, whatever.
  v1::Run level = RunMember({0.9, 0.5, 0.6, 0.01}, 4);
  EXPECT_EQ(StatusOf(level.id()), v1::SUCCEEDED);
  // A pruned member is not retried; the results show it and why.
  EXPECT_EQ(scheduler_->RetrySweep("median")->runs_size(), 0);
  auto results = *scheduler_->SweepResults("median");
  EXPECT_EQ(results.members(2).status(), v1::PRUNED);
  EXPECT_EQ(results.members(2).message(), pruned.message());
  EXPECT_FALSE(results.members(2).has_top1());
}

TEST_F(SchedulerTest, AMemberWithSeedsIsJudgedOnTheirMeanAndStopsWhole) {
  // Two rows x two seeds: members D and G, two runs each.
  v1::SweepSpec spec = SmallSweep("seeds");
  spec.mutable_base()->set_epochs(4);
  spec.add_seeds(1);
  spec.add_seeds(2);
  spec.mutable_early_stopping()->set_rule(v1::MEDIAN);
  spec.mutable_early_stopping()->set_min_completed(1);
  AddGridAxis(spec, "optimizer.lr", {"0.01", "0.02"});
  auto sweep = scheduler_->SubmitSweep(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->runs_size(), 1 + 8);
  EXPECT_EQ(sweep->runs(1).member(), "D/lr=0.01/seed=1");
  Succeed(Lease(), "t", 0.8);
  // D/lr=0.01: seed 1 completes; with no member complete yet (seed 2 is
  // not), seed 2 is not judged, although it is far behind seed 1.
  RunMember({0.6, 0.7, 0.8, 0.85}, 4);
  v1::Run slow = RunMember({0.1, 0.2, 0.3, 0.4}, 4);
  EXPECT_EQ(StatusOf(slow.id()), v1::SUCCEEDED);
  // The completed member's curve is its seeds' mean: 0.45 at epoch 2.
  // D/lr=0.02's seed 1, so far the member's only seed, is behind it at
  // epoch 2 (0.4): it stops, and seed 2, queued, stops with it unrun.
  v1::Run first = RunMember({0.3, 0.4, 0.6, 0.7}, 4);
  EXPECT_EQ(StatusOf(first.id()), v1::PRUNED);
  EXPECT_EQ(scheduler_->GetRun(first.id())->message(),
            "pruned at epoch 2 by the median rule: 0.4 is lower than the "
            "median 0.45 of 1 completed members");
  const v1::Run sibling = *scheduler_->GetRun(sweep->runs(4).id());
  EXPECT_EQ(sibling.member(), "D/lr=0.02/seed=2");
  EXPECT_EQ(sibling.status(), v1::PRUNED);
  EXPECT_THAT(sibling.message(),
              HasSubstr(absl::StrCat("pruned with run ", first.id(),
                                     " (D/lr=0.02/seed=1), a seed of the "
                                     "same member: pruned at epoch 2")));
  // G/lr=0.01: seed 1 is level with the median (0.45) and completes; its
  // seed 2 is behind alone (0.42 at epoch 2) but the member's mean (0.5
  // with seed 1's 0.58) is not: it goes on.
  RunMember({0.5, 0.58, 0.7, 0.8}, 4);
  v1::Run saved = Lease();
  ASSERT_TRUE(ReportEpoch(saved, 1, 0.3).ok());
  ASSERT_TRUE(ReportEpoch(saved, 2, 0.42).ok());
  EXPECT_EQ(StatusOf(saved.id()), v1::RUNNING);
  // At epoch 3 the mean (0.7 + 0.3) / 2 is below the median 0.55 of the
  // one completed member: the reason names the seeds averaged.
  ASSERT_TRUE(ReportEpoch(saved, 3, 0.3).ok());
  EXPECT_EQ(StatusOf(saved.id()), v1::PRUNED);
  EXPECT_EQ(scheduler_->GetRun(saved.id())->message(),
            "pruned at epoch 3 by the median rule: 0.5 is lower than the "
            "median 0.55 of 1 completed members (the mean of G/lr=0.01's 2 "
            "seeds at that epoch)");
  // The completed seed of a stopped member keeps its result.
  EXPECT_EQ(StatusOf(saved.id() - 1), v1::SUCCEEDED);
}

TEST_F(SchedulerTest, AshaStopsAMemberOutsideTheBestFractionAtARung) {
  v1::SweepSpec spec = EarlyStoppingSweep("asha", v1::ASHA);
  spec.mutable_early_stopping()->set_reduction_factor(2);  // Rungs 1 and 2.
  ASSERT_TRUE(scheduler_->SubmitSweep(spec).ok());
  Succeed(Lease(), "t", 0.8);
  // The first to reach a rung goes on.
  EXPECT_EQ(StatusOf(RunMember({0.5, 0.6, 0.7, 0.8}, 4).id()), v1::SUCCEEDED);
  v1::Run worse = RunMember({0.4}, 4);
  EXPECT_EQ(StatusOf(worse.id()), v1::PRUNED);
  EXPECT_THAT(scheduler_->GetRun(worse.id())->message(),
              HasSubstr("pruned at epoch 1 by ASHA (rung 1 of 2, reduction "
                        "factor 2): 0.4 is not within the best 1/2 of the 1 "
                        "members at this rung (cutoff 0.5)"));
  // Rung 1 now holds 0.5 and 0.4: cutoff 0.45. Epoch 3 is no rung.
  v1::Run better = RunMember({0.7, 0.65, 0.1}, 4);
  EXPECT_EQ(StatusOf(better.id()), v1::RUNNING);
}

TEST_F(SchedulerTest, TheQueueGoesByPriorityThenOrderWithinEachSweepsLimit) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("low")).ok());
  v1::SweepSpec spec = SmallSweep("high");
  spec.set_priority(5);
  spec.set_max_concurrent(1);
  auto high = *scheduler_->SubmitSweep(spec);
  v1::SweepSpec below = SmallSweep("below");
  below.set_priority(-1);
  ASSERT_TRUE(scheduler_->SubmitSweep(below).ok());
  auto alone = scheduler_->SubmitRun(LoneTeacher());
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(high.runs(1).priority(), 5);

  // Submitted second, leased first.
  v1::Run first = Lease();
  EXPECT_EQ(first.sweep_id(), high.sweep().id());
  Succeed(first, "t", 0.8);
  // High's two members are queued but it runs one at a time.
  const std::string w2 = AddWorker("gpu2"), w3 = AddWorker("gpu3"),
                    w4 = AddWorker("gpu4"), w5 = AddWorker("gpu5");
  v1::Run member = LeaseAs(w2);
  EXPECT_EQ(member.id(), high.runs(1).id());
  // Then priority 0 in submission order (low's teacher, the run alone),
  // then the sweep of priority -1.
  EXPECT_EQ(LeaseAs(w3).member(), "teacher");
  EXPECT_EQ(LeaseAs(w4).id(), alone->id());
  v1::Run last = LeaseAs(w5);
  EXPECT_EQ(scheduler_->GetRun(last.id())->priority(), -1);
  EXPECT_EQ(LeaseAs(AddWorker("gpu6")).id(), 0);  // High is at its limit.
  Succeed(member, "m", 0.5);
  EXPECT_EQ(LeaseAs(w2).id(), high.runs(2).id());
}

TEST_F(SchedulerTest, ATeacherAxisTrainsEachTeacherAndEachStudentWaitsForIt) {
  v1::SweepSpec spec = SmallSweep("teachers");
  AddGridAxis(spec, "teacher.vit.width", {"32", "64"});
  auto sweep = scheduler_->SubmitSweep(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  ASSERT_EQ(sweep->runs_size(), 2 + 4);
  const v1::Run& narrow = sweep->runs(0);
  const v1::Run& wide = sweep->runs(1);
  EXPECT_EQ(narrow.member(), "teacher/vit.width=32");
  EXPECT_EQ(wide.spec().teacher().vit().width(), 64);
  EXPECT_EQ(sweep->sweep().teacher_run_id(), narrow.id());
  // D/32, D/64, G/32, G/64: each waits for its own teacher.
  EXPECT_EQ(sweep->runs(2).member(), "D/vit.width=32");
  EXPECT_EQ(sweep->runs(2).teacher_run_id(), narrow.id());
  EXPECT_EQ(sweep->runs(3).spec().teacher().run_id(), wide.id());
  Succeed(Lease(), "narrow", 0.8);
  EXPECT_EQ(StatusOf(sweep->runs(2).id()), v1::QUEUED);
  EXPECT_EQ(StatusOf(sweep->runs(3).id()), v1::WAITING);
  Fail(Lease(), "out of memory");  // The wide teacher.
  EXPECT_EQ(StatusOf(sweep->runs(3).id()), v1::FAILED);
  EXPECT_EQ(StatusOf(sweep->runs(4).id()), v1::QUEUED);
  // Retry trains the wide teacher again, and only its students wait on it.
  auto retried = *scheduler_->RetrySweep("teachers");
  ASSERT_EQ(retried.runs_size(), 3);
  EXPECT_EQ(retried.runs(0).member(), "teacher/vit.width=64");
  EXPECT_EQ(retried.sweep().teacher_run_id(), narrow.id());
  EXPECT_EQ(retried.runs(1).member(), "D/vit.width=64");
  EXPECT_EQ(retried.runs(1).teacher_run_id(), retried.runs(0).id());
  EXPECT_EQ(retried.runs(2).member(), "G/vit.width=64");
  EXPECT_EQ(retried.runs(2).status(), v1::WAITING);
  // The results list both teachers and each member's.
  auto results = *scheduler_->SweepResults("teachers");
  ASSERT_EQ(results.teachers_size(), 2);
  EXPECT_EQ(results.teachers(0).name(), "teacher/vit.width=32");
  EXPECT_DOUBLE_EQ(results.teachers(0).top1(), 0.8);
  EXPECT_EQ(results.teachers(1).run_id(), retried.runs(0).id());
  EXPECT_EQ(results.teachers(1).status(), v1::QUEUED);
  EXPECT_EQ(results.members(1).teacher(), "teacher/vit.width=64");
  EXPECT_EQ(results.members(1).teacher_run_id(), retried.runs(0).id());
  EXPECT_EQ(results.members(2).teacher(), "teacher/vit.width=32");
}

TEST_F(SchedulerTest, TagsAndNotesAreKeptBoundedAndFound) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("tagged"));
  const int64_t run = sweep.runs(1).id();
  v1::AnnotateRequest request;
  request.set_run_id(run);
  (*request.mutable_set_tags())["paper"] = "fig2";
  (*request.mutable_set_tags())["gpu"] = "h100";
  request.set_note("Rerun with 30 epochs");
  auto answer = scheduler_->Annotate(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->tags().size(), 2u);
  request.clear_set_tags();
  request.clear_note();
  request.add_remove_tags("gpu");
  answer = scheduler_->Annotate(request);
  ASSERT_TRUE(answer.ok()) << answer.status();
  EXPECT_EQ(answer->tags().size(), 1u);
  EXPECT_EQ(answer->note(), "Rerun with 30 epochs");  // Kept when not set.
  const v1::Run shown = *scheduler_->GetRun(run);
  EXPECT_EQ(shown.tags().at("paper"), "fig2");
  EXPECT_EQ(shown.note(), "Rerun with 30 epochs");
  // A sweep by name.
  v1::AnnotateRequest on_sweep;
  on_sweep.set_sweep("tagged");
  (*on_sweep.mutable_set_tags())["week"] = "48";
  ASSERT_TRUE(scheduler_->Annotate(on_sweep).ok());
  EXPECT_EQ(scheduler_->SweepResults("tagged")->sweep().tags().at("week"),
            "48");
  // Found by tag (with and without a value) and by the note's words.
  v1::ListRunsRequest list;
  list.add_tag("paper=fig2");
  list.set_note_contains("30 EPOCHS");
  auto page = scheduler_->FindRuns(list);
  ASSERT_TRUE(page.ok()) << page.status();
  ASSERT_EQ(page->runs.size(), 1u);
  EXPECT_EQ(page->runs[0].id(), run);
  list.clear_tag();
  list.add_tag("paper=fig3");
  EXPECT_TRUE(scheduler_->FindRuns(list)->runs.empty());
  // Refused with the reason, nothing changed.
  auto refused = [&](v1::AnnotateRequest bad, const std::string& message) {
    auto r = scheduler_->Annotate(bad);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument)
        << r.status();
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(message));
  };
  v1::AnnotateRequest bad;
  bad.set_run_id(run);
  (*bad.mutable_set_tags())["a b"] = "1";
  refused(bad, "tag key \"a b\" must be 1 to 64 letters");
  bad.clear_set_tags();
  bad.set_note(std::string(5000, 'x'));
  refused(bad, "a note is at most 4096 bytes, got 5000");
  bad.clear_note();
  for (int i = 0; i < 32; ++i)
    (*bad.mutable_set_tags())[absl::StrCat("k", i)] = "v";  // 33 with paper.
  refused(bad, "holds at most 32 tags; this would make 33");
  EXPECT_EQ(scheduler_->GetRun(run)->tags().size(), 1u);
  bad.clear_set_tags();
  bad.set_run_id(424242);
  EXPECT_EQ(scheduler_->Annotate(bad).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(scheduler_->Annotate(v1::AnnotateRequest()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, EachLeaseRecordsWhereAndFromWhatTheRunRan) {
  v1::RegisterWorkerRequest reg;
  reg.set_hostname("gpu7");
  reg.set_device("cuda:0 (NVIDIA H100)");
  reg.set_threads(16);
  reg.set_libtorch_version("2.11.0");
  reg.set_blas("OpenBLAS 0.3.21");
  reg.set_distill_version("0.12.0+abc");
  const std::string worker = scheduler_->RegisterWorker(reg)->worker_id();
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("provenance"));
  const v1::Run teacher = scheduler_->LeaseRun(worker)->run();
  const auto& p = teacher.provenance();
  EXPECT_EQ(p.at("host"), "gpu7");
  EXPECT_EQ(p.at("worker"), worker);
  EXPECT_EQ(p.at("device"), "cuda:0 (NVIDIA H100)");
  EXPECT_EQ(p.at("threads"), "16");
  EXPECT_EQ(p.at("libtorch"), "2.11.0");
  EXPECT_EQ(p.at("blas"), "OpenBLAS 0.3.21");
  EXPECT_EQ(p.at("worker_version"), "0.12.0+abc");
  EXPECT_FALSE(p.at("coordinator_version").empty());
  EXPECT_EQ(p.at("spec_sha256"), Sha256Hex(teacher.spec().SerializeAsString()));
  EXPECT_EQ(p.count("teacher_checkpoint_sha256"), 0u);
  // Stored: a reader sees it; a student records its teacher's checkpoint.
  EXPECT_EQ(scheduler_->GetRun(teacher.id())->provenance().at("host"), "gpu7");
  Succeed(teacher, "the teacher", 0.8);
  const v1::Run student = scheduler_->LeaseRun(worker)->run();
  EXPECT_EQ(student.provenance().at("teacher_checkpoint_sha256"),
            Sha256Hex("the teacher"));
  // The worker adds what only it knows, with its first report: the data
  // files' digest, a TorchScript teacher's; no other key, nothing
  // malformed, and nothing of an earlier attempt on the next.
  v1::ReportMetricsRequest report;
  report.set_run_id(student.id());
  report.set_attempt(student.attempt());
  (*report.mutable_provenance())["data_sha256"] = Sha256Hex("manifest");
  (*report.mutable_provenance())["data_files"] = "4";
  ASSERT_TRUE(scheduler_->ReportMetrics(report).ok());
  const auto stored = scheduler_->GetRun(student.id())->provenance();
  EXPECT_EQ(stored.at("data_sha256"), Sha256Hex("manifest"));
  EXPECT_EQ(stored.at("data_files"), "4");
  EXPECT_EQ(stored.at("host"), "gpu7");  // The lease's entries stay.
  for (const auto& [key, value, why] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"host", "elsewhere", "\"host\" is not one a worker reports"},
           {"data_sha256", "abc", "\"abc\" is not a SHA-256 hex digest"},
           {"data_files", "-1", "\"-1\" is not a file count"},
           {"teacher_torchscript_sha256", std::string(65, 'a'),
            "is not a SHA-256 hex digest"}}) {
    v1::ReportMetricsRequest bad;
    bad.set_run_id(student.id());
    bad.set_attempt(student.attempt());
    (*bad.mutable_provenance())[key] = value;
    absl::Status s = scheduler_->ReportMetrics(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(std::string(s.message()), HasSubstr(why));
  }
  EXPECT_EQ(scheduler_->GetRun(student.id())->provenance().at("host"), "gpu7");
  clock_.AdvanceMs(61'000);  // Lost: the next attempt starts clean.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  const v1::Run again = scheduler_->LeaseRun(worker)->run();
  ASSERT_EQ(again.id(), student.id());
  EXPECT_EQ(again.attempt(), 2);
  EXPECT_EQ(again.provenance().count("data_sha256"), 0u);
  EXPECT_EQ(scheduler_->GetRun(student.id())->provenance().count("data_files"),
            0u);
  // What a worker says of itself is bounded.
  reg.set_hostname(std::string(300, 'h'));
  auto refused = scheduler_->RegisterWorker(reg);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("hostname must be at most 256 bytes, got 300"));
}

TEST_F(SchedulerTest, CancellingASweepEndsEveryRunThatHasNotEnded) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("c"));
  Succeed(Lease(), "t", 0.8);
  v1::Run running = Lease();
  auto cancelled = scheduler_->CancelSweep("c");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->runs_size(), 2);  // Not the teacher that succeeded.
  EXPECT_EQ(StatusOf(running.id()), v1::CANCELLED);
  EXPECT_EQ(StatusOf(sweep.runs(2).id()), v1::CANCELLED);
  EXPECT_EQ(StatusOf(sweep.runs(0).id()), v1::SUCCEEDED);
  EXPECT_EQ(scheduler_->CancelSweep("c")->runs_size(), 0);
  EXPECT_EQ(scheduler_->CancelSweep("nope").status().code(),
            absl::StatusCode::kNotFound);
  // Then a retry queues both again.
  EXPECT_EQ(scheduler_->RetrySweep("c")->runs_size(), 2);
}

TEST_F(SchedulerTest, InvalidSweepMemberNamesTheMember) {
  v1::SweepSpec sweep = SmallSweep("table1");
  sweep.mutable_members(1)->mutable_losses()->mutable_ikd()->set_weight(1);
  sweep.mutable_members(1)->mutable_losses()->mutable_ikd()->set_temperature(
      -2);
  auto response = scheduler_->SubmitSweep(sweep);
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(response.status().message()),
      HasSubstr(
          "member \"G\": losses.ikd.temperature must be in (0, 1000], got -2"));
  EXPECT_TRUE(scheduler_->ListRuns(0, v1::RUN_STATUS_UNSPECIFIED)->empty());
}

TEST_F(SchedulerTest, DistillRunAgainstAMissingOrWrongTeacherIsRefused) {
  v1::ExperimentSpec spec = SmallSweep("table1").base();
  spec.set_kind(v1::DISTILL);
  spec.mutable_losses()->set_ce(1);
  spec.mutable_teacher()->set_run_id(42);
  EXPECT_EQ(scheduler_->SubmitRun(spec).status().code(),
            absl::StatusCode::kNotFound);
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  spec.mutable_teacher()->set_run_id(
      sweep.runs(1).id());  // A student, not a teacher.
  auto refused = scheduler_->SubmitRun(spec);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("not TRAIN_TEACHER"));
  spec.mutable_teacher()->set_run_id(sweep.runs(0).id());
  EXPECT_EQ(scheduler_->SubmitRun(spec)->status(), v1::WAITING);
}

TEST_F(SchedulerTest, EvaluateNeedsASucceededStudent) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::ExperimentSpec spec;
  spec.set_kind(v1::EVALUATE);
  spec.mutable_dataset()->set_name("fashion-mnist");
  spec.set_student_run_id(sweep.runs(1).id());
  auto refused = scheduler_->SubmitRun(spec);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("is a DISTILL run that is WAITING"));
  spec.set_student_run_id(99);
  EXPECT_EQ(scheduler_->SubmitRun(spec).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, StaleAttemptsAreFenced) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run first = Lease();
  clock_.AdvanceMs(61'000);  // The lease expires; the run is queued again.
  v1::Run second = Lease();
  EXPECT_EQ(second.id(), first.id());
  EXPECT_EQ(second.attempt(), 2);
  v1::ReportMetricsRequest metrics;
  metrics.set_run_id(first.id());
  metrics.set_attempt(first.attempt());
  metrics.add_points()->set_key("train/loss");
  absl::Status stale = scheduler_->ReportMetrics(metrics);
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(stale.message()), HasSubstr("at attempt 2"));
  v1::CompleteRunRequest complete;
  complete.set_run_id(first.id());
  complete.set_attempt(1);
  EXPECT_EQ(scheduler_->CompleteRun(complete).code(),
            absl::StatusCode::kFailedPrecondition);
  v1::RunFileHeader header;
  header.set_run_id(first.id());
  header.set_attempt(1);
  header.set_sha256(Sha256Hex("x"));
  EXPECT_EQ(scheduler_->BeginUpload(header).status().code(),
            absl::StatusCode::kFailedPrecondition);
  metrics.set_attempt(2);
  EXPECT_TRUE(scheduler_->ReportMetrics(metrics).ok());
}

TEST_F(SchedulerTest, HeartbeatsKeepTheLeaseAndRepeatedExpiryIsLost) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(run.id());
  beat.set_attempt(run.attempt());
  clock_.AdvanceMs(50'000);
  ASSERT_TRUE(scheduler_->Heartbeat(beat).ok());
  clock_.AdvanceMs(50'000);  // 100 s after the lease, 50 s after the heartbeat.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
  // Default max_restarts is 2: attempts 1..3 may expire, the third is LOST.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    clock_.AdvanceMs(61'000);
    ASSERT_TRUE(scheduler_->ExpireLeases().ok());
    if (attempt < 3) {
      EXPECT_EQ(StatusOf(run.id()), v1::QUEUED);
      EXPECT_EQ(Lease().attempt(), attempt + 1);
    }
  }
  v1::Run lost = *scheduler_->GetRun(run.id());
  EXPECT_EQ(lost.status(), v1::FAILED);
  EXPECT_THAT(lost.message(), HasSubstr("LOST"));
  EXPECT_EQ(StatusOf(sweep.runs(1).id()), v1::FAILED);
}

TEST_F(SchedulerTest, MaxRestartsZeroMeansTheFirstLostLeaseFailsTheRun) {
  v1::SweepSpec spec = SmallSweep("table1");
  spec.mutable_teacher()->mutable_train()->set_max_restarts(0);
  auto sweep = *scheduler_->SubmitSweep(spec);
  v1::Run run = Lease();
  clock_.AdvanceMs(61'000);
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  v1::Run lost = *scheduler_->GetRun(run.id());
  EXPECT_EQ(lost.status(), v1::FAILED);
  EXPECT_THAT(lost.message(), HasSubstr("max_restarts (0) is spent"));
}

TEST_F(SchedulerTest, StoredSpecsAreResolved) {
  v1::SweepSpec spec = SmallSweep("table1");
  v1::VitSpec* vit =
      spec.mutable_teacher()->mutable_train()->mutable_teacher()->mutable_vit();
  vit->Clear();
  vit->set_preset("small-28");
  spec.mutable_base()->mutable_student()->clear_width();
  auto sweep = *scheduler_->SubmitSweep(spec);
  const v1::ExperimentSpec teacher =
      scheduler_->GetRun(sweep.runs(0).id())->spec();
  EXPECT_EQ(teacher.teacher().vit().patch_size(), 7);
  EXPECT_EQ(teacher.teacher().vit().width(), 96);
  EXPECT_EQ(teacher.teacher().vit().depth(), 4);
  EXPECT_EQ(teacher.teacher().vit().heads(), 4);
  EXPECT_EQ(teacher.teacher().vit().mlp_ratio(), 4);
  EXPECT_EQ(teacher.dataset().image_size(), 28);
  EXPECT_EQ(teacher.max_restarts(), 2);
  const v1::ExperimentSpec student =
      scheduler_->GetRun(sweep.runs(1).id())->spec();
  EXPECT_EQ(student.student().width(), 64);
  EXPECT_EQ(student.student().stem(), v1::SMALL);
  EXPECT_EQ(student.evaluation().knn_bank(), 5000);
}

TEST_F(SchedulerTest, MissingRunIsNotFound) {
  EXPECT_EQ(scheduler_->GetRun(99).status().code(),
            absl::StatusCode::kNotFound);
  WatchCursor cursor;
  EXPECT_EQ(scheduler_->PollRunEvent(99, &cursor).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, ABadMetricBatchIsRefusedWholeAndStoresNothing) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::ReportMetricsRequest report;
  report.set_run_id(run.id());
  report.set_attempt(run.attempt());
  v1::MetricPoint* good = report.add_points();
  good->set_key("train/loss");
  good->set_value(1.5);
  v1::MetricPoint* bad = report.add_points();
  bad->set_key("train/loss");
  bad->set_value(std::nan(""));
  absl::Status s = scheduler_->ReportMetrics(report);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("points[1]: train/loss must be finite"));
  bad->set_value(2);
  bad->set_key(std::string(200, 'k'));
  EXPECT_THAT(scheduler_->ReportMetrics(report).message(),
              HasSubstr("points[1]: a metric key must be 1 to 128 bytes"));
  WatchCursor cursor;
  cursor.include_history = true;
  auto event = scheduler_->PollRunEvent(run.id(), &cursor);
  ASSERT_TRUE(event.ok() && event->has_value());
  EXPECT_EQ((*event)->metrics_size(), 0);
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  (*complete.mutable_results())["eval/top1"] = INFINITY;
  EXPECT_THAT(scheduler_->CompleteRun(complete).message(),
              HasSubstr("results: eval/top1 must be finite, got inf"));
}

TEST_F(SchedulerTest, AFailureMessageIsKeptUpToItsBound) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  Fail(run, std::string(10 << 20, 'e'));
  const std::string message = scheduler_->GetRun(run.id())->message();
  EXPECT_LE(message.size(), 4096u + 10);
  EXPECT_THAT(message, HasSubstr("[...]"));
}

TEST_F(SchedulerTest, ALostAttemptsSuccessorGetsItsLatestResumePoint) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  Upload(run, "after epoch 1", "resume.pt");
  Upload(run, "after epoch 2", "resume.pt");
  // Each resume point replaces the one before, its file included.
  EXPECT_EQ(run_files_->Open(Sha256Hex("after epoch 1")).status().code(),
            absl::StatusCode::kNotFound);
  v1::Run listed = *scheduler_->GetRun(run.id());
  ASSERT_EQ(listed.files_size(), 1);
  EXPECT_EQ(listed.files(0).name(), "resume.pt");

  clock_.AdvanceMs(61'000);  // The worker is lost.
  auto again = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(again.ok() && again->has_run());
  EXPECT_EQ(again->run().attempt(), 2);
  EXPECT_EQ(again->resume_point_sha256(), Sha256Hex("after epoch 2"));

  // The finished run keeps no resume point.
  Succeed(again->run(), "teacher", 0.8);
  EXPECT_EQ(scheduler_->OpenRunFile(run.id(), "resume.pt").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(run_files_->Open(Sha256Hex("after epoch 2")).status().code(),
            absl::StatusCode::kNotFound);
  // A run that never wrote one starts from the beginning.
  auto student = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(student.ok() && student->has_run());
  EXPECT_EQ(student->resume_point_sha256(), "");
}

TEST_F(SchedulerTest, CancelReachesTheWorkerThroughItsHeartbeat) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  auto cancelled = scheduler_->CancelRun(run.id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status(), v1::CANCELLED);
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(run.id());
  beat.set_attempt(run.attempt());
  EXPECT_TRUE(scheduler_->Heartbeat(beat)->cancel_requested());
  EXPECT_EQ(scheduler_->CancelRun(run.id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusOf(sweep.runs(2).id()), v1::FAILED);
}

TEST_F(SchedulerTest, UploadsAreBoundedBySizeAndBySelfDeclaredSize) {
  scheduler_ = std::make_unique<Scheduler>(
      store_.get(), run_files_.get(), &clock_,
      SchedulerOptions{60'000, 10'000, /*max_run_file_bytes=*/100});
  v1::RegisterWorkerRequest request;
  worker_ = scheduler_->RegisterWorker(request)->worker_id();
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header = HeaderFor(run, "x");
  header.set_size(101);
  auto big = scheduler_->BeginUpload(header);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()),
              HasSubstr("header.size 101 is beyond this coordinator's limit "
                        "of 100 bytes"));
  header.set_size(5);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append("12345").ok());
  absl::Status more = writer->Append("6");
  EXPECT_EQ(more.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(more.message()),
              HasSubstr("more than the 5 bytes its header announced"));
}

TEST_F(SchedulerTest, ASupersededAttemptsUploadLeavesNoFile) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  const std::string data = "a late checkpoint";
  const v1::RunFileHeader header = HeaderFor(run, data);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append(data).ok());
  clock_.AdvanceMs(61'000);  // Lost: the run goes to attempt 2.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(scheduler_->FinishUpload(header, *writer).code(),
            absl::StatusCode::kFailedPrecondition);
  writer.reset();
  EXPECT_EQ(run_files_->Open(Sha256Hex(data)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SchedulerTest, UploadWithAWrongDigestIsRejectedAndNotRecorded) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header;
  header.set_run_id(run.id());
  header.set_attempt(run.attempt());
  header.set_sha256(Sha256Hex("what was promised"));
  header.set_size(13);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append("what was sent").ok());
  absl::Status s = scheduler_->FinishUpload(header, *writer);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sha256 mismatch"));
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(header.sha256());
  EXPECT_EQ(scheduler_->CompleteRun(complete).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
}

TEST_F(SchedulerTest, RunFilesNeedSafeNames) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header;
  header.set_run_id(run.id());
  header.set_attempt(run.attempt());
  header.set_sha256(Sha256Hex("x"));
  header.set_size(1);
  for (const char* bad : {"../etc/passwd", ".hidden", "a b"}) {
    header.set_name(bad);
    auto writer = scheduler_->BeginUpload(header);
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(std::string(writer.status().message()), HasSubstr(bad));
  }
  header.set_name("tsne.csv");
  auto writer = scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  ASSERT_TRUE(scheduler_->FinishUpload(header, **writer).ok());
  v1::Run with_file = *scheduler_->GetRun(run.id());
  ASSERT_EQ(with_file.files_size(), 1);
  EXPECT_EQ(with_file.files(0).name(), "tsne.csv");
  auto reader = scheduler_->OpenRunFile(run.id(), "tsne.csv");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->Read(100), "x");
  EXPECT_EQ(scheduler_->OpenRunFile(run.id(), "nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, WatchSeesHistoryThenChanges) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::ReportMetricsRequest metrics;
  metrics.set_run_id(run.id());
  metrics.set_attempt(run.attempt());
  metrics.add_points()->set_key("train/loss");
  ASSERT_TRUE(scheduler_->ReportMetrics(metrics).ok());
  WatchCursor cursor;
  cursor.include_history = true;
  auto first = scheduler_->PollRunEvent(run.id(), &cursor);
  ASSERT_TRUE(first.ok() && first->has_value());
  EXPECT_EQ((*first)->metrics_size(), 1);
  EXPECT_EQ((*first)->run().status(), v1::RUNNING);
  auto nothing = scheduler_->PollRunEvent(run.id(), &cursor);
  ASSERT_TRUE(nothing.ok());
  EXPECT_FALSE(nothing->has_value());
  ASSERT_TRUE(scheduler_->ReportMetrics(metrics).ok());
  auto next = scheduler_->PollRunEvent(run.id(), &cursor);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->metrics_size(), 1);
}

TEST_F(SchedulerTest, ALongPollHearsWhenARunArrives) {
  EXPECT_FALSE(scheduler_->LeaseRun(worker_)->has_run());
  std::atomic<int> heard{0};
  const int64_t id = scheduler_->watch_hub().Subscribe(Scheduler::kQueueChanges,
                                                       [&] { ++heard; });
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("table1")).ok());
  scheduler_->watch_hub().Unsubscribe(id);
  EXPECT_EQ(heard.load(), 1);
  auto response = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(response.ok());
  EXPECT_TRUE(response->has_run());
}

TEST_F(SchedulerTest, ARunThatFailsKeepsNoFile) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("junk"));
  const v1::Run run = Lease();
  Upload(run, std::string(4096, 'j'));
  Upload(run, "map", "tsne.csv");
  EXPECT_TRUE(scheduler_->OpenRunFile(run.id(), "checkpoint").ok());
  v1::FailRunRequest fail;
  fail.set_run_id(run.id());
  fail.set_attempt(run.attempt());
  ASSERT_TRUE(scheduler_->FailRun(fail).ok());
  for (const char* name : {"checkpoint", "tsne.csv"}) {
    EXPECT_EQ(scheduler_->OpenRunFile(run.id(), name).status().code(),
              absl::StatusCode::kNotFound)
        << name;
  }
  EXPECT_FALSE(fs::exists(dir_ / Sha256Hex(std::string(4096, 'j'))));
  EXPECT_TRUE(scheduler_->GetRun(run.id())->files().empty());
}

TEST_F(SchedulerTest, UnknownWorkerCannotLease) {
  EXPECT_EQ(scheduler_->LeaseRun("ghost").status().code(),
            absl::StatusCode::kNotFound);
}

// With tokens, a worker belongs to the token it registered with: another
// token that names the right run and attempt still may not act for it.
TEST_F(SchedulerTest, OnlyTheLeaseHoldersTokenMayActForTheRun) {
  constexpr int64_t kHolder = 7, kStranger = 8;
  v1::RegisterWorkerRequest request;
  request.set_hostname("gpu7");
  const std::string mine =
      scheduler_->RegisterWorker(request, kHolder)->worker_id();
  auto submitted = *scheduler_->SubmitSweep(SmallSweep("holder"));
  // Another token cannot lease in the holder's worker's name.
  absl::Status named = scheduler_->LeaseRun(mine, kStranger).status();
  EXPECT_EQ(named.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(named.message()),
              HasSubstr("registered with another token"));
  auto leased = scheduler_->LeaseRun(mine, kHolder);
  ASSERT_TRUE(leased.ok() && leased->has_run());
  const v1::Run run = leased->run();

  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(mine);
  heartbeat.set_run_id(run.id());
  heartbeat.set_attempt(run.attempt());
  v1::ReportMetricsRequest metrics;
  metrics.set_run_id(run.id());
  metrics.set_attempt(run.attempt());
  metrics.add_points()->set_key("train/loss");
  v1::FailRunRequest fail;
  fail.set_run_id(run.id());
  fail.set_attempt(run.attempt());
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  for (int64_t caller : {kStranger, int64_t{0}}) {
    SCOPED_TRACE(caller);
    EXPECT_EQ(scheduler_->Heartbeat(heartbeat, caller).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->ReportMetrics(metrics, caller).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(
        scheduler_->BeginUpload(HeaderFor(run, "x"), caller).status().code(),
        absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->CompleteRun(complete, caller).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->FailRun(fail, caller).code(),
              absl::StatusCode::kPermissionDenied);
  }
  // An upload that began under the holder is checked again at its end.
  auto writer = scheduler_->BeginUpload(HeaderFor(run, "x"), kHolder);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  EXPECT_EQ(
      scheduler_->FinishUpload(HeaderFor(run, "x"), **writer, kStranger).code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
  // Files by digest: only what a run the caller holds needs.
  const v1::RunFileHeader resume = HeaderFor(run, "resume", "resume.pt");
  auto resume_writer = scheduler_->BeginUpload(resume, kHolder);
  ASSERT_TRUE(resume_writer.ok());
  ASSERT_TRUE((*resume_writer)->Append("resume").ok());
  ASSERT_TRUE(scheduler_->FinishUpload(resume, **resume_writer, kHolder).ok());
  EXPECT_TRUE(scheduler_->OpenRunFileByDigest(resume.sha256(), kHolder).ok());
  EXPECT_EQ(scheduler_->OpenRunFileByDigest(resume.sha256(), kStranger)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(scheduler_->ReportMetrics(metrics, kHolder).ok());
  EXPECT_TRUE(scheduler_->FailRun(fail, kHolder).ok());
  EXPECT_EQ(StatusOf(run.id()), v1::FAILED);
}

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

TEST_F(FileSchedulerTest, ConcurrentReportsAreAllStoredAndAStaleOneAlone) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("many")).ok());
  const std::vector<v1::Run> runs = {Lease()};
  v1::Run stale = runs[0];
  stale.set_attempt(stale.attempt() + 1);  // No such lease.
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        const bool bad = t == 7;
        absl::Status s = scheduler_->ReportMetrics(
            Report(bad ? stale : runs[0], (t * 50 + i) * 10, 10));
        if (bad) {
          if (s.code() == absl::StatusCode::kFailedPrecondition) ++refused;
        } else {
          EXPECT_TRUE(s.ok()) << s;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(refused.load(), 50);
  auto page = *scheduler_->MetricHistory(runs[0].id(), "", 0);
  EXPECT_EQ(page.points.size(), 7u * 50 * 10);
  EXPECT_TRUE(page.next_page_token.empty());
}

TEST_F(FileSchedulerTest, ListingsAndHistoryComeInPages) {
  for (int i = 0; i < 5; ++i)
    ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("pages")).ok());
  std::vector<int64_t> seen;
  std::string token;
  do {
    auto page =
        scheduler_->ListRunsPage(0, v1::RUN_STATUS_UNSPECIFIED, token, 4);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->runs.size(), 4u);
    for (const v1::Run& run : page->runs) seen.push_back(run.id());
    token = page->next_page_token;
  } while (!token.empty());
  const size_t all =
      scheduler_->ListRuns(0, v1::RUN_STATUS_UNSPECIFIED)->size();
  ASSERT_EQ(seen.size(), all);
  for (size_t i = 1; i < seen.size(); ++i) EXPECT_LT(seen[i - 1], seen[i]);
  // A token is for the filters it was made with; sizes are bounded.
  auto first = *scheduler_->ListRunsPage(0, v1::RUN_STATUS_UNSPECIFIED, "", 2);
  auto other =
      scheduler_->ListRunsPage(0, v1::QUEUED, first.next_page_token, 2);
  EXPECT_EQ(other.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr("filters"));
  EXPECT_EQ(scheduler_->ListRunsPage(0, v1::QUEUED, "junk", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_->ListRunsPage(0, v1::QUEUED, "", 5001).status().code(),
            absl::StatusCode::kInvalidArgument);

  const v1::Run run = Lease();
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(scheduler_->ReportMetrics(Report(run, i * 100, 100)).ok());
  int64_t points = 0;
  token.clear();
  do {
    auto page = *scheduler_->MetricHistory(run.id(), token, 300);
    points += int64_t(page.points.size());
    token = page.next_page_token;
  } while (!token.empty());
  EXPECT_EQ(points, 1000);
  EXPECT_EQ(scheduler_->MetricHistory(run.id(), "", 50'001).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(scheduler_->MetricHistory(424242, "", 0).status().code(),
            absl::StatusCode::kNotFound);
  // A watcher's first event: each key's history spread over 20 points.
  WatchCursor cursor;
  cursor.include_history = true;
  cursor.history_points_per_key = 20;
  auto event = *scheduler_->PollRunEvent(run.id(), &cursor);
  ASSERT_TRUE(event.has_value());
  EXPECT_EQ(event->metrics_size(), 40);
  EXPECT_FALSE(scheduler_->PollRunEvent(run.id(), &cursor)->has_value());
  ASSERT_TRUE(scheduler_->ReportMetrics(Report(run, 5000, 3)).ok());
  EXPECT_EQ((*scheduler_->PollRunEvent(run.id(), &cursor))->metrics_size(), 3);

  // However many keys, a first event holds at most kPointsPerEvent points.
  for (int i = 0; i < 30; ++i) {
    v1::ReportMetricsRequest report = Report(run, 10'000 + i * 1000, 1000);
    for (int p = 0; p < report.points_size(); ++p)
      report.mutable_points(p)->set_key(absl::StrCat("k/", p % 3));
    ASSERT_TRUE(scheduler_->ReportMetrics(report).ok());
  }
  WatchCursor most;
  most.include_history = true;
  most.history_points_per_key = kMaxHistoryPointsPerKey;
  auto bounded = *scheduler_->PollRunEvent(run.id(), &most);
  ASSERT_TRUE(bounded.has_value());
  EXPECT_LE(bounded->metrics_size(), kPointsPerEvent);
  EXPECT_GT(bounded->metrics_size(), kPointsPerEvent / 2);
  WatchCursor too_many;
  too_many.history_points_per_key = kMaxHistoryPointsPerKey + 1;
  EXPECT_EQ(scheduler_->PollRunEvent(run.id(), &too_many).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FileSchedulerTest, ASweepGoesOnAfterTheCoordinatorRestarts) {
  v1::SweepSpec spec = EarlyStoppingSweep("restart", v1::MEDIAN);
  spec.mutable_early_stopping()->set_min_completed(1);
  spec.set_max_concurrent(1);
  spec.set_priority(3);
  ASSERT_TRUE(scheduler_->SubmitSweep(spec).ok());
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  Succeed(Lease(), "t", 0.8);
  RunMember({0.5, 0.6, 0.7, 0.8}, 4);
  v1::Run interrupted = Lease();
  ASSERT_TRUE(ReportEpoch(interrupted, 1, 0.55).ok());

  // The coordinator goes down mid-sweep and comes back on the same files.
  scheduler_.reset();
  store_.reset();
  Start((dir_ / "distill.db").string(), dir_ / "files");
  EXPECT_EQ(StatusOf(interrupted.id()), v1::RUNNING);
  clock_.AdvanceMs(61'000);  // The old worker is gone: its lease expires.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(StatusOf(interrupted.id()), v1::QUEUED);
  // The limit holds: the member goes again, alone, before the run of
  // priority 0 submitted later.
  v1::Run again = Lease();
  EXPECT_EQ(again.id(), interrupted.id());
  EXPECT_EQ(again.attempt(), 2);
  EXPECT_EQ(LeaseAs(AddWorker("gpu2")).spec().kind(), v1::TRAIN_TEACHER);
  // The rule judges it against the history stored before the restart.
  ASSERT_TRUE(ReportEpoch(again, 1, 0.55).ok());
  ASSERT_TRUE(ReportEpoch(again, 2, 0.1).ok());
  EXPECT_EQ(StatusOf(again.id()), v1::PRUNED);
  EXPECT_THAT(scheduler_->GetRun(again.id())->message(),
              HasSubstr("lower than the median 0.6 of 1 completed members"));
  auto results = *scheduler_->SweepResults("restart");
  EXPECT_EQ(results.members(0).status(), v1::SUCCEEDED);
  EXPECT_EQ(results.members(1).status(), v1::PRUNED);
  EXPECT_EQ(results.members(2).status(), v1::QUEUED);
}

TEST_F(FileSchedulerTest, WorkersAreListedNewestFirstInPages) {
  for (int i = 0; i < 7; ++i) {
    v1::RegisterWorkerRequest request;
    request.set_hostname(absl::StrCat("node", i));
    ASSERT_TRUE(scheduler_->RegisterWorker(request).ok());
  }
  std::vector<std::string> hosts;
  std::string token;
  do {
    auto page = scheduler_->ListWorkersPage(token, 3);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->workers.size(), 3u);
    for (const v1::Worker& w : page->workers) hosts.push_back(w.hostname());
    token = page->next_page_token;
  } while (!token.empty());
  ASSERT_EQ(hosts.size(), 8u);
  EXPECT_EQ(hosts.front(), "node6");
  EXPECT_EQ(hosts[6], "node0");
  EXPECT_EQ(hosts.back(), "gpu1");
  EXPECT_EQ(scheduler_->ListWorkersPage("x", 3).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FileSchedulerTest, TokensAreListedInPages) {
  for (int i = 0; i < 5; ++i) {
    TokenRecord token;
    token.name = absl::StrCat("t", i);
    token.role = 2;  // distill.v1.ROLE_RESEARCHER
    token.sha256 = std::string(63, 'a') + char('0' + i);
    ASSERT_TRUE(scheduler_->InsertToken(token).ok());
  }
  std::vector<std::string> names;
  std::string page_token;
  do {
    auto page = scheduler_->ListTokensPage(page_token, 2);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->tokens.size(), 2u);
    for (const TokenRecord& t : page->tokens) names.push_back(t.name);
    page_token = page->next_page_token;
  } while (!page_token.empty());
  EXPECT_EQ(names, (std::vector<std::string>{"t0", "t1", "t2", "t3", "t4"}));
  EXPECT_EQ(scheduler_->ListTokensPage("-1", 2).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(FileSchedulerTest, AWatcherHearsOfAChangeWithoutPolling) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("watch")).ok());
  const v1::Run run = Lease();
  std::atomic<int> heard{0};
  const int64_t id =
      scheduler_->watch_hub().Subscribe(run.id(), [&] { ++heard; });
  ASSERT_TRUE(scheduler_->ReportMetrics(Report(run, 0, 2)).ok());
  EXPECT_EQ(heard.load(), 1);
  ASSERT_TRUE(scheduler_->CancelRun(run.id()).ok());
  EXPECT_GE(heard.load(), 2);
  scheduler_->watch_hub().Unsubscribe(id);
  const int before = heard.load();
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("more")).ok());
  EXPECT_EQ(heard.load(), before);
  EXPECT_EQ(scheduler_->watch_hub().subscriptions(), 0);
}

TEST_F(SchedulerTest, AStoppedWorkerHandsBackARunItNeverHeardOf) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("lost")).ok());
  const v1::Run run = Lease();  // The answer, say, never arrived.
  ASSERT_TRUE(scheduler_->Deregister(worker_).ok());
  const v1::Run after = *scheduler_->GetRun(run.id());
  EXPECT_EQ(after.status(), v1::QUEUED);
  EXPECT_EQ(after.releases(), 1);
  EXPECT_THAT(after.message(), HasSubstr("the worker stopped"));
  // And a lease it asks for after takes nothing.
  EXPECT_EQ(scheduler_->LeaseRun(worker_).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace distill
