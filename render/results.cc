#include "render/results.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/byte_sizes.h"
#include "common/metric_keys.h"
#include "common/sweep_expansion.h"
#include "render/seeds.h"

namespace distill {

bool UsesRkd(const v1::Losses& l) {
  return l.rkd().distance_weight() > 0 || l.rkd().angle_weight() > 0;
}

const std::vector<LossColumn>& AllLossColumns() {
  static const auto* const kColumns = new std::vector<LossColumn>{
      {"CE", "labels CE", [](const v1::Losses& l) { return l.ce() > 0; }, true},
      {"MSE", "embedding MSE", [](const v1::Losses& l) { return l.mse() > 0; },
       true},
      {"IKD", "IKD", [](const v1::Losses& l) { return l.ikd().weight() > 0; },
       true},
      {"RKD", "RKD", &UsesRkd, true},
      {"SP", "SP", [](const v1::Losses& l) { return l.sp() > 0; }, false},
      {"PKT", "PKT", [](const v1::Losses& l) { return l.pkt() > 0; }, false},
      {"DKD", "DKD", [](const v1::Losses& l) { return l.dkd().weight() > 0; },
       false},
      {"CKA", "CKA loss", [](const v1::Losses& l) { return l.cka() > 0; },
       false},
  };
  return *kColumns;
}

std::vector<LossColumn> LossColumns(const v1::SweepResults& results) {
  std::vector<LossColumn> shown;
  for (const LossColumn& c : AllLossColumns()) {
    bool used = c.always;
    for (const v1::MemberResult& m : results.members())
      used = used || c.on(m.losses());
    if (used) shown.push_back(c);
  }
  return shown;
}

std::string LossSummary(const v1::Losses& l) {
  std::vector<std::string> parts;
  for (const LossColumn& c : AllLossColumns()) {
    if (c.on(l)) parts.push_back(c.name);
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, "+");
}

std::string LossWeights(const v1::Losses& l) {
  std::vector<std::string> parts;
  if (l.ce() > 0) parts.push_back(absl::StrCat("CE ", l.ce()));
  if (l.mse() > 0) parts.push_back(absl::StrCat("MSE ", l.mse()));
  if (l.ikd().weight() > 0) {
    parts.push_back(
        absl::StrCat("IKD ", l.ikd().weight(), " (T ", l.ikd().temperature(),
                     l.ikd().scale_by_tau_squared() ? ", x T^2)" : ")"));
  }
  if (l.rkd().distance_weight() > 0)
    parts.push_back(absl::StrCat("RKD distance ", l.rkd().distance_weight()));
  if (l.rkd().angle_weight() > 0)
    parts.push_back(absl::StrCat("RKD angle ", l.rkd().angle_weight()));
  if (l.sp() > 0) parts.push_back(absl::StrCat("SP ", l.sp()));
  if (l.pkt() > 0) parts.push_back(absl::StrCat("PKT ", l.pkt()));
  if (l.dkd().weight() > 0) {
    parts.push_back(absl::StrCat(
        "DKD ", l.dkd().weight(), " (alpha ", l.dkd().alpha(), ", beta ",
        l.dkd().beta(), ", T ", l.dkd().temperature(),
        l.dkd().warmup_epochs() > 0
            ? absl::StrCat(", warm-up ", l.dkd().warmup_epochs(), " epochs")
            : "",
        ")"));
  }
  if (l.cka() > 0) parts.push_back(absl::StrCat("CKA ", l.cka()));
  return parts.empty() ? "-" : absl::StrJoin(parts, " + ");
}

const std::vector<ResultColumn>& AllResultColumns() {
  namespace k = metric_keys;
  static const auto* const kColumns = new std::vector<ResultColumn>{
      {"top1", "top-1 %", k::kEvalTop1, true},
      {"knn", "k-NN %", absl::StrCat(k::kEval, k::kKnnTop1), true},
      {"nmi", "NMI", absl::StrCat(k::kEval, k::kNmi), false},
      {"ari", "ARI", absl::StrCat(k::kEval, k::kAri), false},
      {"agree", "agree %", k::kTeacherAgreement, true},
      {"cka", "CKA", k::kTeacherCka, false},
      {"overlap", "kNN overlap", k::kTeacherKnnOverlap, false},
  };
  return *kColumns;
}

absl::StatusOr<std::vector<ResultColumn>> ParseResultColumns(
    const std::string& names) {
  if (names.empty()) return AllResultColumns();
  std::vector<ResultColumn> columns;
  std::vector<std::string> known;
  for (const ResultColumn& c : AllResultColumns()) known.push_back(c.name);
  for (absl::string_view name : absl::StrSplit(names, ',')) {
    auto it =
        std::find_if(AllResultColumns().begin(), AllResultColumns().end(),
                     [&](const ResultColumn& c) { return c.name == name; });
    if (it == AllResultColumns().end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("unknown column \"", name.substr(0, 64),
                       "\"; the columns are ", absl::StrJoin(known, ",")));
    }
    columns.push_back(*it);
  }
  return columns;
}

