#include "server/base/clock.h"

#include <chrono>

namespace distill {
namespace {

class RealClock final : public Clock {
 public:
  int64_t NowMs() override {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

}  // namespace

Clock* Clock::Real() {
  static auto* const clock = new RealClock();
  return clock;
}

}  // namespace distill
