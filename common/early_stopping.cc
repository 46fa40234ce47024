#include "common/early_stopping.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_format.h"

namespace distill {
namespace {

// Whether `a` is worse than `b` for `goal`.
bool Worse(Goal goal, double a, double b) {
  return goal == Goal::kMaximize ? a < b : a > b;
}

}  // namespace

double Percentile(std::vector<double> values, double q) {
  std::sort(values.begin(), values.end());
  const double position = q / 100.0 * double(values.size() - 1);
  const size_t below = size_t(std::floor(position));
  const size_t above = std::min(below + 1, values.size() - 1);
  const double fraction = position - double(below);
  return values[below] + fraction * (values[above] - values[below]);
}

Curve MeanCurve(const std::vector<Curve>& replicates) {
  Curve mean;
  mean.completed = !replicates.empty();
  size_t epochs = 0;
  for (const Curve& r : replicates) {
    epochs = std::max(epochs, r.values.size());
    mean.completed = mean.completed && r.completed;
  }
  for (size_t e = 0; e < epochs; ++e) {
    double sum = 0;
    int n = 0;
    for (const Curve& r : replicates) {
      if (r.values.size() > e) {
        sum += r.values[e];
        ++n;
      }
    }
    mean.values.push_back(sum / n);
  }
  return mean;
}

StopDecision MedianDecision(const MedianRule& rule, Goal goal,
                            const Curve& member, int epoch,
                            const std::vector<Curve>& others) {
  if (epoch <= rule.warmup_epochs) return {};
  std::vector<double> at_epoch;
  int completed = 0;
  for (const Curve& other : others) {
    if (!other.completed) continue;
    ++completed;
    if (int(other.values.size()) >= epoch)
      at_epoch.push_back(other.values[epoch - 1]);
  }
  if (completed < rule.min_completed || at_epoch.empty()) return {};
  const double median = Percentile(at_epoch, 50);
  const double value = member.values[epoch - 1];
  if (!Worse(goal, value, median)) return {};
  return {true, absl::StrFormat(
                    "pruned at epoch %d by the median rule: %.6g is %s "
                    "than the median %.6g of %d completed members",
                    epoch, value, goal == Goal::kMaximize ? "lower" : "higher",
                    median, int(at_epoch.size()))};
}

std::vector<int> AshaRungs(const AshaRule& rule) {
  std::vector<int> rungs;
  if (rule.grace_period < 1 || rule.reduction_factor <= 1) return rungs;
  for (double r = rule.grace_period; r < rule.max_epochs;
       r *= rule.reduction_factor) {
    const int epoch = int(std::lround(r));
    if (rungs.empty() || epoch > rungs.back()) rungs.push_back(epoch);
  }
  return rungs;
}

StopDecision AshaDecision(const AshaRule& rule, Goal goal, int epoch,
                          double value, const std::vector<double>& recorded) {
  const std::vector<int> rungs = AshaRungs(rule);
  if (std::find(rungs.begin(), rungs.end(), epoch) == rungs.end()) return {};
  if (recorded.empty()) return {};  // The first to arrive goes on.
  // The best 1/rf of the recorded values: for a maximised metric those at
  // or above the (1 - 1/rf) quantile.
  const double keep = 100.0 / rule.reduction_factor;
  const double cutoff =
      Percentile(recorded, goal == Goal::kMaximize ? 100.0 - keep : keep);
  if (!Worse(goal, value, cutoff)) return {};
  return {
      true,
      absl::StrFormat(
          "pruned at epoch %d by ASHA (rung %d of %d, "
          "reduction factor %g): %.6g is not within the best "
          "1/%g of the %d members at this rung (cutoff %.6g)",
          epoch,
          int(std::find(rungs.begin(), rungs.end(), epoch) - rungs.begin()) + 1,
          int(rungs.size()), rule.reduction_factor, value,
          rule.reduction_factor, int(recorded.size()), cutoff)};
}

}  // namespace distill