std::string ResultCell(const ResultColumn& column,
                       std::optional<double> value) {
  if (!value) return "-";
  const int decimals = column.decimals > 0 ? column.decimals : 1;
  return column.percent ? absl::StrFormat("%.*f", decimals, 100 * *value)
                        : absl::StrFormat("%.*f", decimals + 2, *value);
}

std::optional<double> ResultValue(
    const google::protobuf::Map<std::string, double>& m,
    const std::string& key) {
  auto it = m.find(key);
  if (it == m.end()) return std::nullopt;
  return it->second;
}

std::optional<double> MemberValue(const v1::MemberResult& m,
                                  const ResultColumn& column) {
  std::optional<double> v = ResultValue(m.results(), column.key);
  if (!v && column.key == metric_keys::kEvalTop1 && m.has_top1()) v = m.top1();
  return v;
}

std::optional<double> TeacherValue(const v1::TeacherResult& t,
                                   const ResultColumn& column) {
  std::optional<double> v = ResultValue(t.results(), column.key);
  if (!v && column.key == metric_keys::kEvalTop1 && t.has_top1()) v = t.top1();
  return v;
}

std::vector<v1::TeacherResult> SweepTeachers(const v1::SweepResults& results) {
  std::vector<v1::TeacherResult> teachers(results.teachers().begin(),
                                          results.teachers().end());
  if (teachers.empty()) {
    v1::TeacherResult& t = teachers.emplace_back();
    t.set_name("teacher");
    t.set_run_id(results.teacher_run_id());
    t.set_status(results.teacher_status());
    if (results.has_teacher_top1()) t.set_top1(results.teacher_top1());
  }
  return teachers;
}

