// Issue 22's and 30's probe of an HTTP port open on a lab's network: 64
// connections that send half a request and wait, first from one address
// of 127/8, then from four, while another client asks for `path`; then a
// client that drips a byte every 250 ms. On the project's server (http/)
// the stalled ones hold no thread, one address holds at most 16 at once
// (the rest are answered 503), and each is cut at the header deadline.
#ifndef DISTILL_TESTS_STALL_PROBE_H_
#define DISTILL_TESTS_STALL_PROBE_H_

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/sockets.h"

namespace distill {

// How long `path` takes for a client of its own (127.0.0.1), waiting up to
// 30 s; a failed request counts as 30 s.
inline absl::Duration GetLatency(int port, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  const absl::Time start = absl::Now();
  auto answer = client.Get(path);
  EXPECT_TRUE(answer && answer->status == 200) << path;
  if (!answer) return absl::Seconds(30);
  return absl::Now() - start;
}

// Runs the probe against 127.0.0.1:`port` (its header deadline must be
// under 5 s); `refused` reads the server's count of connections refused at
// its caps. `what` names the port in the printed latencies.
inline void ExpectStalledClientsStarveNobody(
    int port, const std::string& path, const std::function<int64_t()>& refused,
    const std::string& what) {
  const absl::Duration alone = GetLatency(port, path);
  const int64_t refused_before = refused();
  // 64 from one address: 16 held, 48 refused.
  std::vector<int> stalled;
  for (int i = 0; i < 64; ++i) {
    const int fd = ConnectFrom("127.0.0.2", port);
    ASSERT_GE(fd, 0) << "cannot connect from 127.0.0.2";
    const std::string half = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    ASSERT_EQ(::send(fd, half.data(), half.size(), MSG_NOSIGNAL),
              ssize_t(half.size()));
    stalled.push_back(fd);
  }
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Duration with_one_address = GetLatency(port, path);
  EXPECT_EQ(refused() - refused_before, 48);
  // 64 held, from four addresses of 16 each.
  for (int host = 3; host <= 5; ++host) {
    for (int i = 0; i < 16; ++i) {
      const int fd = ConnectFrom(absl::StrCat("127.0.0.", host), port);
      ASSERT_GE(fd, 0);
      ASSERT_EQ(::send(fd, "GET", 3, MSG_NOSIGNAL), 3);
      stalled.push_back(fd);
    }
  }
  absl::SleepFor(absl::Milliseconds(200));
  const absl::Duration with_four_addresses = GetLatency(port, path);
  EXPECT_EQ(refused() - refused_before, 48);
  std::cout << what << " latency: alone " << alone
            << ", with 64 stalled connections from one address "
            << with_one_address << ", with 64 held from four "
            << with_four_addresses << "\n";
  EXPECT_LT(with_one_address, absl::Seconds(1));
  EXPECT_LT(with_four_addresses, absl::Seconds(1));

  // A drip of a byte at a time does not stretch the header deadline.
  const int drip = ConnectFrom("127.0.0.6", port);
  ASSERT_GE(drip, 0);
  const absl::Time opened = absl::Now();
  bool closed = false;
  while (!closed && absl::Now() - opened < absl::Seconds(10)) {
    if (::send(drip, "x", 1, MSG_NOSIGNAL) != 1) closed = true;
    char byte;
    const ssize_t n = ::recv(drip, &byte, 1, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
      closed = true;
    absl::SleepFor(absl::Milliseconds(250));
  }
  EXPECT_TRUE(closed);
  EXPECT_LT(absl::Now() - opened, absl::Seconds(6));
  // The stalled ones were cut at the same deadline.
  char byte;
  EXPECT_EQ(::recv(stalled.back(), &byte, 1, 0), 0);
  for (int fd : stalled) ::close(fd);
  ::close(drip);
}

}  // namespace distill

#endif  // DISTILL_TESTS_STALL_PROBE_H_
