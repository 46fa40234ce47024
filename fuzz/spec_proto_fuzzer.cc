// libFuzzer: spec resolution and validation on what a gRPC client may send
// (any wire bytes of a SweepSpec or an ExperimentSpec: every field at any
// value, unknown enum values, huge strings). Any input may be refused; none
// may crash, hang or allocate without bound.
#include <cstddef>
#include <cstdint>

#include "common/sweep_expansion.h"
#include "common/validation.h"
#include "distill/v1/spec.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  distill::v1::SweepSpec sweep;
  if (sweep.ParseFromArray(data, static_cast<int>(size))) {
    distill::ExpandSweep(sweep).status().IgnoreError();
  }
  distill::v1::ExperimentSpec spec;
  if (spec.ParseFromArray(data, static_cast<int>(size))) {
    for (auto teacher : {distill::TeacherReference::kRequired,
                         distill::TeacherReference::kProvided}) {
      distill::ResolveAndValidate(spec, teacher).status().IgnoreError();
    }
  }
  return 0;
}
