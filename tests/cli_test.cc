// The CLI against an in-process coordinator whose database holds hostile
// text: every command that prints a name, note, tag, message, worker or
// token name shows its control characters as visible escapes, in tables
// and CSV; JSON keeps the text (escaped by JSON itself).
#include "client/cli.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/channel.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "common/token.h"
#include "render/terminal.h"
#include "server/coordinator.h"
#include "server/rpc/services.h"
#include "tests/browser.h"
#include "tests/scheduler_steps.h"
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

// Every verb against a coordinator with a sweep whose teacher succeeded
// (metrics, a checkpoint and a t-SNE file) and two students: output, exit
// codes (client/cli.h), --help, both flag forms, the bash completion.
class VerbsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = (temp_.path() / "data").string();
    options.require_tokens = true;
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    Scheduler& s = coordinator_->scheduler();
    channel_ = *Dial(coordinator_->address(), {},
                     *ReadTokenFile(options.data_dir + "/admin.token"));
    auto sweep = s.SubmitSweep(SmallSweep("verbs"));
    ASSERT_TRUE(sweep.ok()) << sweep.status();
    v1::RegisterWorkerRequest worker;
    worker.set_hostname("gpu1");
    worker_ = s.RegisterWorker(worker)->worker_id();
    const v1::Run teacher = s.LeaseRun(worker_)->run();
    ASSERT_TRUE(s.ReportMetrics(EpochReport(teacher, 2)).ok());
    ASSERT_TRUE(UploadRunFile(s, teacher, "weights").ok());
    ASSERT_TRUE(UploadRunFile(s, teacher,
                              "model,x,y,label\nteacher,1,2,3\nteacher,4,5,6\n",
                              kTsneFile)
                    .ok());
    v1::CompleteRunRequest complete;
    complete.set_run_id(teacher.id());
    complete.set_attempt(teacher.attempt());
    complete.set_checkpoint_sha256(Sha256Hex("weights"));
    (*complete.mutable_results())["eval/top1"] = 0.7;
    ASSERT_TRUE(s.CompleteRun(complete).ok());
    Write("teacher.yaml",
          "kind: TRAIN_TEACHER\ndataset: {name: fashion-mnist, train_limit: "
          "64}\nteacher: {vit: {preset: small-28}}\nepochs: 1\nbatch_size: "
          "32\n");
    Write("sweep.yaml",
          "name: second\nbase: {dataset: {name: fashion-mnist}}\nteacher: "
          "{run_id: 1}\nmembers:\n  - {name: D, losses: {ce: 1}}\n");
  }

  void Write(const std::string& name, const std::string& text) {
    std::ofstream(temp_.path() / name) << text;
  }
  std::string Path(const std::string& name) {
    return (temp_.path() / name).string();
  }

  struct Result {
    int code;
    std::string out, err;
  };
  Result Cli(std::vector<std::string> args) {
    std::ostringstream out, err;
    const int code = RunCli(args, channel_, out, err);
    return {code, out.str(), err.str()};
  }

  TempDir temp_{"distill_verbs_test"};
  std::unique_ptr<Coordinator> coordinator_;
  std::shared_ptr<grpc::Channel> channel_;
  std::string worker_;
};

