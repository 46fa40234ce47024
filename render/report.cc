#include "render/report.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <optional>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/catalog.h"
#include "common/metric_keys.h"
#include "common/run_status.h"
#include "common/sweep_expansion.h"
#include "render/claims.h"
#include "render/html.h"
#include "render/line_plot.h"
#include "render/runs.h"
#include "render/seeds.h"
#include "render/tsne.h"

namespace distill {
namespace {

std::string MapPlot(const std::string& caption,
                    const std::vector<TsnePoint>& all) {
  constexpr double kSide = 220;
  std::vector<TsnePoint> points;
  const size_t n = std::min<size_t>(all.size(), kReportTsnePoints);
  for (size_t i = 0; i < n; ++i) points.push_back(all[i * all.size() / n]);
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (const TsnePoint& p : points) {
    x0 = std::min(x0, p.x), x1 = std::max(x1, p.x);
    y0 = std::min(y0, p.y), y1 = std::max(y1, p.y);
  }
  if (x1 <= x0) x1 = x0 + 1;
  if (y1 <= y0) y1 = y0 + 1;
  std::string svg = absl::StrFormat(
      "<figure><svg class=\"plot tsne\" viewBox=\"0 0 %g %g\" width=\"%g\" "
      "height=\"%g\" role=\"img\">",
      kSide, kSide, kSide, kSide);
  for (const TsnePoint& p : points) {
    absl::StrAppendFormat(
        &svg, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"/>",
        4 + (p.x - x0) / (x1 - x0) * (kSide - 8),
        4 + (y1 - p.y) / (y1 - y0) * (kSide - 8), Colour(size_t(p.label)));
  }
  return absl::StrCat(svg, "</svg><figcaption>", Escape(caption),
                      "</figcaption></figure>");
}

// A heat map of `column` over the first two grid axes of the members:
// each cell the mean over the members with those two values.
std::string HeatMap(const v1::SweepResults& results,
                    const ResultColumn& column) {
  std::vector<std::string> labels;
  for (const v1::GridAxis& axis : results.sweep().spec().grid())
    labels.push_back(AxisLabel(axis.path()));
  if (labels.size() < 2) return "";
  const v1::GridAxis& ax = results.sweep().spec().grid(0);
  const v1::GridAxis& ay = results.sweep().spec().grid(1);
  std::map<std::pair<std::string, std::string>, std::vector<double>> cells;
  for (const v1::MemberResult& m : results.members()) {
    std::map<std::string, std::string> parts;
    for (absl::string_view part : absl::StrSplit(m.name(), '/')) {
      const size_t eq = part.find('=');
      if (eq != absl::string_view::npos)
        parts[std::string(part.substr(0, eq))] =
            std::string(part.substr(eq + 1));
    }
    std::optional<double> v = ResultValue(m.results(), column.key);
    if (!v || !parts.count(labels[0]) || !parts.count(labels[1])) continue;
    cells[{parts[labels[0]], parts[labels[1]]}].push_back(*v);
  }
  double lo = 1e300, hi = -1e300;
  for (const auto& [key, values] : cells) {
    double mean = 0;
    for (double v : values) mean += v;
    mean /= double(values.size());
    lo = std::min(lo, mean), hi = std::max(hi, mean);
  }
  constexpr double kCell = 64, kLeft = 90, kTop = 24;
  const double w = kLeft + kCell * ax.values_size() + 10,
               h = kTop + kCell * ay.values_size() + 30;
  std::string svg = absl::StrFormat(
      "<svg class=\"plot\" id=\"heatmap\" viewBox=\"0 0 %g %g\" width=\"%g\" "
      "height=\"%g\" role=\"img\">",
      w, h, w, h);
  for (int i = 0; i < ax.values_size(); ++i) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%g\" y=\"%g\" class=\"tick\" "
                          "text-anchor=\"middle\">%s=%s</text>",
                          kLeft + kCell * (i + 0.5), kTop - 6,
                          Escape(labels[0]), Escape(ax.values(i)));
  }
  for (int j = 0; j < ay.values_size(); ++j) {
    absl::StrAppendFormat(
        &svg,
        "<text x=\"%g\" y=\"%g\" class=\"tick\" text-anchor=\"end\">%s=%s"
        "</text>",
        kLeft - 6, kTop + kCell * (j + 0.5) + 4, Escape(labels[1]),
        Escape(ay.values(j)));
    for (int i = 0; i < ax.values_size(); ++i) {
      auto it = cells.find({ax.values(i), ay.values(j)});
      std::string fill = "#eeeeee", text = "-";
      if (it != cells.end()) {
        double mean = 0;
        for (double v : it->second) mean += v;
        mean /= double(it->second.size());
        const double t = hi > lo ? (mean - lo) / (hi - lo) : 1;
        // From pale yellow to deep blue.
        fill = absl::StrFormat("rgb(%d,%d,%d)", int(255 - t * 215),
                               int(247 - t * 147), int(188 + t * 12));
        text = ResultCell(column, mean);
      }
      absl::StrAppendFormat(
          &svg,
          "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"%s\"/>"
          "<text x=\"%g\" y=\"%g\" class=\"cell\" "
          "text-anchor=\"middle\">%s</text>",
          kLeft + kCell * i, kTop + kCell * j, kCell - 2, kCell - 2, fill,
          kLeft + kCell * (i + 0.5), kTop + kCell * (j + 0.5) + 4, text);
    }
  }
  return svg + "</svg>";
}

