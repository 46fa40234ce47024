// Forks (issue 34): a DISTILL run that starts from another's student, or
// goes on from its final training state; a sweep whose members do.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

class ForkTest : public SchedulerTest {
 protected:
  // Sweep 1 ("base"): its teacher, then D and G succeed, each with its
  // checkpoint and (unless `without_state`) its final training state.
  void SetUp() override {
    SchedulerTest::SetUp();
    ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("base")).ok());
    teacher_ = Lease();
    Succeed(teacher_, "teacher", 0.8);
    d_ = Lease();
    Upload(d_, "state of D", kStateFile);
    Succeed(d_, "checkpoint of D", 0.7);
    g_ = Lease();
    Succeed(g_, "checkpoint of G", 0.75);  // No state: an older worker's.
  }

  // D's spec, forked.
  v1::ExperimentSpec ForkOfD(bool continue_training, int epochs) {
    v1::ExperimentSpec spec = d_.spec();
    spec.mutable_fork()->set_run_id(d_.id());
    spec.mutable_fork()->set_continue_training(continue_training);
    spec.set_epochs(epochs);
    return spec;
  }

  v1::Run teacher_, d_, g_;
};

TEST_F(ForkTest, AForkStartsFromItsParentsStudent) {
  absl::StatusOr<v1::Run> fork = scheduler_->SubmitRun(ForkOfD(false, 1));
  ASSERT_TRUE(fork.ok()) << fork.status();
  EXPECT_EQ(fork->status(), v1::QUEUED);
  EXPECT_EQ(fork->spec().fork().run_id(), d_.id());
  auto lease = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->run().id(), fork->id());
  EXPECT_EQ(lease->student_checkpoint_sha256(), Sha256Hex("checkpoint of D"));
  EXPECT_EQ(lease->resume_point_sha256(), "");
  EXPECT_EQ(
      scheduler_->GetRun(fork->id())->provenance().at(provenance::kForkSha256),
      Sha256Hex("checkpoint of D"));
}

TEST_F(ForkTest, AContinuedForkGoesOnFromItsParentsState) {
  // The same number of epochs would train nothing.
  absl::Status same = scheduler_->SubmitRun(ForkOfD(true, 1)).status();
  EXPECT_EQ(same.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(same.message()),
              HasSubstr(absl::StrCat("epochs must be more than run ", d_.id(),
                                     "'s 1 to continue it, got 1")));
  // Another batch size does not go on from the same state.
  v1::ExperimentSpec other = ForkOfD(true, 3);
  other.set_batch_size(64);
  absl::Status batch = scheduler_->SubmitRun(other).status();
  EXPECT_EQ(batch.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(batch.message()),
              HasSubstr("batch_size (parent 32, here 64) differs"));
  absl::StatusOr<v1::Run> fork = scheduler_->SubmitRun(ForkOfD(true, 3));
  ASSERT_TRUE(fork.ok()) << fork.status();
  auto lease = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(lease->resume_point_sha256(), Sha256Hex("state of D"));
  EXPECT_EQ(lease->student_checkpoint_sha256(), "");
  // G kept no state: it can be forked, not continued.
  v1::ExperimentSpec of_g = g_.spec();
  of_g.mutable_fork()->set_run_id(g_.id());
  of_g.mutable_fork()->set_continue_training(true);
  of_g.set_epochs(2);
  absl::Status no_state = scheduler_->SubmitRun(of_g).status();
  EXPECT_EQ(no_state.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      std::string(no_state.message()),
      HasSubstr(absl::StrCat("run ", g_.id(), " kept no training state")));
}

TEST_F(ForkTest, OnlyASucceededDistillRunIsForked) {
  v1::ExperimentSpec of_teacher = d_.spec();
  of_teacher.mutable_fork()->set_run_id(teacher_.id());
  absl::Status teacher = scheduler_->SubmitRun(of_teacher).status();
  EXPECT_EQ(teacher.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(teacher.message()),
              HasSubstr("is a TRAIN_TEACHER run that is SUCCEEDED; a fork "
                        "starts from a SUCCEEDED DISTILL run"));
  v1::ExperimentSpec of_nothing = d_.spec();
  of_nothing.mutable_fork()->set_run_id(999);
  EXPECT_EQ(scheduler_->SubmitRun(of_nothing).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ForkTest, ASweepForkStartsEachMemberFromItsNamesake) {
  v1::SweepSpec spec = SmallSweep("base-fork");
  spec.clear_teacher();
  spec.mutable_teacher()->set_run_id(teacher_.id());
  spec.mutable_fork()->set_sweep_id(d_.sweep_id());
  auto forked = scheduler_->SubmitSweep(spec);
  ASSERT_TRUE(forked.ok()) << forked.status();
  ASSERT_EQ(forked->runs_size(), 2);
  for (const v1::Run& run : forked->runs()) {
    EXPECT_EQ(run.spec().fork().run_id(),
              run.member() == "D" ? d_.id() : g_.id())
        << run.member();
  }
  // Continued, G has no state to go on from: refused, naming the member.
  spec.set_name("base-fork-2");
  spec.mutable_fork()->set_continue_training(true);
  spec.mutable_base()->set_epochs(2);
  absl::Status refused = scheduler_->SubmitSweep(spec).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("member G: run"));
  // A member the parent sweep never ran.
  spec.mutable_fork()->set_continue_training(false);
  spec.mutable_members(1)->set_name("Z");
  absl::Status missing = scheduler_->SubmitSweep(spec).status();
  EXPECT_EQ(missing.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(missing.message()),
              HasSubstr(absl::StrCat("member Z of sweep ", d_.sweep_id(),
                                     " does not exist there")));
}

}  // namespace
}  // namespace distill
