// The coordinator's live pages (--http_listen): read-only HTML, an index of
// sweeps and runs, each sweep's report and each run's page, reloading
// themselves while runs are running. Off by default. With tokens on, every
// page needs one whose role may read, in an "Authorization: Bearer" header
// or the HttpOnly cookie POST /login sets (a form, no script). Served by
// http/http_server.h (slow clients cannot starve it), over HTTPS with the
// coordinator's certificate when it has one; beyond loopback only as the
// gRPC port is (TLS and tokens, or --insecure). Every answer forbids
// script, framing, sniffing and referrers.
#ifndef DISTILL_SERVER_WEB_PAGES_H_
#define DISTILL_SERVER_WEB_PAGES_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/tls.h"
#include "http/http_server.h"
#include "server/scheduling/auth.h"
#include "server/scheduling/scheduler.h"

namespace distill {

// What each request gets, without sockets (the pages' fuzzer drives it).
// Thread-safe: the scheduler and the authenticator are.
class Pages {
 public:
  // Does not take ownership; both must outlive it.
  Pages(Scheduler* scheduler, const Authenticator* auth);

  // The answer, with the security headers, to any request: 401 with the
  // login form without a token (when tokens are on), 405 for a method a
  // path does not take, 404 for what is not a page.
  HttpResponse Handle(const HttpRequest& request) const;

 private:
  HttpResponse Route(const HttpRequest& request) const;
  // POST /login: the form's token into a cookie, or the form again saying
  // why not.
  HttpResponse Login(const HttpRequest& request) const;

  Scheduler* const scheduler_;
  const Authenticator* const auth_;
  const std::string content_security_policy_;
};

struct PageServerOptions {
  std::string listen;     // host:port; port 0 picks a free one.
  bool insecure = false;  // The operator's word, as for the gRPC port.
  TlsFiles tls;           // cert and key: HTTPS (the CA is not asked for).
  HttpServerOptions
      http;  // Its limits and deadlines (host, port, TLS set here).
};

class PageServer {
 public:
  // Serves on `options.listen`. Does not take ownership; both must outlive
  // the server. Beyond loopback it needs TLS and tokens, or
  // `options.insecure` (logged as a warning): FAILED_PRECONDITION
  // otherwise; UNAVAILABLE when it cannot bind.
  static absl::StatusOr<std::unique_ptr<PageServer>> Start(
      const PageServerOptions& options, Scheduler* scheduler,
      const Authenticator* auth);

  int port() const { return http_->port(); }
  // Connections refused at the per-address or total cap.
  int64_t refused() const { return http_->refused(); }

 private:
  PageServer() = default;

  std::unique_ptr<Pages> pages_;
  std::unique_ptr<HttpServer> http_;  // Stops before pages_ goes.
};

}  // namespace distill

#endif  // DISTILL_SERVER_WEB_PAGES_H_
