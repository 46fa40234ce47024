// How every message, listing, page and log line shows a time: in UTC, and
// saying so. Header-only (absl::time), for the engine's logs too.
#ifndef DISTILL_COMMON_TIME_TEXT_H_
#define DISTILL_COMMON_TIME_TEXT_H_

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace distill {

// "2026-12-06 17:03:01 UTC".
inline std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}
inline std::string TimeText(int64_t unix_ms) {
  return TimeText(absl::FromUnixMillis(unix_ms));
}

// With milliseconds, for log lines: "2026-12-06 17:03:01.042 UTC".
inline std::string PreciseTimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%E3S UTC", t, absl::UTCTimeZone());
}

}  // namespace distill

#endif  // DISTILL_COMMON_TIME_TEXT_H_
