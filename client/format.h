#ifndef DISTILL_CLIENT_FORMAT_H_
#define DISTILL_CLIENT_FORMAT_H_

#include <google/protobuf/message.h>

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/experiment_service.pb.h"

namespace distill {

// A result `distill results` can show: its --columns name, its header, the
// result key, and whether it shows as a percentage.
struct ResultColumn {
  std::string name;
  std::string header;
  std::string key;
  bool percent = false;
};

// Every column, in the order shown: top1, knn (k-NN top-1), nmi, ari,
// agree (teacher-student agreement), cka and overlap (structure transfer).
const std::vector<ResultColumn>& AllResultColumns();

// A result by key, if the map has it.
std::optional<double> ResultValue(
    const google::protobuf::Map<std::string, double>& results,
    const std::string& key);

// A member's result for `column` (top1 also from the field older
// coordinators fill alone).
std::optional<double> MemberValue(const v1::MemberResult& member,
                                  const ResultColumn& column);

// A result as a cell: a percentage with one decimal, others with three;
// "-" for none.
std::string ResultCell(const ResultColumn& column, std::optional<double> value);

// The columns of a comma-separated list of names ("top1,cka"); every
// column for "". INVALID_ARGUMENT naming an unknown one.
absl::StatusOr<std::vector<ResultColumn>> ParseResultColumns(
    const std::string& names);

// Table 1's layout: one row per member with a check mark under each loss it
// uses and its results, then the teacher row O; one block per teacher when
// the sweep has several.
std::string FormatResultsTable(
    const v1::SweepResults& results,
    const std::vector<ResultColumn>& columns = AllResultColumns());

// For a sweep with seeds (members named ".../seed=N"): each member over its
// seeds, each column's mean ± sample standard deviation, and n; empty
// otherwise. FormatResultsTable ends with it.
std::string FormatSeedSummary(
    const v1::SweepResults& results,
    const std::vector<ResultColumn>& columns = AllResultColumns());

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

// How a command prints data (--format=table|csv|json).
enum class OutputFormat { kTable, kCsv, kJson };

// "table", "csv" or "json"; INVALID_ARGUMENT naming anything else.
absl::StatusOr<OutputFormat> ParseOutputFormat(const std::string& name);

// A CSV field, quoted (RFC 4180) when it holds a comma, a quote or a line
// break.
std::string CsvField(const std::string& s);

// A message in protobuf's JSON mapping with its .proto field names
// (snake_case), one line: the stable, documented form of every --format=json.
std::string ToJson(const google::protobuf::Message& message);

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

// `results --format=csv`: one line per member (teacher rows marked
// kind=teacher): name, kind, teacher, run_id, status, the four loss
// weights, then the columns' results.
std::string FormatResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns);

// `distill compare A B`: the members of two sweeps side by side by member
// name (those of one sweep alone too), for each column A's result, B's
// and B - A; then each teacher's top-1.
std::string FormatSweepComparison(const v1::SweepResults& a,
                                  const v1::SweepResults& b,
                                  const std::vector<ResultColumn>& columns,
                                  OutputFormat format);

// `distill compare --runs=3,5,8`: one column per run, one row per result
// key any of them has, and each run's difference from the first.
std::string FormatRunComparison(const std::vector<v1::Run>& runs,
                                OutputFormat format);

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
