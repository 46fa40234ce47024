// libFuzzer: the YAML spec reader (what `distill submit` and `distill
// sweep` read) and, for what it accepts, the sweep expansion with
// resolution and validation the coordinator runs. Any input may be refused;
// none may crash, hang or read out of bounds.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/spec_file.h"
#include "common/sweep_expansion.h"
#include "common/validation.h"
#include "distill/v1/spec.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  distill::v1::SweepSpec sweep;
  if (distill::ParseYamlMessage(yaml, "fuzz.yaml", &sweep).ok()) {
    distill::ExpandSweep(sweep).status().IgnoreError();
  }
  distill::v1::ExperimentSpec spec;
  if (distill::ParseYamlMessage(yaml, "fuzz.yaml", &spec).ok()) {
    distill::ResolveAndValidate(spec).status().IgnoreError();
  }
  return 0;
}
