// Word when a sweep ends (issue 34): the JSON a Slack or Mattermost
// incoming webhook takes, posted once to a local receiver when the last run
// of a sweep ends, retried while the receiver is down, never failing the
// sweep; a sweep's own URL only where the operator allows it.
#include "server/operations/notifier.h"

#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <thread>

#include "absl/synchronization/mutex.h"
#include "tests/scheduler_fixture.h"
#include "tests/wait_for.h"

namespace distill {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// What a webhook answers and saw: a loopback HTTP server, its posts kept.
class Receiver {
 public:
  Receiver() {
    server_.Post("/hook", [this](const httplib::Request& request,
                                 httplib::Response& response) {
      absl::MutexLock lock(&mu_);
      bodies_.push_back(request.body);
      response.status = status_;
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    WaitFor([this] { return server_.is_running(); });
  }
  ~Receiver() {
    server_.stop();
    thread_.join();
  }
  std::string url() const {
    return absl::StrCat("http://127.0.0.1:", port_, "/hook");
  }
  std::vector<std::string> bodies() {
    absl::MutexLock lock(&mu_);
    return bodies_;
  }
  void Answer(int status) {
    absl::MutexLock lock(&mu_);
    status_ = status;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
  int status_ ABSL_GUARDED_BY(mu_) = 200;
};

// The text of a webhook's JSON body.
std::string TextOf(const std::string& json) {
  google::protobuf::Struct body;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(json, &body).ok())
      << json;
  return body.fields().at("text").string_value();
}

class NotifierTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerOptions options{60'000, 10'000};
    options.sweep_run_ended = &ended_;
    options.notify_allow = {"http://127.0.0.1:"};
    Start(":memory:", dir_, options);
  }

  // Sweep `name`'s teacher and both students end: D succeeds, G fails.
  void RunSweep(const std::string& name, const std::string& own_url = "") {
    v1::SweepSpec spec = SmallSweep(name);
    spec.mutable_notify()->set_url(own_url);
    v1::Claim* claim = spec.add_claims();
    claim->set_text("labels <alone> & more win");
    claim->set_kind(v1::BEST);
    claim->set_row("D");
    ASSERT_TRUE(scheduler_->SubmitSweep(spec, {"alice", false}).ok());
    Succeed(Lease(), "teacher of " + name, 0.8);
    Succeed(Lease(), "D of " + name, 0.71);
    Fail(Lease(), "out of memory");
  }

  EventQueue ended_;
};

TEST_F(NotifierTest, ASweepThatEndsIsToldOnceAsSlackReadsIt) {
  Receiver receiver;
  Notifier notifier(scheduler_.get(), &ended_,
                    {.url = receiver.url(), .pages_url = "http://pages:8080"});
  RunSweep("nightly");
  ASSERT_TRUE(WaitFor([&] { return receiver.bodies().size() == 1; }))
      << receiver.bodies().size() << " posts";
  const std::string text = TextOf(receiver.bodies()[0]);
  std::printf("the receiver saw: %s\n", receiver.bodies()[0].c_str());
  EXPECT_THAT(text, HasSubstr("sweep 1 \"nightly\" ended with failures: 1 "
                              "FAILED, 1 SUCCEEDED (owner alice)"));
  EXPECT_THAT(text, HasSubstr("best: D (run 2), top-1 71.0%"));
  EXPECT_THAT(text, HasSubstr("claims: 0 hold, 0 do not, 1 undecided"));
  // Slack's control characters in what a client wrote, escaped.
  EXPECT_THAT(text, HasSubstr("labels &lt;alone&gt; &amp; more win"));
  EXPECT_THAT(text, HasSubstr("http://pages:8080/sweeps/1"));
  // Told once, though two of its runs' ends were queued.
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(receiver.bodies().size(), 1u);
}

TEST_F(NotifierTest, AReceiverDownIsRetriedAndNeverFailsTheSweep) {
  Receiver receiver;
  receiver.Answer(503);
  Notifier notifier(scheduler_.get(), &ended_,
                    {.url = receiver.url(),
                     .attempts = 3,
                     .first_backoff = absl::Milliseconds(20)});
  RunSweep("flaky");
  ASSERT_TRUE(WaitFor([&] { return receiver.bodies().size() == 3; }));
  // While it retries, the coordinator serves: the sweep's results are read
  // and a new run is taken.
  EXPECT_TRUE(scheduler_->SweepResults("flaky").ok());
  EXPECT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  EXPECT_EQ(StatusOf(2), v1::SUCCEEDED);
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_EQ(receiver.bodies().size(), 3u);  // Given up after its 3 tries.
}

TEST_F(NotifierTest, ASweepsOwnUrlIsPostedOnlyWhereAllowed) {
  Receiver receiver;
  Notifier notifier(scheduler_.get(), &ended_, {});
  RunSweep("own", receiver.url());
  ASSERT_TRUE(WaitFor([&] { return receiver.bodies().size() == 1; }));
  v1::SweepSpec elsewhere = SmallSweep("elsewhere");
  elsewhere.mutable_notify()->set_url("http://10.0.0.7/hook");
  const absl::Status refused = scheduler_->SubmitSweep(elsewhere).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("is not one this coordinator posts to"));
  // The allowed prefix is not shown (a webhook's URL is its secret).
  EXPECT_THAT(std::string(refused.message()), Not(HasSubstr("127.0.0.1")));
}

}  // namespace
}  // namespace distill
