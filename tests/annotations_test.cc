// The scheduler's annotations (server/scheduling/annotations.h): tags and
// notes.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace distill
