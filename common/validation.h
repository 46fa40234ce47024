#ifndef DISTILL_COMMON_VALIDATION_H_
#define DISTILL_COMMON_VALIDATION_H_

#include <optional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "distill/v1/spec.pb.h"

namespace distill {

enum class TeacherReference {
  // A DISTILL spec must name its teacher run.
  kRequired,
  // The teacher comes from elsewhere: a sweep member's is the sweep's
  // teacher stage, --run_local's a checkpoint file.
  kProvided,
};

// INVALID_ARGUMENT naming the field and its value for anything the engine
// could not run: `losses.ikd.temperature must be > 0, got -1`.
// REQUIRES: `spec` is resolved (ResolveSpec): a default left at 0 is
// judged as 0.
absl::Status ValidateSpec(
    const v1::ExperimentSpec& spec,
    TeacherReference teacher = TeacherReference::kRequired);

// ResolveSpec, then ValidateSpec: the spec to store and run.
absl::StatusOr<v1::ExperimentSpec> ResolveAndValidate(
    const v1::ExperimentSpec& spec,
    TeacherReference teacher = TeacherReference::kRequired);

// The sweep itself (name, members, teacher stage); the specs it expands to
// (common/sweep_expansion.h) are validated by ValidateSpec.
absl::Status ValidateSweepShape(const v1::SweepSpec& sweep);

// A sweep's early stopping: a known rule, a per-epoch metric (an embedding
// metric only when `every_epoch`), bounded parameters.
// A sweep's claims: at most 32, each of a known kind, its strings and
// lists bounded.
absl::Status ValidateClaims(const v1::SweepSpec& sweep);
// A sweep's retention policy: keep_best in [0, 100000], by a result key.
absl::Status ValidateRetention(const v1::Retention& retention);
absl::Status ValidateEarlyStopping(const v1::EarlyStopping& stopping,
                                   bool every_epoch);

// A name that commands also take an id in place of (sweeps, tokens) must
// not be all digits: INVALID_ARGUMENT `<what> "<name>" is all digits, which
// <reader> reads as an id; add a letter`.
absl::Status NotReadAsAnId(absl::string_view what, absl::string_view name,
                           absl::string_view reader);

}  // namespace distill

#endif  // DISTILL_COMMON_VALIDATION_H_
