#include "render/seeds.h"

#include <algorithm>
#include <boost/math/distributions/students_t.hpp>
#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/sweep_expansion.h"
#include "render/text.h"

namespace distill {

double StudentT975(double df) {
  // Any real df (Welch's are fractional): Boost.Math's quantile, exact to
  // double precision, instead of a table of whole rows.
  const boost::math::students_t t(std::max(df, 1.0));
  return boost::math::quantile(t, 0.975);
}

SeedSummary Summarise(const std::vector<double>& values) {
  SeedSummary s;
  s.n = int(values.size());
  if (s.n == 0) return s;
  for (double v : values) s.mean += v;
  s.mean /= s.n;
  if (s.n < 2) return s;
  double var = 0;
  for (double v : values) var += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(var / (s.n - 1));
  const double half = StudentT975(s.n - 1) * s.sd / std::sqrt(double(s.n));
  s.interval = std::pair{s.mean - half, s.mean + half};
  return s;
}

std::optional<SeedDifference> Difference(const std::map<int64_t, double>& a,
                                         const std::map<int64_t, double>& b) {
  if (a.empty() || b.empty()) return std::nullopt;
  SeedDifference d;
  std::vector<double> pairs;
  for (const auto& [seed, value] : b) {
    if (auto it = a.find(seed); it != a.end())
      pairs.push_back(value - it->second);
  }
  if (pairs.size() >= 2 && pairs.size() == a.size() &&
      pairs.size() == b.size()) {
    const SeedSummary s = Summarise(pairs);
    d.paired = true;
    d.n = s.n;
    d.mean = s.mean;
    d.interval = s.interval;
    return d;
  }
  std::vector<double> va, vb;
  for (const auto& [seed, value] : a) va.push_back(value);
  for (const auto& [seed, value] : b) vb.push_back(value);
  const SeedSummary sa = Summarise(va), sb = Summarise(vb);
  d.mean = sb.mean - sa.mean;
  d.n = std::min(sa.n, sb.n);
  if (sa.n < 2 && sb.n < 2) return d;
  if (sa.n < 2 || sb.n < 2) {
    // One run against several (a teacher trained once): that run's value
    // taken as fixed, the other side's interval about it.
    const SeedSummary& many = sa.n < 2 ? sb : sa;
    const double half = many.interval->second - many.mean;
    d.interval = std::pair{d.mean - half, d.mean + half};
    return d;
  }
  // Welch: each side's variance of its mean, Welch-Satterthwaite's df.
  const double qa = sa.sd * sa.sd / sa.n, qb = sb.sd * sb.sd / sb.n;
  const double se = std::sqrt(qa + qb);
  const double df = se == 0 ? sa.n + sb.n - 2
                            : (qa + qb) * (qa + qb) /
                                  (qa * qa / (sa.n - 1) + qb * qb / (sb.n - 1));
  const double half = StudentT975(df) * se;
  d.interval = std::pair{d.mean - half, d.mean + half};
  return d;
}

bool ExcludesZero(const SeedDifference& d) {
  return d.interval && (d.interval->first > 0 || d.interval->second < 0);
}

int64_t SeedOf(const std::string& member) {
  const size_t at = member.rfind("seed=");
  int64_t seed = 0;
  if (at == std::string::npos || (at != 0 && member[at - 1] != '/') ||
      !absl::SimpleAtoi(member.substr(at + 5), &seed)) {
    return 0;
  }
  return seed;
}

namespace {

// A value in the column's unit with `decimals` (percentages in points).
std::string Number(const ResultColumn& c, double v, int decimals) {
  const int d = c.percent ? decimals : decimals + 2;
  if (std::abs(v) < 0.5 * std::pow(10.0, -d)) v = 0;  // Not "-0.0".
  return absl::StrFormat("%.*f", d, v);
}

struct Group {
  std::string name;
  std::vector<const v1::MemberResult*> members;
  // Each column's values by seed, in the column's unit.
  std::vector<std::map<int64_t, double>> by_seed;
};

std::vector<Group> Groups(const v1::SweepResults& results,
                          const std::vector<ResultColumn>& columns) {
  std::vector<Group> groups;
  for (const v1::MemberResult& m : results.members()) {
    const std::string key = WithoutSeed(m.name());
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& g) { return g.name == key; });
    if (it == groups.end()) {
      groups.push_back(
          {key, {}, std::vector<std::map<int64_t, double>>(columns.size())});
      it = groups.end() - 1;
    }
    it->members.push_back(&m);
    for (size_t c = 0; c < columns.size(); ++c) {
      if (std::optional<double> v = MemberValue(m, columns[c]))
        it->by_seed[c][SeedOf(m.name())] = columns[c].percent ? 100 * *v : *v;
    }
  }
  return groups;
}

