// The coordinator's live pages: served on loopback, read-only, found by a
// browser (httplib's client and headless Chromium); refused beyond loopback
// without tokens; with tokens, each page asks for one that may read.
#include "server/pages.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "common/token.h"
#include "server/coordinator.h"
#include "tests/browser.h"
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
    v1::ReportMetricsRequest report;
    report.set_run_id(run.id());
    report.set_attempt(run.attempt());
    for (int epoch = 1; epoch <= 2; ++epoch) {
      for (const char* key : {"train/loss", "eval/top1"}) {
        v1::MetricPoint* p = report.add_points();
        p->set_key(key);
        p->set_epoch(epoch);
        p->set_step(epoch * 10);
        p->set_value(0.5 + 0.1 * epoch);
      }
    }
    ASSERT_TRUE(s.ReportMetrics(report).ok());
    const std::string data = "teacher";
    v1::RunFileHeader header;
    header.set_run_id(run.id());
    header.set_attempt(run.attempt());
    header.set_sha256(Sha256Hex(data));
    header.set_size(int64_t(data.size()));
    auto writer = s.BeginUpload(header);
    ASSERT_TRUE(writer.ok()) << writer.status();
    ASSERT_TRUE((*writer)->Append(data).ok());
    ASSERT_TRUE(s.FinishUpload(header, **writer).ok());
    v1::CompleteRunRequest complete;
    complete.set_run_id(run.id());
    complete.set_attempt(run.attempt());
    complete.set_checkpoint_sha256(Sha256Hex(data));
    (*complete.mutable_results())["eval/top1"] = 0.7;
    ASSERT_TRUE(s.CompleteRun(complete).ok());
  }

  TempDir temp_{"distill_pages_test"};
};

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
  EXPECT_EQ(post->status, 404);

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
  auto bad_login = client.Post("/login", "token=distill_nope",
                               "application/x-www-form-urlencoded");
  ASSERT_TRUE(bad_login);
  EXPECT_EQ(bad_login->status, 401);
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

}  // namespace
}  // namespace distill
