// Fair share's owners as an admin sets them and anyone reads them: shares
// and caps (SetOwnerPolicy), and each owner's load and GPU time
// (ListOwners; /metrics). The order it makes is
// server/scheduling/fair_share.h's. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_SHARES_H_
#define DISTILL_SERVER_SCHEDULING_SHARES_H_

#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/admin_service.pb.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

// The bounds on an owner's shares.
inline constexpr double kMinShares = 0.001;
inline constexpr double kMaxShares = 1e6;

// The owners as ListOwners answers: the cap in force, GPU seconds, parts.
std::vector<v1::Owner> OwnersAsProto(const std::vector<OwnerRecord>& records,
                                     const SchedulerOptions& options);

class Shares {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Shares(SchedulerCore& core) : core_(core) {}

  // INVALID_ARGUMENT naming the field and value out of bounds.
  absl::StatusOr<v1::Owner> SetPolicy(const v1::SetOwnerPolicyRequest& request);
  absl::StatusOr<v1::ListOwnersResponse> List();

 private:
  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_SHARES_H_
