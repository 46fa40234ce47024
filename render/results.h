// A sweep's results as researchers read them: Table 1's layout (a row per
// member with a check under each loss it uses, then the teacher's row O),
// the summary over seeds, CSV, and comparisons of sweeps and of runs.
#ifndef DISTILL_RENDER_RESULTS_H_
#define DISTILL_RENDER_RESULTS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/experiment_service.pb.h"
#include "render/text.h"

namespace distill {

// A result `distill results` can show: its --columns name, its header, the
// result key, and whether it shows as a percentage.
struct ResultColumn {
  std::string name;
  std::string header;
  std::string key;
  bool percent = false;
  // Decimals a cell shows (of a percentage; a fraction two more); 0: one.
  int decimals = 0;
};

// Every column, in the order shown: top1, knn (k-NN top-1), nmi, ari,
// agree (teacher-student agreement), cka and overlap (structure transfer).
const std::vector<ResultColumn>& AllResultColumns();

// The columns of a comma-separated list of names ("top1,cka"); every
// column for "". INVALID_ARGUMENT naming an unknown one.
absl::StatusOr<std::vector<ResultColumn>> ParseResultColumns(
    const std::string& names);

// A result by key, if the map has it.
std::optional<double> ResultValue(
    const google::protobuf::Map<std::string, double>& results,
    const std::string& key);

// A member's result for `column` (top1 also from the field older
// coordinators fill alone).
std::optional<double> MemberValue(const v1::MemberResult& member,
                                  const ResultColumn& column);

// A teacher's result for `column`, the same way.
std::optional<double> TeacherValue(const v1::TeacherResult& teacher,
                                   const ResultColumn& column);

// A result as a cell: a percentage with one decimal, others with three;
// "-" for none.
std::string ResultCell(const ResultColumn& column, std::optional<double> value);

// The sweep's teachers; for results from a coordinator older than the
// list, the one teacher its single fields name.
std::vector<v1::TeacherResult> SweepTeachers(const v1::SweepResults& results);

// Which losses a spec turns on: "CE+IKD+RKD".
std::string LossSummary(const v1::Losses& losses);
bool UsesRkd(const v1::Losses& losses);

// A loss column of Table 1's layout: a check mark where a member uses it.
struct LossColumn {
  std::string name;    // In LossSummary: "CE".
  std::string header;  // "labels CE"
  bool (*on)(const v1::Losses&);
  bool always;  // The paper's four; the rest where a member uses them.
};
// Every loss column, in the order of the spec's terms.
const std::vector<LossColumn>& AllLossColumns();
// The columns of `results`' table: the paper's four, then SP, PKT, DKD and
// the CKA loss where a member uses them.
std::vector<LossColumn> LossColumns(const v1::SweepResults& results);

// Each term with its weight: "CE 1 + IKD 1 (T 4, x T^2) + RKD angle 2".
std::string LossWeights(const v1::Losses& losses);

// Table 1's layout: one row per member with a check mark under each loss it
// uses and its results, then the teacher row O; one block per teacher when
// the sweep has several.
// It ends with the summary over seeds (render/seeds.h), with each member's
// difference to `baseline` when set.
std::string FormatResultsTable(
    const v1::SweepResults& results,
    const std::vector<ResultColumn>& columns = AllResultColumns(),
    const std::string& baseline = "");

// `results --format=csv`: one line per member and teacher (kind=teacher):
// name, kind, teacher, run_id, status, the four loss weights, then the
// columns' results.
std::string FormatResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns);

// `distill compare A B`: the members of two sweeps side by side by member
// name (those of one sweep alone too), for each column A's result, B's
// and B - A.
std::string FormatSweepComparison(const v1::SweepResults& a,
                                  const v1::SweepResults& b,
                                  const std::vector<ResultColumn>& columns,
                                  OutputFormat format);

// `distill compare --runs=3,5,8`: one column per run, one row per result
// key any of them has, and each run's difference from the first.
std::string FormatRunComparison(const std::vector<v1::Run>& runs,
                                OutputFormat format);

}  // namespace distill

#endif  // DISTILL_RENDER_RESULTS_H_
