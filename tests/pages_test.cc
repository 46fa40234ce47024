// The coordinator's live pages: served on loopback, read-only, found by a
// browser (httplib's client and headless Chromium); refused beyond loopback
// without tokens; with tokens, each page asks for one that may read.
#include "server/web/pages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/token.h"
#include "server/coordinator.h"
#include "tests/browser.h"
#include "tests/scheduler_steps.h"
#include "tests/sockets.h"
#include "tests/stall_probe.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class PagesTest : public ::testing::Test {
 protected:
  std::unique_ptr<Coordinator> Start(bool tokens) {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.http_listen = "127.0.0.1:0";
    options.data_dir = (temp_.path() / (tokens ? "t" : "n")).string();
    options.require_tokens = tokens;
    options.worker_token_file = (temp_.path() / "worker.token").string();
    auto c = Coordinator::Start(options);
    EXPECT_TRUE(c.ok()) << c.status();
    return c.ok() ? *std::move(c) : nullptr;
  }

  // A sweep whose teacher ran two epochs and succeeded; its students wait.
  void RunTeacher(Scheduler& s) {
    ASSERT_TRUE(s.SubmitSweep(SmallSweep("pages")).ok());
    v1::RegisterWorkerRequest reg;
    reg.set_hostname("gpu1");
    const std::string worker = s.RegisterWorker(reg)->worker_id();
    const v1::Run run = s.LeaseRun(worker)->run();
    ASSERT_TRUE(s.ReportMetrics(EpochReport(run, 2)).ok());
    const std::string data = "teacher";
    ASSERT_TRUE(UploadRunFile(s, run, data).ok());
    v1::CompleteRunRequest complete;
    complete.set_run_id(run.id());
    complete.set_attempt(run.attempt());
    complete.set_checkpoint_sha256(Sha256Hex(data));
    (*complete.mutable_results())["eval/top1"] = 0.7;
    ASSERT_TRUE(s.CompleteRun(complete).ok());
  }

  TempDir temp_{"distill_pages_test"};
};

// A run's page shows its spec, its tags (escaped) and, while it runs,
// where it is: after its last step, the evaluation's stage (issue 32: the
// page had neither spec nor tags, and said nothing during the evaluation);
// the stages' points are not plotted.
TEST_F(PagesTest, ARunsPageShowsItsSpecTagsAndEvaluationStage) {
  auto c = Start(/*tokens=*/false);
  ASSERT_NE(c, nullptr);
  Scheduler& s = c->scheduler();
  ASSERT_TRUE(s.SubmitSweep(SmallSweep("stages")).ok());
  v1::RegisterWorkerRequest reg;
  reg.set_hostname("gpu1");
  const std::string worker = s.RegisterWorker(reg)->worker_id();
  const v1::Run run = s.LeaseRun(worker)->run();
  v1::ReportMetricsRequest report = EpochReport(run, 2);
  v1::MetricPoint* total = report.add_points();
  total->set_key("train/total_steps");
  total->set_value(20);
  v1::MetricPoint* stage = report.add_points();
  stage->set_key("evaluating/tsne");
  stage->set_step(20);
  stage->set_epoch(2);
  stage->set_value(0.4);
  ASSERT_TRUE(s.ReportMetrics(report).ok());
  v1::AnnotateRequest tag;
  tag.set_run_id(run.id());
  (*tag.mutable_set_tags())["paper"] = "<b>fig2</b>";
  ASSERT_TRUE(s.Annotate(tag, Requester{}).ok());
  httplib::Client client("127.0.0.1", c->http_port());
  auto page = client.Get(absl::StrCat("/runs/", run.id()));
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_THAT(page->body,
              HasSubstr("step 20/20  loss 0.7000  evaluating: t-SNE 40 %"));
  EXPECT_THAT(page->body, HasSubstr("<h2>Spec</h2><pre id=\"spec\">"));
  EXPECT_THAT(page->body, HasSubstr("data fashion-mnist"));
  EXPECT_THAT(page->body, HasSubstr("tags paper=&lt;b&gt;fig2&lt;/b&gt;"));
  EXPECT_THAT(page->body, Not(HasSubstr("<b>fig2")));
  EXPECT_THAT(page->body, Not(HasSubstr("<h2>evaluating/tsne</h2>")));
}

