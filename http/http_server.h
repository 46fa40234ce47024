// A small HTTP/1.1 server for the coordinator's pages, built so that slow
// or hostile clients cannot starve anyone else (the pages are open on a
// lab's network):
// - one thread reads and writes every connection without blocking
//   (epoll), TLS included, so a client that sends half a request and waits
//   holds a socket and a few bytes, never a thread;
// - a request goes to the handler's threads only once it is whole;
// - each phase has a deadline for the whole of it, not for each read (a
//   client that drips a byte a second is cut off at the header deadline);
// - the connections of one address, and of all, are capped; past the cap a
//   connection is answered 503 and closed at once;
// - a request's head and body are bounded; chunked bodies are refused.
// Thread-safe; the handler runs on several threads at once.
#ifndef DISTILL_HTTP_HTTP_SERVER_H_
#define DISTILL_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "http/http_message.h"

namespace distill {

struct HttpServerOptions {
  std::string host = "127.0.0.1";  // Without brackets for IPv6.
  int port = 0;                    // 0 picks a free one.
  // TLS with this certificate chain and key (PEM files); plain HTTP when
  // both are empty.
  std::string tls_cert;
  std::string tls_key;
  int handler_threads = 4;
  int max_connections = 1024;
  int max_connections_per_address = 16;  // Per PeerGroup.
  // From a connection's first byte (or its TLS handshake's start) to its
  // request's last header; then to its body's end; between two requests
  // of one connection; and for a response to be taken.
  absl::Duration header_timeout = absl::Seconds(5);
  absl::Duration body_timeout = absl::Seconds(10);
  absl::Duration idle_timeout = absl::Seconds(5);
  absl::Duration write_timeout = absl::Seconds(10);
  int max_requests_per_connection = 100;
  HttpLimits limits;
};

// The group of clients a connection from `host` (numeric, as accepted)
// counts in for max_connections_per_address: an IPv4 address (also when
// IPv4-mapped, ::ffff:a.b.c.d), or an IPv6 address's /64 (one host is
// given a /64 and may take any address in it): "2001:db8:1:2::/64".
std::string PeerGroup(const std::string& host);

class HttpServer {
 public:
  // Answers every request with what `handler` returns (an exception it lets
  // through is a 500). UNAVAILABLE when it cannot bind; INVALID_ARGUMENT
  // naming a TLS file that cannot be read.
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      const HttpServerOptions& options, Handler handler);
  // Stops: closes every connection, lets running handlers finish.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  // Connections refused at the caps since the start (for tests and logs).
  int64_t refused() const { return refused_.load(); }

 private:
  class Loop;
  HttpServer() = default;

  int port_ = 0;
  std::atomic<int64_t> refused_{0};
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_HTTP_HTTP_SERVER_H_