constexpr char kStyle[] =
    "body{font:14px system-ui,sans-serif;margin:24px;color:#222;max-width:"
    "1100px}h1{font-size:20px}h2{font-size:16px;margin-top:28px}"
    "table{border-collapse:collapse}td,th{padding:3px 8px;border-bottom:1px "
    "solid #ddd;text-align:right}td:first-child,th:first-child{text-align:"
    "left}tr.teacher{background:#f4f4f4}.plot polyline{fill:none;stroke-"
    "width:1.5}.frame{fill:none;stroke:#999}.tick,.legend{font-size:11px}"
    ".axis{font-size:12px;fill:#555}.cell{font-size:12px}.maps{display:flex;"
    "flex-wrap:wrap;gap:8px}figure{margin:0}figcaption{font-size:12px;text-"
    "align:center}.note{color:#555}td.mark{text-align:center}"
    "tr.teacher td:nth-child(2){text-align:center}";

}  // namespace

std::string_view PageStyle() { return kStyle; }

namespace {

// The page's start: title, style, and a reload every `refresh` seconds.
std::string Head(const std::string& title, int refresh) {
  return absl::StrCat(
      "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">",
      refresh > 0 ? absl::StrCat("<meta http-equiv=\"refresh\" content=\"",
                                 refresh, "\">")
                  : "",
      "<title>", Escape(title), "</title><style>", kStyle,
      "</style></head><body>");
}

std::string Link(const std::string& href, const std::string& text, bool live) {
  return live ? absl::StrCat("<a href=\"", href, "\">", Escape(text), "</a>")
              : Escape(text);
}

}  // namespace

