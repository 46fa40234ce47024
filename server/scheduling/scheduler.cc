#include "server/scheduling/scheduler.h"

namespace distill {

Scheduler::Scheduler(Store* store, RunFileStore* run_files, Clock* clock,
                     SchedulerOptions options)
    : core_(store, run_files, clock, options) {}

void Scheduler::Shutdown() {
  {
    Locked lock(&core_);
    core_.set_shutting_down();
    core_.QueueChangedLocked(lock);
  }
  core_.hub().NotifyAll();
}

}  // namespace distill
