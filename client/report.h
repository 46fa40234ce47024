// `distill report`: one self-contained HTML file of a sweep — Table 1's
// layout with the judgement columns, overlaid curves, a heat map over two
// grid axes, and the t-SNE maps — inline SVG and CSS, no script, nothing
// fetched from anywhere.
#ifndef DISTILL_CLIENT_REPORT_H_
#define DISTILL_CLIENT_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "client/format.h"
#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/run.pb.h"

namespace distill {

// What the report draws of one run: its sampled history (a watcher's first
// event) and its tsne.csv (empty when it has none).
struct ReportRun {
  int64_t run_id = 0;
  std::vector<v1::MetricPoint> history;
  std::string tsne_csv;
};

// Bounds that keep a report of a 100-member sweep light.
inline constexpr int kReportPointsPerCurve = 300;
inline constexpr int kReportTsnePoints = 600;
inline constexpr int kReportTsneMaps = 24;

// The text of the one <style> element every page and report has: its
// digest goes in the pages' Content-Security-Policy, which allows no other
// style and no script.
std::string_view PageStyle();

// The sweep's report. `refresh_seconds` > 0 makes the page reload itself
// that often (the coordinator's live pages, while runs are running).
std::string RenderReport(const v1::SweepResults& results,
                         const std::vector<ReportRun>& runs,
                         const std::vector<ResultColumn>& columns,
                         int refresh_seconds = 0);

// The live pages' index: sweeps newest first, then the newest runs.
std::string RenderIndex(const std::vector<v1::Sweep>& sweeps,
                        const std::vector<v1::Run>& runs,
                        int refresh_seconds = 0);

// One run's page: what it is, its results, a plot of each training key and
// of the per-epoch judgements, its t-SNE maps.
std::string RenderRunPage(const v1::Run& run, const ReportRun& data,
                          int refresh_seconds = 0);

}  // namespace distill

#endif  // DISTILL_CLIENT_REPORT_H_