TEST_F(PagesTest, IndexSweepAndRunPagesOnLoopback) {
  auto c = Start(/*tokens=*/false);
  ASSERT_NE(c, nullptr);
  ASSERT_NE(c->http_port(), 0);
  RunTeacher(c->scheduler());
  httplib::Client client("127.0.0.1", c->http_port());
  auto index = client.Get("/");
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(Count(index->body, "<tr class=\"sweep\">"), 1);
  EXPECT_EQ(Count(index->body, "<tr class=\"run\">"), 3);
  EXPECT_THAT(index->body, HasSubstr("<a href=\"/sweeps/1\">pages</a>"));
  auto sweep = client.Get("/sweeps/pages");
  ASSERT_TRUE(sweep);
  EXPECT_EQ(sweep->status, 200);
  EXPECT_EQ(Count(sweep->body, "<tr class=\"member\">"), 2);
  // Students still to run: the page reloads itself.
  EXPECT_THAT(sweep->body, HasSubstr("http-equiv=\"refresh\""));
  auto run = client.Get("/runs/1");
  ASSERT_TRUE(run);
  EXPECT_EQ(run->status, 200);
  EXPECT_THAT(run->body, HasSubstr("<h2>train/loss</h2>"));
  EXPECT_THAT(run->body, HasSubstr("<h2>eval/top1</h2>"));
  EXPECT_THAT(run->body, Not(HasSubstr("http-equiv=\"refresh\"")));  // Ended.
  for (const char* missing : {"/runs/99", "/sweeps/nosuch"}) {
    auto r = client.Get(missing);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 404) << missing;
  }
  // Read-only: nothing takes a POST but the login form.
  auto post = client.Post("/sweeps/1", "", "text/plain");
  ASSERT_TRUE(post);
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET, HEAD");
  // Every answer, pages and errors alike, forbids script, frames, sniffing
  // and referrers, and is kept in no cache.
  for (const auto* r : {&index, &sweep, &run, &post}) {
    const httplib::Response& response = **r;
    EXPECT_THAT(
        response.get_header_value("Content-Security-Policy"),
        ::testing::StartsWith("default-src 'none'; style-src 'sha256-"));
    EXPECT_THAT(response.get_header_value("Content-Security-Policy"),
                HasSubstr("frame-ancestors 'none'"));
    EXPECT_EQ(response.get_header_value("X-Content-Type-Options"), "nosniff");
    EXPECT_EQ(response.get_header_value("X-Frame-Options"), "DENY");
    EXPECT_EQ(response.get_header_value("Referrer-Policy"), "no-referrer");
    EXPECT_EQ(response.get_header_value("Cache-Control"), "no-store");
  }

  // What a browser makes of the pages.
  if (!HaveBrowser()) return;
  for (const auto& [path, want] :
       std::vector<std::pair<std::string, std::string>>{
           {"/", "<tr class=\"run\">"}, {"/sweeps/1", "<svg class=\"plot\""}}) {
    std::optional<Loaded> loaded = LoadInBrowser(
        absl::StrCat("http://127.0.0.1:", c->http_port(), path), temp_.path());
    ASSERT_TRUE(loaded.has_value()) << path;
    EXPECT_THAT(loaded->dom, HasSubstr(want)) << path;
    EXPECT_THAT(loaded->log, Not(HasSubstr("CONSOLE"))) << path;
  }
}

