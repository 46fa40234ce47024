#ifndef DISTILL_SERVER_VALIDATION_H_
#define DISTILL_SERVER_VALIDATION_H_

#include "absl/status/status.h"
#include "distill/v1/spec.pb.h"

namespace distill {

enum class TeacherReference {
  // A DISTILL spec must name its teacher run.
  kRequired,
  // A sweep member's teacher is the sweep's teacher stage.
  kFromSweep,
};

// INVALID_ARGUMENT naming the field and its value for anything the engine
// could not run: `losses.ikd.temperature must be > 0, got -1`.
absl::Status ValidateSpec(
    const v1::ExperimentSpec& spec,
    TeacherReference teacher = TeacherReference::kRequired);

// The sweep itself (name, members, teacher stage); the specs it expands to
// are validated by ValidateSpec.
absl::Status ValidateSweepShape(const v1::SweepSpec& sweep);

}  // namespace distill

#endif  // DISTILL_SERVER_VALIDATION_H_
