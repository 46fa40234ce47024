// GET /metrics in Prometheus' text format, from a prometheus-cpp registry,
// on its own thread (cpp-httplib). Used instead of prometheus-cpp's
// civetweb exposer, whose threads have a fixed 100 KiB stack: too small for
// the thread-local storage LibTorch brings into the worker.
#ifndef DISTILL_COMMON_METRICS_SERVER_H_
#define DISTILL_COMMON_METRICS_SERVER_H_

#include <prometheus/registry.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace distill {

class MetricsServer {
 public:
  // Serves `registry` on `listen` (host:port; port 0 picks a free one).
  // UNAVAILABLE naming the address when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      const std::string& listen,
      std::shared_ptr<prometheus::Registry> registry);
  ~MetricsServer();

  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_COMMON_METRICS_SERVER_H_
