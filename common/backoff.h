// How long a client waits before it calls again after a failure: a step
// that starts at `initial` and doubles up to `cap`, each wait drawn
// uniformly from half to one and a half times the step. Without the draw,
// every worker that a coordinator restart cut off at one instant would
// call back at one instant, again and again (gRPC's own reconnect backoff
// jitters likewise). Not thread-safe; one per retry loop.
#ifndef DISTILL_COMMON_BACKOFF_H_
#define DISTILL_COMMON_BACKOFF_H_

#include <cstdint>
#include <random>

#include "absl/time/time.h"

namespace distill {

class Backoff {
 public:
  // `seed` 0: from the system's random source (each process its own).
  Backoff(absl::Duration initial, absl::Duration cap, uint64_t seed = 0);

  // The next wait; the step then doubles (up to the cap).
  absl::Duration Next();
  // Back to the first step (after a success).
  void Reset() { step_ = initial_; }
  absl::Duration step() const { return step_; }

 private:
  const absl::Duration initial_, cap_;
  absl::Duration step_;
  std::mt19937_64 random_;
};

}  // namespace distill

#endif  // DISTILL_COMMON_BACKOFF_H_
