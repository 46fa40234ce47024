#ifndef DISTILL_COMMON_TASK_POOL_H_
#define DISTILL_COMMON_TASK_POOL_H_

#include <sys/resource.h>
#include <unistd.h>

#include <deque>
#include <functional>
#include <map>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace distill {

// A fixed number of threads running queued tasks in order, and tasks at a
// time: where watch streams and long-polls do their reads and wait, so that
// none holds a thread of its own and no gRPC reaction blocks. Thread-safe;
// the destructor runs what is queued, drops what is timed, then joins.
class TaskPool {
 public:
  // `nice` > 0 runs the threads at that lower priority (Linux: per
  // thread), for bulk work that must not slow what waits behind it.
  explicit TaskPool(int threads, int nice = 0) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this, nice] {
        if (nice > 0) setpriority(PRIO_PROCESS, ::gettid(), nice);
        Loop();
      });
    }
  }
  ~TaskPool() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (std::thread& t : threads_) t.join();
  }
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  void Schedule(std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    tasks_.push_back(std::move(task));
  }

  // Runs `task` once `when` has come.
  void ScheduleAt(absl::Time when, std::function<void()> task) {
    absl::MutexLock lock(&mu_);
    timers_.emplace(when, std::move(task));
    timers_changed_ = true;  // A waiting thread looks at the new deadline.
  }

 private:
  void Loop() {
    while (true) {
      std::function<void()> task;
      {
        absl::MutexLock lock(&mu_);
        while (true) {
          const absl::Time now = absl::Now();
          if (!timers_.empty() && timers_.begin()->first <= now) {
            tasks_.push_back(std::move(timers_.begin()->second));
            timers_.erase(timers_.begin());
          }
          if (!tasks_.empty() || stopping_) break;
          const absl::Time next =
              timers_.empty() ? absl::InfiniteFuture() : timers_.begin()->first;
          mu_.AwaitWithDeadline(
              absl::Condition(
                  +[](TaskPool* p) ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) {
                    return p->stopping_ || !p->tasks_.empty() ||
                           p->timers_changed_;
                  },
                  this),
              next);
          timers_changed_ = false;
        }
        if (tasks_.empty()) return;
        task = std::move(tasks_.front());
        tasks_.pop_front();
      }
      task();
    }
  }

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::deque<std::function<void()>> tasks_ ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, std::function<void()>> timers_ ABSL_GUARDED_BY(mu_);
  bool timers_changed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace distill

#endif  // DISTILL_COMMON_TASK_POOL_H_
