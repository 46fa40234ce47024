#include "render/claims.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/sweep_expansion.h"
#include "render/html.h"
#include "render/results.h"
#include "render/seeds.h"

namespace distill {
namespace {

using ByRow = std::map<std::string, std::map<int64_t, double>>;

std::string Num(double v) { return absl::StrFormat("%.2f", v); }

// Whether x is above y: by the 95% interval of x - y when there is one,
// else by the values (equal counts as above, for "at or above"), saying so.
// Called only when every run of both rows has ended (Context::Waiting).
Verdict Above(const std::map<int64_t, double>& x,
              const std::map<int64_t, double>& y, std::string* numbers) {
  std::optional<SeedDifference> d = Difference(y, x);
  if (!d) return Verdict::kUndecided;
  absl::StrAppend(numbers, d->mean >= 0 ? "+" : "", Num(d->mean));
  // No spread to judge by: one run a side, or seeds whose values tie.
  if (!d->interval || d->interval->first == d->interval->second) {
    absl::StrAppend(numbers,
                    x.size() < 2 && y.size() < 2
                        ? " (one run each: by the values, no interval)"
                        : " (the seeds tie: by the values, no spread)");
    return d->mean >= 0 ? Verdict::kHolds : Verdict::kFails;
  }
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

// Rows with a distillation loss (any term but CE).
std::vector<std::string> DistillationRows(const v1::SweepResults& results) {
  std::vector<std::string> rows;
  for (const v1::MemberResult& m : results.members()) {
    const v1::Losses& l = m.losses();
    const bool distils = std::any_of(
        AllLossColumns().begin(), AllLossColumns().end(),
        [&](const LossColumn& c) { return c.name != "CE" && c.on(l); });
    const std::string row = WithoutSeed(m.name());
    if (distils && std::find(rows.begin(), rows.end(), row) == rows.end())
      rows.push_back(row);
  }
  return rows;
}

// The runs each row asks for (its members; the teacher row "O" one).
std::map<std::string, int> Asked(const v1::SweepResults& results) {
  std::map<std::string, int> asked;
  for (const v1::MemberResult& m : results.members())
    ++asked[WithoutSeed(m.name())];
  if (!SweepTeachers(results).empty()) asked["O"] = 1;
  return asked;
}

// The results of the runs that ended with a result: a run still waiting,
// queued or running, or one that failed, adds no value.
v1::SweepResults Finished(const v1::SweepResults& results) {
  v1::SweepResults finished = results;
  finished.clear_members();
  for (const v1::MemberResult& m : results.members()) {
    if (m.status() == v1::SUCCEEDED || m.status() == v1::PRUNED)
      *finished.add_members() = m;
  }
  finished.clear_teachers();
  for (const v1::TeacherResult& t : results.teachers()) {
    if (t.status() == v1::SUCCEEDED) *finished.add_teachers() = t;
  }
  if (results.teacher_status() != v1::SUCCEEDED) finished.clear_teacher_top1();
  return finished;
}

// What a claim is decided on: one metric's values by row and seed, of the
// runs that ended, and the runs each row asks for.
struct Context {
  const v1::Claim& claim;
  const v1::SweepResults& results;
  const ResultColumn& column;
  ByRow rows;
  std::map<std::string, int> asked;
  // The row's values; null when it has none yet.
  const std::map<int64_t, double>* Row(const std::string& name) const {
    auto it = rows.find(name);
    return it == rows.end() || it->second.empty() ? nullptr : &it->second;
  }
  // No verdict until every row it compares has all its runs: undecided,
  // naming the rows short of them ("D has 1 of 2 runs; E, F none of 2").
  std::optional<ClaimVerdict> Waiting(
      const std::vector<std::string>& names) const {
    std::vector<std::string> partly, none;
    for (const std::string& name : names) {
      auto it = asked.find(name);
      const int want = it == asked.end() ? 1 : it->second;
      const std::map<int64_t, double>* values = Row(name);
      const int have = values == nullptr ? 0 : int(values->size());
      if (have >= want) continue;
      if (have == 0) {
        none.push_back(absl::StrCat(name, " (of ", want, ")"));
      } else {
        partly.push_back(absl::StrCat(name, " has ", have, " of ", want));
      }
    }
    if (partly.empty() && none.empty()) return std::nullopt;
    std::vector<std::string> parts;
    if (!partly.empty()) parts.push_back(absl::StrJoin(partly, ", "));
    if (!none.empty())
      parts.push_back(
          absl::StrCat("no result yet: ", absl::StrJoin(none, ", ")));
    return ClaimVerdict{claim.text(),
                        absl::StrCat("waiting for every run it compares: ",
                                     absl::StrJoin(parts, "; ")),
                        Verdict::kUndecided};
  }
};

ClaimVerdict NearChance(const Context& c) {
  const v1::Claim& claim = c.claim;
  if (auto waiting = c.Waiting({claim.row()})) return *waiting;
  const double chance = 100.0 / (claim.classes() > 0 ? claim.classes() : 10);
  const double within = claim.within() > 0 ? claim.within() : 2;
  std::vector<double> v;
  for (const auto& [seed, x] : *c.Row(claim.row())) v.push_back(x);
  const SeedSummary s = Summarise(v);
  const double lo = s.interval ? s.interval->first : s.mean;
  const double hi = s.interval ? s.interval->second : s.mean;
  ClaimVerdict out{claim.text(), "", Verdict::kUndecided};
  out.numbers =
      absl::StrCat(claim.row(), " ", Num(s.mean),
                   s.interval ? absl::StrCat(" [", Num(lo), ", ", Num(hi), "]")
                              : " (one run: by the value, no interval)",
                   "; chance ", Num(chance), " ± ", Num(within));
  out.verdict = lo >= chance - within && hi <= chance + within ? Verdict::kHolds
                : hi < chance - within || lo > chance + within
                    ? Verdict::kFails
                    : Verdict::kUndecided;
  return out;
}

ClaimVerdict AtLeast(const Context& c) {
  const v1::Claim& claim = c.claim;
  if (auto waiting = c.Waiting({claim.row(), claim.other()})) return *waiting;
  ClaimVerdict out{claim.text(), "", Verdict::kUndecided};
  out.numbers =
      absl::StrCat(claim.row(), " ", Num(Mean(*c.Row(claim.row()))), " vs ",
                   claim.other(), " ", Num(Mean(*c.Row(claim.other()))), ": ");
  out.verdict = Above(*c.Row(claim.row()), *c.Row(claim.other()), &out.numbers);
  return out;
}

// BEST: the row above every other (or each of its rows); EXCEEDS: each of
// the rows above other.
ClaimVerdict Ranking(const Context& c) {
  const v1::Claim& claim = c.claim;
  const bool best = claim.kind() == v1::BEST;
  const std::string& reference = best ? claim.row() : claim.other();
  std::vector<std::string> names;
  if (best && claim.rows().empty()) {
    // Every row the sweep asks for, not only those with results.
    for (const auto& [name, want] : c.asked) {
      if (name != reference && name != "O") names.push_back(name);
    }
  } else if (best) {
    for (const std::string& name : claim.rows()) {
      if (name != reference) names.push_back(name);
    }
  } else {
    names = claim.rows().empty()
                ? DistillationRows(c.results)
                : std::vector<std::string>(claim.rows().begin(),
                                           claim.rows().end());
  }
  std::vector<std::string> involved = names;
  involved.push_back(reference);
  if (auto waiting = c.Waiting(involved)) return *waiting;
  std::vector<Verdict> verdicts;
  std::vector<std::string> parts;
  for (const std::string& name : names) {
    if (c.Row(name) == nullptr || c.Row(reference) == nullptr) continue;
    std::string numbers = absl::StrCat(best ? reference : name, " - ",
                                       best ? name : reference, " ");
    verdicts.push_back(best ? Above(*c.Row(reference), *c.Row(name), &numbers)
                            : Above(*c.Row(name), *c.Row(reference), &numbers));
    parts.push_back(numbers);
  }
  return {claim.text(),
          absl::StrCat(c.column.header, ": ", absl::StrJoin(parts, "; ")),
          AllOf(verdicts)};
}

ClaimVerdict Ordered(const Context& c) {
  std::vector<std::string> names;
  for (const v1::RowValue& paper : c.claim.reference()) {
    // A row the paper has and this sweep does not run is not compared.
    if (c.asked.contains(paper.row())) names.push_back(paper.row());
  }
  if (auto waiting = c.Waiting(names)) return *waiting;
  std::vector<std::pair<double, double>> pairs;
  for (const v1::RowValue& paper : c.claim.reference()) {
    if (c.Row(paper.row()) != nullptr)
      pairs.emplace_back(Mean(*c.Row(paper.row())), paper.value());
  }
  const double tau = KendallTau(pairs);
  const double min_tau = c.claim.min_tau() != 0 ? c.claim.min_tau() : 0.5;
  return {c.claim.text(),
          absl::StrFormat("Kendall's tau %.2f between the measured and the "
                          "paper's %s over %d rows (holds from %.2f)",
                          tau, c.column.header, int(pairs.size()), min_tau),
          pairs.size() < 2 ? Verdict::kUndecided
          : tau >= min_tau ? Verdict::kHolds
                           : Verdict::kFails};
}

ClaimVerdict Judge(const v1::Claim& claim, const v1::SweepResults& results) {
  absl::StatusOr<std::vector<ResultColumn>> columns =
      ParseResultColumns(claim.metric().empty() ? "top1" : claim.metric());
  if (!columns.ok() || columns->size() != 1) {
    return {claim.text(), absl::StrCat("no metric \"", claim.metric(), "\""),
            Verdict::kUndecided};
  }
  const Context c{claim, results, (*columns)[0],
                  RowValues(Finished(results), (*columns)[0]), Asked(results)};
  switch (claim.kind()) {
    case v1::NEAR_CHANCE:
      return NearChance(c);
    case v1::AT_LEAST:
      return AtLeast(c);
    case v1::BEST:
    case v1::EXCEEDS:
      return Ranking(c);
    case v1::ORDERED:
      return Ordered(c);
    default:
      return {claim.text(), "a claim of no known kind", Verdict::kUndecided};
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

std::string ClaimsHtml(const v1::SweepResults& results) {
  const std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  if (verdicts.empty()) return "";
  std::string html =
      "<h2>Claims</h2><table id=\"claims\"><thead><tr><th>claim</th><th>"
      "verdict</th><th>decided by</th></tr></thead><tbody>";
  for (const ClaimVerdict& v : verdicts) {
    const std::string word = VerdictWord(v.verdict);
    absl::StrAppend(
        &html, "<tr class=\"claim\"><td>", Escape(v.text), "</td><td class=\"",
        v.verdict == Verdict::kHolds   ? "holds"
        : v.verdict == Verdict::kFails ? "fails"
                                       : "undecided",
        "\">", Escape(word), "</td><td>", Escape(v.numbers), "</td></tr>");
  }
  return absl::StrCat(html, "</tbody></table>");
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
