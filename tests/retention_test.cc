// Retention (server/scheduling/retention.h): which run files each sweep's
// policy drops, what it never drops, the bytes, and the pass that drops them.
#include "server/scheduling/retention.h"

#include <filesystem>

#include "common/provenance.h"
#include "common/run_files.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class RetentionTest : public SchedulerTest {
 protected:
  // A sweep with a teacher and three students (D, G, H) at top-1 0.6, 0.8
  // and 0.7, each with a checkpoint of `kBytes` and a t-SNE file.
  void RunSweep(std::optional<int> keep_best, bool lower_is_better = false) {
    v1::SweepSpec spec = SmallSweep("kept");
    v1::SweepMember* h = spec.add_members();
    h->set_name("H");
    h->mutable_losses()->set_ce(1);
    h->mutable_losses()->mutable_rkd()->set_angle_weight(2);
    if (keep_best.has_value())
      spec.mutable_retention()->set_keep_best(*keep_best);
    spec.mutable_retention()->set_lower_is_better(lower_is_better);
    sweep_ = scheduler_->SubmitSweep(spec)->sweep();
    teacher_ = Lease();
    Succeed(teacher_, std::string(kBytes, 't'), 0.9);
    for (double top1 : {0.6, 0.8, 0.7}) {
      v1::Run student = Lease();
      Upload(student, absl::StrCat("tsne of ", student.id()), kTsneFile);
      Succeed(student, std::string(kBytes, char('a' + student.id())), top1);
      students_.push_back(student);
    }
  }

  v1::CollectGarbageResponse Gc(bool dry_run, const std::string& sweep = "") {
    v1::CollectGarbageRequest request;
    request.set_dry_run(dry_run);
    request.set_sweep(sweep);
    absl::StatusOr<v1::CollectGarbageResponse> answer =
        scheduler_->CollectGarbage(request, absl::ZeroDuration());
    EXPECT_TRUE(answer.ok()) << answer.status();
    return answer.value_or(v1::CollectGarbageResponse());
  }

  static std::vector<int64_t> Runs(const v1::CollectGarbageResponse& answer) {
    std::vector<int64_t> ids;
    for (const v1::DroppedRunFile& f : answer.dropped())
      ids.push_back(f.run_id());
    return ids;
  }

  bool HasFile(int64_t run_id, const std::string& name) {
    return scheduler_->ReadRunFile(run_id, name, 1 << 20).ok();
  }

  static constexpr int64_t kBytes = 1000;
  v1::Sweep sweep_;
  v1::Run teacher_;
  std::vector<v1::Run> students_;  // D 0.6, G 0.8, H 0.7.
};

