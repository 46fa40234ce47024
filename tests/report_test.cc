// `distill report`'s HTML: what it holds, that it fetches nothing, and that
// a real browser (headless Chromium, when installed) renders it with one
// SVG per plot, every table row and no console error.
#include "render/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/browser.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A sweep of a grid over T and the RKD angle, two seeds, 12 members, with
// histories of 10^4 loss points each and t-SNE maps.
struct Fixture {
  v1::SweepResults results;
  std::vector<ReportRun> runs;
};

Fixture Grid() {
  Fixture f;
  v1::Sweep* sweep = f.results.mutable_sweep();
  sweep->set_id(3);
  sweep->set_name("grid <&>");
  sweep->mutable_spec()->mutable_base()->mutable_dataset()->set_name(
      "fashion-mnist");
  AddGridAxis(*sweep->mutable_spec(), "losses.ikd.temperature",
              {"1", "4", "8"});
  AddGridAxis(*sweep->mutable_spec(), "losses.rkd.angle_weight", {"1", "2"});
  v1::Claim* claim = sweep->mutable_spec()->add_claims();
  claim->set_text("<b>the teacher</b> is at or above nothing");
  claim->set_kind(v1::AT_LEAST);
  claim->set_row("O");
  claim->set_other("O");
  v1::TeacherResult* teacher = f.results.add_teachers();
  teacher->set_name("teacher");
  teacher->set_run_id(1);
  teacher->set_status(v1::SUCCEEDED);
  (*teacher->mutable_results())["eval/top1"] = 0.8;
  int64_t id = 2;
  for (const char* tv : {"1", "4", "8"}) {
    for (const char* av : {"1", "2"}) {
      for (int seed = 1; seed <= 2; ++seed) {
        v1::MemberResult* m = f.results.add_members();
        m->set_name(
            absl::StrCat("G/T=", tv, "/rkd.angle=", av, "/seed=", seed));
        m->set_run_id(id);
        m->set_status(v1::SUCCEEDED);
        m->mutable_losses()->set_ce(1);
        (*m->mutable_results())["eval/top1"] = 0.85 + 0.001 * double(id);
        (*m->mutable_results())["eval/teacher_cka"] = 0.9;
        ReportRun run;
        run.run_id = id;
        for (int step = 1; step <= 10'000; ++step) {
          v1::MetricPoint p;
          p.set_key("train/loss");
          p.set_step(step);
          p.set_epoch(1 + step / 3400);
          p.set_value(1.0 / step);
          run.history.push_back(p);
        }
        for (int epoch = 1; epoch <= 3; ++epoch) {
          v1::MetricPoint p;
          p.set_key("eval/top1");
          p.set_epoch(epoch);
          p.set_value(0.8 + 0.01 * epoch);
          run.history.push_back(p);
        }
        run.tsne_csv = "model,x,y,label\n";
        for (const char* model : {"teacher", "student"}) {
          for (int i = 0; i < 1000; ++i) {
            absl::StrAppendFormat(&run.tsne_csv, "%s,%d,%d,%d\n", model, i % 37,
                                  i % 41, i % 10);
          }
        }
        f.runs.push_back(std::move(run));
        ++id;
      }
    }
  }
  return f;
}

TEST(ReportTest, HoldsTheTableCurvesHeatMapAndMapsAndFetchesNothing) {
  const Fixture f = Grid();
  const std::string html = RenderReport(f.results, f.runs, AllResultColumns());
  EXPECT_EQ(Count(html, "<tr class=\"member\">"), 12);
  EXPECT_EQ(Count(html, "<tr class=\"teacher\">"), 1);
  EXPECT_THAT(html, HasSubstr("<svg class=\"plot\" id=\"loss\""));
  EXPECT_THAT(html, HasSubstr("<svg class=\"plot\" id=\"top1\""));
  EXPECT_THAT(html, HasSubstr("<svg class=\"plot\" id=\"heatmap\""));
  // The teacher's map and 12 students' (under the limit of 24).
  EXPECT_EQ(Count(html, "<svg class=\"plot tsne\""), 13);
  // Curves drawn from at most kReportPointsPerCurve points of 10^4.
  const size_t first_line = html.find("<polyline points=\"") + 18;
  const size_t end = html.find('"', first_line);
  EXPECT_EQ(Count(html.substr(first_line, end - first_line), " ") + 1,
            kReportPointsPerCurve);
  // Each map at most kReportTsnePoints of its 1,000 points.
  // (and the class legend's 10 dots).
  EXPECT_EQ(Count(html, "<circle"), 13 * kReportTsnePoints + 10);
  EXPECT_THAT(html, HasSubstr("id=\"tsne-legend\""));
  EXPECT_THAT(html, HasSubstr("Ankle boot</span>"));
  // The heat map's cell (T=8, angle=2): the mean of members 12 and 13.
  EXPECT_THAT(html, HasSubstr(">86.2</text>"));
  // Self-contained and escaped.
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("grid &lt;&amp;&gt;"));
  // The claims, each with its verdict, escaped.
  EXPECT_THAT(html, HasSubstr("<tr class=\"claim\"><td>&lt;b&gt;the teacher"));
  EXPECT_THAT(html, HasSubstr("<td class=\"holds\">holds</td>"));
  // The members over their two seeds, with their intervals.
  EXPECT_THAT(html, HasSubstr("<pre id=\"seeds\">over seeds"));
  EXPECT_THAT(html, HasSubstr("top-1 % 95% CI"));
  EXPECT_LT(html.size(), 1u << 20);
}

