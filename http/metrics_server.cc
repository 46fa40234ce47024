#include "http/metrics_server.h"

#include <prometheus/text_serializer.h>

#include <sstream>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace distill {

absl::StatusOr<std::pair<std::string, int>> SplitListenAddress(
    const std::string& listen, const std::string& flag) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, " must be host:port, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  return std::pair{std::move(host), port};
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const MetricsServerOptions& options,
    std::shared_ptr<prometheus::Registry> registry) {
  absl::StatusOr<std::pair<std::string, int>> address =
      SplitListenAddress(options.listen, "--metrics_listen");
  if (!address.ok()) return address.status();
  HttpServerOptions http = options.http;
  http.host = address->first;
  http.port = address->second;
  http.tls_cert = options.tls_cert;
  http.tls_key = options.tls_key;
  // Scrapes are GETs without bodies.
  http.limits.max_body_bytes = 0;
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::Start(
      http, [registry = std::move(registry)](const HttpRequest& request) {
        HttpResponse response;
        response.content_type = "text/plain; charset=utf-8";
        if (request.path != "/metrics") {
          response.status = 404;
          response.body = "the metrics are at /metrics\n";
          return response;
        }
        if (request.method != "GET" && request.method != "HEAD") {
          response.status = 405;
          response.headers.emplace_back("Allow", "GET, HEAD");
          response.body = "/metrics takes GET and HEAD\n";
          return response;
        }
        std::ostringstream text;
        prometheus::TextSerializer().Serialize(text, registry->Collect());
        response.content_type = "text/plain; version=0.0.4; charset=utf-8";
        response.body = text.str();
        return response;
      });
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("cannot serve metrics on ", options.listen,
                                     ": ", started.status().message()));
  }
  server->server_ = *std::move(started);
  return server;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry) {
  MetricsServerOptions options;
  options.listen = listen;
  return Start(options, std::move(registry));
}

}  // namespace distill
