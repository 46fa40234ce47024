// The verbs about sweeps: sweep FILE [--wait | --dry-run], sweep retry and
// cancel, results, compare, report.
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "common/run_files.h"
#include "common/spec_file.h"
#include "common/sweep_expansion.h"
#include "render/claims.h"
#include "render/export.h"
#include "render/report.h"
#include "render/results.h"
#include "render/seeds.h"
#include "render/terminal.h"

namespace distill {
namespace {

// The members a sweep file expands to, checked as the coordinator checks
// them, without submitting anything.
int DryRun(Session& s, const std::string& path) {
  v1::SweepSpec spec;
  if (absl::Status st = ReadYamlFile(path, &spec); !st.ok())
    return s.Usage("sweep", std::string(st.message()));
  absl::StatusOr<ExpandedSweep> expanded = ExpandSweep(spec);
  if (!expanded.ok()) {
    return s.Usage("sweep",
                   absl::StrCat(path, ": ", expanded.status().message()));
  }
  std::ostream& out = s.out();
  out << "sweep \"" << TerminalSafe(spec.name())
      << "\": " << expanded->members.size() << " members";
  if (expanded->teachers.size() == 1) {
    out << " after training their teacher ("
        << expanded->teachers[0].spec.epochs() << " epochs)";
  } else if (expanded->teachers.size() > 1) {
    out << " after training their " << expanded->teachers.size() << " teachers";
  } else {
    out << " from teacher run " << spec.teacher().run_id();
  }
  out << "; nothing submitted\n";
  if (expanded->teachers.size() > 1) {
    for (const SweepTeacherSpec& t : expanded->teachers) {
      out << absl::StrFormat("       %-40s %d epochs\n", TerminalSafe(t.name),
                             t.spec.epochs());
    }
  }
  for (size_t i = 0; i < expanded->members.size(); ++i) {
    const v1::ExperimentSpec& m = expanded->members[i].spec;
    out << absl::StrFormat("%5d  %-40s seed %d, %d epochs\n", i + 1,
                           TerminalSafe(expanded->members[i].name), m.seed(),
                           m.epochs());
  }
  const v1::EarlyStopping& stopping = spec.early_stopping();
  if (stopping.rule() != v1::STOPPING_RULE_UNSPECIFIED) {
    out << "early stopping: " << v1::StoppingRule_Name(stopping.rule())
        << " on "
        << (stopping.metric().empty() ? "eval/top1"
                                      : TerminalSafe(stopping.metric()))
        << "\n";
  }
  if (spec.max_concurrent() > 0 || spec.priority() != 0) {
    out << "at most "
        << (spec.max_concurrent() > 0 ? absl::StrCat(spec.max_concurrent())
                                      : std::string("any number of"))
        << " runs at once, priority " << spec.priority() << "\n";
  }
  return kExitOk;
}

// Submits a sweep file; with `wait`, watches every run and prints the
// table (kExitFailed when a run failed).
int SubmitSweep(Session& s, const std::string& path, bool wait) {
  v1::SubmitSweepRequest request;
  if (absl::Status st = ReadYamlFile(path, request.mutable_spec()); !st.ok())
    return s.Usage("sweep", std::string(st.message()));
  grpc::ClientContext context;
  v1::SubmitSweepResponse response;
  grpc::Status status =
      s.experiments().SubmitSweep(&context, request, &response);
  if (!status.ok()) return s.Refused("sweep", status);
  MakeTerminalSafe(response.mutable_sweep());
  s.out() << "sweep " << response.sweep().id() << " \""
          << response.sweep().name() << "\": " << response.runs_size()
          << " runs";
  if (response.sweep().teacher_run_id()) {
    s.out() << " (teacher run " << response.sweep().teacher_run_id() << ")";
  }
  s.out() << "\n";
  if (!wait) return kExitOk;
  int failed = 0;
  for (int i = 0; i < response.runs_size(); ++i) {
    s.out() << "[" << i + 1 << "/" << response.runs_size() << "] ";
    failed += WatchRun(s, response.runs(i).id(), /*pruned_ok=*/true) != kExitOk;
  }
  s.out() << "\n";
  const int shown =
      ShowResults(s, absl::StrCat(response.sweep().id()), "", "table");
  return failed > 0 ? kExitFailed : shown;
}

// `sweep retry|cancel SWEEP`.
int SweepAction(Session& s, const std::string& action,
                const std::string& sweep) {
  v1::SweepRequest request;
  request.set_sweep(sweep);
  grpc::ClientContext context;
  v1::SweepActionResponse response;
  const bool retry = action == "retry";
  grpc::Status status =
      retry ? s.experiments().RetrySweep(&context, request, &response)
            : s.experiments().CancelSweep(&context, request, &response);
  if (!status.ok()) return s.Refused("sweep " + action, status);
  MakeTerminalSafe(&response);
  s.out() << "sweep " << response.sweep().id() << " \""
          << response.sweep().name() << "\": ";
  if (response.runs().empty()) {
    s.out() << (retry ? "nothing failed or was cancelled"
                      : "no run left to cancel")
            << "\n";
    return kExitOk;
  }
  s.out() << response.runs_size()
          << (retry ? " runs queued again:" : " runs cancelled:");
  for (const v1::Run& run : response.runs())
    s.out() << " " << run.id() << " (" << run.member() << ")";
  s.out() << "\n";
  return kExitOk;
}

void AddSweep(CLI::App& app, Command* chosen) {
  auto path = std::make_shared<std::string>();
  auto wait = std::make_shared<bool>(false);
  auto dry_run = std::make_shared<bool>(false);
  CLI::App* sweep = app.add_subcommand(
      "sweep", "submit a sweep (a SweepSpec YAML file), or act on one");
  sweep->add_option("file", *path, "the sweep file");
  CLI::Option* w = sweep->add_flag(
      "--wait", *wait, "watch every run, then print the results table");
  sweep
      ->add_flag("--dry-run", *dry_run,
                 "list the members the file expands to; submit nothing")
      ->excludes(w);
  sweep->callback([=] {
    if (sweep->get_subcommands().empty() && path->empty())
      throw CLI::RequiredError("file");
    if (!sweep->get_subcommands().empty()) return;
    *chosen = [=](Session& s) {
      return *dry_run ? DryRun(s, *path) : SubmitSweep(s, *path, *wait);
    };
  });
  for (const char* action : {"retry", "cancel"}) {
    auto which = std::make_shared<std::string>();
    CLI::App* verb = sweep->add_subcommand(
        action, std::string(action) == "retry"
                    ? "queue again the members that failed or were cancelled"
                    : "cancel every run of the sweep that has not ended");
    verb->add_option("sweep", *which, "the sweep's id or name")->required();
    verb->callback([=] {
      *chosen = [=](Session& s) { return SweepAction(s, action, *which); };
    });
  }
}

void AddColumnsFlag(CLI::App* verb, std::string* columns) {
  verb->add_option("--columns", *columns,
                   "top1,knn,nmi,ari,agree,cka,overlap (all by default)");
}

void AddResults(CLI::App& app, Command* chosen) {
  auto sweep = std::make_shared<std::string>();
  auto columns = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  auto baseline = std::make_shared<std::string>();
  auto claims = std::make_shared<bool>(false);
  CLI::App* verb = app.add_subcommand(
      "results", "the Table 1 layout of a sweep (its id or name)");
  verb->add_option("sweep", *sweep, "the sweep's id or name")->required();
  AddColumnsFlag(verb, columns.get());
  AddFormatFlag(verb, format.get());
  verb->add_option("--baseline", *baseline,
                   "a row (e.g. D): every row's difference to it in the "
                   "first column, with its 95% interval over seeds");
  verb->add_flag("--claims", *claims,
                 "after the table, each claim the sweep file makes, the "
                 "numbers that decide it and whether it holds");
  verb->callback([=] {
    *chosen = [=](Session& s) {
      return ShowResults(s, *sweep, *columns, *format, *baseline, *claims);
    };
  });
}

int CompareRuns(Session& s, const std::vector<int64_t>& ids,
                const std::string& column_names, OutputFormat format) {
  absl::StatusOr<std::vector<ResultColumn>> columns =
      ParseResultColumns(column_names);
  if (!columns.ok())
    return s.Usage("compare", std::string(columns.status().message()));
  if (ids.size() > 100)
    return s.Usage("compare",
                   absl::StrCat("at most 100 runs, got ", ids.size()));
  std::vector<v1::Run> runs;
  for (int64_t id : ids) {
    v1::Run& run = runs.emplace_back();
    if (grpc::Status st = s.GetRun(id, &run); !st.ok())
      return s.Refused("compare", st);
    if (format != OutputFormat::kJson) MakeTerminalSafe(&run);
    // --columns keeps those results (every one without it).
    if (column_names.empty()) continue;
    google::protobuf::Map<std::string, double> kept;
    for (const ResultColumn& c : *columns) {
      if (auto it = run.results().find(c.key); it != run.results().end())
        kept.insert(*it);
    }
    *run.mutable_results() = std::move(kept);
  }
  s.out() << FormatRunComparison(runs, format);
  return kExitOk;
}

void AddCompare(CLI::App& app, Command* chosen) {
  auto sweeps = std::make_shared<std::vector<std::string>>();
  auto runs = std::make_shared<std::vector<int64_t>>();
  auto columns = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("table");
  CLI::App* verb = app.add_subcommand(
      "compare", "two sweeps' members side by side, or a set of runs");
  CLI::Option* two =
      verb->add_option("sweeps", *sweeps, "sweep A and sweep B")->expected(2);
  verb->add_option("--runs", *runs, "runs to compare (3,5,8)")
      ->delimiter(',')
      ->check(IdCheck("--runs"))
      ->excludes(two);
  AddColumnsFlag(verb, columns.get());
  AddFormatFlag(verb, format.get());
  verb->callback([=] {
    if (sweeps->empty() && runs->empty()) {
      throw CLI::ValidationError(
          "compare takes two sweeps (ids or names) or --runs=ID,ID,...");
    }
    *chosen = [=](Session& s) {
      if (!runs->empty())
        return CompareRuns(s, *runs, *columns, FormatOf(*format));
      absl::StatusOr<std::vector<ResultColumn>> cols =
          ParseResultColumns(columns->empty() ? "top1" : *columns);
      if (!cols.ok())
        return s.Usage("compare", std::string(cols.status().message()));
      v1::SweepResults results[2];
      for (int i = 0; i < 2; ++i) {
        if (grpc::Status st = s.GetSweepResults((*sweeps)[i], &results[i]);
            !st.ok()) {
          return s.Refused("compare", st);
        }
        if (FormatOf(*format) != OutputFormat::kJson)
          MakeTerminalSafe(&results[i]);
      }
      s.out() << FormatSweepComparison(results[0], results[1], *cols,
                                       FormatOf(*format));
      return kExitOk;
    };
  });
}

// A report's data through the coordinator's API.
class ApiSource final : public ReportSource {
 public:
  explicit ApiSource(Session& session) : session_(session) {}
  std::vector<v1::MetricPoint> History(int64_t run_id) override {
    v1::RunEvent first;
    if (!session_.FirstEvent(run_id, kReportPointsPerCurve, &first).ok())
      return {};
    return {first.metrics().begin(), first.metrics().end()};
  }
  std::string Tsne(int64_t run_id) override {
    absl::StatusOr<std::string> csv = session_.DownloadFile(run_id, kTsneFile);
    return csv.ok() ? *std::move(csv) : "";
  }

