// The verbs about single runs: submit, runs list|show|metrics, watch,
// cancel, download, tsne.
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "client/commands.h"
#include "common/api.h"
#include "common/run_files.h"
#include "common/spec_file.h"
#include "render/runs.h"
#include "render/terminal.h"
#include "render/tsne.h"

namespace distill {
namespace {

// A verb's run id, checked as CLI11 parses it.
CLI::Option* AddRunId(CLI::App* verb, int64_t* id) {
  return verb->add_option("run", *id, "the run's id")
      ->required()
      ->check(IdCheck("run"));
}

void AddSubmit(CLI::App& app, Command* chosen) {
  auto path = std::make_shared<std::string>();
  CLI::App* verb = app.add_subcommand(
      "submit", "submit one run (an ExperimentSpec YAML file)");
  verb->add_option("file", *path, "the spec file")->required();
  verb->callback([=] {
    *chosen = [=](Session& s) {
      v1::SubmitRunRequest request;
      if (absl::Status st = ReadYamlFile(*path, request.mutable_spec());
          !st.ok()) {
        return s.Usage("submit", std::string(st.message()));
      }
      grpc::ClientContext context;
      v1::Run run;
      grpc::Status status = s.experiments().SubmitRun(&context, request, &run);
      if (!status.ok()) return s.Refused("submit", status);
      s.out() << "run " << run.id() << " " << v1::RunStatus_Name(run.status())
              << "\n";
      return kExitOk;
    };
  });
}

// `runs list`'s filters, as given.
struct ListFlags {
  int64_t teacher = 0, limit = 0;
  std::string sweep, status, kind, member, dataset, arch, since, before, sort,
      search, owner, format = "table";
  std::vector<std::string> where, tags;
  bool mine = false;
};

// The request `flags` ask for; INVALID_ARGUMENT naming a bad value.
absl::StatusOr<v1::ListRunsRequest> ListRequest(const ListFlags& f) {
  v1::ListRunsRequest request;
  request.set_sweep(f.sweep);
  request.set_teacher_run_id(f.teacher);
  v1::RunStatus status;
  if (!f.status.empty() &&
      !v1::RunStatus_Parse(absl::AsciiStrToUpper(f.status), &status)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--status \"", f.status,
        "\" is not a run status (QUEUED, RUNNING, SUCCEEDED, ...)"));
  }
  if (!f.status.empty()) request.set_status(status);
  v1::ExperimentKind kind;
  if (!f.kind.empty() &&
      !v1::ExperimentKind_Parse(absl::AsciiStrToUpper(f.kind), &kind)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--kind \"", f.kind, "\" is not TRAIN_TEACHER, DISTILL or EVALUATE"));
  }
  if (!f.kind.empty()) request.set_kind(kind);
  request.set_member(f.member);
  if (!f.dataset.empty()) request.add_where("dataset.name=" + f.dataset);
  if (!f.arch.empty()) request.add_where("student.arch=" + f.arch);
  for (const std::string& w : f.where) request.add_where(w);
  for (const std::string& t : f.tags) request.add_tag(t);
  request.set_note_contains(f.search);
  request.set_owner(f.owner);
  request.set_mine(f.mine);
  request.set_sort(f.sort);
  for (const auto& [flag, text] :
       {std::pair{"--since", &f.since}, std::pair{"--before", &f.before}}) {
    if (text->empty()) continue;
    absl::Time t;
    std::string why;
    if (!absl::ParseTime(absl::RFC3339_full, *text, &t, &why) &&
        !absl::ParseTime("%Y-%m-%d", *text, &t, &why)) {
      return absl::InvalidArgumentError(
          absl::StrCat(flag, " \"", *text,
                       "\" is not a date (2026-11-20) or RFC 3339 time"));
    }
    if (text == &f.since) request.set_created_after_ms(absl::ToUnixMillis(t));
    if (text == &f.before) request.set_created_before_ms(absl::ToUnixMillis(t));
  }
  if (f.limit > 0)
    request.set_page_size(int32_t(std::min<int64_t>(f.limit, kMaxPageSize)));
  return request;
}

int ListRuns(Session& s, const ListFlags& flags) {
  absl::StatusOr<v1::ListRunsRequest> request = ListRequest(flags);
  if (!request.ok())
    return s.Usage("runs list", std::string(request.status().message()));
  std::vector<v1::Run> runs;
  grpc::Status status = Session::AllPages<v1::ListRunsResponse>(
      *request,
      [&](auto* c, auto& r, auto* p) {
        return s.experiments().ListRuns(c, r, p);
      },
      [](const v1::ListRunsResponse& p) -> const auto& { return p.runs(); },
      &runs, flags.limit);
  if (!status.ok()) return s.Refused("runs list", status);
  if (flags.limit > 0 && int64_t(runs.size()) > flags.limit)
    runs.resize(flags.limit);
  const OutputFormat format = FormatOf(flags.format);
  if (format == OutputFormat::kJson) {
    v1::ListRunsResponse all;
    for (v1::Run& run : runs) *all.add_runs() = std::move(run);
    s.out() << ToJson(all) << "\n";
    return kExitOk;
  }
  for (v1::Run& run : runs) MakeTerminalSafe(&run);
  s.out() << (format == OutputFormat::kCsv ? FormatRunListCsv(runs)
                                           : FormatRunList(runs));
  return kExitOk;
}

