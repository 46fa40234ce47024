// Owners (issue 31): every run and sweep records who submitted it; a
// researcher may change only their own, an admin any; a researcher's
// priority is bounded; a QUEUED or WAITING run says why it waits.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "common/token.h"
#include "tests/scheduler_fixture.h"
#include "tests/temp_dir.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST_F(SchedulerTest, RunsAndSweepsRecordTheirOwner) {
  const v1::Run run = *scheduler_->SubmitRun(LoneTeacher(), kAlice);
  EXPECT_EQ(run.owner(), "alice");
  EXPECT_EQ(scheduler_->GetRun(run.id())->owner(), "alice");
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("bobs"), kBob);
  EXPECT_EQ(sweep.sweep().owner(), "bob");
  for (const v1::Run& r : sweep.runs()) EXPECT_EQ(r.owner(), "bob");
  EXPECT_EQ(scheduler_->SweepResults("bobs")->sweep().owner(), "bob");
  // Without tokens (the default requester): anonymous.
  EXPECT_EQ(scheduler_->SubmitRun(LoneTeacher())->owner(), kAnonymousOwner);
  // Listed by owner.
  v1::ListRunsRequest mine;
  mine.set_owner("bob");
  EXPECT_EQ(scheduler_->FindRuns(mine)->runs.size(), size_t(sweep.runs_size()));
  mine.set_owner("nobody");
  EXPECT_TRUE(scheduler_->FindRuns(mine)->runs.empty());
  mine.set_owner(std::string(300, 'x'));
  EXPECT_EQ(scheduler_->FindRuns(mine).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SchedulerTest, AResearcherChangesOnlyTheirOwnAnAdminAny) {
  const v1::Run run = *scheduler_->SubmitRun(LoneTeacher(), kAlice);
  absl::StatusOr<v1::Run> refused = scheduler_->CancelRun(run.id(), kBob);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr(absl::StrCat("run ", run.id(),
                                     " belongs to alice; bob "
                                     "may change only their own")));
  v1::AnnotateRequest tag;
  tag.set_run_id(run.id());
  (*tag.mutable_set_tags())["paper"] = "yes";
  EXPECT_EQ(scheduler_->Annotate(tag, kBob).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(scheduler_->Annotate(tag, kAlice).ok());
  EXPECT_TRUE(scheduler_->CancelRun(run.id(), kAdmin).ok());

  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("alices"), kAlice).ok());
  for (auto action : {&Scheduler::CancelSweep, &Scheduler::RetrySweep}) {
    absl::StatusOr<v1::SweepActionResponse> no =
        (scheduler_.get()->*action)("alices", kBob);
    EXPECT_EQ(no.status().code(), absl::StatusCode::kPermissionDenied);
    EXPECT_THAT(std::string(no.status().message()),
                HasSubstr("(alices) belongs to alice"));
  }
  v1::AnnotateRequest note;
  note.set_sweep("alices");
  note.set_note("mine");
  EXPECT_EQ(scheduler_->Annotate(note, kBob).status().code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(scheduler_->CancelSweep("alices", kAlice).ok());
  EXPECT_TRUE(scheduler_->RetrySweep("alices", kAdmin).ok());
  // Retried runs stay the sweep owner's, not the admin's.
  const std::vector<v1::Run> queued = *scheduler_->ListRuns(0, v1::QUEUED);
  ASSERT_FALSE(queued.empty());
  for (const v1::Run& r : queued) EXPECT_EQ(r.owner(), "alice") << r.id();
}

TEST_F(SchedulerTest, AResearchersPriorityIsBounded) {
  v1::SweepSpec high = SmallSweep("urgent");
  high.set_priority(500);
  absl::StatusOr<v1::SubmitSweepResponse> refused =
      scheduler_->SubmitSweep(high, kAlice);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(refused.status().message()),
      HasSubstr("priority 500 is above 0, the highest a researcher "
                "may give a sweep on this coordinator (--max_priority)"));
  EXPECT_TRUE(scheduler_->ListRuns(0, v1::RUN_STATUS_UNSPECIFIED)->empty());
  high.set_priority(-5);  // Lower is anyone's.
  EXPECT_TRUE(scheduler_->SubmitSweep(high, kAlice).ok());
  high.set_name("urgent2");
  high.set_priority(500);
  EXPECT_TRUE(scheduler_->SubmitSweep(high, kAdmin).ok());
}

// Revoking a revoked token says when it was revoked (issue 32: it said
// "revoked" again).
TEST_F(SchedulerTest, RevokingARevokedTokenSaysWhen) {
  TokenRecord token;
  token.name = "old-laptop";
  token.role = v1::ROLE_WORKER;
  token.sha256 = std::string(64, 'a');
  const TokenRecord stored = *scheduler_->InsertToken(token);
  ASSERT_TRUE(scheduler_->RevokeToken(stored.id).ok());
  clock_.AdvanceMs(60'000);
  const absl::Status again = scheduler_->RevokeToken(stored.id).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.message()),
              HasSubstr(absl::StrCat("token ", stored.id,
                                     " (old-laptop) was already revoked at ")));
  EXPECT_EQ(scheduler_->RevokeToken(stored.id + 100).status().code(),
            absl::StatusCode::kNotFound);
}

