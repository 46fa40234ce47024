#include "common/flags_usage.h"

#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/version.h"

namespace distill {

std::string BuildLine(const std::string& program, const std::string& extra) {
  return absl::StrCat(program, " ", DistillVersion(), ", ", BuildType(),
                      extra.empty() ? "" : ", ", extra, "\n");
}

void SetFlagsUsage(const std::string& version_line,
                   const std::vector<std::string>& own_files) {
  absl::FlagsUsageConfig config;
  config.version_string = [version_line] { return version_line; };
  auto own = [own_files](absl::string_view file) {
    for (const std::string& f : own_files)
      if (absl::EndsWith(file, f)) return true;
    return false;
  };
  config.contains_help_flags = own;
  config.contains_helpshort_flags = own;
  absl::SetFlagsUsageConfig(config);
}

}  // namespace distill
