// The scheduler's reads (server/scheduling/reads.h): watches, pages of
// listings, workers and tokens, missing runs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>

#include "absl/strings/str_cat.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

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

TEST_F(FileSchedulerTest, ListingsAndHistoryComeInPages) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(
        scheduler_->SubmitSweep(SmallSweep(absl::StrCat("pages-", i))).ok());
  }
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

TEST_F(SchedulerTest, MissingRunIsNotFound) {
  EXPECT_EQ(scheduler_->GetRun(99).status().code(),
            absl::StatusCode::kNotFound);
  WatchCursor cursor;
  EXPECT_EQ(scheduler_->PollRunEvent(99, &cursor).status().code(),
            absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace distill
