// The build every binary reports: "0.12.0+<git describe>" from a git
// checkout, else the CMake project version (runs' provenance).
#ifndef DISTILL_COMMON_VERSION_H_
#define DISTILL_COMMON_VERSION_H_

namespace distill {

const char* DistillVersion();

}  // namespace distill

#endif  // DISTILL_COMMON_VERSION_H_
