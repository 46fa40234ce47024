// The CLI against an in-process coordinator whose database holds hostile
// text: every command that prints a name, note, tag, message, worker or
// token name shows its control characters as visible escapes, in tables
// and CSV; JSON keeps the text (escaped by JSON itself).
#include "client/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/terminal.h"
#include "common/channel.h"
#include "common/token.h"
#include "server/coordinator.h"
#include "server/services.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Retitles the terminal, clears it, sets a colour through the one-byte
// CSI (U+009B) and reverses the rest of the line (U+202E).
constexpr char kHostile[] =
    "evil\x1b]0;pwned\x07\x1b[2J\xc2\x9b"
    "31m\xe2\x80\xae!";
// How it shows.
constexpr char kShown[] = "evil\\x1b]0;pwned\\x07\\x1b[2J\\u009b31m\\u202e!";

// The first byte of `text` a terminal would act on, or -1: a control
// character other than a line break, a C1 control or a bidi override.
int FirstControl(const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = text[i];
    if ((c < 0x20 && c != '\n') || c == 0x7f) return int(i);
    if (c == 0xc2 && i + 1 < text.size() &&
        (unsigned char)text[i + 1] >= 0x80 &&
        (unsigned char)text[i + 1] <= 0x9f)
      return int(i);
    if (text.compare(i, 3, "\xe2\x80\xae") == 0) return int(i);
  }
  return -1;
}

TEST(TerminalSafeTest, MakesEveryControlVisibleAndKeepsText) {
  EXPECT_EQ(TerminalSafe(kHostile), kShown);
  EXPECT_EQ(TerminalSafe("a\nb\tc\rd\x7f"), "a\\nb\\tc\\rd\\x7f");
  // Other languages stay as they are; broken UTF-8 shows its bytes.
  EXPECT_EQ(TerminalSafe("Żółw 鳥 ✓"), "Żółw 鳥 ✓");
  EXPECT_EQ(TerminalSafe("a\xff\xc3"), "a\\xff\\xc3");
  EXPECT_EQ(TerminalSafe("\xc0\xaf"), "\\xc0\\xaf");     // Overlong '/'.
  EXPECT_EQ(TerminalSafe("\xe2\x81\xa6x"), "\\u2066x");  // Isolate.
}