 private:
  Session& session_;
};

void AddReport(CLI::App& app, Command* chosen) {
  auto sweep = std::make_shared<std::string>();
  auto path = std::make_shared<std::string>("report.html");
  auto columns = std::make_shared<std::string>();
  CLI::App* verb = app.add_subcommand(
      "report",
      "one self-contained HTML file: the table, curves, a heat map over two "
      "grid axes, t-SNE maps");
  verb->add_option("sweep", *sweep, "the sweep's id or name")->required();
  verb->add_option("-o,--out", *path, "the HTML file (report.html)");
  AddColumnsFlag(verb, columns.get());
  verb->callback([=] {
    *chosen = [=](Session& s) {
      absl::StatusOr<std::vector<ResultColumn>> cols =
          ParseResultColumns(*columns);
      if (!cols.ok())
        return s.Usage("report", std::string(cols.status().message()));
      v1::SweepResults results;
      if (grpc::Status st = s.GetSweepResults(*sweep, &results); !st.ok())
        return s.Refused("report", st);
      ApiSource source(s);
      std::ofstream file(*path, std::ios::binary);
      file << RenderReport(results, GatherReportRuns(results, source), *cols);
      if (!file) return s.Usage("report", "cannot write " + *path);
      s.out() << "report of sweep " << results.sweep().id() << " ("
              << results.members_size() << " members) written to " << *path
              << "\n";
      return kExitOk;
    };
  });
}

}  // namespace

int ShowResults(Session& s, const std::string& sweep,
                const std::string& column_names, const std::string& format,
                const std::string& baseline, bool claims) {
  absl::StatusOr<std::vector<ResultColumn>> columns =
      ParseResultColumns(column_names);
  if (!columns.ok())
    return s.Usage("results", std::string(columns.status().message()));
  v1::SweepResults results;
  if (grpc::Status st = s.GetSweepResults(sweep, &results); !st.ok())
    return s.Refused("results", st);
  if (!baseline.empty()) {
    const SeedRows rows = SummariseRows(results, *columns, baseline);
    if (!rows.baseline_found) {
      std::vector<std::string> names;
      for (const SummaryRow& r : rows.rows) names.push_back(r.row);
      return s.Usage(
          "results",
          absl::StrCat("--baseline \"", baseline, "\" is not a row of sweep ",
                       results.sweep().id(), "; its rows are ",
                       absl::StrJoin(names, ", ")));
    }
  }
  const ExportOptions exported{baseline, claims};
  switch (FormatOf(format)) {
    case OutputFormat::kJson:
      s.out() << ExportResultsJson(results, *columns, exported) << "\n";
      break;
    case OutputFormat::kCsv:
      s.out() << ExportResultsCsv(TerminalSafeCopy(results), *columns,
                                  {TerminalSafe(baseline), claims});
      break;
    case OutputFormat::kTable:
      s.out() << FormatResultsTable(TerminalSafeCopy(results), *columns,
                                    TerminalSafe(baseline));
      if (claims) s.out() << FormatClaims(TerminalSafeCopy(results));
      break;
  }
  return kExitOk;
}

void AddSweepCommands(CLI::App& app, Command* chosen) {
  AddSweep(app, chosen);
  AddResults(app, chosen);
  AddCompare(app, chosen);
  AddReport(app, chosen);
}

}  // namespace distill
