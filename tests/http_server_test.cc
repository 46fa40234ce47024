// The pages' HTTP server: its parser, table-driven, and the server on
// loopback (keep-alive, pipelining, a handler that throws, the caps).
#include "http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sched.h>
#include <sys/wait.h>

#include <cstdlib>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "http/metrics_server.h"
#include "tests/sockets.h"
#include "tests/stall_probe.h"
#include "tests/wait_for.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

struct ParseCase {
  const char* name;
  std::string bytes;
  HttpParse::State state;
  int status;  // kBad: the answer's status.
};

// Its name in test lists and CTest's log (not 48 bytes of hex).
void PrintTo(const ParseCase& c, std::ostream* out) { *out << c.name; }

class ParseTest : public ::testing::TestWithParam<ParseCase> {};

TEST_P(ParseTest, ParsesOrRefuses) {
  const ParseCase& c = GetParam();
  HttpLimits limits;
  limits.max_head_bytes = 256;
  limits.max_body_bytes = 16;
  HttpRequest request;
  const HttpParse parse = ParseHttpRequest(c.bytes, limits, &request);
  EXPECT_EQ(parse.state, c.state) << parse.error;
  if (c.state == HttpParse::kBad) EXPECT_EQ(parse.error_status, c.status);
}

const std::string kHost = "Host: h\r\n";

INSTANTIATE_TEST_SUITE_P(
    Requests, ParseTest,
    ::testing::Values(
        ParseCase{"get", "GET / HTTP/1.1\r\n" + kHost + "\r\n",
                  HttpParse::kComplete},
        ParseCase{"http10_without_host", "GET / HTTP/1.0\r\n\r\n",
                  HttpParse::kComplete},
        ParseCase{"half_a_head", "GET / HTTP/1.1\r\nHost: h\r\nX-",
                  HttpParse::kIncomplete},
        ParseCase{"half_a_body",
                  "POST /login HTTP/1.1\r\n" + kHost +
                      "Content-Length: 10\r\n\r\nabc",
                  HttpParse::kIncomplete},
        ParseCase{"no_host", "GET / HTTP/1.1\r\n\r\n", HttpParse::kBad, 400},
        ParseCase{"head_too_long",
                  "GET / HTTP/1.1\r\n" + kHost + "X: " + std::string(300, 'a'),
                  HttpParse::kBad, 431},
        ParseCase{"body_too_long",
                  "POST / HTTP/1.1\r\n" + kHost + "Content-Length: 17\r\n\r\n",
                  HttpParse::kBad, 413},
        ParseCase{"chunked",
                  "POST / HTTP/1.1\r\n" + kHost +
                      "Transfer-Encoding: chunked\r\n\r\n",
                  HttpParse::kBad, 501},
        ParseCase{"two_lengths",
                  "POST / HTTP/1.1\r\n" + kHost +
                      "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                  HttpParse::kBad, 400},
        // An empty Content-Length is no number, and a second cannot
        // override it (issue 30: it was read as 0, then as the second).
        ParseCase{"empty_length",
                  "POST / HTTP/1.1\r\n" + kHost + "Content-Length:\r\n\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"empty_then_a_length",
                  "POST / HTTP/1.1\r\n" + kHost +
                      "Content-Length: \r\nContent-Length: 2\r\n\r\nab",
                  HttpParse::kBad, 400},
        ParseCase{"negative_length",
                  "POST / HTTP/1.1\r\n" + kHost + "Content-Length: -1\r\n\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"huge_length",
                  "POST / HTTP/1.1\r\n" + kHost +
                      "Content-Length: 99999999999999999999999\r\n\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"folded_header",
                  "GET / HTTP/1.1\r\n" + kHost + " folded\r\n\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"control_in_value",
                  "GET / HTTP/1.1\r\n" + kHost + "X: a\x01z\r\n\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"bad_escape", "GET /%zz HTTP/1.1\r\n" + kHost + "\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"escaped_nul", "GET /a%00b HTTP/1.1\r\n" + kHost + "\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"absolute_target",
                  "GET http://x/ HTTP/1.1\r\n" + kHost + "\r\n",
                  HttpParse::kBad, 400},
        ParseCase{"http2", "GET / HTTP/2.0\r\n\r\n", HttpParse::kBad, 505},
        ParseCase{"delete", "DELETE / HTTP/1.1\r\n" + kHost + "\r\n",
                  HttpParse::kBad, 501},
        ParseCase{"garbage", "\x16\x03\x01\x02\x05\r\n\r\n", HttpParse::kBad,
                  400}),
    [](const ::testing::TestParamInfo<ParseCase>& info) {
      return info.param.name;
    });

TEST(ParseTest, TakesThePartsOfARequest) {
  HttpRequest r;
  const std::string bytes =
      "POST /sweeps/my%20sweep?x=1 HTTP/1.1\r\nHost: h\r\nCookie:  a=b \r\n"
      "Content-Length: 5\r\n\r\nhelloGET";
  const HttpParse parse = ParseHttpRequest(bytes, HttpLimits(), &r);
  ASSERT_EQ(parse.state, HttpParse::kComplete);
  EXPECT_EQ(parse.consumed, bytes.size() - 3);  // The next request's start.
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.path, "/sweeps/my sweep");
  EXPECT_EQ(r.query, "x=1");
  EXPECT_EQ(r.Header("cookie"), "a=b");
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(FormValue("a=1&token=x+y%21&b", "token"), "x y!");
  EXPECT_EQ(FormValue("token=%zz", "token"), "");
  EXPECT_EQ(FormValue("a=1", "token"), "");
}

