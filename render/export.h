// `distill results --format=csv|json`: everything the table shows, as data
// (README "Results as data" documents both schemas).
//
// CSV: sections, each a header line and its rows, separated by one empty
// line; a section's first header field names it:
//   name,...     the runs: one line a member and a teacher (as before);
//   row,...      the summary over seeds (a sweep with seeds, or with a
//                baseline): each member's n, asked, and each column's
//                mean, sd, ci_low and ci_high (95%, Student's t);
//   baseline,... each member's difference to the baseline in the first
//                column, its interval, paired or Welch, and whether the
//                interval excludes 0 (with --baseline);
//   claim,...    each claim, its kind, verdict and the numbers that decide
//                it (with --claims).
// JSON: the results' protobuf JSON (unchanged) with "summary", "baseline"
// and "claims" beside its fields, present on the same conditions.
#ifndef DISTILL_RENDER_EXPORT_H_
#define DISTILL_RENDER_EXPORT_H_

#include <string>
#include <vector>

#include "distill/v1/experiment_service.pb.h"
#include "render/results.h"

namespace distill {

struct ExportOptions {
  std::string baseline;  // A row ("D"); empty: no differences.
  bool claims = false;
};

std::string ExportResultsCsv(const v1::SweepResults& results,
                             const std::vector<ResultColumn>& columns,
                             const ExportOptions& options);
std::string ExportResultsJson(const v1::SweepResults& results,
                              const std::vector<ResultColumn>& columns,
                              const ExportOptions& options);

}  // namespace distill

#endif  // DISTILL_RENDER_EXPORT_H_
