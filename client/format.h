#ifndef DISTILL_CLIENT_FORMAT_H_
#define DISTILL_CLIENT_FORMAT_H_

#include <string>
#include <vector>

#include "distill/v1/experiment_service.pb.h"

namespace distill {

// Table 1's layout: one row per member with a check mark under each loss it
// uses, top-1 %, and the teacher row O.
std::string FormatResultsTable(const v1::SweepResults& results);

// For a sweep with seeds (members named ".../seed=N"): each member over its
// seeds, top-1 mean ± sample standard deviation and n; empty otherwise.
// FormatResultsTable ends with it.
std::string FormatSeedSummary(const v1::SweepResults& results);

// What the live watch line knows about a run.
struct Progress {
  int64_t step = 0;
  int64_t total_steps = 0;
  int32_t epoch = 0;
  double loss = 0;
  double images_per_sec = 0;
  double top1 = -1;  // Last eval/top1, -1 before the first.
  bool has_loss = false;
};

// Folds an event's metric points into `progress`.
void UpdateProgress(const v1::RunEvent& event, Progress* progress);

// "run 3 (B) RUNNING  epoch 2/3  step 120/234  loss 0.8123  1234 img/s
// ETA 0:45  top-1 81.2%"
std::string ProgressLine(const v1::Run& run, const Progress& progress);

// A one-line plot of `values` (Unicode block characters), at most `width`
// characters, each the mean of its share of the values.
std::string Sparkline(const std::vector<double>& values, size_t width = 60);

// `history` less what a later attempt measured again: a point of attempt
// a at step s goes when an attempt after a reported the same key at a step
// <= s (it went on from a resume point before s). Order is kept.
std::vector<v1::MetricPoint> LatestMeasurements(
    const std::vector<v1::MetricPoint>& history);

// Several lines about one run: spec summary, status, results, and plots of
// its training loss and test top-1 from `history` (LatestMeasurements).
std::string FormatRunDetails(const v1::Run& run,
                             const std::vector<v1::MetricPoint>& history);

// A character scatter plot of each model's t-SNE map in `csv` (the
// tsne.csv run file: model,x,y,label), one class digit per cell (the
// commonest there), `width` x `height` cells. INVALID_ARGUMENT-style text
// on a malformed file is returned as the plot's first line.
std::string TsnePlot(const std::string& csv, int width = 64, int height = 22);

// One line a run for `runs list`.
std::string FormatRunList(const std::vector<v1::Run>& runs);

// Which losses a spec turns on: "CE+IKD+RKD".
std::string LossSummary(const v1::Losses& losses);

}  // namespace distill

#endif  // DISTILL_CLIENT_FORMAT_H_
