// A sweep's members as it runs them: its rows crossed with its grid axes,
// random points and seeds, each a named, resolved and validated spec.
#ifndef DISTILL_COMMON_SWEEP_EXPANSION_H_
#define DISTILL_COMMON_SWEEP_EXPANSION_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// Sets the scalar field at `path` ("losses.ikd.temperature") of `spec` from
// its text ("4", "ADAMW", "true", "resnet50"). INVALID_ARGUMENT naming the
// path and the value: an unknown field, a field that is not a scalar, kind,
// name or anything under teacher, or a value its type cannot hold.
absl::Status SetSpecField(const std::string& path, const std::string& value,
                          v1::ExperimentSpec* spec);

// The short form of a path in member names: "losses.ikd.temperature" is
// "T", "losses.rkd.angle_weight" "rkd.angle", "optimizer.lr" "lr",
// "teacher.torchscript" "teacher"; other paths lose a leading "losses." or
// "teacher." and a trailing "_weight".
std::string AxisLabel(const std::string& path);

// Whether an axis varies the teacher stage ("teacher.vit.width").
bool IsTeacherAxis(const std::string& path);

// SetSpecField for a teacher axis: "teacher.vit.*" or
// "teacher.torchscript" of a TRAIN_TEACHER spec.
absl::Status SetTeacherField(const std::string& path, const std::string& value,
                             v1::ExperimentSpec* spec);

struct SweepTeacherSpec {
  std::string name;         // "teacher", "teacher/vit.width=192".
  v1::ExperimentSpec spec;  // TRAIN_TEACHER, resolved and validated.
};

struct SweepMemberSpec {
  std::string name;         // "H", "H/T=4/rkd.angle=2/seed=1", "T=4" (no rows).
  v1::ExperimentSpec spec;  // Resolved and validated; teacher not set.
  // Its teacher in ExpandedSweep::teachers (0 when the sweep names an
  // existing teacher run).
  int teacher = 0;
};

// What a sweep runs: the teachers it trains (none when it names an
// existing teacher run: one when no grid axis varies the teacher, else one
// per combination of the teacher axes' values), then one DISTILL spec a
// member: each row (or the base alone when there are none) crossed with
// every combination of the grid axes (in the order given, the last varying
// fastest), then with every random point, then with every seed. At most
// limits::kSweepMembers members.
struct ExpandedSweep {
  std::vector<SweepTeacherSpec> teachers;
  std::vector<SweepMemberSpec> members;
};

// The member a seed replicates: "H/T=4" for "H/T=4/seed=2", "" for
// "seed=2"; a name without a seed part is its own.
std::string WithoutSeed(const std::string& member);

// ValidateSweepShape, then the expansion; INVALID_ARGUMENT naming the stage,
// axis or member ("member \"B/T=-1\": losses.ikd.temperature must be in
// (0, 100], got -1"). A value of 0 means the field's default, as in a spec.
absl::StatusOr<ExpandedSweep> ExpandSweep(const v1::SweepSpec& sweep);

}  // namespace distill

#endif  // DISTILL_COMMON_SWEEP_EXPANSION_H_
