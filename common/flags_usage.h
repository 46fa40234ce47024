// What the daemons' --version and --help print (Abseil flags): the build,
// and this program's own flags rather than every library's.
#ifndef DISTILL_COMMON_FLAGS_USAGE_H_
#define DISTILL_COMMON_FLAGS_USAGE_H_

#include <string>
#include <vector>

namespace distill {

// "distill-worker 0.12.0+42ac839, release build" and `extra` after a comma
// when given ("LibTorch 1.13.1").
std::string BuildLine(const std::string& program, const std::string& extra);

// --version prints `version_line`; --help lists the flags defined in the
// files whose path ends with one of `own_files` ("server/coordinator_main.cc").
// Before absl::ParseCommandLine.
void SetFlagsUsage(const std::string& version_line,
                   const std::vector<std::string>& own_files);

}  // namespace distill

#endif  // DISTILL_COMMON_FLAGS_USAGE_H_
