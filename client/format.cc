#include "client/format.h"

#include <google/protobuf/util/json_util.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/terminal.h"
#include "common/metric_keys.h"
#include "common/spec_fields.h"
#include "common/sweep_expansion.h"

namespace distill {
namespace {

// Display width of UTF-8 text: one column a code point.
size_t Width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string Pad(const std::string& s, size_t width, bool right = false) {
  const size_t w = Width(s);
  const std::string fill(w < width ? width - w : 0, ' ');
  return right ? fill + s : s + fill;
}

std::string Center(const std::string& s, size_t width) {
  const size_t w = Width(s);
  if (w >= width) return s;
  const size_t left = (width - w) / 2;
  return std::string(left, ' ') + s + std::string(width - w - left, ' ');
}

std::string Duration(double seconds) {
  const int64_t s = int64_t(std::max(0.0, seconds));
  if (s >= 3600)
    return absl::StrFormat("%d:%02d:%02d", s / 3600, (s / 60) % 60, s % 60);
  return absl::StrFormat("%d:%02d", s / 60, s % 60);
}

bool UsesRkd(const v1::Losses& l) {
  return l.rkd().distance_weight() > 0 || l.rkd().angle_weight() > 0;
}

}  // namespace

std::string LossSummary(const v1::Losses& l) {
  std::vector<std::string> parts;
  if (l.ce() > 0) parts.push_back("CE");
  if (l.mse() > 0) parts.push_back("MSE");
  if (l.ikd().weight() > 0) parts.push_back("IKD");
  if (UsesRkd(l)) parts.push_back("RKD");
  return parts.empty() ? "-" : absl::StrJoin(parts, "+");
}

// Each term with its weight: "CE 1 + IKD 1 (T 4, x T^2) + RKD angle 2".
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

namespace {

// A table: a header, rows, cells padded (the first column left, the rest
// right when `right_aligned`), " │ " between them, a rule under the header
// when `rule`.
std::string TextTable(const std::vector<std::string>& header,
                      const std::vector<std::vector<std::string>>& rows,
                      bool right_aligned = true, bool rule = true) {
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = Width(header[c]);
    for (const auto& row : rows) widths[c] = std::max(widths[c], Width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> padded;
    for (size_t c = 0; c < cells.size(); ++c)
      padded.push_back(Pad(cells[c], widths[c], right_aligned && c > 0));
    return absl::StrCat(" ", absl::StrJoin(padded, " │ "), "\n");
  };
  std::string out = line(header);
  if (rule) {
    std::vector<std::string> rules;
    for (size_t w : widths) {
      std::string r;
      for (size_t i = 0; i < w; ++i) r += "─";
      rules.push_back(r);
    }
    absl::StrAppend(&out, "─", absl::StrJoin(rules, "─┼─"), "─\n");
  }
  for (const auto& row : rows) absl::StrAppend(&out, line(row));
  return out;
}

}  // namespace

std::string ResultCell(const ResultColumn& column,
                       std::optional<double> value) {
  if (!value) return "-";
  return column.percent ? absl::StrFormat("%.1f", 100 * *value)
                        : absl::StrFormat("%.3f", *value);
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

std::string FormatResultsTable(const v1::SweepResults& results,
                               const std::vector<ResultColumn>& columns) {
  // Cells: row, the four losses, the columns, run, status.
  std::vector<std::string> header = {"row", "labels CE", "embedding MSE", "IKD",
                                     "RKD"};
  for (const ResultColumn& c : columns) header.push_back(c.header);
  header.push_back("run");
  header.push_back("status");
  const size_t first_result = 5, status_col = header.size() - 1;
  // The teachers (a sweep before they were listed has the one).
  std::vector<v1::TeacherResult> teachers(results.teachers().begin(),
                                          results.teachers().end());
  if (teachers.empty()) {
    v1::TeacherResult& t = teachers.emplace_back();
    t.set_name("teacher");
    t.set_run_id(results.teacher_run_id());
    t.set_status(results.teacher_status());
    if (results.has_teacher_top1()) t.set_top1(results.teacher_top1());
  }
  // One block a teacher: its members, then its row O (Table 1's layout).
  struct Row {
    std::vector<std::string> cells;
    bool teacher = false;
    bool last_of_block = false;
  };
  std::vector<Row> rows;
  const std::string check = "✓";
  std::vector<bool> shown(results.members_size(), false);
  for (size_t t = 0; t < teachers.size(); ++t) {
    for (int i = 0; i < results.members_size(); ++i) {
      const v1::MemberResult& m = results.members(i);
      const bool mine =
          teachers.size() == 1 || m.teacher() == teachers[t].name();
      if (shown[i] || !mine) continue;
      shown[i] = true;
      const v1::Losses& l = m.losses();
      Row row{{m.name(), l.ce() > 0 ? check : "", l.mse() > 0 ? check : "",
               l.ikd().weight() > 0 ? check : "", UsesRkd(l) ? check : ""}};
      for (const ResultColumn& c : columns)
        row.cells.push_back(ResultCell(c, MemberValue(m, c)));
      row.cells.push_back(absl::StrCat(m.run_id()));
      row.cells.push_back(v1::RunStatus_Name(m.status()));
      rows.push_back(std::move(row));
    }
    // The teacher's own judgement where it has one (not the columns that
    // compare it with a student).
    const v1::TeacherResult& teacher = teachers[t];
    Row row{
        {"O",
         teachers.size() == 1 ? "teacher ViT"
                              : absl::StrCat("teacher ViT ", teacher.name()),
         "", "", ""},
        true,
        t + 1 < teachers.size()};
    for (const ResultColumn& c : columns) {
      std::optional<double> v = ResultValue(teacher.results(), c.key);
      if (!v && c.key == metric_keys::kEvalTop1 && teacher.has_top1())
        v = teacher.top1();
      row.cells.push_back(ResultCell(c, v));
    }
    row.cells.push_back(absl::StrCat(teacher.run_id()));
    row.cells.push_back(v1::RunStatus_Name(teacher.status()));
    rows.push_back(std::move(row));
  }
  std::vector<size_t> widths(header.size());
  for (size_t c = 0; c < header.size(); ++c) {
    widths[c] = Width(header[c]);
    for (const Row& row : rows) {
      const bool spanned = row.teacher && c >= 1 && c <= 4;
      if (!spanned) widths[c] = std::max(widths[c], Width(row.cells[c]));
    }
  }
  // A teacher's name wider than the loss columns widens the last of them.
  const size_t span = widths[1] + widths[2] + widths[3] + widths[4] + 9;
  for (const Row& row : rows) {
    if (row.teacher && Width(row.cells[1]) > span)
      widths[4] += Width(row.cells[1]) - span;
  }
  std::string out = absl::StrCat(
      "sweep ", results.sweep().id(), " \"", results.sweep().name(), "\" on ",
      results.sweep().spec().base().dataset().name(),
      teachers.size() == 1
          ? absl::StrCat(", teacher run ", results.teacher_run_id())
          : absl::StrCat(", ", teachers.size(), " teachers"),
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
  auto pad = [&](const std::vector<std::string>& cells, size_t c) {
    if (c == 0 || c == status_col) return Pad(cells[c], widths[c]);
    if (c >= first_result) return Pad(cells[c], widths[c], /*right=*/true);
    return Center(cells[c], widths[c]);
  };
  auto line = [&](const std::vector<std::string>& cells) {
    std::vector<std::string> padded;
    for (size_t c = 0; c < cells.size(); ++c) padded.push_back(pad(cells, c));
    return absl::StrCat(" ", absl::StrJoin(padded, " │ "), "\n");
  };
  absl::StrAppend(&out, line(header));
  std::vector<std::string> rules;
  for (size_t w : widths) {
    std::string rule;
    for (size_t i = 0; i < w; ++i) rule += "─";
    rules.push_back(rule);
  }
  const std::string rule =
      absl::StrCat("─", absl::StrJoin(rules, "─┼─"), "─\n");
  absl::StrAppend(&out, rule);
  for (const Row& row : rows) {
    if (!row.teacher) {
      absl::StrAppend(&out, line(row.cells));
      continue;
    }
    // The teacher row spans the loss columns.
    std::vector<std::string> padded = {
        pad(row.cells, 0),
        Pad(row.cells[1], widths[1] + widths[2] + widths[3] + widths[4] + 9)};
    for (size_t c = first_result; c < row.cells.size(); ++c)
      padded.push_back(pad(row.cells, c));
    absl::StrAppend(&out, " ", absl::StrJoin(padded, " │ "), "\n");
    if (row.last_of_block) absl::StrAppend(&out, rule);
  }
  for (const v1::MemberResult& m : results.members()) {
    if (m.status() == v1::FAILED) {
      absl::StrAppend(&out, "row ", m.name(), " failed: ", m.message(), "\n");
    } else if (m.status() == v1::PRUNED) {
      absl::StrAppend(&out, "row ", m.name(), " ", m.message(), "\n");
    }
  }
  absl::StrAppend(&out, FormatSeedSummary(results, columns));
  return out;
}

std::string FormatSeedSummary(const v1::SweepResults& results,
                              const std::vector<ResultColumn>& columns) {
  // Members named ".../seed=N" grouped by the rest of their name, in the
  // order the groups first appear.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const v1::MemberResult*>> groups;
  bool seeded = false;
  for (const v1::MemberResult& m : results.members()) {
    const std::string key = WithoutSeed(m.name());
    seeded = seeded || key != m.name();
    if (groups.find(key) == groups.end()) order.push_back(key);
    groups[key].push_back(&m);
  }
  if (!seeded) return "";
  // Cells: member, each column's mean ± std, n.
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> header = {"member"};
  for (const ResultColumn& c : columns) header.push_back(c.header);
  header.push_back("n");
  for (const std::string& key : order) {
    const auto& members = groups[key];
    std::vector<std::string> row = {key.empty() ? "(base)" : key};
    for (const ResultColumn& c : columns) {
      std::vector<double> values;
      for (const v1::MemberResult* m : members) {
        if (std::optional<double> v = MemberValue(*m, c))
          values.push_back(c.percent ? 100 * *v : *v);
      }
      std::string cell = "-";
      if (!values.empty()) {
        double mean = 0;
        for (double v : values) mean += v;
        mean /= double(values.size());
        double var = 0;
        for (double v : values) var += (v - mean) * (v - mean);
        auto text = [&](double v) {
          return c.percent ? absl::StrFormat("%.1f", v)
                           : absl::StrFormat("%.3f", v);
        };
        cell = text(mean);
        if (values.size() > 1) {
          absl::StrAppend(&cell, " ± ",
                          text(std::sqrt(var / double(values.size() - 1))));
        }
      }
      row.push_back(cell);
    }
    int with_result = 0;
    for (const v1::MemberResult* m : members)
      with_result += MemberValue(*m, AllResultColumns()[0]).has_value();
    row.push_back(absl::StrCat(with_result, " of ", members.size()));
    rows.push_back(std::move(row));
  }
  return absl::StrCat(
      "\nover seeds: mean ± sample std; n: runs with a result of the "
      "member's runs\n",
      TextTable(header, rows, /*right_aligned=*/false, /*rule=*/false));
}

void UpdateProgress(const v1::RunEvent& event, Progress* p) {
  for (const v1::MetricPoint& m : event.metrics()) {
    if (m.key() == metric_keys::kTotalSteps) {
      p->total_steps = int64_t(m.value());
      continue;
    }
    p->step = std::max(p->step, m.step());
    p->epoch = std::max(p->epoch, m.epoch());
    if (m.key() == metric_keys::kLoss) {
      p->loss = m.value();
      p->has_loss = true;
    } else if (m.key() == metric_keys::kImagesPerSec) {
      p->images_per_sec = m.value();
    } else if (m.key() == metric_keys::kEvalTop1) {
      p->top1 = m.value();
    }
  }
}

std::string ProgressLine(const v1::Run& run, const Progress& p) {
  std::string out = absl::StrCat("run ", run.id());
  if (!run.member().empty()) absl::StrAppend(&out, " (", run.member(), ")");
  absl::StrAppend(&out, " ", v1::RunStatus_Name(run.status()));
  if (run.status() == v1::RUNNING || run.status() == v1::SUCCEEDED) {
    absl::StrAppend(&out, "  epoch ", std::max(1, p.epoch), "/",
                    run.spec().epochs());
    if (p.total_steps > 0)
      absl::StrAppend(&out, "  step ", p.step, "/", p.total_steps);
    if (p.has_loss)
      absl::StrAppend(&out, absl::StrFormat("  loss %.4f", p.loss));
    if (p.images_per_sec > 0) {
      absl::StrAppend(&out, absl::StrFormat("  %.0f img/s", p.images_per_sec));
      if (run.status() == v1::RUNNING && p.total_steps > 0) {
        const double left = double(p.total_steps - p.step) *
                            run.spec().batch_size() / p.images_per_sec;
        absl::StrAppend(&out, "  ETA ", Duration(left));
      }
    }
    if (p.top1 >= 0)
      absl::StrAppend(&out, absl::StrFormat("  top-1 %.1f%%", 100 * p.top1));
  }
  if (!run.message().empty() && run.status() != v1::RUNNING) {
    absl::StrAppend(&out, "  ", run.message());
  }
  return out;
}

std::string Sparkline(const std::vector<double>& values, size_t width) {
  if (values.empty()) return "";
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const size_t n = std::min(width, values.size());
  std::vector<double> buckets(n);
  for (size_t b = 0; b < n; ++b) {
    const size_t from = b * values.size() / n, to = (b + 1) * values.size() / n;
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += values[i];
    buckets[b] = sum / double(to - from);
  }
  const auto [lo, hi] = std::minmax_element(buckets.begin(), buckets.end());
  std::string out;
  for (double v : buckets) {
    const int level =
        *hi > *lo ? int(std::lround(7 * (v - *lo) / (*hi - *lo))) : 3;
    out += kBlocks[level];
  }
  return out;
}

std::vector<v1::MetricPoint> LatestMeasurements(
    const std::vector<v1::MetricPoint>& history) {
  // Per key and attempt, the first step measured.
  std::map<std::pair<std::string, int32_t>, int64_t> first_step;
  for (const v1::MetricPoint& m : history) {
    auto [it, inserted] =
        first_step.try_emplace({m.key(), m.attempt()}, m.step());
    if (!inserted) it->second = std::min(it->second, m.step());
  }
  std::vector<v1::MetricPoint> out;
  for (const v1::MetricPoint& m : history) {
    bool superseded = false;
    for (auto it = first_step.upper_bound({m.key(), m.attempt()});
         it != first_step.end() && it->first.first == m.key(); ++it) {
      superseded |= it->second <= m.step();
    }
    if (!superseded) out.push_back(m);
  }
  return out;
}

std::string FormatRunDetails(const v1::Run& run,
                             const std::vector<v1::MetricPoint>& all_history) {
  const std::vector<v1::MetricPoint> history = LatestMeasurements(all_history);
  const v1::ExperimentSpec& s = run.spec();
  std::string out = absl::StrCat(
      "run ", run.id(), "  ", v1::ExperimentKind_Name(s.kind()), "  ",
      v1::RunStatus_Name(run.status()), "  attempt ", run.attempt(), "\n");
  if (run.sweep_id() != 0) {
    absl::StrAppend(&out, "  sweep ", run.sweep_id(), " member ", run.member(),
                    "\n");
  }
  if (!run.tags().empty()) {
    std::vector<std::string> tags;
    for (const auto& [key, value] : run.tags())
      tags.push_back(absl::StrCat(key, "=", value));
    std::sort(tags.begin(), tags.end());
    absl::StrAppend(&out, "  tags ", absl::StrJoin(tags, " "), "\n");
  }
  if (!run.note().empty()) absl::StrAppend(&out, "  note ", run.note(), "\n");
  if (!run.provenance().empty()) {
    std::map<std::string, std::string> p(run.provenance().begin(),
                                         run.provenance().end());
    auto get = [&](const char* key) {
      auto it = p.find(key);
      return it == p.end() || it->second.empty() ? std::string("-")
                                                 : it->second;
    };
    absl::StrAppend(&out, "  ran on ", get("host"), " (worker ", get("worker"),
                    "), ", get("device"), ", ", get("threads"),
                    " threads, LibTorch ", get("libtorch"), ", BLAS ",
                    get("blas"), "\n  built ", get("worker_version"),
                    " (coordinator ", get("coordinator_version"),
                    ")  spec sha256 ", get("spec_sha256").substr(0, 16), "\n");
    if (p.count("data_sha256")) {
      absl::StrAppend(&out, "  data sha256 ", get("data_sha256"), " (",
                      get("data_files"), " files)\n");
    }
    if (p.count("teacher_checkpoint_sha256")) {
      absl::StrAppend(&out, "  teacher checkpoint sha256 ",
                      get("teacher_checkpoint_sha256"), "\n");
    }
    if (p.count("teacher_torchscript_sha256")) {
      absl::StrAppend(&out, "  teacher TorchScript sha256 ",
                      get("teacher_torchscript_sha256"), "\n");
    }
  }
  const v1::DatasetSpec& d = s.dataset();
  absl::StrAppend(&out, "  data ", d.name(),
                  d.root().empty() ? "" : absl::StrCat(" at ", d.root()),
                  " (train ", d.train_limit(), ", test ", d.test_limit(),
                  "; 0 = all)  image ", d.image_size(), " px  seed ", s.seed(),
                  "\n");
  if (s.kind() != v1::EVALUATE) {
    const v1::OptimizerSpec& o = s.optimizer();
    absl::StrAppend(
        &out, "  epochs ", s.epochs(), "  batch ", s.batch_size(),
        "  optimizer ", v1::OptimizerKind_Name(o.kind()), " lr ", o.lr(),
        // AdamW has no momentum term.
        o.kind() == v1::SGD ? absl::StrCat(" momentum ", o.momentum()) : "",
        " weight decay ", o.weight_decay(), "  max restarts ", s.max_restarts(),
        "\n");
  }
  if (s.kind() == v1::DISTILL) {
    const v1::StudentSpec& st = s.student();
    absl::StrAppend(&out, "  teacher ",
                    s.teacher().torchscript().empty()
                        ? absl::StrCat("run ", run.teacher_run_id())
                        : s.teacher().torchscript(),
                    "  student ", st.arch(), " width ", st.width(), " stem ",
                    v1::Stem_Name(st.stem()), " embedding ",
                    st.embedding_dim() > 0 ? absl::StrCat(st.embedding_dim())
                                           : std::string("pooled"),
                    "\n  losses ", LossWeights(s.losses()), "\n");
  } else if (s.kind() == v1::EVALUATE) {
    absl::StrAppend(&out, "  evaluates teacher ",
                    s.teacher().torchscript().empty()
                        ? absl::StrCat("run ", s.teacher().run_id())
                        : s.teacher().torchscript(),
                    ", student run ", s.student_run_id(), "\n");
  } else if (!s.teacher().torchscript().empty()) {
    absl::StrAppend(&out, "  linear head on TorchScript backbone ",
                    s.teacher().torchscript(), "\n");
  } else {
    const v1::VitSpec& v = s.teacher().vit();
    absl::StrAppend(
        &out, "  ViT ", v.preset().empty() ? "" : absl::StrCat(v.preset(), " "),
        "patch ", v.patch_size(), " width ", v.width(), " depth ", v.depth(),
        " heads ", v.heads(), " mlp ratio ", v.mlp_ratio(), "\n");
  }
  if (!run.worker_id().empty())
    absl::StrAppend(&out, "  worker ", run.worker_id(), "\n");
  if (!run.message().empty())
    absl::StrAppend(&out, "  message: ", run.message(), "\n");
  if (run.finished_ms() > 0 && run.started_ms() > 0) {
    absl::StrAppend(
        &out, "  wall time ",
        Duration(double(run.finished_ms() - run.started_ms()) / 1000), "\n");
  }
  for (const auto& [key, value] : std::map<std::string, double>(
           run.results().begin(), run.results().end())) {
    absl::StrAppend(&out, "  ", key, " = ", absl::StrFormat("%.4f", value),
                    "\n");
  }
  for (const v1::RunFile& f : run.files()) {
    absl::StrAppend(&out, "  file ", f.name(), " (", f.size(),
                    " bytes, sha256 ", f.sha256().substr(0, 12), ")\n");
  }
  std::vector<double> loss, top1;
  for (const v1::MetricPoint& m : history) {
    if (m.key() == metric_keys::kLoss) loss.push_back(m.value());
    if (m.key() == metric_keys::kEvalTop1) top1.push_back(m.value());
  }
  if (!loss.empty()) {
    absl::StrAppend(
        &out, absl::StrFormat("  train/loss %8.4f %s %.4f\n", loss.front(),
                              Sparkline(loss), loss.back()));
  }
  if (!top1.empty()) {
    absl::StrAppend(&out, "  eval/top1 by epoch:");
    for (double t : top1)
      absl::StrAppend(&out, absl::StrFormat(" %.1f%%", 100 * t));
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string TsnePlot(const std::string& csv, int width, int height) {
  struct Point {
    double x, y;
    int label;
  };
  std::vector<std::pair<std::string, std::vector<Point>>> models;
  size_t start = csv.find('\n');  // Skip the header.
  int line_number = 1;
  while (start != std::string::npos && start + 1 < csv.size()) {
    const size_t end = csv.find('\n', start + 1);
    const std::string line = csv.substr(start + 1, end - start - 1);
    start = end;
    ++line_number;
    if (line.empty()) continue;
    const std::vector<std::string> f = absl::StrSplit(line, ',');
    Point p;
    if (f.size() != 4 || !absl::SimpleAtod(f[1], &p.x) ||
        !absl::SimpleAtod(f[2], &p.y) || !absl::SimpleAtoi(f[3], &p.label)) {
      return absl::StrCat("tsne.csv line ", line_number,
                          " is not model,x,y,label: \"", TerminalSafe(line),
                          "\"\n");
    }
    if (models.empty() || models.back().first != f[0])
      models.push_back({f[0], {}});
    models.back().second.push_back(p);
  }
  std::string out;
  const char* const kSymbols = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (const auto& [name, points] : models) {
    double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
    for (const Point& p : points) {
      x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
      y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
    }
    std::vector<std::map<int, int>> cells(size_t(width * height));
    for (const Point& p : points) {
      const int cx =
          x1 > x0 ? int((p.x - x0) / (x1 - x0) * (width - 1) + 0.5) : 0;
      const int cy =
          y1 > y0 ? int((y1 - p.y) / (y1 - y0) * (height - 1) + 0.5) : 0;
      ++cells[size_t(cy * width + cx)][p.label];
    }
    absl::StrAppend(&out, TerminalSafe(name), " (", points.size(),
                    " test images; a digit is a class)\n");
    out += "┌";
    for (int i = 0; i < width; ++i) out += "─";
    out += "┐\n";
    for (int r = 0; r < height; ++r) {
      out += "│";
      for (int c = 0; c < width; ++c) {
        const auto& votes = cells[size_t(r * width + c)];
        if (votes.empty()) {
          out += ' ';
          continue;
        }
        auto best = std::max_element(
            votes.begin(), votes.end(),
            [](auto& a, auto& b) { return a.second < b.second; });
        out +=
            best->first >= 0 && best->first < 36 ? kSymbols[best->first] : '*';
      }
      out += "│\n";
    }
    out += "└";
    for (int i = 0; i < width; ++i) out += "─";
    out += "┘\n";
  }
  return out;
}

std::string FormatRunList(const std::vector<v1::Run>& runs) {
  std::string out =
      absl::StrFormat("%5s  %-5s  %-13s  %-10s  %-10s  %-14s  %s\n", "id",
                      "sweep", "kind", "member", "status", "losses", "top-1 %");
  for (const v1::Run& r : runs) {
    auto it = r.results().find(metric_keys::kEvalTop1);
    const std::string top1 = it == r.results().end()
                                 ? "-"
                                 : absl::StrFormat("%.1f", 100 * it->second);
    absl::StrAppend(
        &out,
        absl::StrFormat("%5d  %-5s  %-13s  %-10s  %-10s  %-14s  %s\n", r.id(),
                        r.sweep_id() ? absl::StrCat(r.sweep_id()) : "-",
                        v1::ExperimentKind_Name(r.spec().kind()),
                        r.member().empty() ? "-" : r.member(),
                        v1::RunStatus_Name(r.status()),
                        r.spec().kind() == v1::DISTILL
                            ? LossSummary(r.spec().losses())
                            : "-",
                        top1));
  }
  return out;
}

absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name) {
  if (name == "table") return OutputFormat::kTable;
  if (name == "csv") return OutputFormat::kCsv;
  if (name == "json") return OutputFormat::kJson;
  return absl::InvalidArgumentError(absl::StrCat(
      "--format must be table, csv or json, got \"", name.substr(0, 64), "\""));
}

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string quoted = "\"";
  for (char c : s) {
    if (c == '"') quoted += '"';
    quoted += c;
  }
  return quoted + "\"";
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  if (!google::protobuf::util::MessageToJsonString(message, &json, options)
           .ok()) {
    return "{}";
  }
  return json;
}

namespace {

std::string CsvNumber(double v) { return absl::StrFormat("%.10g", v); }

}  // namespace

std::string FormatRunListCsv(const std::vector<v1::Run>& runs) {
  std::set<std::string> keys;
  for (const v1::Run& r : runs)
    for (const auto& [key, value] : r.results()) keys.insert(key);
  std::vector<std::string> header = {
      "id",     "sweep_id",       "member",     "kind",
      "status", "teacher_run_id", "created_ms", "finished_ms"};
  for (const std::string& key : keys) header.push_back(CsvField(key));
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const v1::Run& r : runs) {
    std::vector<std::string> cells = {absl::StrCat(r.id()),
                                      absl::StrCat(r.sweep_id()),
                                      CsvField(r.member()),
                                      v1::ExperimentKind_Name(r.spec().kind()),
                                      v1::RunStatus_Name(r.status()),
                                      absl::StrCat(r.teacher_run_id()),
                                      absl::StrCat(r.created_ms()),
                                      absl::StrCat(r.finished_ms())};
    for (const std::string& key : keys) {
      auto it = r.results().find(key);
      cells.push_back(it == r.results().end() ? "" : CsvNumber(it->second));
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

std::string FormatRunCsv(const v1::Run& run) {
  std::string out = "field,value\n";
  auto row = [&](const std::string& field, const std::string& value) {
    absl::StrAppend(&out, CsvField(field), ",", CsvField(value), "\n");
  };
  row("id", absl::StrCat(run.id()));
  row("sweep_id", absl::StrCat(run.sweep_id()));
  row("member", run.member());
  row("status", v1::RunStatus_Name(run.status()));
  row("attempt", absl::StrCat(run.attempt()));
  row("message", run.message());
  row("note", run.note());
  for (const auto& [path, value] : FlattenSpec(run.spec()))
    row(absl::StrCat("spec/", path), value);
  std::map<std::string, double> results(run.results().begin(),
                                        run.results().end());
  for (const auto& [key, value] : results)
    row(absl::StrCat("result/", key), CsvNumber(value));
  std::map<std::string, std::string> tags(run.tags().begin(), run.tags().end());
  for (const auto& [key, value] : tags) row(absl::StrCat("tag/", key), value);
  std::map<std::string, std::string> provenance(run.provenance().begin(),
                                                run.provenance().end());
  for (const auto& [key, value] : provenance)
    row(absl::StrCat("provenance/", key), value);
  for (const v1::RunFile& f : run.files())
    row(absl::StrCat("file/", f.name()), f.sha256());
  return out;
}

std::string FormatWorkersCsv(const std::vector<v1::Worker>& workers) {
  std::string out =
      "id,state,hostname,device,threads,libtorch_version,blas,run_id,"
      "last_seen_ms\n";
  for (const v1::Worker& w : workers) {
    absl::StrAppend(
        &out,
        absl::StrJoin(
            {CsvField(w.id()), CsvField(w.state()), CsvField(w.hostname()),
             CsvField(w.device()), absl::StrCat(w.threads()),
             CsvField(w.libtorch_version()), CsvField(w.blas()),
             absl::StrCat(w.run_id()), absl::StrCat(w.last_seen_ms())},
            ","),
        "\n");
  }
  return out;
}

std::string FormatResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns) {
  std::vector<std::string> header = {
      "name", "kind", "teacher", "run_id",       "status",
      "ce",   "mse",  "ikd",     "rkd_distance", "rkd_angle"};
  for (const ResultColumn& c : columns) header.push_back(CsvField(c.key));
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const v1::MemberResult& m : results.members()) {
    const v1::Losses& l = m.losses();
    std::vector<std::string> cells = {CsvField(m.name()),
                                      "member",
                                      CsvField(m.teacher()),
                                      absl::StrCat(m.run_id()),
                                      v1::RunStatus_Name(m.status()),
                                      CsvNumber(l.ce()),
                                      CsvNumber(l.mse()),
                                      CsvNumber(l.ikd().weight()),
                                      CsvNumber(l.rkd().distance_weight()),
                                      CsvNumber(l.rkd().angle_weight())};
    for (const ResultColumn& c : columns) {
      std::optional<double> v = MemberValue(m, c);
      cells.push_back(v ? CsvNumber(*v) : "");
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  for (const v1::TeacherResult& t : results.teachers()) {
    std::vector<std::string> cells = {CsvField(t.name()),
                                      "teacher",
                                      "",
                                      absl::StrCat(t.run_id()),
                                      v1::RunStatus_Name(t.status()),
                                      "",
                                      "",
                                      "",
                                      "",
                                      ""};
    for (const ResultColumn& c : columns) {
      std::optional<double> v = ResultValue(t.results(), c.key);
      cells.push_back(v ? CsvNumber(*v) : "");
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

namespace {

// A JSON number, or null.
std::string JsonNumber(std::optional<double> v) {
  return v ? absl::StrFormat("%.10g", *v) : "null";
}

// A JSON string: quotes, backslashes and control characters escaped.
std::string JsonString(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += char(c);
    } else if (c < 0x20) {
      out += absl::StrFormat("\\u%04x", c);
    } else {
      out += char(c);
    }
  }
  return out + "\"";
}

std::string Difference(const ResultColumn& c, std::optional<double> a,
                       std::optional<double> b) {
  if (!a || !b) return "-";
  const double d = *b - *a;
  return c.percent ? absl::StrFormat("%+.1f", 100 * d)
                   : absl::StrFormat("%+.3f", d);
}

}  // namespace

std::string FormatSweepComparison(const v1::SweepResults& a,
                                  const v1::SweepResults& b,
                                  const std::vector<ResultColumn>& columns,
                                  OutputFormat format) {
  // Members by name, in A's order and then B's own.
  std::vector<std::string> names;
  std::map<std::string, const v1::MemberResult*> in_a, in_b;
  for (const v1::MemberResult& m : a.members()) {
    if (in_a.emplace(m.name(), &m).second) names.push_back(m.name());
  }
  for (const v1::MemberResult& m : b.members()) {
    if (in_b.emplace(m.name(), &m).second && !in_a.count(m.name()))
      names.push_back(m.name());
  }
  auto value = [&](const std::map<std::string, const v1::MemberResult*>& in,
                   const std::string& name,
                   const ResultColumn& c) -> std::optional<double> {
    auto it = in.find(name);
    if (it == in.end()) return std::nullopt;
    return MemberValue(*it->second, c);
  };
  const std::string label_a = absl::StrCat("A ", a.sweep().id());
  const std::string label_b = absl::StrCat("B ", b.sweep().id());
  if (format == OutputFormat::kJson) {
    std::vector<std::string> rows;
    for (const std::string& name : names) {
      for (const ResultColumn& c : columns) {
        const std::optional<double> va = value(in_a, name, c),
                                    vb = value(in_b, name, c);
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
  if (format == OutputFormat::kCsv) {
    std::string out = "member,key,a,b,difference\n";
    for (const std::string& name : names) {
      for (const ResultColumn& c : columns) {
        const std::optional<double> va = value(in_a, name, c),
                                    vb = value(in_b, name, c);
        absl::StrAppend(&out, CsvField(name), ",", CsvField(c.key), ",",
                        va ? CsvNumber(*va) : "", ",", vb ? CsvNumber(*vb) : "",
                        ",", va && vb ? CsvNumber(*vb - *va) : "", "\n");
      }
    }
    return out;
  }
  std::vector<std::string> header = {"member"};
  for (const ResultColumn& c : columns) {
    header.push_back(absl::StrCat(c.header, " A"));
    header.push_back(absl::StrCat(c.header, " B"));
    header.push_back("B - A");
  }
  std::vector<std::vector<std::string>> rows;
  for (const std::string& name : names) {
    std::vector<std::string> row = {name};
    for (const ResultColumn& c : columns) {
      const std::optional<double> va = value(in_a, name, c),
                                  vb = value(in_b, name, c);
      row.push_back(ResultCell(c, va));
      row.push_back(ResultCell(c, vb));
      row.push_back(Difference(c, va, vb));
    }
    rows.push_back(std::move(row));
  }
  std::string out = absl::StrCat(
      label_a, " \"", a.sweep().name(), "\" against ", label_b, " \"",
      b.sweep().name(), "\" (", a.sweep().spec().base().dataset().name(), " / ",
      b.sweep().spec().base().dataset().name(), ")\n");
  absl::StrAppend(&out, TextTable(header, rows));
  return out;
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
