// Calls that stay open are counted per client host.
#include "server/rpc/peer_limiter.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <vector>

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(PeerLimiterTest, HostIsThePeerWithoutItsPort) {
  EXPECT_EQ(PeerHost("ipv4:10.0.0.5:52114"), "ipv4:10.0.0.5");
  EXPECT_EQ(PeerHost("ipv6:[::1]:4000"), "ipv6:[::1]");
  EXPECT_EQ(PeerHost("unix:/tmp/sock"), "unix:/tmp/sock");
}

TEST(PeerLimiterTest, EachHostGetsItsOwnPlacesBackWhenCallsEnd) {
  PeerLimiter limiter("watches", 2);
  std::vector<PeerLimiter::Slot> held;
  held.push_back(*limiter.Acquire("ipv4:10.0.0.5:1"));
  held.push_back(*limiter.Acquire("ipv4:10.0.0.5:2"));
  absl::StatusOr<PeerLimiter::Slot> third = limiter.Acquire("ipv4:10.0.0.5:3");
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(third.status().message()),
              HasSubstr("ipv4:10.0.0.5 already holds 2 open watches"));
  EXPECT_TRUE(limiter.Acquire("ipv4:10.0.0.6:1").ok());  // Another host.
  held.pop_back();
  EXPECT_EQ(limiter.open("ipv4:10.0.0.5"), 1);
  EXPECT_TRUE(limiter.Acquire("ipv4:10.0.0.5:4").ok());
  held.clear();
  EXPECT_EQ(limiter.open("ipv4:10.0.0.5"), 0);
}

}  // namespace
}  // namespace distill
