// Members run with several seeds as a researcher reads them: mean, sample
// standard deviation, n and a 95 % confidence interval (Student's t), and
// each member's difference to a baseline row with its interval (paired
// over the seeds both ran, Welch's otherwise).
#ifndef DISTILL_RENDER_SEEDS_H_
#define DISTILL_RENDER_SEEDS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "distill/v1/experiment_service.pb.h"
#include "render/results.h"

namespace distill {

// The 0.975 quantile of Student's t with `df` >= 1 degrees of freedom,
// whole or fractional (12.706 at 1, 6.020 at 1.5, 2.045 at 29, 1.960 in
// the limit): Boost.Math's students_t.
double StudentT975(double df);

struct SeedSummary {
  int n = 0;
  double mean = 0;
  double sd = 0;  // Sample standard deviation; 0 for n = 1.
  // The 95 % interval of the mean; empty for n = 1.
  std::optional<std::pair<double, double>> interval;
};
SeedSummary Summarise(const std::vector<double>& values);

struct SeedDifference {
  double mean = 0;  // b - a.
  std::optional<std::pair<double, double>> interval;
  bool paired = false;  // Over the seeds both ran.
  int n = 0;            // Pairs, or the smaller side's runs.
};
// b - a of one result by seed: paired over the seeds both ran, Welch's
// between two sets of runs, the interval of the side with several runs
// about a single run's value; no interval for one run each; nullopt when
// either side has none.
std::optional<SeedDifference> Difference(const std::map<int64_t, double>& a,
                                         const std::map<int64_t, double>& b);

// Whether the difference's interval lies wholly on one side of 0.
bool ExcludesZero(const SeedDifference& d);

// The fewest decimals (1 to 3) at which the distinct `values` print apart.
int DecimalsToTellApart(std::vector<double> values);

// "H/T=4/seed=2" -> 2; 0 for a member without a seed part.
int64_t SeedOf(const std::string& member);

// Each row's (member without its seed part) values of `column` by seed, in
// the column's unit (percentages in points); the teacher as row "O".
std::map<std::string, std::map<int64_t, double>> RowValues(
    const v1::SweepResults& results, const ResultColumn& column);

// One row of the summary over seeds: a member (its name without the seed
// part) over its runs with a result, each column's summary (in the
// column's unit: percentages in points), and its difference to the
// baseline row in the first column.
struct SummaryRow {
  std::string row;
  int asked = 0;  // Runs the member has (its seeds), with a result or not.
  std::vector<SeedSummary> columns;
  bool is_baseline = false;
  // B - baseline; nullopt for the baseline itself, without a baseline, or
  // where a side has no result.
  std::optional<SeedDifference> vs_baseline;
};
struct SeedRows {
  bool seeded = false;  // Members named ".../seed=N".
  // The baseline asked for and found among the rows.
  bool baseline_found = false;
  std::vector<SummaryRow> rows;  // In the members' order.
};
SeedRows SummariseRows(const v1::SweepResults& results,
                       const std::vector<ResultColumn>& columns,
                       const std::string& baseline = "");

// For a sweep with seeds (members named ".../seed=N"): each member over its
// seeds, each column's mean ± sample std, then n and the first column's
// 95 % interval; with `baseline` (a member without its seed part, e.g.
// "D"), each member's difference to it in the first column, its interval
// and "*" when the interval excludes 0. Empty for a sweep without seeds
// and no baseline. A baseline no member has is named in the text.
std::string FormatSeedSummary(
    const v1::SweepResults& results,
    const std::vector<ResultColumn>& columns = AllResultColumns(),
    const std::string& baseline = "");

// `distill compare A B` for sweeps with seeds: each member both ran, B - A
// in the first column with its 95% interval; empty without seeds.
std::string FormatSeedComparison(const v1::SweepResults& a,
                                 const v1::SweepResults& b,
                                 const std::vector<ResultColumn>& columns);

}  // namespace distill

#endif  // DISTILL_RENDER_SEEDS_H_
