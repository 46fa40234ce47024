#include "common/log.h"

#include <iostream>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace distill {

LogLine::LogLine(const char* severity) {
  stream_ << absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(),
                              absl::LocalTimeZone())
          << " " << severity << " ";
}

LogLine::~LogLine() {
  stream_ << "\n";
  std::cerr << stream_.str() << std::flush;
}

}  // namespace distill
