// Counts what LibTorch's CPU allocator hands out on this thread while an
// AllocationCount lives (its memory-reporting hook, as the profiler's
// memory view uses): how the engine shows that a loop allocates nothing
// per iteration (tests, bench/evaluation_phase.cc).
#ifndef DISTILL_WORKER_ENGINE_ALLOCATION_COUNT_H_
#define DISTILL_WORKER_ENGINE_ALLOCATION_COUNT_H_

#include <c10/core/Allocator.h>
#include <c10/util/ThreadLocalDebugInfo.h>

#include <cstdint>
#include <memory>

namespace distill::engine {

class AllocationCount {
 public:
  AllocationCount()
      : reporter_(std::make_shared<Reporter>()),
        guard_(c10::DebugInfoKind::PROFILER_STATE, reporter_) {}

  int64_t bytes() const { return reporter_->bytes; }
  int64_t allocations() const { return reporter_->allocations; }

 private:
  struct Reporter : c10::MemoryReportingInfoBase {
    void reportMemoryUsage(void*, int64_t size, int64_t, int64_t,
                           c10::Device) override {
      if (size > 0) {
        bytes += size;
        ++allocations;
      }
    }
    bool memoryProfilingEnabled() const override { return true; }
    int64_t bytes = 0;
    int64_t allocations = 0;
  };
  std::shared_ptr<Reporter> reporter_;
  c10::DebugInfoGuard guard_;
};

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_ALLOCATION_COUNT_H_
