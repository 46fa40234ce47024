// A sweep's claims (SweepSpec.claims: the paper's conclusions) decided from
// its results: each with the numbers that decide it and holds / does not
// hold / undecided (the 95% intervals leave it open).
#ifndef DISTILL_RENDER_CLAIMS_H_
#define DISTILL_RENDER_CLAIMS_H_

#include <string>
#include <utility>
#include <vector>

#include "distill/v1/experiment_service.pb.h"

namespace distill {

enum class Verdict { kHolds, kFails, kUndecided };

struct ClaimVerdict {
  std::string text;     // The claim's words.
  std::string numbers;  // What decides it: "B 69.8 vs O 71.4: -1.6 [...]".
  Verdict verdict = Verdict::kUndecided;
};

// Every claim of the sweep's spec, in order.
std::vector<ClaimVerdict> JudgeClaims(const v1::SweepResults& results);

// "claims:" and a line a claim; empty when the sweep makes none.
std::string FormatClaims(const v1::SweepResults& results);

// The report's section: a table row a claim with its verdict and
// numbers, escaped; empty when the sweep makes none.
std::string ClaimsHtml(const v1::SweepResults& results);

// Kendall's tau-b of the pairs (x, y): 1 when they order alike, -1 when
// reversed; 0 for fewer than two pairs.
double KendallTau(const std::vector<std::pair<double, double>>& pairs);

// "holds", "does not hold", "undecided".
std::string VerdictWord(Verdict verdict);

}  // namespace distill

#endif  // DISTILL_RENDER_CLAIMS_H_