std::vector<double> Values(const std::map<int64_t, double>& by_seed) {
  std::vector<double> values;
  for (const auto& [seed, v] : by_seed) values.push_back(v);
  return values;
}

std::string Interval(const ResultColumn& c,
                     const std::optional<std::pair<double, double>>& i,
                     int decimals) {
  if (!i) return "-";
  return absl::StrCat("[", Number(c, i->first, decimals), ", ",
                      Number(c, i->second, decimals), "]");
}

// member, each column, n, the first column's interval, and with a
// baseline its difference and interval.
std::vector<std::string> SummaryHeader(const std::vector<ResultColumn>& columns,
                                       const std::string& baseline) {
  std::vector<std::string> header = {"member"};
  for (const ResultColumn& c : columns) header.push_back(c.header);
  header.push_back("n");
  header.push_back(absl::StrCat(columns[0].header, " 95% CI"));
  if (!baseline.empty()) {
    header.push_back(absl::StrCat("vs ", baseline));
    header.push_back("95% CI");
  }
  return header;
}

}  // namespace

int DecimalsToTellApart(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  for (int decimals = 1; decimals < 3; ++decimals) {
    bool apart = true;
    for (size_t i = 1; i < values.size() && apart; ++i) {
      apart = absl::StrFormat("%.*f", decimals, values[i - 1]) !=
              absl::StrFormat("%.*f", decimals, values[i]);
    }
    if (apart) return decimals;
  }
  return 3;
}

std::map<std::string, std::map<int64_t, double>> RowValues(
    const v1::SweepResults& results, const ResultColumn& column) {
  std::map<std::string, std::map<int64_t, double>> rows;
  for (const Group& g : Groups(results, {column})) rows[g.name] = g.by_seed[0];
  const std::vector<v1::TeacherResult> teachers = SweepTeachers(results);
  if (!teachers.empty()) {
    if (std::optional<double> v = TeacherValue(teachers[0], column))
      rows["O"][0] = column.percent ? 100 * *v : *v;
  }
  return rows;
}

SeedRows SummariseRows(const v1::SweepResults& results,
                       const std::vector<ResultColumn>& columns,
                       const std::string& baseline) {
  SeedRows out;
  out.seeded = std::any_of(results.members().begin(), results.members().end(),
                           [](const v1::MemberResult& m) {
                             return WithoutSeed(m.name()) != m.name();
                           });
  const std::vector<Group> groups = Groups(results, columns);
  const Group* base = nullptr;
  for (const Group& g : groups) {
    if (!baseline.empty() && g.name == baseline) base = &g;
  }
  out.baseline_found = base != nullptr;
  for (const Group& g : groups) {
    SummaryRow row;
    row.row = g.name;
    row.asked = int(g.members.size());
    for (size_t c = 0; c < columns.size(); ++c)
      row.columns.push_back(Summarise(Values(g.by_seed[c])));
    row.is_baseline = &g == base;
    if (base != nullptr && &g != base && !columns.empty())
      row.vs_baseline = Difference(base->by_seed[0], g.by_seed[0]);
    out.rows.push_back(std::move(row));
  }
  return out;
}