// Issue 30's response splitting: a header value with CR or LF is never
// sent; the answer becomes a 500 with the serializer's own headers.
TEST(SerializeTest, AHeaderWithALineBreakIsNeverSent) {
  HttpResponse split;
  split.status = 303;
  split.headers.emplace_back("Set-Cookie", "t=x\r\nX-Injected: yes");
  split.body = "body";
  const std::string bytes = SerializeHttpResponse(split, true, false);
  EXPECT_THAT(bytes, ::testing::StartsWith("HTTP/1.1 500 "));
  EXPECT_THAT(bytes, ::testing::Not(HasSubstr("X-Injected")));
  EXPECT_THAT(bytes, ::testing::Not(HasSubstr("Set-Cookie")));
  for (const std::string& bad :
       std::vector<std::string>{"a\nb", "a\rb", std::string("a\0b", 3)}) {
    HttpResponse r;
    r.headers.emplace_back("X", bad);
    EXPECT_THAT(SerializeHttpResponse(r, true, false),
                ::testing::StartsWith("HTTP/1.1 500 "));
  }
  HttpResponse bad_name;
  bad_name.headers.emplace_back("X: y\r\nZ", "v");
  EXPECT_THAT(SerializeHttpResponse(bad_name, true, false),
              ::testing::StartsWith("HTTP/1.1 500 "));
  HttpResponse bad_type;
  bad_type.content_type = "text/html\r\nX-Injected: yes";
  EXPECT_THAT(SerializeHttpResponse(bad_type, true, false),
              ::testing::Not(HasSubstr("X-Injected")));
  HttpResponse fine;
  fine.headers.emplace_back("Set-Cookie", "t=x; HttpOnly\tok");
  EXPECT_THAT(SerializeHttpResponse(fine, true, false),
              HasSubstr("Set-Cookie: t=x; HttpOnly\tok\r\n"));
}

class ServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    auto server = HttpServer::Start(options, [](const HttpRequest& r) {
      if (r.path == "/throw") throw std::runtime_error("a bug");
      if (r.path == "/throw-int") throw 7;  // No std::exception.
      HttpResponse response;
      response.content_type = "text/plain";
      response.body = absl::StrCat(r.method, " ", r.path, " from ", r.peer);
      return response;
    });
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(ServerTest, KeepsConnectionsAliveAndAnswersPipelinedRequests) {
  Start();
  const int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  const std::string two =
      "GET /a HTTP/1.1\r\nHost: h\r\n\r\nHEAD /b HTTP/1.1\r\nHost: h\r\n"
      "Connection: close\r\n\r\n";
  ASSERT_EQ(::send(fd, two.data(), two.size(), 0), ssize_t(two.size()));
  const std::string answers = ReadAll(fd);
  ::close(fd);
  EXPECT_THAT(answers, HasSubstr("Connection: keep-alive\r\n\r\nGET /a from "
                                 "127.0.0.1HTTP/1.1 200 OK"));
  EXPECT_THAT(answers, HasSubstr("Connection: close\r\n\r\n"));
  EXPECT_EQ(answers.find("HEAD /b"), std::string::npos);  // HEAD: no body.
}