void AddRunsList(CLI::App& runs, Command* chosen) {
  auto f = std::make_shared<ListFlags>();
  CLI::App* verb =
      runs.add_subcommand("list", "runs by filters, in SQL on the coordinator");
  verb->add_option("--sweep", f->sweep, "runs of this sweep (its id or name)");
  verb->add_option("--status", f->status, "QUEUED, RUNNING, SUCCEEDED, ...");
  verb->add_option("--kind", f->kind, "TRAIN_TEACHER, DISTILL or EVALUATE");
  verb->add_option("--teacher", f->teacher, "students of this teacher run")
      ->check(IdCheck("--teacher"));
  verb->add_option("--member", f->member, "a member's name, or a glob ('G/*')");
  verb->add_option("--dataset", f->dataset, "dataset.name");
  verb->add_option("--arch", f->arch, "student.arch");
  verb->add_option("--where", f->where,
                   "PATH=VALUE on any spec field (losses.ikd.temperature=4)");
  verb->add_option("--tag", f->tags, "KEY or KEY=VALUE");
  verb->add_option("--search", f->search,
                   "words the run's note, or its sweep's, holds");
  verb->add_option("--owner", f->owner,
                   "runs of this owner (the name of the token that submitted "
                   "them)");
  verb->add_flag("--mine", f->mine, "your own runs (this token's name)");
  verb->add_option("--since", f->since, "created on or after (2026-11-20)");
  verb->add_option("--before", f->before, "created before");
  verb->add_option("--sort", f->sort,
                   "a result key, best first with '-' (--sort=-eval/top1)");
  verb->add_option("--limit", f->limit, "at most this many runs")
      ->check(IdCheck("--limit", "a count"));
  AddFormatFlag(verb, &f->format);
  verb->callback(
      [=] { *chosen = [=](Session& s) { return ListRuns(s, *f); }; });
}

int ShowRun(Session& s, int64_t id, const std::string& format_name) {
  const OutputFormat format = FormatOf(format_name);
  if (format == OutputFormat::kTable) {
    v1::RunEvent first;
    if (grpc::Status st = s.FirstEvent(id, 0, &first); !st.ok())
      return s.Refused("runs show", st);
    MakeTerminalSafe(&first);
    // A fork's curves go on from its parent's: its history too.
    v1::RunEvent parent;
    if (const int64_t from = first.run().spec().fork().run_id(); from != 0) {
      if (s.FirstEvent(from, 0, &parent).ok()) MakeTerminalSafe(&parent);
    }
    s.out() << FormatRunDetails(
        first.run(), {first.metrics().begin(), first.metrics().end()},
        {parent.metrics().begin(), parent.metrics().end()});
    return kExitOk;
  }
  v1::Run run;
  if (grpc::Status st = s.GetRun(id, &run); !st.ok())
    return s.Refused("runs show", st);
  s.out() << (format == OutputFormat::kJson
                  ? ToJson(run) + "\n"
                  : FormatRunCsv(TerminalSafeCopy(run)));
  return kExitOk;
}

// Every metric point of the run as CSV, a page at a time, to `path` or
// the terminal.
int RunMetrics(Session& s, int64_t id, const std::string& path) {
  std::ofstream file;
  if (!path.empty()) file.open(path);
  std::ostream& out = path.empty() ? s.out() : file;
  out << "step,epoch,attempt,key,value,time_ms\n";
  v1::GetRunMetricsRequest request;
  request.set_run_id(id);
  int64_t points = 0;
  do {
    grpc::ClientContext context;
    v1::GetRunMetricsResponse response;
    grpc::Status status =
        s.experiments().GetRunMetrics(&context, request, &response);
    if (!status.ok()) return s.Refused("runs metrics", status);
    for (const v1::MetricPoint& p : response.points()) {
      out << p.step() << "," << p.epoch() << "," << p.attempt() << ","
          << CsvField(TerminalSafe(p.key())) << "," << absl::StrCat(p.value())
          << "," << p.time_ms() << "\n";
    }
    points += response.points_size();
    request.set_page_token(response.next_page_token());
  } while (!request.page_token().empty());
  if (path.empty()) return kExitOk;
  if (!file) return s.Usage("runs metrics", "cannot write " + path);
  s.out() << "wrote " << path << " (" << points << " points)\n";
  return kExitOk;
}