TEST_F(VerbsTest, EveryVerbWithItsOutputAndExitCode) {
  // (Run 1 is the teacher, 2 and 3 its students D and G, all of sweep 1.)
  struct Case {
    std::vector<std::string> args;
    int code;
    std::string shows;  // In stdout, or stderr for a failure.
  };
  const std::vector<Case> cases = {
      {{"submit", Path("teacher.yaml")}, 0, "run 4 QUEUED"},
      {{"runs", "list"}, 0, "TRAIN_TEACHER"},
      {{"runs", "show", "1"}, 0, "eval/top1 = 0.7000"},
      {{"runs", "show", "1"}, 0, "run files held: 51 B"},
      {{"results", "verbs"}, 0, "run files: 51 B held by the sweep's runs"},
      {{"gc", "--dry-run"}, 0, "would drop 0 run files, 0 B to free; 51 B"},
      {{"gc", "--sweep=verbs"}, 0, "dropped 0 run files"},
      {{"runs", "metrics", "1"}, 0, "step,epoch,attempt,key,value,time_ms"},
      {{"runs", "metrics", "1", "--out", Path("m.csv")}, 0, "(4 points)"},
      {{"watch", "1"}, 0, "run 1 (teacher) SUCCEEDED"},
      {{"cancel", "4"}, 0, "run 4 CANCELLED"},
      {{"download", "1", "checkpoint", Path("ckpt")}, 0, "(7 bytes)"},
      {{"tsne", "1"}, 0, "teacher (2 test images"},
      {{"sweep", Path("sweep.yaml"), "--dry-run"}, 0, "1 members"},
      {{"sweep", Path("sweep.yaml")}, 0, "sweep 2 \"second\": 1 runs"},
      {{"sweep", "cancel", "second"}, 0, "1 runs cancelled: 5 (D)"},
      {{"sweep", "retry", "second"}, 0, "1 runs queued again:"},
      {{"results", "verbs"}, 0, "teacher ViT"},
      {{"compare", "1", "2"}, 0, "A 1 \"verbs\" against B 2 \"second\""},
      {{"compare", "--runs=1,2"}, 0, "diff vs 1"},
      {{"report", "1", "-o", Path("r.html")}, 0, "written to"},
      {{"tag", "2", "paper=fig2", "-nothing"}, 0, "tags paper=fig2"},
      {{"tag", "--sweep=verbs", "keep=yes"}, 0, "sweep verbs: tags keep=yes"},
      {{"note", "2", "a note"}, 0, "note: a note"},
      {{"note", "--sweep", "verbs", "sweep note"}, 0, "note: sweep note"},
      {{"health"}, 0, "SERVING"},
      {{"workers", "list"}, 0, "gpu1"},
      {{"workers", "drain", worker_}, 0, "drains"},
      {{"tokens", "create", "--role", "viewer", "--name", "v"}, 0, "distill_"},
      {{"tokens", "list"}, 0, "viewer"},
      {{"tokens", "revoke", "2"}, 0, "revoked token 2 \"v\" (viewer)"},
      {{"completion", "bash"}, 0, "complete -F _distill distill"},
      // Failures: the run waited for did not succeed (1); the command line
      // or a file is wrong (2); the coordinator refused (3).
      {{"watch", "4"}, 1, "CANCELLED"},
      {{"frobnicate"}, 2, "\"frobnicate\" is not a verb"},
      {{"runs", "list", "--format=xml"}, 2, "xml"},
      {{"runs", "show", "0"}, 2, "run"},
      {{"submit", Path("missing.yaml")}, 2, "cannot open spec file"},
      {{"compare", "1"}, 2, "2 required"},
      {{"runs", "show", "999"}, 3, "NOT_FOUND"},
      {{"results", "nosuch"}, 3, "NOT_FOUND"},
      {{"gc", "-n", "--sweep", "nosuch"}, 3, "NOT_FOUND"},
  };
  for (const Case& c : cases) {
    const Result r = Cli(c.args);
    const std::string where = absl::StrJoin(c.args, " ");
    EXPECT_EQ(r.code, c.code) << where << "\n" << r.out << r.err;
    EXPECT_THAT(c.code == 0 ? r.out : r.out + r.err, HasSubstr(c.shows))
        << where;
  }
}

