#include "server/pages.h"

#include <httplib.h>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/report.h"
#include "common/log.h"

namespace distill {
namespace {

// Pages of runs still running reload themselves this often.
constexpr int kRefreshSeconds = 10;
constexpr int kIndexSweeps = 100;
constexpr int kIndexRuns = 100;
// A tsne.csv of 2,000 points a model is ~100 KB.
constexpr size_t kMaxTsneBytes = 4 << 20;

// The page of an error: its HTTP status and the reason.
void Fail(httplib::Response& response, const absl::Status& status) {
  int code = 500;
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      code = 404;
      break;
    case absl::StatusCode::kInvalidArgument:
      code = 400;
      break;
    case absl::StatusCode::kUnauthenticated:
      code = 401;
      break;
    case absl::StatusCode::kPermissionDenied:
      code = 403;
      break;
    default:
      break;
  }
  response.status = code;
  response.set_content(absl::StrCat(absl::StatusCodeToString(status.code()),
                                    ": ", status.message(), "\n"),
                       "text/plain; charset=utf-8");
}

// A run's history as a watcher's first event has it, and its t-SNE maps.
ReportRun DrawnRun(Scheduler& scheduler, const v1::Run& run) {
  ReportRun data;
  data.run_id = run.id();
  WatchCursor cursor;
  cursor.include_history = true;
  cursor.history_points_per_key = kReportPointsPerCurve;
  absl::StatusOr<std::optional<v1::RunEvent>> event =
      scheduler.PollRunEvent(run.id(), &cursor);
  if (event.ok() && event->has_value()) {
    data.history.assign((*event)->metrics().begin(), (*event)->metrics().end());
  }
  if (run.status() == v1::SUCCEEDED) {
    absl::StatusOr<std::string> csv =
        scheduler.ReadRunFile(run.id(), "tsne.csv", kMaxTsneBytes);
    if (csv.ok()) data.tsne_csv = *std::move(csv);
  }
  return data;
}

// A form for a token (tokens on, none sent), no script.
std::string LoginPage() {
  return "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
         "<title>distill: token</title></head><body><h1>distill</h1><p>These "
         "pages need a token that may read (viewer, researcher or admin: "
         "<code>distill tokens create --role=viewer</code>).</p><form "
         "method=\"post\" action=\"/login\"><input type=\"password\" "
         "name=\"token\" size=\"72\" autocomplete=\"off\"> <button>open"
         "</button></form></body></html>\n";
}

}  // namespace

