#include "render/claims.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sweep_expansion.h"
#include "render/results.h"
#include "render/seeds.h"

namespace distill {
namespace {

using ByRow = std::map<std::string, std::map<int64_t, double>>;

std::string Num(double v) { return absl::StrFormat("%.2f", v); }

// Whether x is above y: by the 95% interval of x - y when there is one,
// else by the values (equal counts as above, for "at or above").
Verdict Above(const std::map<int64_t, double>& x,
              const std::map<int64_t, double>& y, std::string* numbers) {
  std::optional<SeedDifference> d = Difference(y, x);
  if (!d) return Verdict::kUndecided;
  absl::StrAppend(numbers, d->mean >= 0 ? "+" : "", Num(d->mean));
  if (!d->interval) return d->mean >= 0 ? Verdict::kHolds : Verdict::kFails;
  absl::StrAppend(numbers, " [", Num(d->interval->first), ", ",
                  Num(d->interval->second), "]");
  if (d->interval->first > 0) return Verdict::kHolds;
  if (d->interval->second < 0) return Verdict::kFails;
  return Verdict::kUndecided;
}

// All of `verdicts`: holds when each holds, fails when one fails.
Verdict AllOf(const std::vector<Verdict>& verdicts) {
  if (verdicts.empty()) return Verdict::kUndecided;
  if (std::count(verdicts.begin(), verdicts.end(), Verdict::kFails) > 0)
    return Verdict::kFails;
  if (std::count(verdicts.begin(), verdicts.end(), Verdict::kHolds) ==
      std::ptrdiff_t(verdicts.size())) {
    return Verdict::kHolds;
  }
  return Verdict::kUndecided;
}

double Mean(const std::map<int64_t, double>& by_seed) {
  std::vector<double> v;
  for (const auto& [seed, x] : by_seed) v.push_back(x);
  return Summarise(v).mean;
}

// Rows with a distillation loss (MSE, IKD or RKD).
std::vector<std::string> DistillationRows(const v1::SweepResults& results) {
  std::vector<std::string> rows;
  for (const v1::MemberResult& m : results.members()) {
    const v1::Losses& l = m.losses();
    const bool distils = l.mse() > 0 || l.ikd().weight() > 0 ||
                         l.rkd().distance_weight() > 0 ||
                         l.rkd().angle_weight() > 0;
    const std::string row = WithoutSeed(m.name());
    if (distils && std::find(rows.begin(), rows.end(), row) == rows.end())
      rows.push_back(row);
  }
  return rows;
}

ClaimVerdict Judge(const v1::Claim& claim, const v1::SweepResults& results) {
  ClaimVerdict out{claim.text(), "", Verdict::kUndecided};
  absl::StatusOr<std::vector<ResultColumn>> columns =
      ParseResultColumns(claim.metric().empty() ? "top1" : claim.metric());
  if (!columns.ok() || columns->size() != 1) {
    out.numbers = absl::StrCat("no metric \"", claim.metric(), "\"");
    return out;
  }
  const ResultColumn& column = (*columns)[0];
  const ByRow rows = RowValues(results, column);
  auto row = [&](const std::string& name) -> const std::map<int64_t, double>* {
    auto it = rows.find(name);
    return it == rows.end() || it->second.empty() ? nullptr : &it->second;
  };
  auto missing = [&](const std::string& name) {
    out.numbers = absl::StrCat("no ", column.header, " for row ", name, " yet");
    return out;
  };
  switch (claim.kind()) {
    case v1::NEAR_CHANCE: {
      if (row(claim.row()) == nullptr) return missing(claim.row());
      const double chance =
          100.0 / (claim.classes() > 0 ? claim.classes() : 10);
      const double within = claim.within() > 0 ? claim.within() : 2;
      std::vector<double> v;
      for (const auto& [seed, x] : *row(claim.row())) v.push_back(x);
      const SeedSummary s = Summarise(v);
      const double lo = s.interval ? s.interval->first : s.mean;
      const double hi = s.interval ? s.interval->second : s.mean;
      out.numbers = absl::StrCat(
          claim.row(), " ", Num(s.mean),
          s.interval ? absl::StrCat(" [", Num(lo), ", ", Num(hi), "]") : "",
          "; chance ", Num(chance), " ± ", Num(within));
      out.verdict =
          lo >= chance - within && hi <= chance + within ? Verdict::kHolds
          : hi < chance - within || lo > chance + within ? Verdict::kFails
                                                         : Verdict::kUndecided;
      return out;
    }
    case v1::AT_LEAST: {
      if (row(claim.row()) == nullptr) return missing(claim.row());
      if (row(claim.other()) == nullptr) return missing(claim.other());
      out.numbers = absl::StrCat(claim.row(), " ", Num(Mean(*row(claim.row()))),
                                 " vs ", claim.other(), " ",
                                 Num(Mean(*row(claim.other()))), ": ");
      out.verdict = Above(*row(claim.row()), *row(claim.other()), &out.numbers);
      return out;
    }
    case v1::BEST:
    case v1::EXCEEDS: {
      const bool best = claim.kind() == v1::BEST;
      const std::string& reference = best ? claim.row() : claim.other();
      if (row(reference) == nullptr) return missing(reference);
      std::vector<std::string> names;
      if (best) {
        for (const auto& [name, values] : rows) {
          if (name != reference && name != "O" && !values.empty())
            names.push_back(name);
        }
      } else {
        names = claim.rows().empty()
                    ? DistillationRows(results)
                    : std::vector<std::string>(claim.rows().begin(),
                                               claim.rows().end());
      }
      std::vector<Verdict> verdicts;
      std::vector<std::string> parts;
      for (const std::string& name : names) {
        if (row(name) == nullptr) continue;
        std::string numbers = absl::StrCat(best ? reference : name, " - ",
                                           best ? name : reference, " ");
        verdicts.push_back(best ? Above(*row(reference), *row(name), &numbers)
                                : Above(*row(name), *row(reference), &numbers));
        parts.push_back(numbers);
      }
      out.numbers =
          absl::StrCat(column.header, ": ", absl::StrJoin(parts, "; "));
      out.verdict = AllOf(verdicts);
      return out;
    }
    case v1::ORDERED: {
      std::vector<std::pair<double, double>> pairs;
      for (const v1::RowValue& paper : claim.reference()) {
        if (row(paper.row()) != nullptr)
          pairs.emplace_back(Mean(*row(paper.row())), paper.value());
      }
      const double tau = KendallTau(pairs);
      const double min_tau = claim.min_tau() != 0 ? claim.min_tau() : 0.5;
      out.numbers = absl::StrFormat(
          "Kendall's tau %.2f between the measured and the paper's %s over "
          "%d rows (holds from %.2f)",
          tau, column.header, int(pairs.size()), min_tau);
      out.verdict = pairs.size() < 2 ? Verdict::kUndecided
                    : tau >= min_tau ? Verdict::kHolds
                                     : Verdict::kFails;
      return out;
    }
    default:
      out.numbers = "a claim of no known kind";
      return out;
  }
}

}  // namespace

double KendallTau(const std::vector<std::pair<double, double>>& pairs) {
  double concordant = 0, discordant = 0, ties_x = 0, ties_y = 0;
  for (size_t i = 0; i < pairs.size(); ++i) {
    for (size_t j = i + 1; j < pairs.size(); ++j) {
      const double dx = pairs[i].first - pairs[j].first;
      const double dy = pairs[i].second - pairs[j].second;
      if (dx == 0 && dy == 0) continue;
      if (dx == 0) {
        ++ties_x;
      } else if (dy == 0) {
        ++ties_y;
      } else if ((dx > 0) == (dy > 0)) {
        ++concordant;
      } else {
        ++discordant;
      }
    }
  }
  const double denominator = std::sqrt((concordant + discordant + ties_x) *
                                       (concordant + discordant + ties_y));
  return denominator == 0 ? 0 : (concordant - discordant) / denominator;
}

std::string VerdictWord(Verdict verdict) {
  switch (verdict) {
    case Verdict::kHolds:
      return "holds";
    case Verdict::kFails:
      return "does not hold";
    default:
      return "undecided";
  }
}

std::vector<ClaimVerdict> JudgeClaims(const v1::SweepResults& results) {
  std::vector<ClaimVerdict> verdicts;
  for (const v1::Claim& claim : results.sweep().spec().claims())
    verdicts.push_back(Judge(claim, results));
  return verdicts;
}

std::string FormatClaims(const v1::SweepResults& results) {
  const std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  if (verdicts.empty()) return "";
  std::string out = "\nclaims:\n";
  for (const ClaimVerdict& v : verdicts) {
    absl::StrAppend(&out, "  ", VerdictWord(v.verdict), ": ", v.text,
                    "\n      ", v.numbers, "\n");
  }
  return out;
}

}  // namespace distill
