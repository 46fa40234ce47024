// Fair share (issue 31, server/scheduling/fair_share.h): priority first, then
// the owner furthest below its share of decayed GPU time, then submission;
// shares and caps an admin sets; why a run waits for another owner.
#include "server/scheduling/fair_share.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kHour = 3'600'000;

class FairShareTest : public SchedulerTest {
 protected:
  void SetUp() override { StartWith({}); }

  // Leases an hour long (no heartbeats needed while the clock moves); the
  // rest as `options` say.
  void StartWith(SchedulerOptions options) {
    options.lease_duration_ms = 10 * kHour;
    options.heartbeat_interval_ms = 10'000;
    options.fair_share_half_life_ms = kHour;
    Start(":memory:", dir_, options);
  }

  std::vector<int64_t> SubmitMany(const Requester& who, int n) {
    std::vector<int64_t> ids;
    for (int i = 0; i < n; ++i)
      ids.push_back(scheduler_->SubmitRun(LoneTeacher(), who)->id());
    return ids;
  }

  // The owner of the run the next new worker leases ("" for none).
  std::string NextOwner() {
    const v1::Run run = LeaseAs(AddWorker(absl::StrCat("w", ++workers_)));
    return run.id() == 0 ? "" : run.owner();
  }

  // Moves the clock on in steps, letting the coordinator accrue GPU time.
  void Pass(int64_t ms) {
    for (int64_t done = 0; done < ms; done += 60'000) {
      clock_.AdvanceMs(60'000);
      ASSERT_TRUE(scheduler_->ExpireLeases().ok());
    }
  }

  v1::Owner OwnerNamed(const std::string& name) {
    const absl::StatusOr<v1::ListOwnersResponse> all = scheduler_->ListOwners();
    EXPECT_TRUE(all.ok()) << all.status();
    for (const v1::Owner& o : all->owners())
      if (o.name() == name) return o;
    return v1::Owner();
  }

  int workers_ = 0;
};

TEST(FairShareMathTest, StandingDecayAndCaps) {
  OwnerRecord o;
  o.owner = "alice";
  o.decayed_ms = 3000;
  o.shares = 3;
  SchedulerOptions week;  // The default half-life: a week.
  EXPECT_DOUBLE_EQ(Standing(o, week), 1000);
  o.running = 2;  // Each running run counts a minute more.
  EXPECT_DOUBLE_EQ(RunningChargeMs(week), 60'000);
  EXPECT_DOUBLE_EQ(Standing(o, week), (3000 + 2 * 60'000) / 3.0);
  SchedulerOptions hour;
  hour.fair_share_half_life_ms = kHour;
  EXPECT_NEAR(RunningChargeMs(hour), 60'000.0 / 168, 1e-9);
  EXPECT_DOUBLE_EQ(DecayOver(kHour, kHour), 0.5);
  EXPECT_DOUBLE_EQ(DecayOver(3 * kHour, kHour), 0.125);
  EXPECT_DOUBLE_EQ(DecayOver(0, kHour), 1);
  SchedulerOptions options;
  EXPECT_FALSE(CapOf(o, options).has_value());
  options.max_running_per_owner = 4;
  EXPECT_EQ(CapOf(o, options), 4);
  o.max_running = 0;  // The owner's own: no cap.
  EXPECT_FALSE(CapOf(o, options).has_value());
  o.max_running = 9;
  EXPECT_EQ(CapOf(o, options), 9);
}

// A 500-member sweep submitted first no longer holds every worker: bob,
// arriving after, gets every other one; first in first out gave alice all.
TEST_F(FairShareTest, OwnersTakeTurnsWhateverWasSubmittedFirst) {
  SubmitMany(kAlice, 8);
  SubmitMany(kBob, 4);
  std::vector<std::string> owners;
  for (int i = 0; i < 6; ++i) owners.push_back(NextOwner());
  EXPECT_THAT(owners, ::testing::ElementsAre("alice", "bob", "alice", "bob",
                                             "alice", "bob"));
  // Within an owner, submission order.
  v1::ListRunsRequest running;
  running.set_status(v1::RUNNING);
  running.set_owner("bob");
  std::vector<int64_t> ids;
  const absl::StatusOr<RunPage> page = scheduler_->FindRuns(running);
  ASSERT_TRUE(page.ok()) << page.status();
  for (const v1::Run& r : page->runs) ids.push_back(r.id());
  std::sort(ids.begin(), ids.end());
  EXPECT_THAT(ids, ::testing::ElementsAre(9, 10, 11));
}

TEST_F(FairShareTest, FirstInFirstOutIsThePolicyOfBefore) {
  SchedulerOptions fifo;
  fifo.queue_policy = SchedulerOptions::QueuePolicy::kFifo;
  StartWith(fifo);
  SubmitMany(kAlice, 8);
  SubmitMany(kBob, 4);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(NextOwner(), "alice");
}

// GPU time used counts, decayed: alice trained for two hours, so bob (who
// used none) takes every free worker until he has used as much; an hour
// later alice's use counts half.
TEST_F(FairShareTest, DecayedUsageDecidesWhoIsBelowTheirShare) {
  SubmitMany(kAlice, 2);
  const v1::Run alices = LeaseAs(worker_);
  EXPECT_EQ(alices.owner(), "alice");
  Pass(2 * kHour);
  const v1::Owner used = OwnerNamed("alice");
  // Two hours with the clock's steps, decayed by a half-life of an hour:
  // between 1 and 2 hours' worth decayed, 2 hours in all.
  EXPECT_NEAR(used.gpu_seconds_total(), 7200, 60);
  EXPECT_GT(used.gpu_seconds(), 3600);
  EXPECT_LT(used.gpu_seconds(), 7200);
  SubmitMany(kBob, 3);
  EXPECT_EQ(NextOwner(), "bob");
  EXPECT_EQ(NextOwner(), "bob");  // Still far below alice's use.
  // The waiting alice says why.
  v1::ListRunsRequest queued;
  queued.set_status(v1::QUEUED);
  queued.set_owner("alice");
  const RunPage page = *scheduler_->FindRuns(queued);
  ASSERT_EQ(page.runs.size(), 1u);
  EXPECT_THAT(page.runs[0].waiting_reason(),
              HasSubstr("1 other owner is served first by fair share (alice "
                        "used"));
  // Unused for long, alice's use fades: the decayed figure halves an hour.
  Succeed(alices, "a", 0.5);
  const double before = OwnerNamed("alice").gpu_seconds();
  Pass(kHour);
  EXPECT_NEAR(OwnerNamed("alice").gpu_seconds(), before / 2, before * 0.02);
}

// Shares weigh use: with 3 shares against 1, alice may use three times
// bob's GPU time before bob goes first.
TEST_F(FairShareTest, SharesWeighUse) {
  v1::SetOwnerPolicyRequest policy;
  policy.set_owner("alice");
  policy.set_shares(3);
  ASSERT_TRUE(scheduler_->SetOwnerPolicy(policy).ok());
  SubmitMany(kAlice, 8);
  SubmitMany(kBob, 8);
  std::vector<std::string> owners;
  for (int i = 0; i < 8; ++i) owners.push_back(NextOwner());
  EXPECT_EQ(std::count(owners.begin(), owners.end(), "alice"), 6);
  EXPECT_EQ(OwnerNamed("alice").share_fraction(), 0.75);
}

// Caps on running runs: the coordinator's default, an owner's own, none.
TEST_F(FairShareTest, AnOwnerAtItsCapWaitsSayingSo) {
  SchedulerOptions capped;
  capped.max_running_per_owner = 2;
  StartWith(capped);
  const std::vector<int64_t> ids = SubmitMany(kAlice, 4);
  EXPECT_EQ(NextOwner(), "alice");
  EXPECT_EQ(NextOwner(), "alice");
  EXPECT_EQ(NextOwner(), "");  // The third worker finds nothing it may take.
  EXPECT_THAT(scheduler_->GetRun(ids[2])->waiting_reason(),
              HasSubstr("its owner alice runs 2 of its 2 (max running per "
                        "owner)"));
  SubmitMany(kBob, 1);
  EXPECT_EQ(NextOwner(), "bob");  // Another owner's run is not held back.
  v1::SetOwnerPolicyRequest policy;
  policy.set_owner("alice");
  policy.set_shares(1);
  policy.set_max_running(3);
  const v1::Owner alice = *scheduler_->SetOwnerPolicy(policy);
  EXPECT_EQ(alice.max_running(), 3);
  EXPECT_FALSE(alice.max_running_is_default());
  EXPECT_EQ(NextOwner(), "alice");
  EXPECT_EQ(NextOwner(), "");
  policy.set_max_running(0);  // None.
  ASSERT_TRUE(scheduler_->SetOwnerPolicy(policy).ok());
  EXPECT_EQ(NextOwner(), "alice");
  policy.clear_max_running();  // Back to the coordinator's.
  EXPECT_EQ(scheduler_->SetOwnerPolicy(policy)->max_running(), 2);
}

// Priority orders above shares: bob's urgent sweep goes first however
// little alice used.
TEST_F(FairShareTest, PriorityComesBeforeShares) {
  SubmitMany(kAlice, 2);
  const v1::Run alices = LeaseAs(worker_);
  Pass(kHour);
  v1::SweepSpec urgent = SmallSweep("urgent");
  urgent.set_priority(10);
  ASSERT_TRUE(scheduler_->SubmitSweep(urgent, kAdmin).ok());
  SubmitMany(kBob, 1);
  EXPECT_EQ(NextOwner(), "root");  // Its teacher, at priority 10.
  EXPECT_EQ(NextOwner(), "bob");   // Then the owner below its share.
  EXPECT_EQ(NextOwner(), "alice");
  (void)alices;
}

// The groups fair share reads are kept by triggers as runs change: they
// match a recount through every way a run enters or leaves the queue.
TEST_F(FairShareTest, TheQueuesGroupsFollowEveryChange) {
  auto check = [&](const char* after) {
    const absl::Status s = CheckQueueGroups(*store_);
    EXPECT_TRUE(s.ok()) << after << ": " << s;
  };
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("groups"), kAlice);
  SubmitMany(kBob, 3);
  check("submits");
  const v1::Run first = LeaseAs(worker_);
  const v1::Run second = LeaseAs(AddWorker("w2"));
  check("leases");
  v1::ReleaseRunRequest release;
  release.set_run_id(second.id());
  release.set_attempt(second.attempt());
  ASSERT_TRUE(scheduler_->ReleaseRun(release).ok());
  check("a hand-back");
  ASSERT_TRUE(scheduler_->CancelRun(sweep.runs(2).id(), kAlice).ok());
  check("a cancel");
  clock_.AdvanceMs(11 * kHour);  // Past the lease: queued again.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  check("an expiry");
  const v1::Run third = LeaseAs(AddWorker("w3"));
  Fail(third, "NaN loss");
  check("a failure");
  ASSERT_TRUE(scheduler_->CancelSweep("groups", kAlice).ok());
  ASSERT_TRUE(scheduler_->RetrySweep("groups", kAlice).ok());
  check("a retry");
  (void)first;
}

TEST_F(FairShareTest, APolicyIsBounded) {
  v1::SetOwnerPolicyRequest policy;
  policy.set_owner("alice");
  policy.set_shares(0);
  absl::StatusOr<v1::Owner> refused = scheduler_->SetOwnerPolicy(policy);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("shares must be 0.001 to 1e+06, got 0"));
  policy.set_shares(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(scheduler_->SetOwnerPolicy(policy).status().code(),
            absl::StatusCode::kInvalidArgument);
  policy.set_shares(1);
  policy.set_max_running(-1);
  EXPECT_THAT(
      std::string(scheduler_->SetOwnerPolicy(policy).status().message()),
      HasSubstr("max_running must be 0 (no cap) to 1000000, got -1"));
  policy.clear_max_running();
  policy.set_owner("");
  EXPECT_EQ(scheduler_->SetOwnerPolicy(policy).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(scheduler_->ListOwners()->owners().empty());  // Nothing stored.
}

}  // namespace
}  // namespace distill
