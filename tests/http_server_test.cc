// The pages' HTTP server: its parser, table-driven, and the server on
// loopback (keep-alive, pipelining, a handler that throws, the caps).
#include "http/http_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/sockets.h"

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

class ServerTest : public ::testing::Test {
 protected:
  void Start(HttpServerOptions options = {}) {
    auto server = HttpServer::Start(options, [](const HttpRequest& r) {
      if (r.path == "/throw") throw std::runtime_error("a bug");
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
  absl::SleepFor(absl::Milliseconds(200));
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

}  // namespace
}  // namespace distill
