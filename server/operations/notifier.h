// Word when a sweep ends: JSON that Slack and Mattermost incoming webhooks
// accept ({"text": ...}), posted to the coordinator's --notify_url and to
// the sweep's own notify.url, with its counts by status, its best member,
// its claims' verdicts and a link to its page. Retried with backoff and
// jitter; a failure is logged and counted (distill_notifications_total),
// never the run's or the sweep's. Never carries a token.
#ifndef DISTILL_SERVER_OPERATIONS_NOTIFIER_H_
#define DISTILL_SERVER_OPERATIONS_NOTIFIER_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/base/event_queue.h"
#include "server/base/metrics.h"
#include "server/scheduling/scheduler.h"

namespace distill {

struct NotifierOptions {
  // Told about every sweep that ends; empty: only sweeps' own URLs.
  std::string url;
  // The pages' address for links ("http://host:8080"); empty: no link.
  std::string pages_url;
  // Tries of a post, the first wait between them (doubled each time, with
  // up to as much again of random jitter), and each try's limit.
  int attempts = 5;
  absl::Duration first_backoff = absl::Seconds(1);
  absl::Duration timeout = absl::Seconds(10);
  CoordinatorMetrics* metrics = nullptr;
};

// The message about `results`, a sweep whose runs have all ended: its JSON
// body, {"text": "..."}, with Slack's three control characters (& < >)
// escaped in the names it quotes.
std::string SweepNotification(const v1::SweepResults& results,
                              const std::string& pages_url);

// Whether every run of the sweep has ended.
bool SweepEnded(const v1::SweepResults& results);

class Notifier {
 public:
  // Reads the ids the scheduler puts in `ended` (SchedulerOptions::
  // sweep_run_ended) on its own thread; `scheduler` and `ended` must
  // outlive it.
  Notifier(Scheduler* scheduler, EventQueue* ended, NotifierOptions options);
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

 private:
  void Loop();
  // Posts about sweep `id` if it has ended and not been told of since.
  void Check(int64_t id);
  // POSTs `body` to `url` until a 2xx answer or the tries run out.
  bool Post(const std::string& url, const std::string& body);

  Scheduler* const scheduler_;
  EventQueue* const ended_;
  const NotifierOptions options_;
  // Per sweep, the ended runs it was last told of (a sweep retried and
  // ended again is told again; two runs ending at once, once).
  absl::flat_hash_map<int64_t, std::string> told_;
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_OPERATIONS_NOTIFIER_H_