// Rows A (at chance) and D (80 to 88 %), each with three epochs of top-1.
Fixture AtChance() {
  Fixture f;
  f.results.mutable_sweep()
      ->mutable_spec()
      ->mutable_base()
      ->mutable_dataset()
      ->set_name("fashion-mnist");
  for (const auto& [name, top1] :
       {std::pair{"A", std::vector<double>{0.10, 0.105, 0.10}},
        {"D", std::vector<double>{0.80, 0.85, 0.88}}}) {
    v1::MemberResult* m = f.results.add_members();
    m->set_name(name);
    m->set_run_id(f.results.members_size());
    ReportRun run;
    run.run_id = m->run_id();
    for (int epoch = 1; epoch <= 3; ++epoch) {
      v1::MetricPoint p;
      p.set_key("eval/top1");
      p.set_epoch(epoch);
      p.set_value(top1[size_t(epoch - 1)]);
      run.history.push_back(p);
    }
    f.runs.push_back(std::move(run));
  }
  return f;
}

// The top-1 plot's y axis: its tick labels and A's line at the edge.
void ExpectAxisFitsTheRowsThatLearn(const std::string& html) {
  const std::string plot = html.substr(html.find("id=\"top1\""));
  EXPECT_THAT(plot, HasSubstr("text-anchor=\"end\">88</text>"));
  EXPECT_THAT(plot, HasSubstr("text-anchor=\"end\">80</text>"));
  EXPECT_THAT(plot, Not(HasSubstr(">10</text>")));
  EXPECT_THAT(plot, HasSubstr("class=\"at-edge\"><title>A (at chance"));
  EXPECT_THAT(plot, HasSubstr("A (chance, at edge)"));
}

// A row at chance (A) is drawn dashed at the top-1 plot's lower edge, out
// of its range: the axis spans the rows that learn.
TEST(ReportTest, TheTop1AxisFitsTheRowsThatLearn) {
  const Fixture f = AtChance();
  ExpectAxisFitsTheRowsThatLearn(
      RenderReport(f.results, f.runs, AllResultColumns()));
}

// A member's seeds: one line of their mean over a band of their range.
TEST(ReportTest, SeedsAreOneLineOverTheirBand) {
  const Fixture f = Grid();  // Each of 6 members twice (seed=1, seed=2).
  const std::string html = RenderReport(f.results, f.runs, AllResultColumns());
  const std::string plot = html.substr(html.find("id=\"top1\""));
  EXPECT_EQ(Count(plot.substr(0, plot.find("</svg>")), "class=\"seed-band\""),
            6);
  EXPECT_THAT(plot, HasSubstr("G/T=1/rkd.angle=1 (2 seeds)"));
}

TEST(ReportTest, ARealBrowserRendersIt) {
  if (!HaveBrowser())
    GTEST_SKIP() << "no " << kChromium << " (scripts/setup.sh installs it)";
  TempDir dir("distill_report_test");
  const std::string page = (dir.path() / "report.html").string();
  {
    const Fixture f = Grid();
    std::ofstream(page) << RenderReport(f.results, f.runs, AllResultColumns());
  }
  std::optional<Loaded> loaded =
      LoadInBrowser(absl::StrCat("file://", page), dir.path());
  ASSERT_TRUE(loaded.has_value());
  // The DOM as the browser built it.
  EXPECT_EQ(Count(loaded->dom, "<tr class=\"member\">"), 12);
  EXPECT_EQ(Count(loaded->dom, "<svg class=\"plot"), 3 + 13);
  EXPECT_THAT(loaded->dom, HasSubstr("<title>distill: sweep 3"));
  EXPECT_EQ(Count(loaded->dom, "<tr class=\"claim\">"), 1);
  // The maps' class legend as the browser laid it out.
  EXPECT_THAT(loaded->dom, HasSubstr("id=\"tsne-legend\""));
  EXPECT_EQ(Count(loaded->dom, "<span class=\"class\">"), 10);
  EXPECT_THAT(loaded->log, Not(HasSubstr("CONSOLE")));
  EXPECT_THAT(loaded->log, Not(HasSubstr("Uncaught")));
  // And the top-1 plot of a sweep with a row at chance: its axis.
  {
    const Fixture f = AtChance();
    std::ofstream(page) << RenderReport(f.results, f.runs, AllResultColumns());
  }
  std::optional<Loaded> chance =
      LoadInBrowser(absl::StrCat("file://", page), dir.path());
  ASSERT_TRUE(chance.has_value());
  ExpectAxisFitsTheRowsThatLearn(chance->dom);
  EXPECT_THAT(chance->log, Not(HasSubstr("CONSOLE")));
  EXPECT_THAT(chance->log, Not(HasSubstr("Uncaught")));
}

}  // namespace
}  // namespace distill