TEST(TerminalSafeTest, ReachesNestedRepeatedAndMapFields) {
  v1::Run run;
  run.set_member(kHostile);
  (*run.mutable_tags())[kHostile] = kHostile;
  run.mutable_spec()->mutable_dataset()->set_root(kHostile);
  v1::RunEvent event;
  *event.mutable_run() = run;
  event.add_metrics()->set_key(kHostile);
  MakeTerminalSafe(&event);
  EXPECT_EQ(event.run().member(), kShown);
  EXPECT_EQ(event.run().spec().dataset().root(), kShown);
  ASSERT_EQ(event.run().tags().size(), 1u);
  EXPECT_EQ(event.run().tags().begin()->first, kShown);
  EXPECT_EQ(event.run().tags().begin()->second, kShown);
  EXPECT_EQ(event.metrics(0).key(), kShown);
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = (temp_.path() / "data").string();
    options.require_tokens = true;
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    Scheduler& scheduler = coordinator_->scheduler();
    const std::string admin = *ReadTokenFile(options.data_dir + "/admin.token");
    channel_ = *Dial(coordinator_->address(), {}, admin);

    // A token, a sweep, its members and a worker, all named by a stranger.
    auto token = scheduler.InsertToken({.name = kHostile,
                                        .role = v1::ROLE_VIEWER,
                                        .sha256 = std::string(64, 'a')});
    ASSERT_TRUE(token.ok()) << token.status();
    token_id_ = token->id;
    // A role this CLI does not know (a newer coordinator's): shown by its
    // number (Role_Name("")'s substr(5) threw).
    ASSERT_TRUE(
        scheduler
            .InsertToken(
                {.name = "future", .role = 99, .sha256 = std::string(64, 'b')})
            .ok());
    v1::SweepSpec spec = SmallSweep(kHostile);
    spec.mutable_members(0)->set_name(absl::StrCat("D", kHostile));
    auto sweep = scheduler.SubmitSweep(spec);
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    sweep_ = absl::StrCat(sweep->sweep().id());
    run_ = sweep->runs(1).id();  // A student (the teacher is runs(0)).
    v1::AnnotateRequest note;
    note.set_run_id(run_);
    note.set_note(kHostile);
    (*note.mutable_set_tags())["who"] = kHostile;
    ASSERT_TRUE(scheduler.Annotate(note).ok());
    v1::RegisterWorkerRequest worker;
    worker.set_hostname(kHostile);
    worker.set_device("cpu");
    auto registered = scheduler.RegisterWorker(worker, 0);
    ASSERT_TRUE(registered.ok()) << registered.status();
    worker_id_ = registered->worker_id();
    // The teacher fails with a hostile message: its students fail with it.
    auto lease = scheduler.LeaseRun(worker_id_, 0);
    ASSERT_TRUE(lease.ok() && lease->has_run()) << lease.status();
    v1::FailRunRequest fail;
    fail.set_run_id(lease->run().id());
    fail.set_attempt(lease->run().attempt());
    fail.set_message(kHostile);
    ASSERT_TRUE(scheduler.FailRun(fail, 0).ok());
  }

  // The command's output (stdout and stderr), checked for controls.
  std::string Run(std::vector<std::string> args) {
    std::ostringstream out, err;
    RunCli(args, channel_, out, err);
    const std::string all = out.str() + err.str();
    const int at = FirstControl(all);
    EXPECT_EQ(at, -1) << absl::StrJoin(args, " ") << " printed a control at "
                      << at << ": " << absl::CHexEscape(all);
    return all;
  }

  TempDir temp_{"distill_cli_test"};
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  int64_t token_id_ = 0;
  std::string sweep_;
  int64_t run_ = 0;
  std::string worker_id_;
};

TEST_F(CliTest, EveryCommandShowsHostileTextVisibly) {
  const std::string run = absl::StrCat(run_);
  const std::vector<std::vector<std::string>> commands = {
      {"runs", "show", run},  // Note, tags, message.
      {"runs", "show", run, "--format=csv"},
      {"runs", "list"},  // Members, messages.
      {"runs", "list", "--format=csv"},
      {"results", sweep_},  // Members, sweep name.
      {"results", sweep_, "--format=csv"},
      {"compare", sweep_, sweep_},
      {"compare", sweep_, sweep_, "--format=csv"},
      {"compare", absl::StrCat("--runs=", run, ",", run)},
      {"watch", run},       // The progress line.
      {"workers", "list"},  // The worker's name.
      {"workers", "list", "--format=csv"},
      {"tokens", "list"},  // The token's name.
      {"tokens", "list", "--format=csv"},
      {"tag", run, "other=x"},     // Its tags again.
      {"note", run, kHostile},     // Its note again.
      {"sweep", "retry", sweep_},  // Sweep and members.
      {"workers", "drain", worker_id_},
      {"tokens", "revoke", absl::StrCat(token_id_)},
      // A refusal that quotes what was asked.
      {"runs", "list", absl::StrCat("--where=kind=", kHostile)},
  };
  for (const std::vector<std::string>& args : commands) {
    const std::string shown = Run(args);
    EXPECT_THAT(shown, HasSubstr("\\x1b")) << absl::StrJoin(args, " ");
  }
  EXPECT_THAT(Run({"tokens", "list"}), HasSubstr("role 99"));
  // JSON keeps the text; JSON escapes it.
  const std::string json = Run({"runs", "show", run, "--format=json"});
  EXPECT_THAT(json, HasSubstr("\\u001b]0;pwned\\u0007"));
}

}  // namespace
}  // namespace distill
