// The coordinator's background loops (server/base/periodic_thread.h).
#include "server/base/periodic_thread.h"

#include <gtest/gtest.h>

#include <atomic>

#include "tests/wait_for.h"

namespace distill {
namespace {

TEST(PeriodicThreadTest, TicksAtStartOrAfterAPeriodUntilStopped) {
  std::atomic<int> at_start{0}, after{0};
  PeriodicThread first(absl::Hours(1), PeriodicThread::First::kAtStart,
                       [&] { ++at_start; });
  PeriodicThread later(absl::Hours(1), PeriodicThread::First::kAfterPeriod,
                       [&] { ++after; });
  ASSERT_TRUE(WaitFor([&] { return at_start == 1; }));
  // Stopping does not wait for the hour: the wait ends at once.
  const absl::Time start = absl::Now();
  first.Stop();
  later.Stop();
  later.Stop();  // Idempotent.
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(at_start, 1);
  EXPECT_EQ(after, 0);
}

TEST(PeriodicThreadTest, TicksEveryPeriod) {
  std::atomic<int> ticks{0};
  {
    PeriodicThread loop(absl::Milliseconds(1),
                        PeriodicThread::First::kAfterPeriod, [&] { ++ticks; });
    ASSERT_TRUE(WaitFor([&] { return ticks >= 5; }));
  }  // The destructor stops it and joins its thread: nothing ticks after.
  EXPECT_GE(ticks, 5);
}

}  // namespace
}  // namespace distill