TEST_F(PagesTest, WithTokensEachPageAsksForOneThatMayRead) {
  auto c = Start(/*tokens=*/true);
  ASSERT_NE(c, nullptr);
  const std::string admin =
      *ReadTokenFile((temp_.path() / "t" / "admin.token").string());
  const std::string worker =
      *ReadTokenFile((temp_.path() / "worker.token").string());
  httplib::Client client("127.0.0.1", c->http_port());
  auto none = client.Get("/");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_THAT(none->body,
              HasSubstr("<form method=\"post\" action=\"/login\">"));
  auto with_header =
      client.Get("/", {{"Authorization", absl::StrCat("Bearer ", admin)}});
  ASSERT_TRUE(with_header);
  EXPECT_EQ(with_header->status, 200);
  auto as_worker =
      client.Get("/", {{"Authorization", absl::StrCat("Bearer ", worker)}});
  ASSERT_TRUE(as_worker);
  EXPECT_EQ(as_worker->status, 403);  // A worker's token reads no pages.
  // A refused token gets the form again, saying why (issue 32: a plain-text
  // 401 with nothing to try again).
  auto bad_login = client.Post("/login", "token=distill_nope",
                               "application/x-www-form-urlencoded");
  ASSERT_TRUE(bad_login);
  EXPECT_EQ(bad_login->status, 401);
  EXPECT_THAT(bad_login->body, HasSubstr("not known here, or was revoked"));
  EXPECT_THAT(bad_login->body,
              HasSubstr("<form method=\"post\" action=\"/login\">"));
  auto worker_login = client.Post("/login", absl::StrCat("token=", worker),
                                  "application/x-www-form-urlencoded");
  ASSERT_TRUE(worker_login);
  EXPECT_EQ(worker_login->status, 403);
  EXPECT_THAT(worker_login->body, HasSubstr("may not read these pages"));
  EXPECT_THAT(worker_login->body, HasSubstr("action=\"/login\""));
  auto stale = client.Get("/", {{"Cookie", "distill_token=distill_gone"}});
  ASSERT_TRUE(stale);
  EXPECT_EQ(stale->status, 401);
  EXPECT_THAT(stale->body, HasSubstr("The token this browser sent"));
  auto login = client.Post("/login", absl::StrCat("token=", admin),
                           "application/x-www-form-urlencoded");
  ASSERT_TRUE(login);
  EXPECT_EQ(login->status, 303);
  const std::string cookie = login->get_header_value("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  auto with_cookie =
      client.Get("/", {{"Cookie", cookie.substr(0, cookie.find(';'))}});
  ASSERT_TRUE(with_cookie);
  EXPECT_EQ(with_cookie->status, 200);
  // Logging out (issue 32: there was no way to): every page offers it; it
  // expires the cookie and shows the form.
  EXPECT_THAT(with_cookie->body,
              HasSubstr("<form method=\"post\" action=\"/logout\">"));
  auto out = client.Post("/logout", "", "application/x-www-form-urlencoded");
  ASSERT_TRUE(out);
  EXPECT_EQ(out->status, 200);
  EXPECT_THAT(out->get_header_value("Set-Cookie"),
              HasSubstr("distill_token=; HttpOnly; SameSite=Strict; Path=/; "
                        "Max-Age=0"));
  EXPECT_THAT(out->body, HasSubstr("Logged out."));
  EXPECT_THAT(out->body, Not(HasSubstr("action=\"/logout\"")));
}

// Issue 30's response splitting: with tokens off, a login's form value
// went into Set-Cookie as it was, so CR LF in it started a header of its
// own. Now only a token's shape is taken, and without tokens no cookie is
// set at all.
TEST_F(PagesTest, ALoginTakesOnlyATokensShapeAndWithoutTokensSetsNoCookie) {
  const std::string split = "token=x%0d%0aX-Injected:%20yes";
  for (bool tokens : {false, true}) {
    auto c = Start(tokens);
    ASSERT_NE(c, nullptr);
    const int fd = ConnectFrom("127.0.0.1", c->http_port());
    ASSERT_GE(fd, 0);
    const std::string request = absl::StrCat(
        "POST /login HTTP/1.1\r\nHost: h\r\nConnection: close\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        "Content-Length: ",
        split.size(), "\r\n\r\n", split);
    ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL),
              ssize_t(request.size()));
    const std::string answer = ReadAll(fd);
    ::close(fd);
    const std::string head = answer.substr(0, answer.find("\r\n\r\n"));
    EXPECT_THAT(head, Not(HasSubstr("X-Injected"))) << tokens;
    EXPECT_THAT(head, Not(HasSubstr("Set-Cookie"))) << tokens;
    EXPECT_THAT(
        head, ::testing::StartsWith(tokens ? "HTTP/1.1 400" : "HTTP/1.1 303"));
    if (tokens) {
      EXPECT_THAT(answer, HasSubstr("That is not a token"));
      EXPECT_THAT(answer, HasSubstr("<form method=\"post\""));
    }
  }
}

