// Waiting in a test for what it checks, instead of sleeping a fixed time:
// a sleep either wastes time or, on a slow machine, checks too early.
#ifndef DISTILL_TESTS_WAIT_FOR_H_
#define DISTILL_TESTS_WAIT_FOR_H_

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace distill {

// Asks `condition` every 10 ms until it holds (true) or `limit` has passed
// (false: the caller's assertion then fails, saying what it waited for).
template <typename Condition>
bool WaitFor(const Condition& condition,
             absl::Duration limit = absl::Seconds(10)) {
  const absl::Time until = absl::Now() + limit;
  while (!condition()) {
    if (absl::Now() >= until) return false;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return true;
}

}  // namespace distill

#endif  // DISTILL_TESTS_WAIT_FOR_H_
