// The early-stopping rules on synthetic learning curves.
#include "common/early_stopping.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

namespace distill {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// top-1 after epochs 1..4 of members that learn at different rates.
Curve Done(std::vector<double> v) { return {std::move(v), true}; }
const std::vector<Curve> kCompleted = {
    Done({0.50, 0.70, 0.80, 0.85}),
    Done({0.55, 0.72, 0.82, 0.86}),
    Done({0.40, 0.65, 0.78, 0.84}),
};

TEST(EarlyStoppingTest, PercentileInterpolatesAsNumpy) {
  EXPECT_DOUBLE_EQ(Percentile({3, 1, 2}, 50), 2);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 50), 2.5);
  EXPECT_DOUBLE_EQ(Percentile({1, 2, 3, 4}, 100.0 * 2 / 3), 3);
  EXPECT_DOUBLE_EQ(Percentile({7}, 10), 7);
}

TEST(EarlyStoppingTest, MedianRuleStopsACurveBelowTheMedianAfterWarmUp) {
  const MedianRule rule{/*warmup_epochs=*/1, /*min_completed=*/3};
  const Curve slow{{0.30, 0.50}, false};
  // Epoch 1 is warm-up: never stopped, however low.
  EXPECT_FALSE(MedianDecision(rule, Goal::kMaximize, slow, 1, kCompleted).stop);
  const StopDecision d =
      MedianDecision(rule, Goal::kMaximize, slow, 2, kCompleted);
  EXPECT_TRUE(d.stop);
  EXPECT_THAT(d.reason, HasSubstr("pruned at epoch 2 by the median rule: "
                                  "0.5 is lower than the median 0.7 of 3 "
                                  "completed members"));
  // At or above the median it goes on.
  const Curve fair{{0.30, 0.70}, false};
  EXPECT_FALSE(MedianDecision(rule, Goal::kMaximize, fair, 2, kCompleted).stop);
}

TEST(EarlyStoppingTest, MedianRuleWaitsForEnoughCompletedMembers) {
  const MedianRule rule{1, 3};
  const Curve slow{{0.30, 0.50}, false};
  std::vector<Curve> two = {kCompleted[0], kCompleted[1]};
  two.push_back({{0.9, 0.9}, false});  // Running members do not count.
  EXPECT_FALSE(MedianDecision(rule, Goal::kMaximize, slow, 2, two).stop);
  EXPECT_FALSE(MedianDecision({1, 0}, Goal::kMaximize, slow, 2, {}).stop);
}

TEST(EarlyStoppingTest, MedianRuleMinimisesALoss) {
  const std::vector<Curve> losses = {
      Done({2.0, 1.0, 0.5}), Done({2.2, 1.2, 0.6}), Done({1.8, 0.8, 0.4})};
  const StopDecision d = MedianDecision({1, 3}, Goal::kMinimize,
                                        Curve{{2.5, 1.5}, false}, 2, losses);
  EXPECT_TRUE(d.stop);
  EXPECT_THAT(d.reason, HasSubstr("1.5 is higher than the median 1"));
  EXPECT_FALSE(MedianDecision({1, 3}, Goal::kMinimize, Curve{{2.5, 0.9}, false},
                              2, losses)
                   .stop);
}

TEST(EarlyStoppingTest, AMembersCurveIsTheMeanOfItsSeedsThatReachedEachEpoch) {
  Curve done{{0.2, 0.4, 0.6}, true};
  Curve running{{0.4, 0.6}, false};
  const Curve mean = MeanCurve({done, running});
  ASSERT_EQ(mean.values.size(), 3u);
  EXPECT_DOUBLE_EQ(mean.values[0], 0.3);
  EXPECT_DOUBLE_EQ(mean.values[1], 0.5);
  EXPECT_DOUBLE_EQ(mean.values[2], 0.6);  // Only the seed that got there.
  EXPECT_FALSE(mean.completed);           // Not until every seed did.
  running.values.push_back(0.8);
  running.completed = true;
  EXPECT_TRUE(MeanCurve({done, running}).completed);
  EXPECT_DOUBLE_EQ(MeanCurve({done, running}).values[2], 0.7);
  EXPECT_FALSE(MeanCurve({}).completed);
  EXPECT_TRUE(MeanCurve({}).values.empty());
}

TEST(EarlyStoppingTest, AshaRungsGrowByTheReductionFactor) {
  EXPECT_THAT(AshaRungs({1, 3, 27}), ElementsAre(1, 3, 9));
  EXPECT_THAT(AshaRungs({2, 2, 20}), ElementsAre(2, 4, 8, 16));
  EXPECT_THAT(AshaRungs({1, 3, 1}), ElementsAre());
  EXPECT_THAT(AshaRungs({0, 3, 9}), ElementsAre());  // No grace: no rungs.
}

TEST(EarlyStoppingTest, AshaKeepsTheBestThirdAtEachRung) {
  const AshaRule rule{1, 3, 27};
  // The first member at a rung always goes on.
  EXPECT_FALSE(AshaDecision(rule, Goal::kMaximize, 1, 0.1, {}).stop);
  // Rung 3 holds 0.5 .. 0.8: the cutoff is their 66.7th percentile, 0.7.
  const std::vector<double> at_3 = {0.5, 0.6, 0.7, 0.8};
  const StopDecision d = AshaDecision(rule, Goal::kMaximize, 3, 0.65, at_3);
  EXPECT_TRUE(d.stop);
  EXPECT_THAT(d.reason, HasSubstr("pruned at epoch 3 by ASHA (rung 2 of 3, "
                                  "reduction factor 3): 0.65 is not within "
                                  "the best 1/3 of the 4 members at this "
                                  "rung (cutoff 0.7)"));
  EXPECT_FALSE(AshaDecision(rule, Goal::kMaximize, 3, 0.7, at_3).stop);
  // Between rungs nothing stops.
  EXPECT_FALSE(AshaDecision(rule, Goal::kMaximize, 4, 0.0, at_3).stop);
  // A loss: the best third are the lowest.
  EXPECT_TRUE(AshaDecision(rule, Goal::kMinimize, 3, 0.65, at_3).stop);
  EXPECT_FALSE(AshaDecision(rule, Goal::kMinimize, 3, 0.55, at_3).stop);
}

TEST(EarlyStoppingTest, AshaOnAGridOfCurvesStopsTheSlowOnes) {
  // Nine members whose top-1 rises at rates 0.1 .. 0.9 per epoch, arriving
  // at rung 1 in order: with factor 3 the slow ones stop once the rung has
  // seen faster ones, the fastest always go on.
  const AshaRule rule{1, 3, 9};
  std::vector<double> recorded;
  int stopped = 0;
  for (int m = 9; m >= 1; --m) {  // Fastest first.
    const double value = 0.1 * m;
    stopped += AshaDecision(rule, Goal::kMaximize, 1, value, recorded).stop;
    recorded.push_back(value);
  }
  EXPECT_EQ(stopped, 8);  // Each later, slower member is below the cutoff.
  recorded.clear();
  stopped = 0;
  for (int m = 1; m <= 9; ++m) {  // Slowest first: each improves on all.
    const double value = 0.1 * m;
    stopped += AshaDecision(rule, Goal::kMaximize, 1, value, recorded).stop;
    recorded.push_back(value);
  }
  EXPECT_EQ(stopped, 0);
}

}  // namespace
}  // namespace distill
