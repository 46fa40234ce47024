// Sizes in bytes as people write and read them.
#ifndef DISTILL_COMMON_BYTE_SIZES_H_
#define DISTILL_COMMON_BYTE_SIZES_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace distill {

// "812.4 MiB", "2.0 GiB", "512 B": bytes as people read them.
std::string HumanBytes(int64_t bytes);

// "1073741824", "512MiB", "2GiB", "10GB" (KiB..TiB in 1024s, KB..TB in
// 1000s, B or nothing in bytes) as bytes; INVALID_ARGUMENT naming the text
// otherwise.
absl::StatusOr<int64_t> ParseBytes(absl::string_view text);

}  // namespace distill

#endif  // DISTILL_COMMON_BYTE_SIZES_H_