namespace {

// Table 1's cells: row, the loss columns (LossColumns), the result
// columns, run, status.

struct Row {
  std::vector<std::string> cells;
  bool teacher = false;
  bool last_of_block = false;
};

Row MemberRow(const v1::MemberResult& m, const std::vector<LossColumn>& losses,
              const std::vector<ResultColumn>& columns) {
  Row row{{m.name()}};
  for (const LossColumn& c : losses)
    row.cells.push_back(c.on(m.losses()) ? "✓" : "");
  for (const ResultColumn& c : columns)
    row.cells.push_back(ResultCell(c, MemberValue(m, c)));
  row.cells.push_back(absl::StrCat(m.run_id()));
  row.cells.push_back(v1::RunStatus_Name(m.status()));
  return row;
}

// The teacher's own judgement where it has one (not the columns that
// compare it with a student); its name spans the loss columns.
Row TeacherRow(const v1::TeacherResult& teacher, bool alone, size_t losses,
               const std::vector<ResultColumn>& columns) {
  Row row{{"O", alone ? "teacher ViT"
                      : absl::StrCat("teacher ViT ", teacher.name())},
          true};
  row.cells.resize(1 + losses);
  for (const ResultColumn& c : columns)
    row.cells.push_back(ResultCell(c, TeacherValue(teacher, c)));
  row.cells.push_back(absl::StrCat(teacher.run_id()));
  row.cells.push_back(v1::RunStatus_Name(teacher.status()));
  return row;
}

// One block a teacher: its members, then its row O.
std::vector<Row> ResultRows(const v1::SweepResults& results,
                            const std::vector<v1::TeacherResult>& teachers,
                            const std::vector<LossColumn>& losses,
                            const std::vector<ResultColumn>& columns) {
  std::vector<Row> rows;
  std::vector<bool> shown(results.members_size(), false);
  for (size_t t = 0; t < teachers.size(); ++t) {
    for (int i = 0; i < results.members_size(); ++i) {
      const v1::MemberResult& m = results.members(i);
      if (shown[i] ||
          (teachers.size() > 1 && m.teacher() != teachers[t].name())) {
        continue;
      }
      shown[i] = true;
      rows.push_back(MemberRow(m, losses, columns));
    }
    rows.push_back(
        TeacherRow(teachers[t], teachers.size() == 1, losses.size(), columns));
    rows.back().last_of_block = t + 1 < teachers.size();
  }
  return rows;
}

// The width of the loss columns 1 to `first_result` - 1 together, with
// their separators: where a teacher's name goes.
size_t SpanWidth(const std::vector<size_t>& widths, size_t first_result) {
  size_t span = 3 * (first_result - 2);  // " │ " between each two.
  for (size_t c = 1; c < first_result; ++c) span += widths[c];
  return span;
}

std::vector<size_t> ColumnWidths(const std::vector<std::string>& header,
                                 const std::vector<Row>& rows,
                                 size_t first_result) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = Width(header[c]);
    for (const Row& row : rows) {
      const bool spanned = row.teacher && c >= 1 && c < first_result;
      if (!spanned) widths[c] = std::max(widths[c], Width(row.cells[c]));
    }
  }
  // A teacher's name wider than the loss columns widens the last of them.
  const size_t span = SpanWidth(widths, first_result);
  for (const Row& row : rows) {
    if (row.teacher && Width(row.cells[1]) > span)
      widths[first_result - 1] += Width(row.cells[1]) - span;
  }
  return widths;
}

// "sweep 1 "name" on DATA, teacher run 2", then its tags and note.
std::string ResultsHeading(const v1::SweepResults& results, size_t teachers) {
  std::string out = absl::StrCat(
      "sweep ", results.sweep().id(), " \"", results.sweep().name(), "\" on ",
      results.sweep().spec().base().dataset().name(),
      teachers == 1 ? absl::StrCat(", teacher run ", results.teacher_run_id())
                    : absl::StrCat(", ", teachers, " teachers"),
      "\n");
  if (!results.sweep().tags().empty()) {
    std::vector<std::string> tags;
    for (const auto& [key, value] : results.sweep().tags())
      tags.push_back(absl::StrCat(key, "=", value));
    std::sort(tags.begin(), tags.end());
    absl::StrAppend(&out, "tags ", absl::StrJoin(tags, " "), "\n");
  }
  if (!results.sweep().note().empty())
    absl::StrAppend(&out, "note ", results.sweep().note(), "\n");
  return out;
}

// The rows laid out: names left, checks centred, results right; a
// teacher's row spans the loss columns; a rule between teachers' blocks.
std::string LaidOut(const std::vector<std::string>& header,
                    const std::vector<Row>& rows, size_t first_result) {
  const std::vector<size_t> widths = ColumnWidths(header, rows, first_result);
  const size_t status_col = header.size() - 1;
  auto pad = [&](const std::vector<std::string>& cells, size_t c) {
    if (c == 0 || c == status_col) return Pad(cells[c], widths[c]);
    if (c >= first_result) return Pad(cells[c], widths[c], /*right=*/true);
    return Center(cells[c], widths[c]);
  };
  auto line = [&](const std::vector<std::string>& cells, bool spanned) {
    std::vector<std::string> padded = {pad(cells, 0)};
    if (spanned) {
      padded.push_back(Pad(cells[1], SpanWidth(widths, first_result)));
    }
    for (size_t c = spanned ? first_result : 1; c < cells.size(); ++c)
      padded.push_back(pad(cells, c));
    return absl::StrCat(" ", absl::StrJoin(padded, " │ "), "\n");
  };
  const std::string rule = TableRule(widths);
  std::string out = absl::StrCat(line(header, false), rule);
  for (const Row& row : rows) {
    absl::StrAppend(&out, line(row.cells, row.teacher));
    if (row.last_of_block) absl::StrAppend(&out, rule);
  }
  return out;
}

}  // namespace