// Issue 32's findings on names and flags: a sweep by id or name in `runs
// list`, ids checked with a message that names them, a token by name,
// unique token names, and flags that act (compare --columns, results
// --baseline, runs list --search on a sweep's note).
TEST_F(VerbsTest, SweepsAndTokensByIdOrNameAndFlagsThatAct) {
  const Result by_name = Cli({"runs", "list", "--sweep", "verbs"});
  EXPECT_EQ(by_name.code, 0) << by_name.err;
  EXPECT_EQ(Count(by_name.out, "DISTILL"), 2);
  EXPECT_EQ(Cli({"runs", "list", "--sweep=1"}).out, by_name.out);
  const Result unknown = Cli({"runs", "list", "--sweep=tiny-seeded"});
  EXPECT_EQ(unknown.code, 3);
  EXPECT_THAT(unknown.err, HasSubstr("no sweep is named \"tiny-seeded\""));
  for (const auto& [args, says] :
       std::vector<std::pair<std::vector<std::string>, std::string>>{
           {{"runs", "list", "--teacher=abc"},
            "--teacher \"abc\" is not an id (a whole number from 1)"},
           {{"runs", "list", "--limit=many"},
            "--limit \"many\" is not a count"},
           {{"compare", "--runs=1,x"}, "--runs \"x\" is not an id"},
           {{"runs", "show", "abc"}, "run \"abc\" is not an id"}}) {
    const Result r = Cli(args);
    EXPECT_EQ(r.code, 2) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, HasSubstr(says)) << absl::StrJoin(args, " ");
    EXPECT_THAT(r.err, Not(HasSubstr("1797693"))) << absl::StrJoin(args, " ");
  }
  // Tokens: a name is one owner; revoked by name.
  EXPECT_EQ(Cli({"tokens", "create", "--role=viewer", "--name=v"}).code, 0);
  const Result twice = Cli({"tokens", "create", "--role=viewer", "--name=v"});
  EXPECT_EQ(twice.code, 3);
  EXPECT_THAT(twice.err, HasSubstr("ALREADY_EXISTS: token 2 is named \"v\""));
  EXPECT_THAT(Cli({"tokens", "revoke", "v"}).out,
              HasSubstr("revoked token 2 \"v\" (viewer)"));
  EXPECT_THAT(Cli({"tokens", "revoke", "v"}).err,
              HasSubstr("token 2 (v) was already revoked at"));
  // compare --runs keeps the columns asked for.
  const Result all = Cli({"compare", "--runs=1,2"});
  EXPECT_THAT(all.out, HasSubstr("eval/top1"));
  const Result knn = Cli({"compare", "--runs=1,2", "--columns=knn"});
  EXPECT_EQ(knn.code, 0) << knn.err;
  EXPECT_THAT(knn.out, Not(HasSubstr("eval/top1")));
  EXPECT_EQ(Cli({"compare", "--runs=1,2", "--columns=bogus"}).code, 2);
  // A baseline no row has is refused, naming the rows.
  const Result baseline = Cli({"results", "verbs", "--baseline=Z"});
  EXPECT_EQ(baseline.code, 2);
  EXPECT_THAT(baseline.err, HasSubstr("--baseline \"Z\" is not a row of "
                                      "sweep 1; its rows are D, G"));
  EXPECT_EQ(Cli({"results", "verbs", "--baseline=D"}).code, 0);
  // --search finds the runs of a sweep by the sweep's note.
  ASSERT_EQ(Cli({"note", "--sweep=verbs", "CPU demo size"}).code, 0);
  EXPECT_EQ(Count(Cli({"runs", "list", "--search=demo size"}).out, "DISTILL"),
            2);
}

