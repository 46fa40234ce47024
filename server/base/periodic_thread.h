// A background loop of the coordinator: one thread that calls its tick
// every period until stopped (leases' expiry, the WAL checkpoint, the
// retention pass, backups, the Slurm launcher).
#ifndef DISTILL_SERVER_BASE_PERIODIC_THREAD_H_
#define DISTILL_SERVER_BASE_PERIODIC_THREAD_H_

#include <functional>
#include <thread>
#include <utility>

#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

namespace distill {

class PeriodicThread {
 public:
  // Whether the first tick is at once or after the first period.
  enum class First { kAtStart, kAfterPeriod };

  // Starts the thread: `tick` every `period` (measured from the end of
  // the tick before) until Stop.
  PeriodicThread(absl::Duration period, First first, std::function<void()> tick)
      : thread_([this, period, first, tick = std::move(tick)] {
          if (first == First::kAtStart) tick();
          while (!stop_.WaitForNotificationWithTimeout(period)) tick();
        }) {}
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;
  // Stops it.
  ~PeriodicThread() { Stop(); }

  // Ends the loop after the tick under way, and waits for it. Idempotent.
  void Stop() {
    if (!stop_.HasBeenNotified()) stop_.Notify();
    if (thread_.joinable()) thread_.join();
  }

 private:
  absl::Notification stop_;  // Before thread_: the thread waits on it.
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_PERIODIC_THREAD_H_
