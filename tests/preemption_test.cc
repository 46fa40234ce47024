// Preemption at a step (issue 31, server/scheduling/preemption.h): a waiting
// run of higher priority that no free worker meets takes a worker from a lower
// one, which hands back at its next step (the heartbeat asks) and is
// queued again; bounded by a minimum hold and one ask per worker per
// interval; recorded in the run's history.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMinute = 60'000;

class PreemptionTest : public SchedulerTest {
 protected:
  void SetUp() override { StartWith({}); }

  void StartWith(SchedulerOptions options) {
    options.lease_duration_ms = 600 * kMinute;
    options.heartbeat_interval_ms = 10'000;
    Start(":memory:", dir_, options);
  }

  // What the worker holding `run` hears at its next heartbeat.
  v1::HeartbeatResponse Beat(const v1::Run& run) {
    v1::HeartbeatRequest request;
    request.set_worker_id(run.worker_id());
    request.set_run_id(run.id());
    request.set_attempt(run.attempt());
    absl::StatusOr<v1::HeartbeatResponse> response =
        scheduler_->Heartbeat(request);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : v1::HeartbeatResponse();
  }

  // Moves the clock on; the coordinator's second's work (accrual, plan).
  void Pass(int64_t ms) {
    clock_.AdvanceMs(ms);
    ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  }

  // The urgent sweep's teacher, at priority 10 (an admin's).
  int64_t SubmitUrgent() {
    v1::SweepSpec urgent = SmallSweep("urgent");
    urgent.set_priority(10);
    return scheduler_->SubmitSweep(urgent, kAdmin)->runs(0).id();
  }
};

TEST_F(PreemptionTest, AHigherPriorityRunTakesAWorkerAtTheNextStep) {
  const v1::Run low = *scheduler_->SubmitRun(LoneTeacher(), kAlice);
  const v1::Run leased = LeaseAs(worker_);
  ASSERT_EQ(leased.id(), low.id());
  const int64_t urgent = SubmitUrgent();
  // Not before the run held its worker --preempt_after (10 minutes).
  Pass(5 * kMinute);
  EXPECT_FALSE(Beat(leased).yield_requested());
  Pass(6 * kMinute);
  const v1::HeartbeatResponse asked = Beat(leased);
  EXPECT_TRUE(asked.yield_requested());
  EXPECT_EQ(asked.yield_reason(),
            absl::StrCat("for run ", urgent, ": priority 10 above 0"));
  // The worker hands back at its step (the drain path): queued again, no
  // restart; the freed worker leases the urgent run.
  v1::ReleaseRunRequest release;
  release.set_run_id(leased.id());
  release.set_attempt(leased.attempt());
  release.set_reason("preempted");
  ASSERT_TRUE(scheduler_->ReleaseRun(release).ok());
  EXPECT_EQ(StatusOf(low.id()), v1::QUEUED);
  EXPECT_EQ(LeaseAs(worker_).id(), urgent);
  // In its history.
  const v1::Run after = *scheduler_->GetRun(low.id());
  ASSERT_EQ(after.preemptions_size(), 1);
  EXPECT_THAT(after.preemptions(0),
              HasSubstr(absl::StrCat("attempt 1 on worker ", worker_,
                                     " gave way to run ", urgent,
                                     ": priority 10 above 0")));
  // The next attempt goes on from its resume point like any hand-back.
  const std::string other = AddWorker("w2");
  const v1::Run again = LeaseAs(other);
  EXPECT_EQ(again.id(), low.id());
  EXPECT_EQ(again.attempt(), 2);
}

TEST_F(PreemptionTest, NoPreemptionWhileAFreeWorkerFitsOrForEqualPriority) {
  const v1::Run first = *scheduler_->SubmitRun(LoneTeacher(), kAlice);
  const v1::Run leased = LeaseAs(worker_);
  // Equal priority: it waits its turn.
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher(), kBob).ok());
  Pass(30 * kMinute);
  EXPECT_FALSE(Beat(leased).yield_requested());
  // Higher priority, but a free worker can take it.
  AddWorker("idle");
  SubmitUrgent();
  Pass(kMinute);
  EXPECT_FALSE(Beat(leased).yield_requested());
  (void)first;
}

TEST_F(PreemptionTest, AWorkerIsAskedAtMostOnceAnInterval) {
  SchedulerOptions quick;  // A minute's hold; an ask every 10 minutes.
  quick.preempt_after_ms = kMinute;
  StartWith(quick);
  const v1::Run low = *scheduler_->SubmitRun(LoneTeacher(), kAlice);
  const v1::Run leased = LeaseAs(worker_);
  const int64_t urgent = SubmitUrgent();
  Pass(11 * kMinute);
  ASSERT_TRUE(Beat(leased).yield_requested());
  v1::ReleaseRunRequest release;
  release.set_run_id(leased.id());
  release.set_attempt(leased.attempt());
  ASSERT_TRUE(scheduler_->ReleaseRun(release).ok());
  ASSERT_EQ(LeaseAs(worker_).id(), urgent);
  // The urgent run succeeds; the low one comes back to the same worker, and
  // a second urgent run waits: the run held the worker its minute, but the
  // worker was asked under 10 minutes ago.
  Succeed(*scheduler_->GetRun(urgent), "t", 0.9);
  ASSERT_TRUE(scheduler_->CancelSweep("urgent", kAdmin).ok());  // Students.
  const v1::Run back = LeaseAs(worker_);
  ASSERT_EQ(back.id(), low.id());
  v1::SweepSpec second = SmallSweep("urgent2");
  second.set_priority(10);
  ASSERT_TRUE(scheduler_->SubmitSweep(second, kAdmin).ok());
  Pass(5 * kMinute);
  EXPECT_FALSE(Beat(back).yield_requested());
  Pass(6 * kMinute);
  EXPECT_TRUE(Beat(back).yield_requested());
}

TEST_F(PreemptionTest, OffMeansNever) {
  SchedulerOptions off;
  off.preemption = SchedulerOptions::Preemption::kOff;
  StartWith(off);
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher(), kAlice).ok());
  const v1::Run leased = LeaseAs(worker_);
  SubmitUrgent();
  Pass(60 * kMinute);
  EXPECT_FALSE(Beat(leased).yield_requested());
}

// With --preemption=fair an owner far below its share takes a worker from
// one far above it, at equal priority.
TEST_F(PreemptionTest, FairPreemptsForAnOwnerFarBelowItsShare) {
  SchedulerOptions fair;
  fair.preemption = SchedulerOptions::Preemption::kFair;
  fair.fair_share_half_life_ms = 7 * 24 * 60 * kMinute;
  StartWith(fair);
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher(), kAlice).ok());
  const v1::Run leased = LeaseAs(worker_);
  for (int i = 0; i < 60; ++i) Pass(kMinute);  // An hour of alice's use.
  const v1::Run bobs = *scheduler_->SubmitRun(LoneTeacher(), kBob);
  Pass(1000);
  const v1::HeartbeatResponse asked = Beat(leased);
  EXPECT_TRUE(asked.yield_requested());
  EXPECT_THAT(asked.yield_reason(),
              HasSubstr(absl::StrCat("for run ", bobs.id(),
                                     ": owner bob is below its share")));
}

}  // namespace
}  // namespace distill
