// Researchers' labels on runs and sweeps: tags (KEY=VALUE) and a note,
// checked and changed together, or not at all. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_ANNOTATIONS_H_
#define DISTILL_SERVER_SCHEDULING_ANNOTATIONS_H_

#include "absl/status/statusor.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

class Annotations {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Annotations(SchedulerCore& core) : core_(core) {}

  // The request's changes (names, sizes, at most kMaxTags), applied
  // together; the target's tags and note after them.
  // PERMISSION_DENIED naming the owner unless `who` may change the target.
  absl::StatusOr<v1::AnnotateResponse> Annotate(
      const v1::AnnotateRequest& request, const Requester& who);

 private:
  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_ANNOTATIONS_H_