std::string FormatResultsTable(const v1::SweepResults& results,
                               const std::vector<ResultColumn>& shown,
                               const std::string& baseline) {
  // Enough decimals in each column to tell its values apart.
  std::vector<ResultColumn> columns = shown;
  for (ResultColumn& c : columns) {
    std::vector<double> values;
    for (const v1::MemberResult& m : results.members()) {
      if (std::optional<double> v = MemberValue(m, c))
        values.push_back(100 * *v);
    }
    c.decimals = DecimalsToTellApart(values);
  }
  const std::vector<LossColumn> losses = LossColumns(results);
  std::vector<std::string> header = {"row"};
  for (const LossColumn& c : losses) header.push_back(c.header);
  for (const ResultColumn& c : columns) header.push_back(c.header);
  header.push_back("run");
  header.push_back("status");
  const std::vector<v1::TeacherResult> teachers = SweepTeachers(results);
  std::string out = absl::StrCat(
      ResultsHeading(results, teachers.size()),
      LaidOut(header, ResultRows(results, teachers, losses, columns),
              1 + losses.size()));
  for (const v1::MemberResult& m : results.members()) {
    if (m.status() == v1::FAILED) {
      absl::StrAppend(&out, "row ", m.name(), " failed: ", m.message(), "\n");
    } else if (m.status() == v1::PRUNED) {
      absl::StrAppend(&out, "row ", m.name(), " ", m.message(), "\n");
    }
  }
  if (results.file_bytes() > 0) {
    absl::StrAppend(&out, "run files: ", HumanBytes(results.file_bytes()),
                    " held by the sweep's runs (distill gc --dry-run: what "
                    "its retention drops)\n");
  }
  absl::StrAppend(&out, FormatSeedSummary(results, columns, baseline));
  return out;
}

namespace {

// The loss weights a results CSV lists, each a column named by its term.
const std::vector<std::pair<const char*, double (*)(const v1::Losses&)>>&
CsvLossWeights() {
  static const auto* const kWeights =
      new std::vector<std::pair<const char*, double (*)(const v1::Losses&)>>{
          {"ce", [](const v1::Losses& l) { return l.ce(); }},
          {"mse", [](const v1::Losses& l) { return l.mse(); }},
          {"ikd", [](const v1::Losses& l) { return l.ikd().weight(); }},
          {"rkd_distance",
           [](const v1::Losses& l) { return l.rkd().distance_weight(); }},
          {"rkd_angle",
           [](const v1::Losses& l) { return l.rkd().angle_weight(); }},
          {"sp", [](const v1::Losses& l) { return l.sp(); }},
          {"pkt", [](const v1::Losses& l) { return l.pkt(); }},
          {"dkd", [](const v1::Losses& l) { return l.dkd().weight(); }},
          {"cka", [](const v1::Losses& l) { return l.cka(); }}};
  return *kWeights;
}

}  // namespace

