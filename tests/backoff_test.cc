// Retry waits (common/backoff.h): doubling steps, each wait jittered, so
// that workers cut off together do not call back together.
#include "common/backoff.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

namespace distill {
namespace {

TEST(BackoffTest, StepsDoubleToTheCapAndEachWaitIsWithinHalfOfItsStep) {
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(10), /*seed=*/7);
  absl::Duration step = absl::Milliseconds(250);
  for (int i = 0; i < 12; ++i) {
    const absl::Duration wait = backoff.Next();
    EXPECT_GE(wait, step / 2) << i;
    EXPECT_LT(wait, step * 1.5) << i;
    step = std::min(step * 2, absl::Seconds(10));
    EXPECT_EQ(backoff.step(), step);
  }
  backoff.Reset();
  EXPECT_EQ(backoff.step(), absl::Milliseconds(250));
}

// Issue 30: after a coordinator restart every worker called at the same
// instants (a fixed 250 ms, 500 ms, 1 s, ...). 100 workers cut off at one
// instant: when each calls again, over its first five retries.
TEST(BackoffTest, WorkersCutOffTogetherDoNotCallBackTogether) {
  std::vector<absl::Duration> clock(100);
  std::vector<Backoff> workers;
  for (int w = 0; w < 100; ++w)
    workers.emplace_back(absl::Milliseconds(250), absl::Seconds(10));
  for (int retry = 0; retry < 5; ++retry) {
    std::set<int64_t> instants;  // Calls in the same millisecond.
    absl::Duration earliest = absl::InfiniteDuration(), latest;
    for (int w = 0; w < 100; ++w) {
      clock[size_t(w)] += workers[size_t(w)].Next();
      instants.insert(absl::ToInt64Milliseconds(clock[size_t(w)]));
      earliest = std::min(earliest, clock[size_t(w)]);
      latest = std::max(latest, clock[size_t(w)]);
    }
    // Spread over most of the step's width, not one instant.
    EXPECT_GT(instants.size(), 50u) << "retry " << retry;
    EXPECT_GT(latest - earliest, absl::Milliseconds(100) * (1 << retry))
        << "retry " << retry;
  }
}

}  // namespace
}  // namespace distill