TEST_F(PagesTest, BeyondLoopbackNeedsTokensAndTheOperatorsWord) {
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.http_listen = "0.0.0.0:0";
  options.data_dir = (temp_.path() / "beyond").string();
  auto refused = Coordinator::Start(options);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("refusing to serve pages on 0.0.0.0:0"));
  options.require_tokens = true;  // Tokens, but plain HTTP: still refused.
  options.data_dir = (temp_.path() / "beyond2").string();
  EXPECT_EQ(Coordinator::Start(options).status().code(),
            absl::StatusCode::kFailedPrecondition);
  // (With --insecure it would bind every interface: tests stay on loopback.)
}

// Text a researcher typed (a sweep's and its members' names, a tag, a
// note) is escaped on every page: no markup of theirs reaches a browser.
TEST_F(PagesTest, MarkupInNamesTagsAndNotesIsShownAsText) {
  auto c = Start(/*tokens=*/false);
  ASSERT_NE(c, nullptr);
  Scheduler& s = c->scheduler();
  const std::string markup = "<script>alert(1)</script><b onclick=x>";
  v1::SweepSpec spec = SmallSweep(absl::StrCat("sweep", markup));
  spec.mutable_members(0)->set_name(absl::StrCat("D", markup));
  auto sweep = s.SubmitSweep(spec);
  ASSERT_TRUE(sweep.ok()) << sweep.status();
  v1::AnnotateRequest note;
  note.set_run_id(sweep->runs(1).id());
  note.set_note(markup);
  (*note.mutable_set_tags())["who"] = markup;
  ASSERT_TRUE(s.Annotate(note).ok());
  httplib::Client client("127.0.0.1", c->http_port());
  for (const std::string& path :
       {std::string("/"), absl::StrCat("/sweeps/", sweep->sweep().id()),
        absl::StrCat("/runs/", sweep->runs(1).id())}) {
    auto page = client.Get(path);
    ASSERT_TRUE(page) << path;
    EXPECT_EQ(page->status, 200) << path;
    EXPECT_THAT(page->body, Not(HasSubstr("<script"))) << path;
    EXPECT_THAT(page->body, Not(HasSubstr("<b onclick"))) << path;
    EXPECT_THAT(page->body, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"))
        << path;
  }
}

// Issue 22's probe (tests/stall_probe.h): 64 connections that send half a
// request and wait held every thread of the old server, so another
// client's page waited past 10 s.
TEST_F(PagesTest, StalledConnectionsDoNotDelayAnotherClientsPage) {
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.http_listen = "127.0.0.1:0";
  options.data_dir = (temp_.path() / "slow").string();
  options.http.header_timeout = absl::Seconds(3);
  auto c = Coordinator::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  RunTeacher((*c)->scheduler());
  ExpectStalledClientsStarveNobody(
      (*c)->http_port(), "/", [&] { return (*c)->page_server().refused(); },
      "page");
}

// Issue 30's: the coordinator's /metrics was served by cpp-httplib, a
// thread per connection; 64 half-sent requests made a scrape from another
// address time out at 15 s. Now it is the pages' server.
TEST_F(PagesTest, StalledConnectionsDoNotDelayAScrape) {
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.data_dir = (temp_.path() / "scrape").string();
  options.http.header_timeout = absl::Seconds(3);
  auto c = Coordinator::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  ExpectStalledClientsStarveNobody(
      (*c)->metrics_port(), "/metrics",
      [&] { return (*c)->metrics_server().refused(); }, "coordinator /metrics");
}

// With the coordinator's certificate the pages are HTTPS: the login
// cookie is Secure, a real browser loads them with the headers' policy
// (no console error: the style's digest matches), and plain HTTP on the
// port gets nothing.
TEST_F(PagesTest, HttpsWithTheCoordinatorsCertificate) {
  const std::string dir = (temp_.path() / "certs").string();
  std::filesystem::create_directories(dir);
  ASSERT_EQ(
      std::system(
          ("bash " DISTILL_SOURCE_DIR "/tests/tls_certs.sh " + dir).c_str()),
      0);
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.http_listen = "127.0.0.1:0";
  options.data_dir = (temp_.path() / "https").string();
  options.require_tokens = true;
  options.tls.cert = dir + "/server.pem";
  options.tls.key = dir + "/server.key";
  options.metrics_listen = "127.0.0.1:0";
  auto c = Coordinator::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  RunTeacher((*c)->scheduler());
  const std::string admin = *ReadTokenFile(options.data_dir + "/admin.token");
  // /metrics over the same TLS; plain HTTP there gets nothing.
  httplib::SSLClient scraper("127.0.0.1", (*c)->metrics_port());
  scraper.set_ca_cert_path((dir + "/ca.pem").c_str());
  scraper.enable_server_certificate_verification(true);
  auto scraped = scraper.Get("/metrics");
  ASSERT_TRUE(scraped) << httplib::to_string(scraped.error());
  EXPECT_EQ(scraped->status, 200);
  EXPECT_THAT(scraped->body, HasSubstr("distill_runs{"));
  httplib::Client plain_scraper("127.0.0.1", (*c)->metrics_port());
  plain_scraper.set_read_timeout(3, 0);
  auto plain_scrape = plain_scraper.Get("/metrics");
  EXPECT_TRUE(!plain_scrape || plain_scrape->status != 200);
  const int port = (*c)->http_port();

  httplib::SSLClient client("127.0.0.1", port);
  client.set_ca_cert_path((dir + "/ca.pem").c_str());
  client.enable_server_certificate_verification(true);
  auto login = client.Post("/login", absl::StrCat("token=", admin),
                           "application/x-www-form-urlencoded");
  ASSERT_TRUE(login) << httplib::to_string(login.error());
  EXPECT_EQ(login->status, 303);
  const std::string cookie = login->get_header_value("Set-Cookie");
  EXPECT_THAT(cookie, HasSubstr("; Secure"));
  EXPECT_THAT(cookie, HasSubstr("HttpOnly"));
  auto index =
      client.Get("/", {{"Cookie", cookie.substr(0, cookie.find(';'))}});
  ASSERT_TRUE(index);
  EXPECT_EQ(index->status, 200);
  EXPECT_EQ(index->get_header_value("X-Frame-Options"), "DENY");
  // Plain HTTP on the TLS port: no page.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(3, 0);
  auto refused = plain.Get("/");
  EXPECT_TRUE(!refused || refused->status != 200);

  if (!HaveBrowser()) return;
  // A browser cannot be handed the cookie from here: pages on loopback
  // without tokens, over the same certificate. Chromium trusts that one
  // certificate by its key's digest.
  (*c).reset();
  options.require_tokens = false;
  options.data_dir = (temp_.path() / "https-open").string();
  c = Coordinator::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  RunTeacher((*c)->scheduler());
  const std::string spki_file = (temp_.path() / "spki").string();
  ASSERT_EQ(std::system(
                absl::StrCat("openssl x509 -in ", dir,
                             "/server.pem -pubkey -noout | openssl pkey -pubin "
                             "-outform der | openssl dgst -sha256 -binary | "
                             "base64 >",
                             spki_file)
                    .c_str()),
            0);
  std::stringstream spki;
  spki << std::ifstream(spki_file).rdbuf();
  std::string digest = spki.str();
  digest.erase(digest.find_last_not_of("\n") + 1);
  std::optional<Loaded> loaded = LoadInBrowser(
      absl::StrCat("https://127.0.0.1:", (*c)->http_port(), "/sweeps/1"),
      temp_.path(),
      absl::StrCat("--ignore-certificate-errors-spki-list=", digest));
  ASSERT_TRUE(loaded.has_value());
  EXPECT_THAT(loaded->dom, HasSubstr("<svg class=\"plot\""));
  EXPECT_THAT(loaded->log, Not(HasSubstr("CONSOLE")));
  EXPECT_THAT(loaded->log, Not(HasSubstr("Content Security Policy")));
}

}  // namespace
}  // namespace distill
