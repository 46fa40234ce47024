#include "common/log.h"

#include <iostream>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "common/time_text.h"

namespace distill {

LogLine::LogLine(const char* severity) {
  stream_ << PreciseTimeText(absl::Now()) << " " << severity << " ";
}

LogLine::~LogLine() {
  stream_ << "\n";
  std::cerr << stream_.str() << std::flush;
}

}  // namespace distill
