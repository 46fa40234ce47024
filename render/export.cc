#include "render/export.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "render/claims.h"
#include "render/seeds.h"
#include "render/text.h"

namespace distill {
namespace {

// A column's name in the exports: its key ("eval/top1").
std::string Key(const ResultColumn& c) { return c.key; }

std::string Optional(std::optional<double> v) { return v ? CsvNumber(*v) : ""; }

std::string KindName(const v1::Claim& claim) {
  return v1::ClaimKind_Name(claim.kind());
}

bool WantsSummary(const SeedRows& rows, const ExportOptions& options) {
  return rows.seeded || !options.baseline.empty();
}

std::string SummaryCsv(const SeedRows& summary,
                       const std::vector<ResultColumn>& columns) {
  std::vector<std::string> header = {"row", "n", "asked"};
  for (const ResultColumn& c : columns) {
    for (const char* part : {"mean", "sd", "ci_low", "ci_high"})
      header.push_back(CsvField(absl::StrCat(Key(c), ":", part)));
  }
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const SummaryRow& r : summary.rows) {
    std::vector<std::string> cells = {
        CsvField(r.row), absl::StrCat(r.columns.empty() ? 0 : r.columns[0].n),
        absl::StrCat(r.asked)};
    for (const SeedSummary& s : r.columns) {
      cells.push_back(s.n > 0 ? CsvNumber(s.mean) : "");
      cells.push_back(s.n > 1 ? CsvNumber(s.sd) : "");
      cells.push_back(Optional(s.interval ? std::optional(s.interval->first)
                                          : std::nullopt));
      cells.push_back(Optional(s.interval ? std::optional(s.interval->second)
                                          : std::nullopt));
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

std::string BaselineCsv(const SeedRows& summary, const std::string& baseline,
                        const ResultColumn& first) {
  std::string out =
      "baseline,row,column,difference,ci_low,ci_high,method,n,excludes_zero\n";
  for (const SummaryRow& r : summary.rows) {
    if (r.is_baseline || !r.vs_baseline) continue;
    const SeedDifference& d = *r.vs_baseline;
    absl::StrAppend(
        &out,
        absl::StrJoin(
            {CsvField(baseline), CsvField(r.row), CsvField(Key(first)),
             CsvNumber(d.mean),
             Optional(d.interval ? std::optional(d.interval->first)
                                 : std::nullopt),
             Optional(d.interval ? std::optional(d.interval->second)
                                 : std::nullopt),
             std::string(d.interval ? (d.paired ? "paired" : "welch") : "none"),
             absl::StrCat(d.n), std::string(ExcludesZero(d) ? "1" : "0")},
            ","),
        "\n");
  }
  return out;
}

std::string ClaimsCsv(const v1::SweepResults& results) {
  std::string out = "claim,kind,verdict,numbers\n";
  const std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  for (size_t i = 0; i < verdicts.size(); ++i) {
    absl::StrAppend(
        &out,
        absl::StrJoin({CsvField(verdicts[i].text),
                       KindName(results.sweep().spec().claims(int(i))),
                       CsvField(VerdictWord(verdicts[i].verdict)),
                       CsvField(verdicts[i].numbers)},
                      ","),
        "\n");
  }
  return out;
}

std::string Interval(const std::optional<std::pair<double, double>>& i) {
  if (!i) return "null";
  return absl::StrCat("[", JsonNumber(i->first), ",", JsonNumber(i->second),
                      "]");
}

std::string SummaryJson(const SeedRows& summary,
                        const std::vector<ResultColumn>& columns) {
  std::vector<std::string> rows;
  for (const SummaryRow& r : summary.rows) {
    std::vector<std::string> cells;
    for (size_t c = 0; c < columns.size(); ++c) {
      const SeedSummary& s = r.columns[c];
      cells.push_back(absl::StrCat(
          JsonString(Key(columns[c])), ":{\"n\":", s.n, ",\"mean\":",
          JsonNumber(s.n > 0 ? std::optional(s.mean) : std::nullopt),
          ",\"sd\":", JsonNumber(s.n > 1 ? std::optional(s.sd) : std::nullopt),
          ",\"ci95\":", Interval(s.interval), "}"));
    }
    rows.push_back(absl::StrCat("{\"row\":", JsonString(r.row),
                                ",\"asked\":", r.asked, ",\"columns\":{",
                                absl::StrJoin(cells, ","), "}}"));
  }
  return absl::StrCat("[", absl::StrJoin(rows, ","), "]");
}

std::string BaselineJson(const SeedRows& summary, const std::string& baseline,
                         const ResultColumn& first) {
  std::vector<std::string> rows;
  for (const SummaryRow& r : summary.rows) {
    if (r.is_baseline || !r.vs_baseline) continue;
    const SeedDifference& d = *r.vs_baseline;
    rows.push_back(absl::StrCat(
        "{\"row\":", JsonString(r.row), ",\"difference\":", JsonNumber(d.mean),
        ",\"ci95\":", Interval(d.interval), ",\"method\":",
        JsonString(d.interval ? (d.paired ? "paired" : "welch") : "none"),
        ",\"n\":", d.n,
        ",\"excludes_zero\":", ExcludesZero(d) ? "true" : "false", "}"));
  }
  return absl::StrCat("{\"row\":", JsonString(baseline),
                      ",\"column\":", JsonString(Key(first)),
                      ",\"found\":", summary.baseline_found ? "true" : "false",
                      ",\"differences\":[", absl::StrJoin(rows, ","), "]}");
}

std::string ClaimsJson(const v1::SweepResults& results) {
  std::vector<std::string> claims;
  const std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  for (size_t i = 0; i < verdicts.size(); ++i) {
    claims.push_back(absl::StrCat(
        "{\"claim\":", JsonString(verdicts[i].text), ",\"kind\":",
        JsonString(KindName(results.sweep().spec().claims(int(i)))),
        ",\"verdict\":", JsonString(VerdictWord(verdicts[i].verdict)),
        ",\"numbers\":", JsonString(verdicts[i].numbers), "}"));
  }
  return absl::StrCat("[", absl::StrJoin(claims, ","), "]");
}

}  // namespace

std::string ExportResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns,
                             const ExportOptions& options) {
  std::string out = FormatResultsCsv(results, columns);
  if (columns.empty()) return out;
  const SeedRows summary = SummariseRows(results, columns, options.baseline);
  if (WantsSummary(summary, options))
    absl::StrAppend(&out, "\n", SummaryCsv(summary, columns));
  if (!options.baseline.empty())
    absl::StrAppend(&out, "\n",
                    BaselineCsv(summary, options.baseline, columns[0]));
  if (options.claims) absl::StrAppend(&out, "\n", ClaimsCsv(results));
  return out;
}

std::string ExportResultsJson(const v1::SweepResults& results,
                              const std::vector<ResultColumn>& columns,
                              const ExportOptions& options) {
  std::string json = ToJson(results);  // "{...}" on one line.
  std::vector<std::string> extra;
  if (!columns.empty()) {
    const SeedRows summary = SummariseRows(results, columns, options.baseline);
    if (WantsSummary(summary, options))
      extra.push_back(
          absl::StrCat("\"summary\":", SummaryJson(summary, columns)));
    if (!options.baseline.empty()) {
      extra.push_back(
          absl::StrCat("\"baseline\":",
                       BaselineJson(summary, options.baseline, columns[0])));
    }
  }
  if (options.claims)
    extra.push_back(absl::StrCat("\"claims\":", ClaimsJson(results)));
  if (extra.empty()) return json;
  json.pop_back();  // The closing brace.
  return absl::StrCat(json, json.size() > 1 ? "," : "",
                      absl::StrJoin(extra, ","), "}");
}

}  // namespace distill
