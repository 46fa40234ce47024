// Early stopping of a sweep's members, as pure functions of the chosen
// per-epoch metric's history: the median rule (Optuna's MedianPruner) and
// asynchronous successive halving (ASHA, as Ray Tune's). The scheduler asks
// after each epoch a member reports; a member stopped ends PRUNED with the
// decision's reason as its message. A member with seeds is judged as one,
// on the mean of its seeds' curves (MeanCurve), and its seeds stop
// together.
#ifndef DISTILL_COMMON_EARLY_STOPPING_H_
#define DISTILL_COMMON_EARLY_STOPPING_H_

#include <string>
#include <vector>

namespace distill {

enum class Goal { kMaximize, kMinimize };  // e.g. eval/top1, train/loss

// One member's metric after each epoch: values[e - 1] is epoch e's.
struct Curve {
  std::vector<double> values;
  bool completed = false;  // The member ran all its epochs.
};

// A member's curve from its seeds' (replicates'): each epoch's value the
// mean of the replicates that reached it; completed when every one did.
Curve MeanCurve(const std::vector<Curve>& replicates);

struct StopDecision {
  bool stop = false;
  std::string reason;  // Why, with the numbers; empty when it goes on.
};

// The median rule: after `warmup_epochs`, and once `min_completed` members
// have completed, a member whose value at epoch e is worse than the median
// of the completed members' values at e stops.
struct MedianRule {
  int warmup_epochs = 1;
  int min_completed = 3;
};

// `member` has just reported epoch `epoch` (1-based; REQUIRES:
// member.values.size() >= epoch); `others` are the sweep's other members.
StopDecision MedianDecision(const MedianRule& rule, Goal goal,
                            const Curve& member, int epoch,
                            const std::vector<Curve>& others);

// ASHA: rungs at grace_period x reduction_factor^k epochs below
// max_epochs. A member reaching a rung goes on only if its value is within
// the best 1 / reduction_factor of the values recorded at that rung so far
// (the first to arrive always goes on); otherwise it stops there.
struct AshaRule {
  int grace_period = 1;
  double reduction_factor = 3;
  int max_epochs = 0;
};

// The rungs (epochs) of `rule`, ascending.
std::vector<int> AshaRungs(const AshaRule& rule);

// A member reached `epoch` with `value`; `recorded` are the values other
// members recorded at this epoch when they reached it (when `epoch` is a
// rung). Epochs that are not rungs never stop.
StopDecision AshaDecision(const AshaRule& rule, Goal goal, int epoch,
                          double value, const std::vector<double>& recorded);

// numpy's default percentile (linear interpolation), q in [0, 100].
// REQUIRES: !values.empty().
double Percentile(std::vector<double> values, double q);

}  // namespace distill

#endif  // DISTILL_COMMON_EARLY_STOPPING_H_