namespace {

// Table 1's layout, with a link to each run on the live pages.
std::string ResultsTable(const v1::SweepResults& results,
                         const std::vector<ResultColumn>& columns, bool live) {
  const std::vector<LossColumn> losses = LossColumns(results);
  std::string html =
      "<h2>Results</h2><table id=\"results\"><thead><tr><th>row</th>";
  for (const LossColumn& c : losses)
    absl::StrAppend(&html, "<th>", Escape(c.header), "</th>");
  for (const ResultColumn& c : columns)
    absl::StrAppend(&html, "<th>", Escape(c.header), "</th>");
  absl::StrAppend(&html, "<th>run</th><th>status</th></tr></thead><tbody>");
  for (const v1::MemberResult& m : results.members()) {
    absl::StrAppend(&html, "<tr class=\"member\"><td>", Escape(m.name()),
                    "</td>");
    for (const LossColumn& c : losses) {
      absl::StrAppend(&html, "<td class=\"mark\">", c.on(m.losses()) ? "✓" : "",
                      "</td>");
    }
    for (const ResultColumn& c : columns) {
      absl::StrAppend(&html, "<td>", ResultCell(c, MemberValue(m, c)), "</td>");
    }
    absl::StrAppend(&html, "<td>",
                    Link(absl::StrCat("/runs/", m.run_id()),
                         absl::StrCat(m.run_id()), live),
                    "</td><td title=\"", Escape(m.message()), "\">",
                    v1::RunStatus_Name(m.status()), "</td></tr>");
  }
  for (const v1::TeacherResult& t : SweepTeachers(results)) {
    absl::StrAppend(&html, "<tr class=\"teacher\"><td>O</td><td colspan=\"",
                    losses.size(), "\">", Escape(t.name()), "</td>");
    for (const ResultColumn& c : columns)
      absl::StrAppend(&html, "<td>", ResultCell(c, TeacherValue(t, c)),
                      "</td>");
    absl::StrAppend(&html, "<td>",
                    Link(absl::StrCat("/runs/", t.run_id()),
                         absl::StrCat(t.run_id()), live),
                    "</td><td>", v1::RunStatus_Name(t.status()), "</td></tr>");
  }
  absl::StrAppend(&html, "</tbody></table>");
  // The lineage of forks: which run each member started from.
  std::string lineage;
  for (const v1::MemberResult& m : results.members()) {
    if (m.fork().run_id() == 0) continue;
    absl::StrAppend(&lineage, "<li>", Escape(m.name()), " (run ",
                    Link(absl::StrCat("/runs/", m.run_id()),
                         absl::StrCat(m.run_id()), live),
                    "): ", Escape(ForkLine(m.fork())), "</li>");
  }
  if (!lineage.empty()) {
    absl::StrAppend(&html, "<h3>Lineage</h3><ul id=\"lineage\">", lineage,
                    "</ul>");
  }
  return html;
}

// How many classes the sweep's data set has (10 where the files decide).
int ClassCount(const v1::SweepResults& results) {
  const DatasetInfo* data =
      FindDataset(results.sweep().spec().base().dataset().name());
  return data != nullptr && data->classes > 0 ? data->classes : 10;
}

// The training loss by step and test top-1 by epoch of every member,
// overlaid.
std::string Curves(const v1::SweepResults& results,
                   const std::map<int64_t, const ReportRun*>& by_id) {
  std::vector<Series> loss, top1;
  const double chance = 100.0 / ClassCount(results);
  for (const v1::MemberResult& m : results.members()) {
    auto it = by_id.find(m.run_id());
    if (it == by_id.end()) continue;
    Series l{m.name(), {}}, t{m.name(), {}};
    for (const v1::MetricPoint& p : it->second->history) {
      if (p.key() == metric_keys::kLoss)
        l.points.push_back({double(p.step()), p.value()});
      if (p.key() == metric_keys::kEvalTop1 && p.epoch() > 0)
        t.points.push_back({double(p.epoch()), 100 * p.value()});
    }
    std::sort(l.points.begin(), l.points.end());
    std::sort(t.points.begin(), t.points.end());
    l.points = Thin(l.points, kReportPointsPerCurve);
    t.points = Thin(t.points, kReportPointsPerCurve);
    // A row that never rose 5 points above chance (row A) sits at the edge.
    t.at_edge = !t.points.empty() &&
                std::all_of(t.points.begin(), t.points.end(),
                            [&](auto& p) { return p.second <= chance + 5; });
    loss.push_back(std::move(l));
    top1.push_back(std::move(t));
  }
  return absl::StrCat("<h2>Training loss</h2>",
                      LinePlot("loss", loss, "step", "train/loss"),
                      "<h2>Test top-1 per epoch</h2>",
                      LinePlot("top1", SeedBands(top1), "epoch", "top-1 %"));
}

// The maps of one run's tsne.csv, each captioned by `name_of(model)`; a
// note instead where the file is malformed.
template <typename NameOf>
std::string Maps(const std::string& csv, NameOf name_of) {
  absl::StatusOr<std::vector<TsneMap>> maps = ParseTsne(csv);
  if (!maps.ok()) {
    return absl::StrCat("<p class=\"note\">",
                        Escape(std::string(maps.status().message())), "</p>");
  }
  std::string html;
  for (const TsneMap& map : *maps) {
    const std::string caption = name_of(map.model);
    if (!caption.empty()) absl::StrAppend(&html, MapPlot(caption, map.points));
  }
  return html;
}

// t-SNE maps: the teacher's (from the first member's file), then each
// student's, coloured by class.
std::string SweepMaps(const v1::SweepResults& results,
                      const std::map<int64_t, const ReportRun*>& by_id) {
  std::string teacher, students;
  int drawn = 0;
  int classes = 0;  // One more than the largest label drawn.
  for (const v1::MemberResult& m : results.members()) {
    auto it = by_id.find(m.run_id());
    if (it == by_id.end() || it->second->tsne_csv.empty()) continue;
    if (absl::StatusOr<std::vector<TsneMap>> maps =
            ParseTsne(it->second->tsne_csv);
        maps.ok()) {
      for (const TsneMap& map : *maps) {
        for (const TsnePoint& p : map.points)
          classes = std::max(classes, p.label + 1);
      }
    }
    const bool want_teacher = teacher.empty();
    const bool want_student = drawn < kReportTsneMaps;
    if (want_teacher) {
      teacher = Maps(it->second->tsne_csv, [](const std::string& model) {
        return model == "teacher" ? model : "";
      });
    }
    if (want_student) {
      students += Maps(it->second->tsne_csv, [&](const std::string& model) {
        return model == "student" ? m.name() : "";
      });
      ++drawn;
    }
  }
  if (teacher.empty() && students.empty()) return "";
  return absl::StrCat(
      "<h2>t-SNE maps of the test embeddings, coloured by class</h2>",
      HtmlClassLegend(results.sweep().spec().base().dataset().name(), classes),
      "<div class=\"maps\">", teacher, students, "</div>");
}

}  // namespace