std::string FormatSeedSummary(const v1::SweepResults& results,
                              const std::vector<ResultColumn>& columns,
                              const std::string& baseline) {
  const SeedRows summary = SummariseRows(results, columns, baseline);
  if ((!summary.seeded && baseline.empty()) || columns.empty()) return "";
  const ResultColumn& first = columns[0];
  const bool with_base = summary.baseline_found;
  // Enough decimals to tell the members' means apart.
  std::vector<double> means;
  for (const SummaryRow& r : summary.rows) {
    if (r.columns[0].n > 0) means.push_back(r.columns[0].mean);
  }
  const int decimals = DecimalsToTellApart(means);
  const std::vector<std::string> header =
      SummaryHeader(columns, with_base ? baseline : "");
  std::vector<std::vector<std::string>> rows;
  for (const SummaryRow& r : summary.rows) {
    std::vector<std::string> row = {r.row.empty() ? "(base)" : r.row};
    for (size_t c = 0; c < columns.size(); ++c) {
      const SeedSummary& s = r.columns[c];
      std::string cell = s.n == 0 ? "-" : Number(columns[c], s.mean, decimals);
      if (s.n > 1)
        absl::StrAppend(&cell, " ± ", Number(columns[c], s.sd, decimals));
      row.push_back(cell);
    }
    row.push_back(absl::StrCat(r.columns[0].n, " of ", r.asked));
    row.push_back(Interval(first, r.columns[0].interval, decimals));
    if (with_base) {
      const std::optional<SeedDifference>& d = r.vs_baseline;
      if (!d) {
        row.push_back(r.is_baseline ? "(baseline)" : "-");
        row.push_back("");
      } else {
        row.push_back(absl::StrCat(d->mean >= 0 ? "+" : "",
                                   Number(first, d->mean, decimals),
                                   ExcludesZero(*d) ? " *" : ""));
        row.push_back(absl::StrCat(
            Interval(first, d->interval, decimals),
            d->interval ? (d->paired ? " paired" : " Welch") : ""));
      }
    }
    rows.push_back(std::move(row));
  }
  std::string out = absl::StrCat(
      "\nover seeds: mean ± sample std; n: runs with a result of the "
      "member's runs; 95% CI: Student's t",
      with_base ? absl::StrCat(
                      "; vs ", baseline, ": the difference in ", first.header,
                      " (paired over the seeds both ran, else Welch's), "
                      "* where its interval excludes 0")
                : "",
      "\n");
  if (!baseline.empty() && !with_base) {
    absl::StrAppend(&out, "no member \"", baseline,
                    "\" to compare with (--baseline names a row, e.g. D)\n");
  }
  absl::StrAppend(&out, TextTable(header, rows, /*right_aligned=*/false,
                                  /*rule=*/false));
  return out;
}

}  // namespace distill

namespace distill {

std::string FormatSeedComparison(const v1::SweepResults& a,
                                 const v1::SweepResults& b,
                                 const std::vector<ResultColumn>& columns) {
  auto seeded = [](const v1::SweepResults& r) {
    return std::any_of(r.members().begin(), r.members().end(),
                       [](const v1::MemberResult& m) {
                         return WithoutSeed(m.name()) != m.name();
                       });
  };
  if (columns.empty() || (!seeded(a) && !seeded(b))) return "";
  const ResultColumn& first = columns[0];
  const auto rows_a = RowValues(a, first), rows_b = RowValues(b, first);
  std::vector<std::vector<std::string>> rows;
  for (const auto& [row, values_b] : rows_b) {
    auto it = rows_a.find(row);
    if (row == "O" || it == rows_a.end()) continue;
    std::optional<SeedDifference> d = Difference(it->second, values_b);
    if (!d) continue;
    const bool excludes_zero = ExcludesZero(*d);
    rows.push_back(
        {row, absl::StrCat(it->second.size()), absl::StrCat(values_b.size()),
         absl::StrCat(d->mean >= 0 ? "+" : "", Number(first, d->mean, 1),
                      excludes_zero ? " *" : ""),
         absl::StrCat(Interval(first, d->interval, 1),
                      d->interval ? (d->paired ? " paired" : " Welch") : "")});
  }
  if (rows.empty()) return "";
  return absl::StrCat(
      "\nover seeds, B - A in ", first.header,
      " with its 95% interval (paired over the seeds both ran, else "
      "Welch's; * where it excludes 0)\n",
      TextTable({"member", "n A", "n B", "B - A", "95% CI"}, rows,
                /*right_aligned=*/false, /*rule=*/false));
}

}  // namespace distill
