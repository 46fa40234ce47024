#include "server/web/pages.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/log.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "common/token.h"
#include "render/html.h"
#include "render/report.h"
#include "server/base/exposure.h"

namespace distill {
namespace {

// Pages of runs still running reload themselves this often.
constexpr int kRefreshSeconds = 10;
constexpr int kIndexSweeps = 100;
constexpr int kIndexRuns = 100;
// A tsne.csv of 2,000 points a model is ~100 KB.
constexpr size_t kMaxTsneBytes = 4 << 20;

HttpResponse Html(std::string body, int status = 200) {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  return response;
}

// The page of an error: its HTTP status and the reason.
HttpResponse Fail(const absl::Status& status) {
  HttpResponse response;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      response.status = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      response.status = 400;
      break;
    case absl::StatusCode::kUnauthenticated:
      response.status = 401;
      break;
    case absl::StatusCode::kPermissionDenied:
      response.status = 403;
      break;
    default:
      response.status = 500;
      break;
  }
  response.content_type = "text/plain; charset=utf-8";
  response.body = absl::StrCat(absl::StatusCodeToString(status.code()), ": ",
                               status.message(), "\n");
  return response;
}

HttpResponse NotAllowed(const char* allow) {
  HttpResponse response;
  response.status = 405;
  response.content_type = "text/plain; charset=utf-8";
  response.headers.emplace_back("Allow", allow);
  response.body = absl::StrCat("this page takes ", allow, "\n");
  return response;
}

// A report's data from the scheduler: a watcher's first event, the run's
// tsne.csv.
class SchedulerSource final : public ReportSource {
 public:
  explicit SchedulerSource(Scheduler& scheduler) : scheduler_(scheduler) {}

  std::vector<v1::MetricPoint> History(int64_t run_id) override {
    WatchCursor cursor;
    cursor.include_history = true;
    cursor.history_points_per_key = kReportPointsPerCurve;
    absl::StatusOr<std::optional<v1::RunEvent>> event =
        scheduler_.PollRunEvent(run_id, &cursor);
    if (!event.ok() || !event->has_value()) return {};
    return {(*event)->metrics().begin(), (*event)->metrics().end()};
  }

  std::string Tsne(int64_t run_id) override {
    absl::StatusOr<std::string> csv =
        scheduler_.ReadRunFile(run_id, kTsneFile, kMaxTsneBytes);
    return csv.ok() ? *std::move(csv) : "";
  }

 private:
  Scheduler& scheduler_;
};

// A form for a token (tokens on, none sent), no script; `why` (plain
// text, escaped here) above it when a try failed.
std::string LoginPage(const std::string& why = "") {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>distill: token</title></head><body><h1>distill</h1>" +
         (why.empty() ? std::string()
                      : "<p class=\"error\">" + Escape(why) + "</p>") +
         "<p>These pages need a token that may read (" +
         RoleList(RolesAllowed(Permission::kRead)) +
         ": <code>distill tokens create --role=viewer</code>).</p><form "
         "method=\"post\" action=\"/login\"><input type=\"password\" "
         "name=\"token\" size=\"72\" autocomplete=\"off\"> <button>open"
         "</button></form></body></html>\n";
}

// No script at all, the one style of the pages (by its digest), forms only
// to this site, never inside a frame.
std::string ContentSecurityPolicy() {
  const std::string digest = absl::HexStringToBytes(Sha256Hex(PageStyle()));
  return absl::StrCat("default-src 'none'; style-src 'sha256-",
                      absl::Base64Escape(digest),
                      "'; form-action 'self'; frame-ancestors 'none'; "
                      "base-uri 'none'");
}

// The token a request carries: its Authorization header, or the cookie
// /login set, as an "Authorization" header's value.
std::string Credentials(const HttpRequest& request) {
  std::string header = request.Header("authorization");
  if (!header.empty()) return header;
  for (const auto& [name, value] : request.headers) {
    if (name != "cookie") continue;
    for (absl::string_view c : absl::StrSplit(value, ';')) {
      c = absl::StripAsciiWhitespace(c);
      if (absl::ConsumePrefix(&c, "distill_token="))
        return absl::StrCat("Bearer ", c);
    }
  }
  return "";
}

}  // namespace