ReportRun GatherReportRun(int64_t run_id, v1::RunStatus status,
                          ReportSource& source) {
  ReportRun run;
  run.run_id = run_id;
  run.history = source.History(run_id);
  if (status == v1::SUCCEEDED) run.tsne_csv = source.Tsne(run_id);
  return run;
}

std::vector<ReportRun> GatherReportRuns(const v1::SweepResults& results,
                                        ReportSource& source) {
  std::vector<ReportRun> runs;
  for (const v1::MemberResult& m : results.members())
    runs.push_back(GatherReportRun(m.run_id(), m.status(), source));
  return runs;
}

bool SweepRunning(const v1::SweepResults& results) {
  for (const v1::MemberResult& m : results.members()) {
    if (!IsTerminal(m.status())) return true;
  }
  for (const v1::TeacherResult& t : SweepTeachers(results)) {
    if (!IsTerminal(t.status())) return true;
  }
  return false;
}

std::string RenderReport(const v1::SweepResults& results,
                         const std::vector<ReportRun>& runs,
                         const std::vector<ResultColumn>& columns,
                         int refresh_seconds) {
  const v1::Sweep& sweep = results.sweep();
  const bool live = refresh_seconds > 0;
  std::map<int64_t, const ReportRun*> by_id;
  for (const ReportRun& r : runs) by_id[r.run_id] = &r;
  std::string html = absl::StrCat(
      Head(absl::StrCat("distill: sweep ", sweep.id(), " ", sweep.name()),
           refresh_seconds),
      live ? "<p><a href=\"/\">all sweeps and runs</a></p>" : "", "<h1>sweep ",
      sweep.id(), " “", Escape(sweep.name()), "” on ",
      Escape(sweep.spec().base().dataset().name()), "</h1>");
  if (!sweep.owner().empty()) {
    absl::StrAppend(&html, "<p class=\"owner\">owner ", Escape(sweep.owner()),
                    "</p>");
  }
  if (!sweep.note().empty())
    absl::StrAppend(&html, "<p class=\"note\">", Escape(sweep.note()), "</p>");
  absl::StrAppend(&html, ResultsTable(results, columns, live));
  if (const std::string seeds = FormatSeedSummary(results, columns);
      !seeds.empty()) {
    absl::StrAppend(&html, "<h2>Over seeds</h2><pre id=\"seeds\">",
                    Escape(seeds.substr(1)), "</pre>");
  }
  absl::StrAppend(&html, ClaimsHtml(results), Curves(results, by_id));
  // A heat map over two grid axes.
  if (sweep.spec().grid_size() >= 2 && !columns.empty()) {
    absl::StrAppend(&html, "<h2>", Escape(columns[0].header), " over ",
                    Escape(AxisLabel(sweep.spec().grid(0).path())), " and ",
                    Escape(AxisLabel(sweep.spec().grid(1).path())),
                    " (mean over the other axes and seeds)</h2>",
                    HeatMap(results, columns[0]));
  }
  absl::StrAppend(&html, SweepMaps(results, by_id), "</body></html>\n");
  return html;
}

