// A bounded queue of ids between threads: one side pushes without waiting
// (a full queue drops the newest and says so), the other waits to pop.
// How the scheduler tells the notifier that a sweep's run ended
// (server/operations/notifier.h) without calling it under its lock.
#ifndef DISTILL_SERVER_BASE_EVENT_QUEUE_H_
#define DISTILL_SERVER_BASE_EVENT_QUEUE_H_

#include <cstdint>
#include <deque>
#include <optional>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace distill {

class EventQueue {
 public:
  explicit EventQueue(size_t capacity = 1000) : capacity_(capacity) {}

  // False (and nothing queued) when full or closed.
  bool Push(int64_t id) {
    absl::MutexLock lock(&mu_);
    if (closed_ || queue_.size() >= capacity_) return false;
    queue_.push_back(id);
    return true;
  }
  // The oldest id; none after `timeout`, or at once once closed.
  std::optional<int64_t> Pop(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return closed_ || !queue_.empty();
    };
    mu_.AwaitWithTimeout(absl::Condition(&ready), timeout);
    if (closed_ || queue_.empty()) return std::nullopt;
    const int64_t id = queue_.front();
    queue_.pop_front();
    return id;
  }
  void Close() {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::deque<int64_t> queue_ ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_EVENT_QUEUE_H_