Pages::Pages(Scheduler* scheduler, const Authenticator* auth)
    : scheduler_(scheduler),
      auth_(auth),
      content_security_policy_(ContentSecurityPolicy()) {}

HttpResponse Pages::Handle(const HttpRequest& request) const {
  HttpResponse response = Route(request);
  // Behind a token, every page offers to forget it.
  if (auth_->enabled() && response.status == 200 && request.path != "/logout") {
    const size_t end = response.body.rfind("</body>");
    if (end != std::string::npos) {
      response.body.insert(end,
                           "<form method=\"post\" action=\"/logout\">"
                           "<button>log out</button></form>");
    }
  }
  response.headers.emplace_back("Content-Security-Policy",
                                content_security_policy_);
  response.headers.emplace_back("X-Content-Type-Options", "nosniff");
  response.headers.emplace_back("X-Frame-Options", "DENY");
  response.headers.emplace_back("Referrer-Policy", "no-referrer");
  // Behind a token: no copy in a shared cache or the browser's history.
  response.headers.emplace_back("Cache-Control", "no-store");
  return response;
}

HttpResponse Pages::Login(const HttpRequest& request) const {
  HttpResponse response = Html("", 303);
  response.headers.emplace_back("Location", "/");
  // Without tokens there is nothing to remember: no cookie.
  if (!auth_->enabled()) return response;
  const std::string token = FormValue(request.body, "token");
  // Only a token's shape goes near a header (or the token check).
  if (!IsTokenShaped(token)) {
    return Html(LoginPage("That is not a token: a token is letters, digits "
                          "and -._~+/ (then any =), as distill tokens "
                          "create prints it."),
                400);
  }
  absl::StatusOr<Principal> who =
      auth_->AuthorizeHeader(absl::StrCat("Bearer ", token), Permission::kRead);
  // Refused: the form again, saying why (the status as before).
  if (absl::IsUnauthenticated(who.status())) {
    return Html(LoginPage("That token is not known here, or was revoked."),
                401);
  }
  if (absl::IsPermissionDenied(who.status())) {
    return Html(LoginPage("That token may not read these pages (a worker's "
                          "token); open them with a viewer's, a "
                          "researcher's or an admin's."),
                403);
  }
  if (!who.ok()) return Fail(who.status());
  // The secret only in a cookie scripts cannot read, for this site; over
  // TLS, never sent in clear.
  response.headers.emplace_back(
      "Set-Cookie", absl::StrCat("distill_token=", token,
                                 "; HttpOnly; SameSite=Strict; Path=/",
                                 request.tls ? "; Secure" : ""));
  return response;
}