std::string RenderIndex(const std::vector<v1::Sweep>& sweeps,
                        const std::vector<v1::Run>& runs, int refresh_seconds) {
  std::string html = absl::StrCat(Head("distill", refresh_seconds),
                                  "<h1>distill</h1><h2>Sweeps</h2>"
                                  "<table id=\"sweeps\"><thead><tr><th>sweep"
                                  "</th><th>name</th><th>owner</th><th>data "
                                  "set</th><th>note</th></tr></thead><tbody>");
  for (const v1::Sweep& s : sweeps) {
    absl::StrAppend(
        &html, "<tr class=\"sweep\"><td>",
        Link(absl::StrCat("/sweeps/", s.id()), absl::StrCat(s.id()), true),
        "</td><td>", Link(absl::StrCat("/sweeps/", s.id()), s.name(), true),
        "</td><td>", Escape(s.owner()), "</td><td>",
        Escape(s.spec().base().dataset().name()), "</td><td>", Escape(s.note()),
        "</td></tr>");
  }
  absl::StrAppend(&html,
                  "</tbody></table><h2>Newest runs</h2><table id=\"runs\">"
                  "<thead><tr><th>run</th><th>sweep</th><th>member</th><th>"
                  "kind</th><th>status</th><th>top-1 %</th><th>owner</th>"
                  "</tr></thead><tbody>");
  for (const v1::Run& r : runs) {
    std::optional<double> top1 =
        ResultValue(r.results(), metric_keys::kEvalTop1);
    absl::StrAppend(
        &html, "<tr class=\"run\"><td>",
        Link(absl::StrCat("/runs/", r.id()), absl::StrCat(r.id()), true),
        "</td><td>",
        r.sweep_id() ? Link(absl::StrCat("/sweeps/", r.sweep_id()),
                            absl::StrCat(r.sweep_id()), true)
                     : "-",
        "</td><td>", Escape(r.member()), "</td><td>",
        v1::ExperimentKind_Name(r.spec().kind()), "</td><td>",
        v1::RunStatus_Name(r.status()), "</td><td>",
        top1 ? absl::StrFormat("%.1f", 100 * *top1) : "-", "</td><td>",
        Escape(r.owner()), "</td></tr>");
  }
  absl::StrAppend(&html, "</tbody></table></body></html>\n");
  return html;
}

namespace {

// What a run's page says of it above its spec: owner, why it waits, its
// preemptions, where it is while it runs, its message, note and tags.
std::string RunFacts(const v1::Run& run, const ReportRun& data) {
  std::string html;
  if (!run.owner().empty()) {
    absl::StrAppend(&html, "<p class=\"owner\">owner ", Escape(run.owner()),
                    "</p>");
  }
  if (!run.waiting_reason().empty()) {
    absl::StrAppend(&html, "<p class=\"waiting\">waiting: ",
                    Escape(run.waiting_reason()), "</p>");
  }
  for (const std::string& p : run.preemptions()) {
    absl::StrAppend(&html, "<p class=\"preempted\">preempted: ", Escape(p),
                    "</p>");
  }
  if (run.status() == v1::RUNNING) {
    // Where it is: the step, or the evaluation's stage after the last.
    Progress progress;
    for (const v1::MetricPoint& p : data.history) UpdateProgress(p, &progress);
    absl::StrAppend(&html, "<p class=\"progress\">",
                    Escape(ProgressLine(run, progress)), "</p>");
  }
  if (!run.message().empty())
    absl::StrAppend(&html, "<p class=\"note\">", Escape(run.message()), "</p>");
  if (!run.note().empty())
    absl::StrAppend(&html, "<p class=\"note\">", Escape(run.note()), "</p>");
  if (!run.tags().empty()) {
    std::map<std::string, std::string> tags(run.tags().begin(),
                                            run.tags().end());
    std::vector<std::string> shown;
    for (const auto& [key, value] : tags)
      shown.push_back(Escape(absl::StrCat(key, "=", value)));
    absl::StrAppend(&html, "<p class=\"tags\">tags ", absl::StrJoin(shown, " "),
                    "</p>");
  }
  return html;
}

}  // namespace

