// The scheduler's metric ingestion (server/scheduling/ingest.h): whole batches,
// group commits, a stale report refused alone.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <thread>

#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

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

}  // namespace
}  // namespace distill
