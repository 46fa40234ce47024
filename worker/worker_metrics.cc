#include "worker/worker_metrics.h"

namespace distill {
namespace {

prometheus::Gauge& Gauge(prometheus::Registry& registry, const char* name,
                         const char* help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(registry).Add(
      {});
}

}  // namespace

WorkerMetrics::WorkerMetrics(prometheus::Registry& registry)
    : run_(Gauge(registry, "distill_worker_run",
                 "The run this worker holds (0: idle)")),
      step_(Gauge(registry, "distill_worker_step",
                  "Training step of the current run")),
      images_per_sec_(Gauge(registry, "distill_worker_images_per_second",
                            "Training images per second, last measured")),
      draining_(Gauge(registry, "distill_worker_draining",
                      "1 once the worker was told to drain")),
      runs_(prometheus::BuildCounter()
                .Name("distill_worker_runs_total")
                .Help("Runs this worker ended, by outcome")
                .Register(registry)) {
  for (const char* outcome :
       {"succeeded", "failed", "stopped", "handed_back"}) {
    runs_.Add({{"outcome", outcome}});
  }
}

void WorkerMetrics::SetRun(int64_t run_id) { run_.Set(double(run_id)); }

void WorkerMetrics::SetProgress(int64_t step, double images_per_sec) {
  step_.Set(double(step));
  if (images_per_sec > 0) images_per_sec_.Set(images_per_sec);
}

void WorkerMetrics::SetDraining(bool draining) {
  draining_.Set(draining ? 1 : 0);
}

void WorkerMetrics::RunEnded(const std::string& outcome) {
  runs_.Add({{"outcome", outcome}}).Increment();
}

}  // namespace distill
