// One run, and lists of runs and workers, as the CLI prints them: the
// live watch line, `runs show`'s text with its plots, `runs list` and the
// CSV forms.
#ifndef DISTILL_RENDER_RUNS_H_
#define DISTILL_RENDER_RUNS_H_

#include <string>
#include <vector>

#include "distill/v1/experiment_service.pb.h"
#include "distill/v1/run.pb.h"

namespace distill {

// What the live watch line knows about a run.
struct Progress {
  int64_t step = 0;
  int64_t total_steps = 0;
  int32_t epoch = 0;
  double loss = 0;
  double images_per_sec = 0;
  double top1 = -1;  // Last eval/top1, -1 before the first.
  bool has_loss = false;
  // The evaluation stage going on ("t-SNE"; empty while training) and its
  // fraction done, from the latest metric_keys::kEvaluating* point.
  std::string stage;
  double stage_fraction = 0;
  int64_t stage_step = -1;
};

// What a run's spec asks for, a line a part: data, training, and the
// models of its kind ("data fashion-mnist ...", "train 30 epochs ...").
std::string SpecLines(const v1::Run& run);

// "t-SNE" for metric_keys::kEvaluatingTsne, ...; the key's last part for a
// stage this build does not know.
std::string StageName(const std::string& key);

// Folds an event's metric points into `progress`.
void UpdateProgress(const v1::RunEvent& event, Progress* progress);
// One metric point into `progress`.
void UpdateProgress(const v1::MetricPoint& point, Progress* progress);

// "run 3 (B) RUNNING  epoch 2/3  step 120/234  loss 0.8123  1234 img/s
// ETA 0:45  top-1 81.2%"; after a step, while it evaluates, "evaluating:
// t-SNE 40 %" in place of the ETA.
std::string ProgressLine(const v1::Run& run, const Progress& progress);

// A one-line plot of `values` (Unicode block characters), at most `width`
// characters, each the mean of its share of the values.
std::string Sparkline(const std::vector<double>& values, size_t width = 60);

// `history` less what a later attempt measured again: a point of attempt
// a at step s goes when an attempt after a reported the same key at a step
// <= s (it went on from a resume point before s). Order is kept.
std::vector<v1::MetricPoint> LatestMeasurements(
    const std::vector<v1::MetricPoint>& history);

// "forked from run 5 (continued: ...)" for a fork; "" otherwise.
std::string ForkLine(const v1::ForkSpec& fork);

// Several lines about one run: spec summary, status, results, and plots of
// its training loss and test top-1 from `history` (LatestMeasurements). A
// fork's curves join its parent's (`parent_history`), "│" where it began.
std::string FormatRunDetails(
    const v1::Run& run, const std::vector<v1::MetricPoint>& history,
    const std::vector<v1::MetricPoint>& parent_history = {});

// One line a run for `runs list`.
std::string FormatRunList(const std::vector<v1::Run>& runs);

// `runs list --format=csv`: a header, then one line per run: id, sweep_id,
// member, kind, status, teacher_run_id, created_ms, finished_ms, then one
// column per result key any of the runs has (sorted), empty where a run
// has none. Fields with a comma or quote are quoted (RFC 4180).
std::string FormatRunListCsv(const std::vector<v1::Run>& runs);

// `runs show ID --format=csv`: "field,value" lines: id, member, status,
// then spec/<path> for every spec field, result/<key>, tag/<key>,
// provenance/<key>, file/<name> (its sha256).
std::string FormatRunCsv(const v1::Run& run);

// `workers list --format=csv`: id, state, hostname, device, threads,
// libtorch_version, blas, run_id, last_seen_ms.
std::string FormatWorkersCsv(const std::vector<v1::Worker>& workers);

}  // namespace distill

#endif  // DISTILL_RENDER_RUNS_H_
