#include "common/byte_sizes.h"

#include <limits>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"

namespace distill {

std::string HumanBytes(int64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = double(bytes);
  int unit = 0;
  while ((value >= 1024 || value <= -1024) && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, " B");
  return absl::StrFormat("%.1f %s", value, kUnits[unit]);
}

absl::StatusOr<int64_t> ParseBytes(absl::string_view text) {
  static constexpr std::pair<const char*, int64_t> kUnits[] = {
      {"KiB", int64_t{1} << 10},
      {"MiB", int64_t{1} << 20},
      {"GiB", int64_t{1} << 30},
      {"TiB", int64_t{1} << 40},
      {"KB", 1'000},
      {"MB", 1'000'000},
      {"GB", 1'000'000'000},
      {"TB", 1'000'000'000'000},
      {"B", 1}};
  absl::string_view digits = absl::StripAsciiWhitespace(text);
  int64_t unit = 1;
  for (const auto& [suffix, size] : kUnits) {
    if (absl::ConsumeSuffix(&digits, suffix)) {
      unit = size;
      break;
    }
  }
  digits = absl::StripAsciiWhitespace(digits);
  int64_t count = 0;
  if (digits.empty() || !absl::SimpleAtoi(digits, &count) || count < 0 ||
      count > std::numeric_limits<int64_t>::max() / unit) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a size must be a whole number of bytes, KiB, MiB, GiB, TiB (or KB, "
        "MB, GB, TB), e.g. 2GiB; got \"",
        text, "\""));
  }
  return count * unit;
}

}  // namespace distill
