#ifndef DISTILL_SERVER_BASE_CLOCK_H_
#define DISTILL_SERVER_BASE_CLOCK_H_

#include <atomic>
#include <cstdint>

namespace distill {

// Wall-clock time in milliseconds since the Unix epoch; injectable so lease
// expiry is tested without sleeping. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual int64_t NowMs() = 0;
  // The process-wide real clock. Never deleted.
  static Clock* Real();
};

// A clock that moves only when told.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(int64_t now_ms = 1'700'000'000'000) : now_ms_(now_ms) {}
  int64_t NowMs() override { return now_ms_.load(); }
  void AdvanceMs(int64_t ms) { now_ms_ += ms; }

 private:
  std::atomic<int64_t> now_ms_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_CLOCK_H_
