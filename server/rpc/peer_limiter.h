#ifndef DISTILL_SERVER_RPC_PEER_LIMITER_H_
#define DISTILL_SERVER_RPC_PEER_LIMITER_H_

#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace distill {

// Counts the calls of one kind (watches, long polls) that each caller
// holds open, so that one caller cannot take every server thread. A caller
// is its token where the coordinator requires tokens, else its host (gRPC's
// peer address without its port). Thread-safe.
class PeerLimiter {
 public:
  // Releases its place when destroyed.
  class Slot {
   public:
    Slot(Slot&& other) noexcept
        : limiter_(other.limiter_), host_(std::move(other.host_)) {
      other.limiter_ = nullptr;
    }
    Slot(const Slot&) = delete;
    ~Slot();

   private:
    friend class PeerLimiter;
    Slot(PeerLimiter* limiter, std::string host)
        : limiter_(limiter), host_(std::move(host)) {}
    PeerLimiter* limiter_;
    std::string host_;
  };

  // `what` names the calls in the error ("watches").
  PeerLimiter(std::string what, int max_per_host)
      : what_(std::move(what)), max_per_host_(max_per_host) {}

  // A place for a call from `peer` (as grpc::ServerContext::peer() gives
  // it, e.g. "ipv4:10.0.0.5:52114"); RESOURCE_EXHAUSTED naming the host and
  // the limit when it holds max_per_host already.
  absl::StatusOr<Slot> Acquire(const std::string& peer);
  // The same for a caller named by the service (a token).
  absl::StatusOr<Slot> AcquireFor(std::string caller);

  int open(const std::string& host) const;

 private:
  void Release(const std::string& host);

  const std::string what_;
  const int max_per_host_;
  mutable absl::Mutex mu_;
  std::map<std::string, int> open_ ABSL_GUARDED_BY(mu_);
};

// The host part of a gRPC peer address: "ipv4:10.0.0.5:52114" ->
// "ipv4:10.0.0.5", "ipv6:[::1]:4000" -> "ipv6:[::1]".
std::string PeerHost(const std::string& peer);

}  // namespace distill

#endif  // DISTILL_SERVER_RPC_PEER_LIMITER_H_