TEST_F(ServerTest, AClientThatShutsItsSideAfterItsRequestIsAnswered) {
  Start();
  const int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  const std::string request = "GET /half HTTP/1.1\r\nHost: h\r\n\r\n";
  ASSERT_EQ(::send(fd, request.data(), request.size(), 0),
            ssize_t(request.size()));
  ::shutdown(fd, SHUT_WR);
  const std::string answer = ReadAll(fd);
  char byte;
  const ssize_t after = ::recv(fd, &byte, 1, 0);
  ::close(fd);
  EXPECT_EQ(after, 0) << "the server never closed the connection";
  // The whole answer, then the server's close (ReadAll ends at it). Whether
  // the answer says "close" or "keep-alive" depends on whether the client's
  // FIN arrived before the request was parsed; either way the server closes
  // once it reads the end.
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(answer, ::testing::EndsWith("GET /half from 127.0.0.1"));
}

TEST_F(ServerTest, AHandlersExceptionIsA500AndTheServerGoesOn) {
  Start();
  httplib::Client client("127.0.0.1", server_->port());
  auto thrown = client.Get("/throw");
  ASSERT_TRUE(thrown);
  EXPECT_EQ(thrown->status, 500);
  auto odd = client.Get("/throw-int");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->status, 500);
  auto after = client.Get("/fine");
  ASSERT_TRUE(after);
  EXPECT_EQ(after->status, 200);
  EXPECT_EQ(after->body, "GET /fine from 127.0.0.1");
}

TEST_F(ServerTest, AMalformedRequestIsAnsweredAndClosed) {
  Start();
  const int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  const std::string bad =
      "GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: "
      "chunked\r\n\r\n0\r\n\r\n";
  ASSERT_EQ(::send(fd, bad.data(), bad.size(), 0), ssize_t(bad.size()));
  const std::string answer = ReadAll(fd);
  ::close(fd);
  EXPECT_THAT(answer, ::testing::StartsWith("HTTP/1.1 501 Not Implemented"));
  EXPECT_THAT(answer, HasSubstr("Connection: close"));
}

TEST_F(ServerTest, OneAddressHoldsAtMostItsShare) {
  HttpServerOptions options;
  options.max_connections_per_address = 4;
  Start(options);
  std::vector<int> held;
  for (int i = 0; i < 6; ++i)
    held.push_back(ConnectFrom("127.0.0.7", server_->port()));
  // The server has read all six (the last two refused).
  ASSERT_TRUE(WaitFor([&] { return server_->refused() >= 2; }))
      << server_->refused();
  EXPECT_EQ(server_->refused(), 2);
  // The refused ones got a 503 and were closed; another address is served.
  EXPECT_THAT(ReadAll(held.back()), HasSubstr("503 Service Unavailable"));
  httplib::Client client("127.0.0.1", server_->port());
  auto page = client.Get("/x");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  for (int fd : held) ::close(fd);
}

TEST_F(ServerTest, AnIdleOrHalfSentConnectionIsClosedAtItsDeadline) {
  HttpServerOptions options;
  options.header_timeout = absl::Milliseconds(300);
  Start(options);
  const int fd = ConnectFrom("127.0.0.1", server_->port());
  ASSERT_GE(fd, 0);
  ASSERT_EQ(::send(fd, "GET / HT", 8, 0), 8);
  const absl::Time start = absl::Now();
  EXPECT_EQ(ReadAll(fd), "");  // Closed without an answer.
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ::close(fd);
}

