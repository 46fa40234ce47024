// The verbs that go on from finished work: fork RUN, sweep fork SWEEP.
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "client/commands.h"
#include "common/api.h"
#include "common/sweep_expansion.h"
#include "render/terminal.h"

namespace distill {
namespace {

// What fork and sweep fork share: the fields to change, and whether to go
// on from the parent's optimizer and epochs.
struct ForkFlags {
  std::vector<std::string> set;
  bool continue_training = false;
  std::string name;
};

void AddForkFlags(CLI::App* verb, ForkFlags* f) {
  verb->add_option("--set", f->set,
                   "PATH=VALUE: a spec field to change (repeatable), e.g. "
                   "epochs=60, optimizer.lr=0.01");
  verb->add_flag("--continue", f->continue_training,
                 "also the parent's optimizer state and epochs: with "
                 "--set epochs=N it trains the epochs after the parent's");
  verb->add_option("--name", f->name, "the new run's or sweep's name");
}

// `spec` with each --set applied; INVALID_ARGUMENT naming a bad one.
absl::Status ApplySets(const std::vector<std::string>& sets,
                       v1::ExperimentSpec* spec) {
  for (const std::string& set : sets) {
    const std::vector<std::string> parts =
        absl::StrSplit(set, absl::MaxSplits('=', 1));
    if (parts.size() != 2 || parts[0].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--set \"", set, "\" is not PATH=VALUE"));
    }
    if (absl::Status s = SetSpecField(parts[0], parts[1], spec); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

int ForkRun(Session& s, int64_t parent_id, const ForkFlags& f) {
  v1::Run parent;
  if (grpc::Status st = s.GetRun(parent_id, &parent); !st.ok())
    return s.Refused("fork", st);
  v1::SubmitRunRequest request;
  v1::ExperimentSpec& spec = *request.mutable_spec();
  spec = parent.spec();
  if (absl::Status st = ApplySets(f.set, &spec); !st.ok())
    return s.Usage("fork", std::string(st.message()));
  spec.set_name(f.name.empty()
                    ? absl::StrCat(parent.spec().name().empty()
                                       ? absl::StrCat("run ", parent_id)
                                       : parent.spec().name(),
                                   " fork")
                    : f.name);
  spec.mutable_fork()->set_run_id(parent_id);
  spec.mutable_fork()->set_continue_training(f.continue_training);
  grpc::ClientContext context;
  v1::Run run;
  grpc::Status status = s.experiments().SubmitRun(&context, request, &run);
  if (!status.ok()) return s.Refused("fork", status);
  s.out() << "run " << run.id() << " " << v1::RunStatus_Name(run.status())
          << ", forked from run " << parent_id;
  if (f.continue_training) {
    s.out() << " (epochs " << parent.spec().epochs() + 1 << " to "
            << run.spec().epochs() << ")";
  }
  s.out() << "\n";
  return kExitOk;
}

int ForkSweep(Session& s, const std::string& ref, const ForkFlags& f) {
  v1::SweepResults parent;
  if (grpc::Status st = s.GetSweepResults(ref, &parent); !st.ok())
    return s.Refused("sweep fork", st);
  if (parent.teachers_size() > 1) {
    return s.Usage("sweep fork",
                   absl::StrCat("sweep ", parent.sweep().id(), " has ",
                                parent.teachers_size(),
                                " teachers; fork its members' runs one by "
                                "one (distill fork RUN)"));
  }
  v1::SubmitSweepRequest request;
  v1::SweepSpec& spec = *request.mutable_spec();
  spec = parent.sweep().spec();
  if (absl::Status st = ApplySets(f.set, spec.mutable_base()); !st.ok())
    return s.Usage("sweep fork", std::string(st.message()));
  spec.set_name(f.name.empty() ? parent.sweep().name() + "-fork" : f.name);
  // The parent's teacher, trained once already.
  spec.clear_teacher();
  spec.mutable_teacher()->set_run_id(parent.teacher_run_id());
  // Its webhook is not shown to readers; the fork posts to the coordinator's.
  if (spec.notify().url() == kRedactedNotifyUrl) spec.clear_notify();
  spec.mutable_fork()->set_sweep_id(parent.sweep().id());
  spec.mutable_fork()->set_continue_training(f.continue_training);
  grpc::ClientContext context;
  v1::SubmitSweepResponse response;
  grpc::Status status =
      s.experiments().SubmitSweep(&context, request, &response);
  if (!status.ok()) return s.Refused("sweep fork", status);
  MakeTerminalSafe(response.mutable_sweep());
  s.out() << "sweep " << response.sweep().id() << " \""
          << response.sweep().name() << "\": " << response.runs_size()
          << " runs, each forked from its member in sweep "
          << parent.sweep().id() << "\n";
  return kExitOk;
}

}  // namespace

void AddForkCommands(CLI::App& app, Command* chosen) {
  {
    auto id = std::make_shared<int64_t>(0);
    auto f = std::make_shared<ForkFlags>();
    CLI::App* verb = app.add_subcommand(
        "fork",
        "a new run from a finished run's student (and, with --continue, its "
        "optimizer and epochs)");
    verb->add_option("run", *id, "the parent run's id")
        ->required()
        ->check(IdCheck("run"));
    AddForkFlags(verb, f.get());
    verb->callback(
        [=] { *chosen = [=](Session& s) { return ForkRun(s, *id, *f); }; });
  }
  CLI::App* sweep = app.get_subcommand("sweep");
  auto ref = std::make_shared<std::string>();
  auto f = std::make_shared<ForkFlags>();
  CLI::App* verb = sweep->add_subcommand(
      "fork",
      "a new sweep whose every member starts from the same member's run of "
      "this one");
  verb->add_option("sweep", *ref, "the sweep's id or name")->required();
  AddForkFlags(verb, f.get());
  verb->callback(
      [=] { *chosen = [=](Session& s) { return ForkSweep(s, *ref, *f); }; });
}

}  // namespace distill
