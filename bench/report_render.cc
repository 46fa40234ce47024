// How long `distill report` (and a live sweep page) takes to draw a
// 100-member sweep with 10^5 metric points: RenderReport over synthetic
// results, histories of 1,000 points per member and t-SNE maps of 2,000
// points a model; median of 9 renders, and the page's size. With a path
// argument the page is also written there.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "render/report.h"

int main(int argc, char** argv) {
  using namespace distill;
  v1::SweepResults results;
  results.mutable_sweep()->set_id(1);
  results.mutable_sweep()->set_name("bench");
  v1::GridAxis* t = results.mutable_sweep()->mutable_spec()->add_grid();
  t->set_path("losses.ikd.temperature");
  v1::GridAxis* lr = results.mutable_sweep()->mutable_spec()->add_grid();
  lr->set_path("optimizer.lr");
  for (int i = 1; i <= 10; ++i) {
    t->add_values(absl::StrCat(i));
    lr->add_values(absl::StrCat(i * 0.01));
  }
  std::vector<ReportRun> runs;
  int64_t points = 0;
  for (int m = 0; m < 100; ++m) {
    v1::MemberResult* member = results.add_members();
    member->set_name(
        absl::StrCat("G/T=", m / 10 + 1, "/lr=", (m % 10 + 1) * 0.01));
    member->set_run_id(m + 2);
    member->set_status(v1::SUCCEEDED);
    member->mutable_losses()->set_ce(1);
    (*member->mutable_results())["eval/top1"] = 0.8 + 0.001 * m;
    ReportRun run;
    run.run_id = m + 2;
    for (int step = 1; step <= 900; ++step) {
      v1::MetricPoint& p = run.history.emplace_back();
      p.set_key("train/loss");
      p.set_step(step);
      p.set_epoch(1 + step / 10);
      p.set_value(1.0 / step);
    }
    for (int epoch = 1; epoch <= 100; ++epoch) {
      v1::MetricPoint& p = run.history.emplace_back();
      p.set_key("eval/top1");
      p.set_epoch(epoch);
      p.set_value(0.5 + 0.003 * epoch);
    }
    points += int64_t(run.history.size());
    run.tsne_csv = "model,x,y,label\n";
    for (const char* model : {"teacher", "student"}) {
      for (int i = 0; i < 2000; ++i) {
        absl::StrAppendFormat(&run.tsne_csv, "%s,%d.5,%d.25,%d\n", model,
                              (i * 37) % 101, (i * 53) % 97, i % 10);
      }
    }
    runs.push_back(std::move(run));
  }
  std::vector<double> ms;
  size_t bytes = 0;
  // With a path, the page is written there too (to time a browser on it).
  if (argc > 1) {
    std::FILE* f = std::fopen(argv[1], "w");
    if (f == nullptr) return 1;
    const std::string html = RenderReport(results, runs, AllResultColumns());
    std::fwrite(html.data(), 1, html.size(), f);
    std::fclose(f);
  }
  for (int i = 0; i < 9; ++i) {
    const auto start = std::chrono::steady_clock::now();
    const std::string html = RenderReport(results, runs, AllResultColumns());
    ms.push_back(std::chrono::duration<double, std::milli>(
                     std::chrono::steady_clock::now() - start)
                     .count());
    bytes = html.size();
  }
  std::sort(ms.begin(), ms.end());
  std::printf(
      "report of 100 members, %lld metric points, 100 t-SNE files: median "
      "%.1f ms to render, %.0f KB of HTML\n",
      (long long)points, ms[ms.size() / 2], double(bytes) / 1024);
  return 0;
}
