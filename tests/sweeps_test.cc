// The scheduler's sweeps (server/scheduling/sweeps.h): dependencies on
// teachers, results, retries and cancellation, early stopping, grids and seeds.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

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

// Cancelled before its teacher finished, every run ends CANCELLED (issue
// 32: the waiting students ended FAILED, "teacher run 1 ended CANCELLED").
TEST_F(SchedulerTest, CancellingASweepBeforeItsTeacherCancelsItsStudents) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("early"));
  const v1::Run teacher = Lease();
  ASSERT_EQ(teacher.spec().kind(), v1::TRAIN_TEACHER);
  auto cancelled = scheduler_->CancelSweep("early");
  ASSERT_TRUE(cancelled.ok()) << cancelled.status();
  EXPECT_EQ(cancelled->runs_size(), sweep.runs_size());
  for (const v1::Run& r : sweep.runs()) {
    const v1::Run now = *scheduler_->GetRun(r.id());
    EXPECT_EQ(now.status(), v1::CANCELLED) << r.id() << ": " << now.message();
    EXPECT_THAT(now.message(), HasSubstr("cancelled with sweep"));
  }
}

// A name means one sweep while it runs, so that every command may take it
// (issue 32: a duplicate name was accepted and then silently meant the
// newest); an ended sweep's name may be used again, and means the newest.
TEST_F(SchedulerTest, ASweepsNameIsItsOwnUntilItEnds) {
  const v1::Sweep first =
      scheduler_->SubmitSweep(SmallSweep("nightly"))->sweep();
  const absl::Status twice =
      scheduler_->SubmitSweep(SmallSweep("nightly")).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(twice.message()),
              HasSubstr(absl::StrCat("sweep ", first.id(),
                                     " is named \"nightly\" and 3 of its "
                                     "runs have not ended")));
  const absl::Status digits =
      scheduler_->SubmitSweep(SmallSweep("42")).status();
  EXPECT_EQ(digits.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(digits.message()), HasSubstr("all digits"));
  // The runs of a sweep by its name or its id.
  v1::ListRunsRequest by_name;
  by_name.set_sweep("nightly");
  EXPECT_EQ(scheduler_->FindRuns(by_name)->runs.size(), 3u);
  v1::ListRunsRequest by_id;
  by_id.set_sweep(absl::StrCat(first.id()));
  EXPECT_EQ(scheduler_->FindRuns(by_id)->runs.size(), 3u);
  v1::ListRunsRequest unknown;
  unknown.set_sweep("tiny-seeded");
  EXPECT_EQ(scheduler_->FindRuns(unknown).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(scheduler_->CancelSweep("nightly").ok());
  auto again = scheduler_->SubmitSweep(SmallSweep("nightly"));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(scheduler_->FindRuns(by_name)->runs.front().sweep_id(),
            again->sweep().id());
  by_name.set_sweep_id(first.id());
  EXPECT_EQ(scheduler_->FindRuns(by_name).status().code(),
            absl::StatusCode::kInvalidArgument);
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

}  // namespace
}  // namespace distill