// A token's name is one owner: a second valid token of it is refused
// (issue 32: a duplicate name was accepted); a revoked one's name is free
// again; tokens are revoked by name as by id.
TEST_F(SchedulerTest, ATokensNameIsOneOwner) {
  TokenRecord token;
  token.name = "alice";
  token.role = v1::ROLE_RESEARCHER;
  token.sha256 = std::string(64, 'a');
  const TokenRecord first = *scheduler_->InsertToken(token);
  token.sha256 = std::string(64, 'b');
  const absl::Status twice = scheduler_->InsertToken(token).status();
  EXPECT_EQ(twice.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(twice.message()),
              HasSubstr(absl::StrCat("token ", first.id,
                                     " is named \"alice\" and valid")));
  // What a coordinator makes at its start need not be unique.
  const TokenRecord bootstrap =
      *scheduler_->InsertToken(token, /*unique_name=*/false);
  const absl::Status ambiguous = scheduler_->RevokeToken(0, "alice").status();
  EXPECT_EQ(ambiguous.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(ambiguous.message()),
              HasSubstr(absl::StrCat("ids ", first.id, ", ", bootstrap.id,
                                     "); revoke by id")));
  ASSERT_TRUE(scheduler_->RevokeToken(bootstrap.id).ok());
  auto revoked = scheduler_->RevokeToken(0, "alice");
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->id, first.id);
  EXPECT_EQ(scheduler_->RevokeToken(0, "alice").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(scheduler_->RevokeToken(0, "bob").status().code(),
            absl::StatusCode::kNotFound);
  token.sha256 = std::string(64, 'c');
  EXPECT_TRUE(scheduler_->InsertToken(token).ok());
}

// The tokens room (issue 33: token logic was in five files): turned on, it
// makes an admin token into its file once; a token it issues is let in at
// once and refused at once when revoked, whoever revokes it (before, only
// the AdminService told the authenticator); a name of digits is refused.
TEST_F(SchedulerTest, TheTokensRoomLetsInWhatItIssuesAndNotWhatItRevokes) {
  const TempDir dir("distill_tokens_room");
  const std::string admin_file = (dir.path() / "admin.token").string();
  EXPECT_FALSE(scheduler_->authenticator().enabled());
  ASSERT_TRUE(scheduler_->RequireTokens({.admin = admin_file}).ok());
  EXPECT_TRUE(scheduler_->authenticator().enabled());
  absl::StatusOr<std::string> admin = ReadTokenFile(admin_file);
  ASSERT_TRUE(admin.ok()) << admin.status();
  EXPECT_TRUE(scheduler_->authenticator()
                  .AuthorizeHeader("Bearer " + *admin, Permission::kAdminister)
                  .ok());
  // Started again on the same store: the admin's file is its token still.
  ASSERT_TRUE(scheduler_->RequireTokens({.admin = admin_file}).ok());
  EXPECT_EQ(*ReadTokenFile(admin_file), *admin);
  EXPECT_EQ(scheduler_->ListTokens()->size(), 1u);

  auto issued = scheduler_->IssueToken("alice", v1::ROLE_RESEARCHER);
  ASSERT_TRUE(issued.ok()) << issued.status();
  const std::string bearer = "Bearer " + issued->second;
  auto alice =
      scheduler_->authenticator().AuthorizeHeader(bearer, Permission::kChange);
  ASSERT_TRUE(alice.ok()) << alice.status();
  EXPECT_EQ(alice->name, "alice");
  ASSERT_TRUE(scheduler_->RevokeToken(0, "alice").ok());
  EXPECT_EQ(scheduler_->authenticator()
                .AuthorizeHeader(bearer, Permission::kRead)
                .status()
                .code(),
            absl::StatusCode::kUnauthenticated);
  const absl::Status digits =
      scheduler_->IssueToken("2024", v1::ROLE_VIEWER).status();
  EXPECT_EQ(digits.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(digits.message()), HasSubstr("is all digits"));
}

TEST_F(SchedulerTest, AWaitingRunSaysWhy) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("why"), kAlice);
  const int64_t teacher = sweep.runs(0).id();
  const int64_t student = sweep.runs(1).id();
  EXPECT_EQ(scheduler_->GetRun(student)->waiting_reason(),
            absl::StrCat("its teacher (run ", teacher, ") is QUEUED"));
  // Two more lone runs queue behind the teacher; one at a higher priority.
  const v1::Run second = *scheduler_->SubmitRun(LoneTeacher(), kBob);
  const v1::Run third = *scheduler_->SubmitRun(LoneTeacher(), kBob);
  // Fair share: bob's own run is surely ahead; alice, level with bob, goes
  // first by name.
  EXPECT_THAT(scheduler_->GetRun(third.id())->waiting_reason(),
              HasSubstr("1 run of bob ahead of it"));
  EXPECT_THAT(scheduler_->GetRun(third.id())->waiting_reason(),
              HasSubstr("1 other owner is served first by fair share (bob "
                        "used 0.0 GPU-hours, decayed, on 1 share)"));
  // The fixture's worker is idle: the first in line is leased next.
  EXPECT_THAT(scheduler_->GetRun(teacher)->waiting_reason(),
              HasSubstr("next in line"));
  const v1::Run leased = Lease();
  EXPECT_EQ(leased.id(), teacher);
  EXPECT_EQ(scheduler_->GetRun(teacher)->waiting_reason(), "");
  EXPECT_EQ(scheduler_->GetRun(student)->waiting_reason(),
            absl::StrCat("its teacher (run ", teacher, ") is RUNNING"));
  EXPECT_THAT(scheduler_->GetRun(second.id())->waiting_reason(),
              HasSubstr("every worker that meets it (1) is busy"));
  // The listing says the same.
  v1::ListRunsRequest queued;
  queued.set_status(v1::QUEUED);
  const RunPage page = *scheduler_->FindRuns(queued);
  ASSERT_FALSE(page.runs.empty());
  for (const v1::Run& r : page.runs)
    EXPECT_FALSE(r.waiting_reason().empty()) << r.id();
}

}  // namespace
}  // namespace distill