void AddRuns(CLI::App& app, Command* chosen) {
  CLI::App* runs = app.add_subcommand("runs", "list, show and export runs");
  runs->require_subcommand(1);
  AddRunsList(*runs, chosen);
  {
    auto id = std::make_shared<int64_t>(0);
    auto format = std::make_shared<std::string>("table");
    CLI::App* verb = runs->add_subcommand(
        "show", "spec, results, files, provenance, plots of loss and top-1");
    AddRunId(verb, id.get());
    AddFormatFlag(verb, format.get());
    verb->callback([=] {
      *chosen = [=](Session& s) { return ShowRun(s, *id, *format); };
    });
  }
  {
    auto id = std::make_shared<int64_t>(0);
    auto path = std::make_shared<std::string>();
    CLI::App* verb = runs->add_subcommand(
        "metrics", "every metric point of the run, as CSV");
    AddRunId(verb, id.get());
    verb->add_option("--out", *path, "a CSV file instead of the terminal");
    verb->callback([=] {
      *chosen = [=](Session& s) { return RunMetrics(s, *id, *path); };
    });
  }
}

void AddWatchAndCancel(CLI::App& app, Command* chosen) {
  {
    auto id = std::make_shared<int64_t>(0);
    CLI::App* verb = app.add_subcommand(
        "watch", "one live progress line; exit 1 unless it succeeded");
    AddRunId(verb, id.get());
    verb->callback(
        [=] { *chosen = [=](Session& s) { return WatchRun(s, *id, false); }; });
  }
  auto id = std::make_shared<int64_t>(0);
  CLI::App* verb =
      app.add_subcommand("cancel", "cancel a waiting, queued or running run");
  AddRunId(verb, id.get());
  verb->callback([=] {
    *chosen = [=](Session& s) {
      v1::CancelRunRequest request;
      request.set_id(*id);
      grpc::ClientContext context;
      v1::Run run;
      grpc::Status status = s.experiments().CancelRun(&context, request, &run);
      if (!status.ok()) return s.Refused("cancel", status);
      s.out() << "run " << run.id() << " " << v1::RunStatus_Name(run.status())
              << "\n";
      return kExitOk;
    };
  });
}

void AddFiles(CLI::App& app, Command* chosen) {
  {
    auto id = std::make_shared<int64_t>(0);
    auto name = std::make_shared<std::string>();
    auto path = std::make_shared<std::string>();
    CLI::App* verb = app.add_subcommand(
        "download", "save a file of the run (checkpoint, tsne.csv)");
    AddRunId(verb, id.get());
    verb->add_option("name", *name, "the file's name")->required();
    verb->add_option("out", *path, "where to save it (default: its name)");
    verb->callback([=] {
      *chosen = [=](Session& s) {
        absl::StatusOr<std::string> data = s.DownloadFile(*id, *name);
        if (!data.ok()) {
          s.err() << "download: " << data.status().message() << "\n";
          return kExitRefused;
        }
        const std::string to = path->empty() ? *name : *path;
        std::ofstream file(to, std::ios::binary);
        file << *data;
        if (!file) return s.Usage("download", "cannot write " + to);
        s.out() << "wrote " << to << " (" << data->size() << " bytes)\n";
        return kExitOk;
      };
    });
  }
  auto id = std::make_shared<int64_t>(0);
  CLI::App* verb = app.add_subcommand(
      "tsne", "plot the run's t-SNE maps of teacher and student");
  AddRunId(verb, id.get());
  verb->callback([=] {
    *chosen = [=](Session& s) {
      absl::StatusOr<std::string> csv = s.DownloadFile(*id, kTsneFile);
      if (!csv.ok()) {
        s.err() << "tsne: " << csv.status().message() << "\n";
        return kExitRefused;
      }
      s.out() << TsnePlot(*csv);
      return kExitOk;
    };
  });
}

}  // namespace

int WatchRun(Session& s, int64_t id, bool pruned_ok) {
  v1::WatchRunRequest request;
  request.set_id(id);
  request.set_include_history(true);
  grpc::ClientContext context;
  auto reader = s.experiments().WatchRun(&context, request);
  v1::RunEvent event;
  Progress progress;
  v1::Run run;
  int32_t last_epoch = -1;
  std::string last_stage;
  v1::RunStatus last_status = v1::RUN_STATUS_UNSPECIFIED;
  while (reader->Read(&event)) {
    MakeTerminalSafe(&event);
    run = event.run();
    UpdateProgress(event, &progress);
    const std::string line = ProgressLine(run, progress);
    if (s.tty()) {
      s.out() << "\r\033[K" << line << std::flush;
    } else if (progress.epoch != last_epoch || run.status() != last_status ||
               (progress.stage != last_stage && progress.total_steps > 0 &&
                progress.step == progress.total_steps)) {
      // Logs get one line an epoch, and one a stage of the evaluation
      // after the last step.
      s.out() << line << "\n" << std::flush;
    }
    last_stage = progress.stage;
    last_epoch = progress.epoch;
    last_status = run.status();
  }
  grpc::Status status = reader->Finish();
  if (s.tty()) s.out() << "\n";
  if (!status.ok()) return s.Refused("watch", status);
  const bool ok = run.status() == v1::SUCCEEDED ||
                  (pruned_ok && run.status() == v1::PRUNED);
  return ok ? kExitOk : kExitFailed;
}

void AddRunCommands(CLI::App& app, Command* chosen) {
  AddSubmit(app, chosen);
  AddRuns(app, chosen);
  AddWatchAndCancel(app, chosen);
  AddFiles(app, chosen);
}

}  // namespace distill