HttpResponse Pages::Route(const HttpRequest& request) const {
  const std::string& path = request.path;
  const bool read = request.method == "GET" || request.method == "HEAD";
  if (path == "/login") {
    if (read) return Html(LoginPage());
    if (request.method != "POST") return NotAllowed("GET, HEAD, POST");
    return Login(request);
  }
  if (path == "/logout") {
    if (!read && request.method != "POST") return NotAllowed("GET, HEAD, POST");
    // The cookie goes (an Authorization header is the client's to drop).
    HttpResponse response = Html(LoginPage("Logged out."));
    response.headers.emplace_back(
        "Set-Cookie", absl::StrCat("distill_token=; HttpOnly; SameSite=Strict; "
                                   "Path=/; Max-Age=0",
                                   request.tls ? "; Secure" : ""));
    return response;
  }
  // With tokens on, every page asks for one that may read.
  if (auth_->enabled()) {
    const std::string credentials = Credentials(request);
    absl::StatusOr<Principal> who =
        auth_->AuthorizeHeader(credentials, Permission::kRead);
    if (absl::IsUnauthenticated(who.status())) {
      // A browser is sent to the form, told why when it sent a token.
      return Html(LoginPage(credentials.empty()
                                ? ""
                                : "The token this browser sent is not known "
                                  "here, or was revoked."),
                  401);
    }
    if (!who.ok()) return Fail(who.status());
  }
  if (!read) return NotAllowed("GET, HEAD");
  if (path == "/") {
    absl::StatusOr<std::vector<v1::Sweep>> sweeps =
        scheduler_->RecentSweeps(kIndexSweeps);
    if (!sweeps.ok()) return Fail(sweeps.status());
    absl::StatusOr<std::vector<v1::Run>> runs =
        scheduler_->RecentRuns(kIndexRuns);
    if (!runs.ok()) return Fail(runs.status());
    return Html(RenderIndex(*sweeps, *runs, kRefreshSeconds));
  }
  absl::string_view rest = path;
  if (absl::ConsumePrefix(&rest, "/sweeps/") && !rest.empty() &&
      !absl::StrContains(rest, '/')) {
    absl::StatusOr<v1::SweepResults> results =
        scheduler_->SweepResults(std::string(rest));
    if (!results.ok()) return Fail(results.status());
    SchedulerSource source(*scheduler_);
    return Html(RenderReport(*results, GatherReportRuns(*results, source),
                             AllResultColumns(),
                             SweepRunning(*results) ? kRefreshSeconds : 0));
  }
  rest = path;
  int64_t id = 0;
  if (absl::ConsumePrefix(&rest, "/runs/") && !rest.empty() &&
      std::all_of(rest.begin(), rest.end(),
                  [](char c) { return absl::ascii_isdigit(c); })) {
    if (!absl::SimpleAtoi(rest, &id))
      return Fail(absl::NotFoundError("no such run"));
    absl::StatusOr<v1::Run> run = scheduler_->GetRun(id);
    if (!run.ok()) return Fail(run.status());
    SchedulerSource source(*scheduler_);
    return Html(RenderRunPage(*run, GatherReportRun(id, run->status(), source),
                              IsTerminal(run->status()) ? 0 : kRefreshSeconds));
  }
  return Fail(absl::NotFoundError(
      "no page here (the pages are /, /sweeps/SWEEP, /runs/ID, /login and "
      "/logout)"));
}

absl::StatusOr<std::unique_ptr<PageServer>> PageServer::Start(
    const PageServerOptions& options, Scheduler* scheduler,
    const Authenticator* auth) {
  const std::string& listen = options.listen;
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen must be host:port, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  // The gRPC port's rule (server/base/exposure.h).
  const std::string missing =
      ExposureGap(listen, !options.tls.cert.empty(), auth->enabled());
  if (!missing.empty()) {
    if (!options.insecure) {
      return absl::FailedPreconditionError(absl::StrCat(
          "refusing to serve pages on ", listen, " without ", missing,
          ": beyond loopback a token would cross the network in clear, or "
          "anyone who reaches the port could read every run. Give "
          "--tls_cert and --tls_key and keep --auth=tokens, listen on "
          "127.0.0.1 and tunnel, or pass --insecure on a network you trust"));
    }
    DISTILL_LOG(WARNING) << "INSECURE: serving pages on " << listen
                         << " without " << missing
                         << ": anyone on the network may read every run, or "
                            "a token may be seen in clear (--insecure)";
  }
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  std::unique_ptr<PageServer> server(new PageServer());
  server->pages_ = std::make_unique<Pages>(scheduler, auth);
  HttpServerOptions http = options.http;
  http.host = host;
  http.port = port;
  http.tls_cert = options.tls.cert;
  http.tls_key = options.tls.key;
  absl::StatusOr<std::unique_ptr<HttpServer>> started = HttpServer::Start(
      http, [pages = server->pages_.get()](const HttpRequest& request) {
        return pages->Handle(request);
      });
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("cannot serve pages on ", listen, ": ",
                                     started.status().message()));
  }
  server->http_ = *std::move(started);
  return server;
}

}  // namespace distill