TEST_F(VerbsTest, BothFlagFormsAndHelp) {
  for (const auto& [spaced, joined] : std::vector<
           std::pair<std::vector<std::string>, std::vector<std::string>>>{
           {{"runs", "list", "--where", "losses.ce=1", "--format", "csv"},
            {"runs", "list", "--where=losses.ce=1", "--format=csv"}},
           {{"runs", "show", "1", "--format", "csv"},
            {"runs", "show", "1", "--format=csv"}},
           {{"results", "1", "--columns", "top1", "--format", "csv"},
            {"results", "1", "--columns=top1", "--format=csv"}},
           {{"runs", "list", "--sort", "-eval/top1", "--limit", "1"},
            {"runs", "list", "--sort=-eval/top1", "--limit=1"}}}) {
    const Result a = Cli(spaced), b = Cli(joined);
    EXPECT_EQ(a.code, 0) << absl::StrJoin(spaced, " ") << a.err;
    EXPECT_EQ(a.out, b.out) << absl::StrJoin(spaced, " ");
  }
  // The where filter: D (ce) and G (ce) both, not the teacher.
  EXPECT_EQ(
      Count(Cli({"runs", "list", "--where", "losses.ce=1"}).out, "DISTILL"), 2);
  const Result help = Cli({"runs", "list", "--help"});
  EXPECT_EQ(help.code, 0);
  EXPECT_THAT(help.out, HasSubstr("Usage: distill runs list [OPTIONS]"));
  EXPECT_THAT(help.out, HasSubstr("--where"));
  EXPECT_THAT(Cli({"--help"}).out, HasSubstr("Exit codes: 0 ok"));
  EXPECT_EQ(Cli({}).code, 2);
}

// `sweep FILE --wait` watches every run to its end, then prints the table;
// a run that did not succeed makes it exit 1.
TEST_F(VerbsTest, SweepWaitWatchesEveryRunThenShowsTheTable) {
  Result waited;
  std::thread wait([&] {
    waited = Cli({"sweep", Path("sweep.yaml"), "--wait"});
  });
  Scheduler& s = coordinator_->scheduler();
  for (int i = 0; i < 500 && s.RecentSweeps(10)->size() < 2; ++i)
    absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(s.CancelSweep("second").ok());
  wait.join();
  EXPECT_EQ(waited.code, 1) << waited.out << waited.err;
  EXPECT_THAT(waited.out, HasSubstr("[1/1] run 4 (D)"));
  EXPECT_THAT(waited.out, HasSubstr("run 4 (D) CANCELLED"));
  EXPECT_THAT(waited.out, HasSubstr("sweep 2 \"second\" on fashion-mnist"));
}

// The completion script, sourced into bash, completes verbs and flags.
TEST_F(VerbsTest, BashCompletesVerbsAndFlags) {
  const std::string script = Path("completion.bash");
  std::ofstream(script) << Cli({"completion", "bash"}).out;
  auto complete = [&](const std::string& words, int cword) {
    const std::string out = Path("completed");
    const std::string command =
        absl::StrCat("bash -c 'source ", script, "; COMP_WORDS=(", words,
                     "); COMP_CWORD=", cword,
                     "; _distill; echo \"${COMPREPLY[*]}\"' >", out);
    EXPECT_EQ(std::system(command.c_str()), 0) << command;
    std::stringstream text;
    text << std::ifstream(out).rdbuf();
    return text.str();
  };
  EXPECT_EQ(complete("distill ru", 1), "runs\n");
  EXPECT_EQ(complete("distill runs li", 2), "list\n");
  EXPECT_THAT(complete("distill runs list --wh", 3), HasSubstr("--where"));
  EXPECT_EQ(complete("distill runs list --format c", 4), "csv\n");
  EXPECT_THAT(complete("distill tokens create --ro", 3), HasSubstr("--role"));
}

}  // namespace
}  // namespace distill

namespace distill {
namespace {

// `workers list` says why no run is leased when the coordinator's disk is
// below --min_free_disk (here a floor no disk reaches).
TEST(WorkersListTest, SaysWhyLeasingIsPaused) {
  TempDir temp("distill_paused_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  options.scheduler.min_free_disk_bytes = int64_t{1} << 60;
  auto coordinator = Coordinator::Start(options);
  ASSERT_TRUE(coordinator.ok()) << coordinator.status();
  std::ostringstream out, err;
  auto channel = *Dial((*coordinator)->address(), {}, "");
  ASSERT_EQ(RunCli({"workers", "list"}, channel, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr("leasing paused: no run is leased: the "
                                   "data directory's disk has"));
  EXPECT_THAT(out.str(), HasSubstr("below --min_free_disk 1048576.0 TiB"));
}

}  // namespace
}  // namespace distill
