#include "common/metrics_server.h"

#include <httplib.h>
#include <prometheus/text_serializer.h>

#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace distill {

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    const std::string& listen, std::shared_ptr<prometheus::Registry> registry) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the metrics address must be host:port, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->registry_ = std::move(registry);
  server->server_ = std::make_unique<httplib::Server>();
  server->server_->Get(
      "/metrics", [registry = server->registry_](const httplib::Request&,
                                                 httplib::Response& response) {
        std::ostringstream text;
        prometheus::TextSerializer().Serialize(text, registry->Collect());
        response.set_content(text.str(), "text/plain; version=0.0.4");
      });
  if (port == 0) {
    port = server->server_->bind_to_any_port(host);
  } else if (!server->server_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics on ", listen));
  }
  server->port_ = port;
  server->thread_ =
      std::thread([s = server->server_.get()] { s->listen_after_bind(); });
  return server;
}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace distill
