// The HTML of a sweep's report (`distill report`, and the coordinator's
// live pages): Table 1's layout with the judgement columns, overlaid
// curves, a heat map over two grid axes, and the t-SNE maps — inline SVG
// and CSS, no script, nothing fetched from anywhere; and the pages' index
// and run pages.
#ifndef DISTILL_RENDER_REPORT_H_
#define DISTILL_RENDER_REPORT_H_

#include <string>
#include <string_view>
#include <vector>

#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/run.pb.h"
#include "render/results.h"

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

// Where a report's data comes from: the coordinator's scheduler (the live
// pages) or its gRPC API (`distill report`).
class ReportSource {
 public:
  virtual ~ReportSource() = default;
  // The run's history as a watcher's first event has it, each key spread
  // over at most kReportPointsPerCurve points; empty when it cannot be had.
  virtual std::vector<v1::MetricPoint> History(int64_t run_id) = 0;
  // The run's tsne.csv; "" when it has none.
  virtual std::string Tsne(int64_t run_id) = 0;
};

// What the report draws of one run of that status (t-SNE maps only of a
// run that succeeded).
ReportRun GatherReportRun(int64_t run_id, v1::RunStatus status,
                          ReportSource& source);

// What the report draws of each member of the sweep.
std::vector<ReportRun> GatherReportRuns(const v1::SweepResults& results,
                                        ReportSource& source);

// Whether a member or a teacher of the sweep has not ended yet.
bool SweepRunning(const v1::SweepResults& results);

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

#endif  // DISTILL_RENDER_REPORT_H_