std::string RenderRunPage(const v1::Run& run, const ReportRun& data,
                          int refresh_seconds) {
  std::string html = absl::StrCat(
      Head(absl::StrCat("distill: run ", run.id()), refresh_seconds),
      "<p><a href=\"/\">all sweeps and runs</a>",
      run.sweep_id() ? absl::StrCat(" · <a href=\"/sweeps/", run.sweep_id(),
                                    "\">sweep ", run.sweep_id(), "</a>")
                     : "",
      "</p><h1>run ", run.id(), " ", Escape(run.member()), " — ",
      v1::ExperimentKind_Name(run.spec().kind()), " ",
      v1::RunStatus_Name(run.status()), "</h1>");
  absl::StrAppend(&html, RunFacts(run, data));
  if (const int64_t from = run.spec().fork().run_id(); from != 0) {
    absl::StrAppend(&html, "<p id=\"lineage\">",
                    Escape(ForkLine(run.spec().fork())), ": <a href=\"/runs/",
                    from, "\">run ", from, "</a></p>");
  }
  absl::StrAppend(&html, "<h2>Spec</h2><pre id=\"spec\">",
                  Escape(SpecLines(run)), "</pre>");
  absl::StrAppend(&html, "<h2>Results</h2><table id=\"results\"><tbody>");
  std::map<std::string, double> results(run.results().begin(),
                                        run.results().end());
  for (const auto& [key, value] : results) {
    absl::StrAppend(&html, "<tr class=\"result\"><td>", Escape(key),
                    "</td><td>", absl::StrFormat("%.4g", value), "</td></tr>");
  }
  absl::StrAppend(&html, "</tbody></table>");
  // One plot a training key (by step), one of the judgements (by epoch).
  std::map<std::string, Series> by_step, by_epoch;
  for (const v1::MetricPoint& p : data.history) {
    if (absl::StartsWith(p.key(), "train/") &&
        p.key() != metric_keys::kTotalSteps) {
      Series& s = by_step[p.key()];
      s.name = p.key();
      s.points.push_back({double(p.step()), p.value()});
    } else if (p.epoch() > 0 &&
               !absl::StartsWith(p.key(), metric_keys::kEvaluating)) {
      Series& s = by_epoch[p.key()];
      s.name = p.key();
      s.points.push_back({double(p.epoch()), p.value()});
    }
  }
  int plot = 0;
  for (auto* group : {&by_step, &by_epoch}) {
    for (auto& [key, series] : *group) {
      std::sort(series.points.begin(), series.points.end());
      series.points = Thin(series.points, kReportPointsPerCurve);
      absl::StrAppend(&html, "<h2>", Escape(key), "</h2>",
                      LinePlot(absl::StrCat("plot", plot++), {series},
                               group == &by_step ? "step" : "epoch", key));
    }
  }
  const std::string maps =
      data.tsne_csv.empty()
          ? ""
          : Maps(data.tsne_csv, [](const std::string& model) { return model; });
  if (!maps.empty()) {
    absl::StrAppend(&html, "<h2>t-SNE maps, coloured by class</h2>",
                    "<div class=\"maps\">", maps, "</div>");
  }
  absl::StrAppend(&html, "</body></html>\n");
  return html;
}

}  // namespace distill