std::string FormatResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns) {
  std::vector<std::string> header = {"name", "kind", "teacher", "run_id",
                                     "status"};
  for (const auto& [name, weight] : CsvLossWeights()) header.push_back(name);
  for (const ResultColumn& c : columns) header.push_back(CsvField(c.key));
  header.push_back("file_bytes");
  header.push_back("owner");  // The sweep's: every run of it has it.
  const std::string owner = CsvField(results.sweep().owner());
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const v1::MemberResult& m : results.members()) {
    const v1::Losses& l = m.losses();
    std::vector<std::string> cells = {
        CsvField(m.name()), "member", CsvField(m.teacher()),
        absl::StrCat(m.run_id()), v1::RunStatus_Name(m.status())};
    for (const auto& [name, weight] : CsvLossWeights())
      cells.push_back(CsvNumber(weight(l)));
    for (const ResultColumn& c : columns) {
      std::optional<double> v = MemberValue(m, c);
      cells.push_back(v ? CsvNumber(*v) : "");
    }
    cells.push_back(absl::StrCat(m.file_bytes()));
    cells.push_back(owner);
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  for (const v1::TeacherResult& t : SweepTeachers(results)) {
    std::vector<std::string> cells = {CsvField(t.name()), "teacher", "",
                                      absl::StrCat(t.run_id()),
                                      v1::RunStatus_Name(t.status())};
    cells.resize(cells.size() + CsvLossWeights().size());  // No losses.
    for (const ResultColumn& c : columns) {
      std::optional<double> v = TeacherValue(t, c);
      cells.push_back(v ? CsvNumber(*v) : "");
    }
    cells.push_back(absl::StrCat(t.file_bytes()));
    cells.push_back(owner);
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

namespace {

std::string Difference(const ResultColumn& c, std::optional<double> a,
                       std::optional<double> b) {
  if (!a || !b) return "-";
  const double d = *b - *a;
  return c.percent ? absl::StrFormat("%+.1f", 100 * d)
                   : absl::StrFormat("%+.3f", d);
}

// Two sweeps' members by name: in A's order, then B's own.
struct Paired {
  std::vector<std::string> names;
  std::map<std::string, const v1::MemberResult*> a, b;

  std::optional<double> A(const std::string& name,
                          const ResultColumn& c) const {
    return Value(a, name, c);
  }
  std::optional<double> B(const std::string& name,
                          const ResultColumn& c) const {
    return Value(b, name, c);
  }
  static std::optional<double> Value(
      const std::map<std::string, const v1::MemberResult*>& in,
      const std::string& name, const ResultColumn& c) {
    auto it = in.find(name);
    if (it == in.end()) return std::nullopt;
    return MemberValue(*it->second, c);
  }
};

Paired Pair(const v1::SweepResults& a, const v1::SweepResults& b) {
  Paired p;
  for (const v1::MemberResult& m : a.members()) {
    if (p.a.emplace(m.name(), &m).second) p.names.push_back(m.name());
  }
  for (const v1::MemberResult& m : b.members()) {
    if (p.b.emplace(m.name(), &m).second && !p.a.count(m.name()))
      p.names.push_back(m.name());
  }
  return p;
}

std::string ComparisonJson(const v1::SweepResults& a, const v1::SweepResults& b,
                           const Paired& p,
                           const std::vector<ResultColumn>& columns) {
  std::vector<std::string> rows;
  for (const std::string& name : p.names) {
    for (const ResultColumn& c : columns) {
      const std::optional<double> va = p.A(name, c), vb = p.B(name, c);
      rows.push_back(absl::StrCat(
          "{\"member\":", JsonString(name), ",\"key\":", JsonString(c.key),
          ",\"a\":", JsonNumber(va), ",\"b\":", JsonNumber(vb),
          ",\"difference\":",
          JsonNumber(va && vb ? std::optional<double>(*vb - *va)
                              : std::nullopt),
          "}"));
    }
  }
  return absl::StrCat("{\"a\":", ToJson(a.sweep()),
                      ",\"b\":", ToJson(b.sweep()), ",\"rows\":[",
                      absl::StrJoin(rows, ","), "]}\n");
}

std::string ComparisonCsv(const Paired& p,
                          const std::vector<ResultColumn>& columns) {
  std::string out = "member,key,a,b,difference\n";
  for (const std::string& name : p.names) {
    for (const ResultColumn& c : columns) {
      const std::optional<double> va = p.A(name, c), vb = p.B(name, c);
      absl::StrAppend(&out, CsvField(name), ",", CsvField(c.key), ",",
                      va ? CsvNumber(*va) : "", ",", vb ? CsvNumber(*vb) : "",
                      ",", va && vb ? CsvNumber(*vb - *va) : "", "\n");
    }
  }
  return out;
}

std::string ComparisonTable(const v1::SweepResults& a,
                            const v1::SweepResults& b, const Paired& p,
                            const std::vector<ResultColumn>& columns) {
  std::vector<std::string> header = {"member"};
  for (const ResultColumn& c : columns) {
    header.push_back(absl::StrCat(c.header, " A"));
    header.push_back(absl::StrCat(c.header, " B"));
    header.push_back("B - A");
  }
  std::vector<std::vector<std::string>> rows;
  for (const std::string& name : p.names) {
    std::vector<std::string> row = {name};
    for (const ResultColumn& c : columns) {
      const std::optional<double> va = p.A(name, c), vb = p.B(name, c);
      row.push_back(ResultCell(c, va));
      row.push_back(ResultCell(c, vb));
      row.push_back(Difference(c, va, vb));
    }
    rows.push_back(std::move(row));
  }
  return absl::StrCat("A ", a.sweep().id(), " \"", a.sweep().name(),
                      "\" against B ", b.sweep().id(), " \"", b.sweep().name(),
                      "\" (", a.sweep().spec().base().dataset().name(), " / ",
                      b.sweep().spec().base().dataset().name(), ")\n",
                      TextTable(header, rows));
}

}  // namespace

std::string FormatSweepComparison(const v1::SweepResults& a,
                                  const v1::SweepResults& b,
                                  const std::vector<ResultColumn>& columns,
                                  OutputFormat format) {
  const Paired p = Pair(a, b);
  switch (format) {
    case OutputFormat::kJson:
      return ComparisonJson(a, b, p, columns);
    case OutputFormat::kCsv:
      return ComparisonCsv(p, columns);
    case OutputFormat::kTable:
      break;
  }
  return absl::StrCat(ComparisonTable(a, b, p, columns),
                      FormatSeedComparison(a, b, columns));
}

std::string FormatRunComparison(const std::vector<v1::Run>& runs,
                                OutputFormat format) {
  std::set<std::string> keys;
  for (const v1::Run& r : runs)
    for (const auto& [key, value] : r.results()) keys.insert(key);
  auto value = [](const v1::Run& r,
                  const std::string& key) -> std::optional<double> {
    return ResultValue(r.results(), key);
  };
  if (format == OutputFormat::kJson) {
    std::vector<std::string> items;
    for (const v1::Run& r : runs) items.push_back(ToJson(r));
    return absl::StrCat("{\"runs\":[", absl::StrJoin(items, ","), "]}\n");
  }
  if (format == OutputFormat::kCsv) {
    std::string out = "key";
    for (const v1::Run& r : runs) absl::StrAppend(&out, ",run_", r.id());
    absl::StrAppend(&out, "\n");
    for (const std::string& key : keys) {
      absl::StrAppend(&out, CsvField(key));
      for (const v1::Run& r : runs) {
        std::optional<double> v = value(r, key);
        absl::StrAppend(&out, ",", v ? CsvNumber(*v) : "");
      }
      absl::StrAppend(&out, "\n");
    }
    return out;
  }
  std::vector<std::string> header = {"result"};
  for (size_t i = 0; i < runs.size(); ++i) {
    const v1::Run& r = runs[i];
    header.push_back(absl::StrCat("run ", r.id(), r.member().empty() ? "" : " ",
                                  r.member()));
    if (i > 0) header.push_back(absl::StrCat("diff vs ", runs[0].id()));
  }
  std::vector<std::vector<std::string>> rows;
  for (const std::string& key : keys) {
    std::vector<std::string> row = {key};
    for (size_t i = 0; i < runs.size(); ++i) {
      std::optional<double> v = value(runs[i], key);
      row.push_back(v ? absl::StrFormat("%.4g", *v) : "-");
      if (i > 0) {
        std::optional<double> first = value(runs[0], key);
        row.push_back(v && first ? absl::StrFormat("%+.4g", *v - *first) : "-");
      }
    }
    rows.push_back(std::move(row));
  }
  return TextTable(header, rows);
}

}  // namespace distill
