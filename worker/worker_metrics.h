// The worker's numbers for operators (distill-worker --metrics_listen):
// the run it holds, its step and images/s, whether it drains, and how its
// runs ended. Thread-safe (prometheus-cpp's metrics are).
#ifndef DISTILL_WORKER_WORKER_METRICS_H_
#define DISTILL_WORKER_WORKER_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <string>

namespace distill {

class WorkerMetrics {
 public:
  explicit WorkerMetrics(prometheus::Registry& registry);

  // `run_id` 0: idle.
  void SetRun(int64_t run_id);
  void SetProgress(int64_t step, double images_per_sec);
  void SetDraining(bool draining);
  // "succeeded", "failed", "stopped" (cancelled or lease lost), "handed_back".
  void RunEnded(const std::string& outcome);

 private:
  prometheus::Gauge& run_;
  prometheus::Gauge& step_;
  prometheus::Gauge& images_per_sec_;
  prometheus::Gauge& draining_;
  prometheus::Family<prometheus::Counter>& runs_;
};

}  // namespace distill

#endif  // DISTILL_WORKER_WORKER_METRICS_H_
