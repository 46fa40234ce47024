#include "common/backoff.h"

#include <algorithm>

namespace distill {

Backoff::Backoff(absl::Duration initial, absl::Duration cap, uint64_t seed)
    : initial_(initial),
      cap_(std::max(cap, initial)),
      step_(initial),
      random_(seed != 0 ? seed : std::random_device()()) {}

absl::Duration Backoff::Next() {
  const double draw = std::uniform_real_distribution<double>(0.5, 1.5)(random_);
  const absl::Duration wait = step_ * draw;
  step_ = std::min(step_ * 2, cap_);
  return wait;
}

}  // namespace distill