TEST_F(RetentionTest, KeepsTheBestStudentsCheckpointsAndDropsTheOthers) {
  RunSweep(1);
  const v1::CollectGarbageResponse plan = Gc(/*dry_run=*/true);
  // D and H go (G is the best); the teacher and every t-SNE file stay.
  EXPECT_THAT(Runs(plan), ElementsAre(students_[0].id(), students_[2].id()));
  EXPECT_EQ(plan.files(), 2);
  EXPECT_EQ(plan.bytes_freed(), 2 * kBytes);
  EXPECT_TRUE(plan.dry_run());
  EXPECT_THAT(plan.dropped(0).reason(),
              HasSubstr("not among sweep 1's 1 best by eval/top1 (0.6)"));
  EXPECT_EQ(plan.dropped(0).name(), kCheckpointFile);
  EXPECT_EQ(plan.dropped(0).member(), "D");
  EXPECT_TRUE(HasFile(students_[0].id(), kCheckpointFile));  // Dry: kept.
  const int64_t held_before = plan.bytes_held() + plan.bytes_freed();

  const v1::CollectGarbageResponse done = Gc(/*dry_run=*/false);
  EXPECT_EQ(done.files(), 2);
  EXPECT_EQ(done.bytes_freed(), 2 * kBytes);
  EXPECT_EQ(done.bytes_held(), held_before - 2 * kBytes);
  EXPECT_FALSE(HasFile(students_[0].id(), kCheckpointFile));
  EXPECT_FALSE(HasFile(students_[2].id(), kCheckpointFile));
  EXPECT_TRUE(HasFile(students_[1].id(), kCheckpointFile));
  EXPECT_TRUE(HasFile(teacher_.id(), kCheckpointFile));
  for (const v1::Run& s : students_) EXPECT_TRUE(HasFile(s.id(), kTsneFile));
  EXPECT_FALSE(std::filesystem::exists(
      dir_ / Sha256Hex(std::string(kBytes, char('a' + students_[0].id())))));
  // The run says what went, and why; its results stay.
  const v1::Run dropped = *scheduler_->GetRun(students_[0].id());
  EXPECT_THAT(dropped.provenance().at(provenance::kRetention),
              HasSubstr("checkpoint (1000 B) dropped at"));
  EXPECT_EQ(dropped.results().at("eval/top1"), 0.6);
  // A download of it says so (issue 32: 'run 36 has no file "checkpoint"').
  const absl::Status download =
      scheduler_->OpenRunFile(students_[0].id(), kCheckpointFile).status();
  EXPECT_EQ(download.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(download.message()),
              HasSubstr(absl::StrCat("run ", students_[0].id(),
                                     "'s file \"checkpoint\" was dropped by "
                                     "the retention policy: checkpoint (1000 "
                                     "B) dropped at ")));
  EXPECT_THAT(std::string(download.message()),
              HasSubstr(dropped.provenance().at(provenance::kRetention)));
  EXPECT_THAT(std::string(scheduler_->OpenRunFile(students_[0].id(), "other")
                              .status()
                              .message()),
              HasSubstr("has no file \"other\""));
  EXPECT_EQ(Gc(true).files(), 0);  // Nothing more to drop.
  // An evaluation of a student whose checkpoint went is refused, saying so.
  v1::ExperimentSpec evaluate = LoneTeacher();
  evaluate.set_kind(v1::EVALUATE);
  evaluate.clear_teacher();
  evaluate.set_student_run_id(students_[0].id());
  absl::StatusOr<v1::Run> refused = scheduler_->SubmitRun(evaluate);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("has no checkpoint: checkpoint (1000 B) dropped at"));
  // And a fork of it (issue 34), with or without its state.
  for (const bool continued : {false, true}) {
    v1::ExperimentSpec fork = students_[0].spec();
    fork.mutable_fork()->set_run_id(students_[0].id());
    fork.mutable_fork()->set_continue_training(continued);
    fork.set_epochs(fork.epochs() + 1);
    absl::StatusOr<v1::Run> no_fork = scheduler_->SubmitRun(fork);
    EXPECT_EQ(no_fork.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(std::string(no_fork.status().message()),
                HasSubstr(absl::StrCat("fork.run_id ", students_[0].id(),
                                       " has no checkpoint: checkpoint (1000 "
                                       "B) dropped at")));
  }
}

TEST_F(RetentionTest, LowerIsBetterRanksTheOtherWay) {
  RunSweep(1, /*lower_is_better=*/true);
  EXPECT_THAT(Runs(Gc(true)),
              ElementsAre(students_[1].id(), students_[2].id()));
}

TEST_F(RetentionTest, TheCoordinatorsDefaultAppliesToASweepWithoutAPolicy) {
  RunSweep(std::nullopt);  // Default -1: every checkpoint kept.
  EXPECT_EQ(Gc(true).files(), 0);
  v1::Sweep sweep = sweep_;
  SchedulerOptions options{60'000, 10'000};
  options.default_keep_best = 2;
  // The same data directory under a coordinator whose default keeps 2.
  scheduler_ = std::make_unique<Scheduler>(store_.get(), run_files_.get(),
                                           &clock_, options);
  EXPECT_THAT(Runs(Gc(true)), ElementsAre(students_[0].id()));
}

TEST_F(RetentionTest, ARunOrSweepTaggedKeepKeepsItsCheckpoint) {
  RunSweep(0);
  v1::AnnotateRequest tag;
  tag.set_run_id(students_[0].id());
  (*tag.mutable_set_tags())[kKeepTag] = "";
  ASSERT_TRUE(scheduler_->Annotate(tag).ok());
  EXPECT_THAT(Runs(Gc(true)),
              ElementsAre(students_[1].id(), students_[2].id()));
  v1::AnnotateRequest on_sweep;
  on_sweep.set_sweep("kept");
  (*on_sweep.mutable_set_tags())[kKeepTag] = "paper";
  ASSERT_TRUE(scheduler_->Annotate(on_sweep).ok());
  // A run of it that ended with its checkpoint still recorded (as an older
  // coordinator left them) is kept too, in the plan as in the pass.
  v1::Run ended = *store_->GetRun(students_[1].id());
  ended.set_status(v1::FAILED);
  ASSERT_TRUE(store_->UpdateRun(ended).ok());
  EXPECT_EQ(Gc(true).files(), 0);
  EXPECT_EQ(Gc(false).files(), 0);
}

