// GET /metrics in Prometheus' text format, from a prometheus-cpp registry,
// on the project's own HTTP server (http/http_server.h): the same caps per
// address and in all, the same deadlines for each phase of a request, and
// TLS where a certificate is given, as the pages. 64 clients that send
// half a request hold 64 sockets, not the scraper's turn.
#ifndef DISTILL_HTTP_METRICS_SERVER_H_
#define DISTILL_HTTP_METRICS_SERVER_H_

#include <prometheus/registry.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "http/http_server.h"

namespace distill {

struct MetricsServerOptions {
  std::string listen;  // host:port ([::1]:port for IPv6; port 0 picks one).
  // TLS with this certificate chain and key (PEM files); plain HTTP when
  // both are empty.
  std::string tls_cert;
  std::string tls_key;
  // Caps and deadlines; host, port and TLS come from the fields above.
  HttpServerOptions http;
};

class MetricsServer {
 public:
  // Serves `registry` on options.listen: INVALID_ARGUMENT naming a listen
  // address that is not host:port or a TLS file that cannot be read,
  // UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const MetricsServerOptions& options,
      std::shared_ptr<prometheus::Registry> registry);
  // Plain HTTP on `listen`.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen,
      std::shared_ptr<prometheus::Registry> registry);

  int port() const { return server_->port(); }
  // Connections refused at the caps since the start.
  int64_t refused() const { return server_->refused(); }

 private:
  MetricsServer() = default;

  std::unique_ptr<HttpServer> server_;
};

// "host:port" -> (host without IPv6 brackets, port); INVALID_ARGUMENT
// naming `flag` and the value otherwise.
absl::StatusOr<std::pair<std::string, int>> SplitListenAddress(
    const std::string& listen, const std::string& flag);

}  // namespace distill

#endif  // DISTILL_HTTP_METRICS_SERVER_H_
