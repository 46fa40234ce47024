#include "server/rpc/peer_limiter.h"

#include "absl/strings/str_cat.h"

namespace distill {

std::string PeerHost(const std::string& peer) {
  const size_t colon = peer.rfind(':');
  const size_t scheme = peer.find(':');
  if (colon == std::string::npos || colon == scheme) return peer;
  return peer.substr(0, colon);
}

PeerLimiter::Slot::~Slot() {
  if (limiter_ != nullptr) limiter_->Release(host_);
}

absl::StatusOr<PeerLimiter::Slot> PeerLimiter::Acquire(
    const std::string& peer) {
  return AcquireFor(PeerHost(peer));
}

absl::StatusOr<PeerLimiter::Slot> PeerLimiter::AcquireFor(std::string host) {
  absl::MutexLock lock(&mu_);
  int& open = open_[host];
  if (open >= max_per_host_) {
    return absl::ResourceExhaustedError(
        absl::StrCat(host, " already holds ", open, " open ", what_,
                     ", the most one caller may; close some first"));
  }
  ++open;
  return Slot(this, std::move(host));
}

int PeerLimiter::open(const std::string& host) const {
  absl::MutexLock lock(&mu_);
  auto it = open_.find(host);
  return it == open_.end() ? 0 : it->second;
}

void PeerLimiter::Release(const std::string& host) {
  absl::MutexLock lock(&mu_);
  if (--open_[host] <= 0) open_.erase(host);
}

}  // namespace distill