absl::StatusOr<std::unique_ptr<PageServer>> PageServer::Start(
    const std::string& listen, Scheduler* scheduler, const Authenticator* auth,
    bool insecure) {
  const size_t colon = listen.rfind(':');
  int port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http_listen must be host:port, got \"", listen, "\""));
  }
  std::string host = listen.substr(0, colon);
  const bool loopback =
      absl::StartsWith(host, "127.") || host == "localhost" || host == "[::1]";
  if (!loopback && (!auth->enabled() || !insecure)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to serve pages on ", listen,
        ": beyond loopback they need --auth=tokens (each page then asks for "
        "one) and, since they are plain HTTP, --insecure (a TLS proxy or a "
        "trusted network in front); or listen on 127.0.0.1 and tunnel"));
  }
  if (host.size() > 2 && host.front() == '[')
    host = host.substr(1, host.size() - 2);
  std::unique_ptr<PageServer> pages(new PageServer());
  pages->server_ = std::make_unique<httplib::Server>();
  httplib::Server& server = *pages->server_;
  // With tokens on, every page asks for one that may read: in an
  // "Authorization: Bearer" header, or in the cookie /login sets.
  server.set_pre_routing_handler(
      [auth](const httplib::Request& request, httplib::Response& response) {
        if (!auth->enabled() || request.path == "/login")
          return httplib::Server::HandlerResponse::Unhandled;
        std::string header = request.get_header_value("Authorization");
        if (header.empty()) {
          const std::string cookies = request.get_header_value("Cookie");
          for (absl::string_view c : absl::StrSplit(cookies, ';')) {
            c = absl::StripAsciiWhitespace(c);
            if (absl::ConsumePrefix(&c, "distill_token="))
              header = absl::StrCat("Bearer ", c);
          }
        }
        absl::StatusOr<Principal> who =
            auth->AuthorizeHeader(header, Permission::kRead);
        if (who.ok()) return httplib::Server::HandlerResponse::Unhandled;
        if (absl::IsUnauthenticated(who.status())) {
          // A browser is sent to the form.
          response.status = 401;
          response.set_content(LoginPage(), "text/html; charset=utf-8");
          return httplib::Server::HandlerResponse::Handled;
        }
        Fail(response, who.status());
        return httplib::Server::HandlerResponse::Handled;
      });
  server.Get("/login",
             [](const httplib::Request&, httplib::Response& response) {
               response.set_content(LoginPage(), "text/html; charset=utf-8");
             });
  server.Post("/login", [auth](const httplib::Request& request,
                               httplib::Response& response) {
    const std::string token = request.get_param_value("token");
    absl::StatusOr<Principal> who = auth->AuthorizeHeader(
        absl::StrCat("Bearer ", token), Permission::kRead);
    if (!who.ok()) return Fail(response, who.status());
    // The secret only in a cookie scripts cannot read, for this site.
    response.set_header("Set-Cookie",
                        absl::StrCat("distill_token=", token,
                                     "; HttpOnly; SameSite=Strict; Path=/"));
    response.set_redirect("/", 303);
  });
  server.Get(
      "/", [scheduler](const httplib::Request&, httplib::Response& response) {
        absl::StatusOr<std::vector<v1::Sweep>> sweeps =
            scheduler->RecentSweeps(kIndexSweeps);
        if (!sweeps.ok()) return Fail(response, sweeps.status());
        absl::StatusOr<std::vector<v1::Run>> runs =
            scheduler->RecentRuns(kIndexRuns);
        if (!runs.ok()) return Fail(response, runs.status());
        response.set_content(RenderIndex(*sweeps, *runs, kRefreshSeconds),
                             "text/html; charset=utf-8");
      });
  server.Get(R"(/sweeps/([^/]+))", [scheduler](const httplib::Request& request,
                                               httplib::Response& response) {
    absl::StatusOr<v1::SweepResults> results =
        scheduler->SweepResults(request.matches[1]);
    if (!results.ok()) return Fail(response, results.status());
    std::vector<ReportRun> runs;
    bool running = false;
    for (const v1::MemberResult& m : results->members()) {
      running = running || !IsTerminal(m.status());
      absl::StatusOr<v1::Run> run = scheduler->GetRun(m.run_id());
      if (run.ok()) runs.push_back(DrawnRun(*scheduler, *run));
    }
    for (const v1::TeacherResult& t : results->teachers())
      running = running || !IsTerminal(t.status());
    response.set_content(RenderReport(*results, runs, AllResultColumns(),
                                      running ? kRefreshSeconds : 0),
                         "text/html; charset=utf-8");
  });
  server.Get(R"(/runs/(\d+))", [scheduler](const httplib::Request& request,
                                           httplib::Response& response) {
    int64_t id = 0;
    if (!absl::SimpleAtoi(request.matches[1].str(), &id))
      return Fail(response, absl::InvalidArgumentError("not a run id"));
    absl::StatusOr<v1::Run> run = scheduler->GetRun(id);
    if (!run.ok()) return Fail(response, run.status());
    response.set_content(
        RenderRunPage(*run, DrawnRun(*scheduler, *run),
                      IsTerminal(run->status()) ? 0 : kRefreshSeconds),
        "text/html; charset=utf-8");
  });
  if (port == 0) {
    port = server.bind_to_any_port(host);
  } else if (!server.bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve pages on ", listen));
  }
  pages->port_ = port;
  pages->thread_ = std::thread([s = &server] { s->listen_after_bind(); });
  return pages;
}

PageServer::~PageServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace distill
