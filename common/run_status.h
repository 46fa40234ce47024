// What a run's status says about it, for the coordinator and whoever shows
// runs.
#ifndef DISTILL_COMMON_RUN_STATUS_H_
#define DISTILL_COMMON_RUN_STATUS_H_

#include "distill/v1/run.pb.h"

namespace distill {

// SUCCEEDED, FAILED, CANCELLED or PRUNED: the run will not change again.
inline bool IsTerminal(v1::RunStatus status) {
  return status == v1::SUCCEEDED || status == v1::FAILED ||
         status == v1::CANCELLED || status == v1::PRUNED;
}

}  // namespace distill

#endif  // DISTILL_COMMON_RUN_STATUS_H_