TEST(PeerGroupTest, IPv6HostsCountByTheirSlash64) {
  EXPECT_EQ(PeerGroup("10.0.0.5"), "10.0.0.5");
  EXPECT_EQ(PeerGroup("::ffff:10.0.0.5"), "10.0.0.5");
  EXPECT_EQ(PeerGroup("2001:db8:1:2::1"), "2001:db8:1:2::/64");
  EXPECT_EQ(PeerGroup("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_NE(PeerGroup("2001:db8:1:3::1"), PeerGroup("2001:db8:1:2::1"));
  EXPECT_EQ(PeerGroup("::1"), "::/64");
}

// One IPv6 host takes any address of its /64: 20 connections from 20
// addresses of one /64 hold the cap (16) and no more, while a client of
// another /64 is served. In a network namespace of the test's own, where
// both /64s are local (root and iproute2; skipped without).
TEST(ServerIpv6Test, OneSlash64HoldsAtMostItsShare) {
  if (::geteuid() != 0 || std::system("command -v ip >/dev/null") != 0)
    GTEST_SKIP() << "needs root and ip(8) for a network namespace";
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // The child's own namespace: its loopback up, two /64s routed to it.
    if (::unshare(CLONE_NEWNET) != 0 ||
        std::system("ip link set lo up && "
                    "ip -6 route add local 2001:db8:1:2::/64 dev lo && "
                    "ip -6 route add local 2001:db8:1:3::/64 dev lo") != 0) {
      ::_exit(10);
    }
    HttpServerOptions options;
    options.host = "::";
    options.max_connections_per_address = 16;
    auto server = HttpServer::Start(options, [](const HttpRequest& r) {
      HttpResponse response;
      response.body = r.peer;
      return response;
    });
    if (!server.ok()) ::_exit(11);
    auto connect_from = [&](const std::string& source) {
      const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
      const timeval wait{5, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);
      // Any address of the routed /64, not only configured ones.
      const int one = 1;
      ::setsockopt(fd, IPPROTO_IPV6, IPV6_FREEBIND, &one, sizeof one);
      sockaddr_in6 from{}, to{};
      from.sin6_family = to.sin6_family = AF_INET6;
      ::inet_pton(AF_INET6, source.c_str(), &from.sin6_addr);
      ::inet_pton(AF_INET6, "2001:db8:1:3::1", &to.sin6_addr);
      to.sin6_port = htons(uint16_t((*server)->port()));
      if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof from) != 0 ||
          ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
        ::close(fd);
        return -1;
      }
      return fd;
    };
    std::vector<int> held;
    for (int i = 1; i <= 20; ++i) {
      const int fd = connect_from(absl::StrCat("2001:db8:1:2::", i));
      if (fd < 0) ::_exit(12);
      held.push_back(fd);
    }
    if (!WaitFor([&] { return (*server)->refused() >= 4; })) ::_exit(13);
    if ((*server)->refused() != 4) ::_exit(13);
    const int other = connect_from("2001:db8:1:3::7");
    const std::string get =
        "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    if (other < 0 ||
        ::send(other, get.data(), get.size(), 0) != ssize_t(get.size()))
      ::_exit(14);
    const std::string answer = ReadAll(other);
    if (answer.find("200 OK") == std::string::npos ||
        answer.find("2001:db8:1:3::7") == std::string::npos) {
      ::_exit(15);
    }
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  // 10: no namespace; 11: no server; 12: a connection failed; 13: not 4
  // refused; 14, 15: the other /64 was not served.
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// The worker's /metrics (worker_main.cc starts it so, with the server's
// default deadlines): the same probe as the pages'.
TEST(MetricsServerTest, StalledConnectionsDoNotDelayAScrape) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto server = MetricsServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ExpectStalledClientsStarveNobody((*server)->port(), "/metrics",
                                   [&] { return (*server)->refused(); },
                                   "worker /metrics");
}

TEST(MetricsServerTest, ServesOnlyMetricsAndRefusesABadAddress) {
  auto server = MetricsServer::Start("127.0.0.1:0",
                                     std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"),
              HasSubstr("version=0.0.4"));
  auto elsewhere = client.Get("/");
  ASSERT_TRUE(elsewhere);
  EXPECT_EQ(elsewhere->status, 404);
  auto post = client.Post("/metrics", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  auto bad =
      MetricsServer::Start("nocolon", std::make_shared<prometheus::Registry>());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("\"nocolon\""));
}

}  // namespace
}  // namespace distill