TEST_F(RetentionTest, ACheckpointAQueuedRunStartsFromIsKeptUntilItEnds) {
  RunSweep(0);
  // An evaluation of student D, queued.
  v1::ExperimentSpec evaluate = LoneTeacher();
  evaluate.set_kind(v1::EVALUATE);
  evaluate.clear_teacher();
  evaluate.set_student_run_id(students_[0].id());
  absl::StatusOr<v1::Run> queued = scheduler_->SubmitRun(evaluate);
  ASSERT_TRUE(queued.ok()) << queued.status();
  EXPECT_THAT(Runs(Gc(true)),
              ElementsAre(students_[1].id(), students_[2].id()));
  EXPECT_THAT(Runs(Gc(false)),
              ElementsAre(students_[1].id(), students_[2].id()));
  EXPECT_TRUE(HasFile(students_[0].id(), kCheckpointFile));
  Succeed(Lease(), "evaluated", 0.6);
  EXPECT_THAT(Runs(Gc(false)), ElementsAre(students_[0].id()));
}

TEST_F(RetentionTest, ATeacherIsKeptWhileAStudentNeedsItAndByDefault) {
  RunSweep(1);
  EXPECT_THAT(Runs(Gc(true)),
              ElementsAre(students_[0].id(), students_[2].id()));
  // With drop_teachers, the teacher goes too once nothing needs it; a
  // queued student of it keeps it.
  v1::SweepSpec spec = SmallSweep("teachers");
  spec.mutable_retention()->set_keep_best(1);
  spec.mutable_retention()->set_drop_teachers(true);
  ASSERT_TRUE(scheduler_->SubmitSweep(spec).ok());
  const v1::Run teacher = Lease();
  Succeed(teacher, "teacher of teachers", 0.9);
  const v1::Run d = Lease();
  Succeed(d, "D of teachers", 0.5);
  // G (queued) needs the teacher.
  EXPECT_THAT(Runs(Gc(true, "teachers")), ElementsAre());
  Succeed(Lease(), "G of teachers", 0.8);
  EXPECT_THAT(Runs(Gc(false, "teachers")), ElementsAre(teacher.id(), d.id()));
  // A student submitted against it now is refused, saying why.
  v1::ExperimentSpec student = LoneTeacher();
  student.set_kind(v1::DISTILL);
  student.clear_teacher();
  student.mutable_teacher()->set_run_id(teacher.id());
  student.mutable_losses()->set_ce(1);
  absl::StatusOr<v1::Run> refused = scheduler_->SubmitRun(student);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("teacher.run_id 5 has no checkpoint: checkpoint"));
}

TEST_F(RetentionTest, AFileAnotherRunSharesFreesNothingUntilBothGo) {
  v1::SweepSpec spec = SmallSweep("shared");
  spec.mutable_retention()->set_keep_best(1);
  ASSERT_TRUE(scheduler_->SubmitSweep(spec).ok());
  Succeed(Lease(), "teacher", 0.9);
  const v1::Run d = Lease();
  Succeed(d, "same bytes", 0.5);
  const v1::Run g = Lease();
  Succeed(g, "same bytes", 0.8);
  const v1::CollectGarbageResponse plan = Gc(true);
  EXPECT_THAT(Runs(plan), ElementsAre(d.id()));
  EXPECT_EQ(plan.bytes_freed(), 0);
  EXPECT_EQ(Gc(false).bytes_freed(), 0);
  EXPECT_TRUE(HasFile(g.id(), kCheckpointFile));
}

TEST_F(RetentionTest, AnEndedRunsLeftoverCheckpointGoesItsTsneStays) {
  // As an older coordinator left them: a cancelled run with its files.
  auto submitted = scheduler_->SubmitRun(LoneTeacher());
  const v1::Run run = Lease();
  Upload(run, "tsne", kTsneFile);
  Upload(run, "weights");
  Fail(run, "out of memory");
  ASSERT_TRUE(store_
                  ->InsertRunFile({Sha256Hex("weights"), run.id(), 1, 7,
                                   "run-files/x", kCheckpointFile})
                  .ok());
  ASSERT_TRUE(store_
                  ->InsertRunFile({Sha256Hex("tsne"), run.id(), 1, 4,
                                   "run-files/y", kTsneFile})
                  .ok());
  const v1::CollectGarbageResponse plan = Gc(true);
  ASSERT_EQ(plan.files(), 1);
  EXPECT_EQ(plan.dropped(0).name(), kCheckpointFile);
  EXPECT_EQ(plan.dropped(0).reason(), "the run ended FAILED");
  (void)submitted;
}

TEST_F(RetentionTest, AnUnknownSweepIsNotFoundAndOnlyTheNamedSweepIsPlanned) {
  RunSweep(0);
  v1::CollectGarbageRequest request;
  request.set_dry_run(true);
  request.set_sweep("nosuch");
  EXPECT_EQ(scheduler_->CollectGarbage(request).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(Gc(true, "kept").files(), 3);
  EXPECT_EQ(Gc(true, "1").files(), 3);
}

}  // namespace
}  // namespace distill
