// The coordinator's live pages (--http_listen): read-only HTML, an index of
// sweeps and runs, each sweep's report and each run's page, reloading
// themselves while runs are running. Off by default. With tokens on, every
// page needs one whose role may read, in an "Authorization: Bearer" header
// or the HttpOnly cookie POST /login sets (a form, no script); without
// tokens, loopback only.
#ifndef DISTILL_SERVER_PAGES_H_
#define DISTILL_SERVER_PAGES_H_

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "server/auth.h"
#include "server/scheduler.h"

namespace httplib {
class Server;
}

namespace distill {

class PageServer {
 public:
  // Serves on `listen` (host:port; port 0 picks a free one). Does not take
  // ownership; both must outlive the server. The pages are plain HTTP: a
  // non-loopback address needs tokens and `insecure` (the operator's word
  // that a TLS proxy or a trusted network carries them), FAILED_PRECONDITION
  // otherwise; UNAVAILABLE when it cannot bind.
  static absl::StatusOr<std::unique_ptr<PageServer>> Start(
      const std::string& listen, Scheduler* scheduler,
      const Authenticator* auth, bool insecure = false);
  ~PageServer();

  int port() const { return port_; }

 private:
  PageServer() = default;

  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_PAGES_H_
