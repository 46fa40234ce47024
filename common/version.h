// The build every binary reports: "0.12.0+<git describe>" from a git
// checkout, else the CMake project version (runs' provenance).
#ifndef DISTILL_COMMON_VERSION_H_
#define DISTILL_COMMON_VERSION_H_

namespace distill {

const char* DistillVersion();
// "release build" or "debug build (assertions on)": how this was compiled.
const char* BuildType();

}  // namespace distill

#endif  // DISTILL_COMMON_VERSION_H_
