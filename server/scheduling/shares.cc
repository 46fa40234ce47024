#include "server/scheduling/shares.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "server/scheduling/fair_share.h"

namespace distill {
namespace {

// Caps above this are refused (a lab has not this many GPUs).
constexpr int32_t kMaxCap = 1'000'000;

}  // namespace

std::vector<v1::Owner> OwnersAsProto(const std::vector<OwnerRecord>& records,
                                     const SchedulerOptions& options) {
  double usage = 0, shares = 0;
  for (const OwnerRecord& r : records) {
    usage += r.decayed_ms;
    shares += r.shares;
  }
  std::vector<v1::Owner> out;
  for (const OwnerRecord& r : records) {
    v1::Owner& o = out.emplace_back();
    o.set_name(r.owner);
    o.set_shares(r.shares);
    o.set_max_running(CapOf(r, options).value_or(0));
    o.set_max_running_is_default(!r.max_running.has_value());
    o.set_running(r.running);
    o.set_queued(r.queued);
    o.set_gpu_seconds(r.decayed_ms / 1000);
    o.set_gpu_seconds_total(double(r.total_ms) / 1000);
    o.set_usage_fraction(usage > 0 ? r.decayed_ms / usage : 0);
    o.set_share_fraction(shares > 0 ? r.shares / shares : 0);
  }
  return out;
}

absl::StatusOr<v1::Owner> Shares::SetPolicy(
    const v1::SetOwnerPolicyRequest& request) {
  const std::string& owner = request.owner();
  if (owner.empty() || owner.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner must be a token's name of 1 to ",
                     limits::kNameBytes, " bytes, got ", owner.size()));
  }
  const double shares = request.shares();
  if (!std::isfinite(shares) || shares < kMinShares || shares > kMaxShares) {
    return absl::InvalidArgumentError(absl::StrCat(
        "shares must be ", kMinShares, " to ", kMaxShares, ", got ", shares));
  }
  std::optional<int32_t> cap;
  if (request.has_max_running()) {
    if (request.max_running() < 0 || request.max_running() > kMaxCap) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_running must be 0 (no cap) to ", kMaxCap, ", got ",
                       request.max_running()));
    }
    cap = request.max_running();
  }
  absl::StatusOr<std::vector<OwnerRecord>> owners;
  {
    SchedulerCore::Locked lock(&core_);
    if (absl::Status s = core_.Write([&] {
          core_.AssertHeld();
          return core_.store().SetOwnerPolicy(owner, shares, cap);
        });
        !s.ok()) {
      return s;
    }
    owners = OwnersWithQueue(core_.store());
  }
  if (!owners.ok()) return owners.status();
  for (const v1::Owner& o : OwnersAsProto(*owners, core_.options())) {
    if (o.name() == owner) return core_.Durable(absl::StatusOr<v1::Owner>(o));
  }
  return absl::InternalError(absl::StrCat("owner ", owner, " was not stored"));
}

absl::StatusOr<v1::ListOwnersResponse> Shares::List() {
  absl::StatusOr<std::vector<OwnerRecord>> owners;
  if (absl::Status s = core_.Read([&](Store& store) {
        owners = OwnersWithQueue(store);
        return owners.status();
      });
      !s.ok()) {
    return s;
  }
  v1::ListOwnersResponse response;
  for (v1::Owner& o : OwnersAsProto(*owners, core_.options()))
    *response.add_owners() = std::move(o);
  response.set_half_life_seconds(
      double(core_.options().fair_share_half_life_ms) / 1000);
  return response;
}

}  // namespace distill
