#ifndef DISTILL_SERVER_BASE_WATCH_HUB_H_
#define DISTILL_SERVER_BASE_WATCH_HUB_H_

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace distill {

// Who wants to hear that a run changed (status or new metric points): the
// scheduler tells the hub, the hub calls each subscriber of that run. No
// thread waits per watcher and nothing polls. Thread-safe.
class WatchHub {
 public:
  // Called on the notifying thread, possibly while the scheduler holds its
  // lock: it must return at once and must not call the scheduler or the
  // hub (it schedules work elsewhere).
  using Callback = std::function<void()>;

  // Returns the subscription's id.
  int64_t Subscribe(int64_t run_id, Callback callback) {
    absl::MutexLock lock(&mu_);
    const int64_t id = ++last_id_;
    runs_[run_id].push_back({id, std::move(callback)});
    run_of_[id] = run_id;
    return id;
  }

  // After it returns, the subscription's callback is not called again
  // (a call under way on another thread finishes first).
  void Unsubscribe(int64_t id) {
    absl::MutexLock lock(&mu_);
    auto it = run_of_.find(id);
    if (it == run_of_.end()) return;
    std::vector<Entry>& entries = runs_[it->second];
    for (size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].id == id) {
        entries[i] = std::move(entries.back());
        entries.pop_back();
        break;
      }
    }
    if (entries.empty()) runs_.erase(it->second);
    run_of_.erase(it);
  }

  void Notify(int64_t run_id) {
    absl::MutexLock lock(&mu_);
    auto it = runs_.find(run_id);
    if (it == runs_.end()) return;
    for (const Entry& entry : it->second) entry.callback();
  }

  void NotifyAll() {
    absl::MutexLock lock(&mu_);
    for (const auto& [run_id, entries] : runs_) {
      for (const Entry& entry : entries) entry.callback();
    }
  }

  int64_t subscriptions() {
    absl::MutexLock lock(&mu_);
    return int64_t(run_of_.size());
  }

 private:
  struct Entry {
    int64_t id;
    Callback callback;
  };

  absl::Mutex mu_;
  int64_t last_id_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<int64_t, std::vector<Entry>> runs_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<int64_t, int64_t> run_of_ ABSL_GUARDED_BY(mu_);
};

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_WATCH_HUB_H_
