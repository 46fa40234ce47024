#include "client/cli.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "client/format.h"
#include "client/report.h"
#include "client/terminal.h"
#include "common/grpc_status.h"
#include "common/spec_file.h"
#include "common/sweep_expansion.h"
#include "common/token.h"
#include "distill/v1/admin_service.grpc.pb.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace distill {
namespace {

using v1::ExperimentService;

class Cli {
 public:
  Cli(std::shared_ptr<grpc::Channel> channel, std::ostream& out,
      std::ostream& err)
      : stub_(ExperimentService::NewStub(channel)),
        admin_(v1::AdminService::NewStub(channel)),
        health_(grpc::health::v1::Health::NewStub(channel)),
        out_(out),
        err_(err),
        tty_(&out == &std::cout && isatty(STDOUT_FILENO)) {}

  int Run(const std::vector<std::string>& a) {
    const size_t n = a.size();
    if (n == 2 && a[0] == "submit") return Submit(a[1]);
    if (n == 3 && a[0] == "sweep" && (a[1] == "retry" || a[1] == "cancel") &&
        a[2].rfind("--", 0) != 0) {
      return SweepAction(a[1], a[2]);
    }
    if ((n == 2 || n == 3) && a[0] == "sweep") {
      if (n == 3 && a[2] == "--dry-run") return DryRun(a[1]);
      if (n == 3 && a[2] != "--wait") return Usage();
      return Sweep(a[1], n == 3);
    }
    if (n >= 2 && a[0] == "runs" && a[1] == "list") return List(a);
    if (n == 3 && a[0] == "runs" && a[1] == "show")
      return WithId(a[2], &Cli::Show);
    if (n == 4 && a[0] == "runs" && a[1] == "show" &&
        a[3].rfind("--format=", 0) == 0) {
      int64_t id;
      if (!absl::SimpleAtoi(a[2], &id) || id < 1) return Usage();
      return ShowAs(id, a[3].substr(9));
    }
    if ((n == 3 || n == 4) && a[0] == "runs" && a[1] == "metrics")
      return Metrics(a);
    if (n == 2 && a[0] == "watch") return WithId(a[1], &Cli::Watch);
    if (n == 2 && a[0] == "cancel") return WithId(a[1], &Cli::Cancel);
    if (n >= 2 && n <= 4 && a[0] == "results") {
      std::string columns, format = "table";
      for (int i = 2; i < n; ++i) {
        if (a[i].rfind("--columns=", 0) == 0) {
          columns = a[i].substr(10);
        } else if (a[i].rfind("--format=", 0) == 0) {
          format = a[i].substr(9);
        } else {
          return Usage();
        }
      }
      return Results(a[1], columns, format);
    }
    if ((n == 3 || n == 4) && a[0] == "download") {
      int64_t id;
      if (!absl::SimpleAtoi(a[1], &id)) return Usage();
      return Download(id, a[2], n == 4 ? a[3] : a[2]);
    }
    if (n == 2 && a[0] == "tsne") return WithId(a[1], &Cli::Tsne);
    if (n >= 2 && a[0] == "compare") return Compare(a);
    if (n >= 2 && a[0] == "report") return Report(a);
    if (n >= 3 && (a[0] == "tag" || a[0] == "note")) return Annotate(a);
    if (n == 1 && a[0] == "health") return Health();
    if ((n == 2 || n == 3) && a[0] == "workers" && a[1] == "list") {
      if (n == 3 && a[2].rfind("--format=", 0) != 0) return Usage();
      return ListWorkers(n == 3 ? a[2].substr(9) : "table");
    }
    if (n == 3 && a[0] == "workers" && a[1] == "drain") return Drain(a[2]);
    if (n >= 2 && a[0] == "tokens" && a[1] == "create") return CreateToken(a);
    if ((n == 2 || n == 3) && a[0] == "tokens" && a[1] == "list") {
      if (n == 3 && a[2].rfind("--format=", 0) != 0) return Usage();
      return ListTokens(n == 3 ? a[2].substr(9) : "table");
    }
    if (n == 3 && a[0] == "tokens" && a[1] == "revoke") {
      int64_t id;
      if (!absl::SimpleAtoi(a[2], &id)) return Usage();
      return RevokeToken(id);
    }
    return Usage();
  }

 private:
  // Every page of a listing (the coordinator answers a page at a time):
  // `call` asks for the page `request` names, `items` picks its entries.
  template <typename Response, typename Request, typename Call, typename Items,
            typename Item>
  static grpc::Status AllPages(Request request, Call call, Items items,
                               std::vector<Item>* out, int64_t limit = 0) {
    do {
      grpc::ClientContext context;
      Response response;
      grpc::Status status = call(&context, request, &response);
      if (!status.ok()) return status;
      for (const Item& item : items(response)) out->push_back(item);
      request.set_page_token(response.next_page_token());
      // Enough: the rest is not wanted.
      if (limit > 0 && int64_t(out->size()) >= limit) break;
    } while (!request.page_token().empty());
    return grpc::Status::OK;
  }

  grpc::Status FetchRun(int64_t id, v1::Run* run) {
    v1::GetRunRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    return stub_->GetRun(&context, request, run);
  }

  int Usage() {
    err_ << CliUsage();
    return 2;
  }

  int Refused(const char* what, const grpc::Status& status) {
    err_ << what << ": "
         << absl::StatusCodeToString(FromGrpcStatus(status).code()) << ": "
         << TerminalSafe(status.error_message()) << "\n";
    return 1;
  }

  int WithId(const std::string& text, int (Cli::*command)(int64_t)) {
    int64_t id;
    if (!absl::SimpleAtoi(text, &id) || id < 1) {
      err_ << "a run id is a positive integer, got \"" << text << "\"\n";
      return 2;
    }
    return (this->*command)(id);
  }

  int Submit(const std::string& path) {
    v1::SubmitRunRequest request;
    if (absl::Status s = ReadYamlFile(path, request.mutable_spec()); !s.ok()) {
      err_ << TerminalSafe(s.message()) << "\n";
      return 2;
    }
    grpc::ClientContext context;
    v1::Run run;
    grpc::Status status = stub_->SubmitRun(&context, request, &run);
    if (!status.ok()) return Refused("submit", status);
    out_ << "run " << run.id() << " " << v1::RunStatus_Name(run.status())
         << "\n";
    return 0;
  }

  // `distill sweep retry|cancel SWEEP` (an id or a name).
  int SweepAction(const std::string& action, const std::string& sweep) {
    v1::SweepRequest request;
    request.set_sweep(sweep);
    grpc::ClientContext context;
    v1::SweepActionResponse response;
    grpc::Status status =
        action == "retry" ? stub_->RetrySweep(&context, request, &response)
                          : stub_->CancelSweep(&context, request, &response);
    if (!status.ok())
      return Refused(action == "retry" ? "sweep retry" : "sweep cancel",
                     status);
    MakeTerminalSafe(&response);
    out_ << "sweep " << response.sweep().id() << " \""
         << response.sweep().name() << "\": ";
    if (response.runs().empty()) {
      out_ << (action == "retry" ? "nothing failed or was cancelled"
                                 : "no run left to cancel")
           << "\n";
      return 0;
    }
    out_ << response.runs_size()
         << (action == "retry" ? " runs queued again:" : " runs cancelled:");
    for (const v1::Run& run : response.runs()) {
      out_ << " " << run.id() << " (" << run.member() << ")";
    }
    out_ << "\n";
    return 0;
  }

  // The members a sweep file expands to, checked as the coordinator checks
  // them, without submitting anything.
  int DryRun(const std::string& path) {
    v1::SweepSpec spec;
    if (absl::Status s = ReadYamlFile(path, &spec); !s.ok()) {
      err_ << TerminalSafe(s.message()) << "\n";
      return 2;
    }
    absl::StatusOr<ExpandedSweep> expanded = ExpandSweep(spec);
    if (!expanded.ok()) {
      err_ << path << ": " << TerminalSafe(expanded.status().message()) << "\n";
      return 2;
    }
    out_ << "sweep \"" << TerminalSafe(spec.name())
         << "\": " << expanded->members.size() << " members";
    if (expanded->teachers.size() == 1) {
      out_ << " after training their teacher ("
           << expanded->teachers[0].spec.epochs() << " epochs)";
    } else if (expanded->teachers.size() > 1) {
      out_ << " after training their " << expanded->teachers.size()
           << " teachers";
    } else {
      out_ << " from teacher run " << spec.teacher().run_id();
    }
    out_ << "; nothing submitted\n";
    if (expanded->teachers.size() > 1) {
      for (const SweepTeacherSpec& t : expanded->teachers) {
        out_ << absl::StrFormat("       %-40s %d epochs\n",
                                TerminalSafe(t.name), t.spec.epochs());
      }
    }
    for (size_t i = 0; i < expanded->members.size(); ++i) {
      const v1::ExperimentSpec& m = expanded->members[i].spec;
      out_ << absl::StrFormat("%5d  %-40s seed %d, %d epochs\n", i + 1,
                              TerminalSafe(expanded->members[i].name), m.seed(),
                              m.epochs());
    }
    const v1::EarlyStopping& stopping = spec.early_stopping();
    if (stopping.rule() != v1::STOPPING_RULE_UNSPECIFIED) {
      out_ << "early stopping: " << v1::StoppingRule_Name(stopping.rule())
           << " on "
           << (stopping.metric().empty() ? "eval/top1"
                                         : TerminalSafe(stopping.metric()))
           << "\n";
    }
    if (spec.max_concurrent() > 0 || spec.priority() != 0) {
      out_ << "at most "
           << (spec.max_concurrent() > 0 ? absl::StrCat(spec.max_concurrent())
                                         : std::string("any number of"))
           << " runs at once, priority " << spec.priority() << "\n";
    }
    return 0;
  }

  int Sweep(const std::string& path, bool wait) {
    v1::SubmitSweepRequest request;
    if (absl::Status s = ReadYamlFile(path, request.mutable_spec()); !s.ok()) {
      err_ << TerminalSafe(s.message()) << "\n";
      return 2;
    }
    grpc::ClientContext context;
    v1::SubmitSweepResponse response;
    grpc::Status status = stub_->SubmitSweep(&context, request, &response);
    if (!status.ok()) return Refused("sweep", status);
    MakeTerminalSafe(response.mutable_sweep());
    out_ << "sweep " << response.sweep().id() << " \""
         << response.sweep().name() << "\": " << response.runs_size()
         << " runs";
    if (response.sweep().teacher_run_id()) {
      out_ << " (teacher run " << response.sweep().teacher_run_id() << ")";
    }
    out_ << "\n";
    if (!wait) return 0;
    int failed = 0;
    for (int i = 0; i < response.runs_size(); ++i) {
      out_ << "[" << i + 1 << "/" << response.runs_size() << "] ";
      failed += WatchRun(response.runs(i).id(), /*pruned_ok=*/true) != 0;
    }
    out_ << "\n";
    const int shown = Results(absl::StrCat(response.sweep().id()));
    return failed > 0 ? 1 : shown;
  }

  // `runs list [filters] [--sort=[-]KEY] [--limit=N] [--format=F]`.
  int List(const std::vector<std::string>& a) {
    v1::ListRunsRequest request;
    int64_t limit = 0;
    OutputFormat format = OutputFormat::kTable;
    auto bad = [&](const std::string& arg, const std::string& why) {
      err_ << "runs list: \"" << arg << "\": " << why << "\n";
      return 2;
    };
    for (size_t i = 2; i < a.size(); ++i) {
      const std::string& arg = a[i];
      const size_t eq = arg.find('=');
      if (arg.rfind("--", 0) != 0 || eq == std::string::npos)
        return bad(arg, "expected --FLAG=VALUE");
      const std::string flag = arg.substr(2, eq - 2),
                        value = arg.substr(eq + 1);
      int64_t n = 0;
      if (flag == "sweep" || flag == "teacher" || flag == "limit") {
        if (!absl::SimpleAtoi(value, &n) || n < 1)
          return bad(arg, "not a positive whole number");
        if (flag == "sweep") request.set_sweep_id(n);
        if (flag == "teacher") request.set_teacher_run_id(n);
        if (flag == "limit") limit = n;
      } else if (flag == "status") {
        v1::RunStatus status;
        if (!v1::RunStatus_Parse(absl::AsciiStrToUpper(value), &status))
          return bad(arg, "not a run status (QUEUED, RUNNING, SUCCEEDED, ...)");
        request.set_status(status);
      } else if (flag == "kind") {
        v1::ExperimentKind kind;
        if (!v1::ExperimentKind_Parse(absl::AsciiStrToUpper(value), &kind))
          return bad(arg, "not TRAIN_TEACHER, DISTILL or EVALUATE");
        request.set_kind(kind);
      } else if (flag == "member") {
        request.set_member(value);
      } else if (flag == "dataset") {
        request.add_where(absl::StrCat("dataset.name=", value));
      } else if (flag == "arch") {
        request.add_where(absl::StrCat("student.arch=", value));
      } else if (flag == "where") {
        request.add_where(value);
      } else if (flag == "since" || flag == "before") {
        absl::Time t;
        std::string why;
        if (!absl::ParseTime(absl::RFC3339_full, value, &t, &why) &&
            !absl::ParseTime("%Y-%m-%d", value, &t, &why)) {
          return bad(arg, "not a date (2026-11-20) or RFC 3339 time");
        }
        if (flag == "since")
          request.set_created_after_ms(absl::ToUnixMillis(t));
        if (flag == "before")
          request.set_created_before_ms(absl::ToUnixMillis(t));
      } else if (flag == "sort") {
        request.set_sort(value);
      } else if (flag == "tag") {
        request.add_tag(value);
      } else if (flag == "search") {
        request.set_note_contains(value);
      } else if (flag == "format") {
        absl::StatusOr<OutputFormat> f = ParseOutputFormat(value);
        if (!f.ok()) return bad(arg, std::string(f.status().message()));
        format = *f;
      } else {
        return bad(arg,
                   "runs list takes --sweep, --status, --kind, --teacher, "
                   "--member, --dataset, --arch, --where, --tag, --search, "
                   "--since, --before, "
                   "--sort, --limit, --format");
      }
    }
    if (limit > 0)
      request.set_page_size(int32_t(std::min<int64_t>(limit, 5000)));
    std::vector<v1::Run> runs;
    grpc::Status status = AllPages<v1::ListRunsResponse>(
        request,
        [&](auto* c, auto& r, auto* p) { return stub_->ListRuns(c, r, p); },
        [](const v1::ListRunsResponse& p) -> const auto& { return p.runs(); },
        &runs, limit);
    if (!status.ok()) return Refused("runs list", status);
    if (limit > 0 && int64_t(runs.size()) > limit) runs.resize(limit);
    if (format != OutputFormat::kJson) {
      for (v1::Run& run : runs) MakeTerminalSafe(&run);
    }
    switch (format) {
      case OutputFormat::kTable:
        out_ << FormatRunList(runs);
        break;
      case OutputFormat::kCsv:
        out_ << FormatRunListCsv(runs);
        break;
      case OutputFormat::kJson: {
        v1::ListRunsResponse all;
        for (v1::Run& run : runs) *all.add_runs() = std::move(run);
        out_ << ToJson(all) << "\n";
        break;
      }
    }
    return 0;
  }

  // The run's whole metric history as CSV, a page at a time.
  int Metrics(const std::vector<std::string>& a) {
    int64_t id;
    if (!absl::SimpleAtoi(a[2], &id) || id < 1) {
      err_ << "a run id is a positive integer, got \"" << a[2] << "\"\n";
      return 2;
    }
    std::string path;
    if (a.size() == 4) {
      if (a[3].rfind("--out=", 0) != 0) return Usage();
      path = a[3].substr(6);
    }
    std::ofstream file;
    if (!path.empty()) file.open(path);
    std::ostream& out = path.empty() ? out_ : file;
    out << "step,epoch,attempt,key,value,time_ms\n";
    v1::GetRunMetricsRequest request;
    request.set_run_id(id);
    int64_t points = 0;
    do {
      grpc::ClientContext context;
      v1::GetRunMetricsResponse response;
      grpc::Status status = stub_->GetRunMetrics(&context, request, &response);
      if (!status.ok()) return Refused("runs metrics", status);
      for (const v1::MetricPoint& p : response.points()) {
        out << p.step() << "," << p.epoch() << "," << p.attempt() << ","
            << CsvField(TerminalSafe(p.key())) << "," << absl::StrCat(p.value())
            << "," << p.time_ms() << "\n";
      }
      points += response.points_size();
      request.set_page_token(response.next_page_token());
    } while (!request.page_token().empty());
    if (!path.empty()) {
      if (!file) {
        err_ << "runs metrics: cannot write " << path << "\n";
        return 1;
      }
      out_ << "wrote " << path << " (" << points << " points)\n";
    }
    return 0;
  }

  int Show(int64_t id) {
    v1::WatchRunRequest request;
    request.set_id(id);
    request.set_include_history(true);
    grpc::ClientContext context;
    auto reader = stub_->WatchRun(&context, request);
    v1::RunEvent first;
    const bool got = reader->Read(&first);
    // Without a first event the stream ended by itself, with the reason
    // (NOT_FOUND for a missing run); with one, the rest is not needed.
    if (got) context.TryCancel();
    grpc::Status status = reader->Finish();
    if (!got) return Refused("runs show", status);
    MakeTerminalSafe(&first);
    out_ << FormatRunDetails(first.run(),
                             {first.metrics().begin(), first.metrics().end()});
    return 0;
  }

  // Shows one live progress line until the run ends; 1 unless it succeeded.
  int Watch(int64_t id) { return WatchRun(id, /*pruned_ok=*/false); }

  // Watch, 0 also when `pruned_ok` and its sweep stopped it early.
  int WatchRun(int64_t id, bool pruned_ok) {
    v1::WatchRunRequest request;
    request.set_id(id);
    request.set_include_history(true);
    grpc::ClientContext context;
    auto reader = stub_->WatchRun(&context, request);
    v1::RunEvent event;
    Progress progress;
    v1::Run run;
    std::string last_line;
    int32_t last_epoch = -1;
    v1::RunStatus last_status = v1::RUN_STATUS_UNSPECIFIED;
    while (reader->Read(&event)) {
      MakeTerminalSafe(&event);
      run = event.run();
      UpdateProgress(event, &progress);
      const std::string line = ProgressLine(run, progress);
      if (tty_) {
        out_ << "\r\033[K" << line << std::flush;
      } else if (progress.epoch != last_epoch || run.status() != last_status) {
        out_ << line << "\n" << std::flush;  // Logs get one line an epoch.
      }
      last_line = line;
      last_epoch = progress.epoch;
      last_status = run.status();
    }
    grpc::Status status = reader->Finish();
    if (tty_) out_ << "\n";
    if (!status.ok()) return Refused("watch", status);
    return run.status() == v1::SUCCEEDED ||
                   (pruned_ok && run.status() == v1::PRUNED)
               ? 0
               : 1;
  }

  int Cancel(int64_t id) {
    v1::CancelRunRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    v1::Run run;
    grpc::Status status = stub_->CancelRun(&context, request, &run);
    if (!status.ok()) return Refused("cancel", status);
    out_ << "run " << run.id() << " " << v1::RunStatus_Name(run.status())
         << "\n";
    return 0;
  }

  // The run's file `name`, or the gRPC status that refused it.
  absl::StatusOr<std::string> Fetch(int64_t id, const std::string& name) {
    v1::DownloadRunFileRequest request;
    request.set_run_id(id);
    request.set_name(name);
    grpc::ClientContext context;
    auto reader = stub_->DownloadRunFile(&context, request);
    v1::FileChunk chunk;
    std::string data;
    while (reader->Read(&chunk)) data += chunk.data();
    grpc::Status status = reader->Finish();
    if (!status.ok()) {
      const absl::Status s = FromGrpcStatus(status);
      return absl::Status(s.code(),
                          absl::StrCat(absl::StatusCodeToString(s.code()), ": ",
                                       TerminalSafe(s.message())));
    }
    return data;
  }

  int Download(int64_t id, const std::string& name, const std::string& path) {
    absl::StatusOr<std::string> data = Fetch(id, name);
    if (!data.ok()) {
      err_ << "download: " << data.status().message() << "\n";
      return 1;
    }
    std::ofstream file(path, std::ios::binary);
    file << *data;
    if (!file) {
      err_ << "download: cannot write " << path << "\n";
      return 1;
    }
    out_ << "wrote " << path << " (" << data->size() << " bytes)\n";
    return 0;
  }

  int Tsne(int64_t id) {
    absl::StatusOr<std::string> csv = Fetch(id, "tsne.csv");
    if (!csv.ok()) {
      err_ << "tsne: " << csv.status().message() << "\n";
      return 1;
    }
    out_ << TsnePlot(*csv);
    return 0;
  }

  int Results(const std::string& sweep, const std::string& column_names = "",
              const std::string& format_name = "table") {
    absl::StatusOr<std::vector<ResultColumn>> columns =
        ParseResultColumns(column_names);
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_name);
    for (const absl::Status& s : {columns.status(), format.status()}) {
      if (!s.ok()) {
        err_ << "results: " << s.message() << "\n";
        return 2;
      }
    }
    v1::GetSweepResultsRequest request;
    request.set_sweep(sweep);
    grpc::ClientContext context;
    v1::SweepResults results;
    grpc::Status status = stub_->GetSweepResults(&context, request, &results);
    if (!status.ok()) return Refused("results", status);
    if (*format != OutputFormat::kJson) MakeTerminalSafe(&results);
    switch (*format) {
      case OutputFormat::kTable:
        out_ << FormatResultsTable(results, *columns);
        break;
      case OutputFormat::kCsv:
        out_ << FormatResultsCsv(results, *columns);
        break;
      case OutputFormat::kJson:
        out_ << ToJson(results) << "\n";
        break;
    }
    return 0;
  }

  // `report SWEEP [-o FILE | --out=FILE] [--columns=...]`: one HTML file.
  int Report(const std::vector<std::string>& a) {
    std::string sweep, path = "report.html", column_names;
    for (size_t i = 1; i < a.size(); ++i) {
      if (a[i] == "-o" && i + 1 < a.size()) {
        path = a[++i];
      } else if (a[i].rfind("--out=", 0) == 0) {
        path = a[i].substr(6);
      } else if (a[i].rfind("--columns=", 0) == 0) {
        column_names = a[i].substr(10);
      } else if (a[i].rfind("-", 0) != 0 && sweep.empty()) {
        sweep = a[i];
      } else {
        return Usage();
      }
    }
    if (sweep.empty()) return Usage();
    absl::StatusOr<std::vector<ResultColumn>> columns =
        ParseResultColumns(column_names);
    if (!columns.ok()) {
      err_ << "report: " << columns.status().message() << "\n";
      return 2;
    }
    v1::SweepResults results;
    {
      v1::GetSweepResultsRequest request;
      request.set_sweep(sweep);
      grpc::ClientContext context;
      grpc::Status status = stub_->GetSweepResults(&context, request, &results);
      if (!status.ok()) return Refused("report", status);
    }
    // Each member's history as a watcher's first event has it (each key
    // spread over at most 300 points) and its t-SNE maps.
    std::vector<ReportRun> runs;
    for (const v1::MemberResult& m : results.members()) {
      ReportRun run;
      run.run_id = m.run_id();
      v1::WatchRunRequest request;
      request.set_id(m.run_id());
      request.set_include_history(true);
      request.set_history_points_per_key(kReportPointsPerCurve);
      grpc::ClientContext context;
      auto reader = stub_->WatchRun(&context, request);
      v1::RunEvent first;
      if (reader->Read(&first)) {
        run.history.assign(first.metrics().begin(), first.metrics().end());
      }
      context.TryCancel();
      reader->Finish();
      if (m.status() == v1::SUCCEEDED) {
        absl::StatusOr<std::string> csv = Fetch(m.run_id(), "tsne.csv");
        if (csv.ok()) run.tsne_csv = *std::move(csv);
      }
      runs.push_back(std::move(run));
    }
    std::ofstream file(path, std::ios::binary);
    file << RenderReport(results, runs, *columns);
    if (!file) {
      err_ << "report: cannot write " << path << "\n";
      return 1;
    }
    out_ << "report of sweep " << results.sweep().id() << " ("
         << results.members_size() << " members) written to " << path << "\n";
    return 0;
  }

  // `tag RUN|--sweep=S KEY=VALUE... -KEY...`, `note RUN|--sweep=S TEXT`.
  int Annotate(const std::vector<std::string>& a) {
    v1::AnnotateRequest request;
    if (a[1].rfind("--sweep=", 0) == 0) {
      request.set_sweep(a[1].substr(8));
    } else {
      int64_t id;
      if (!absl::SimpleAtoi(a[1], &id) || id < 1) {
        err_ << a[0] << ": a run id is a positive integer, got \"" << a[1]
             << "\" (or --sweep=SWEEP)\n";
        return 2;
      }
      request.set_run_id(id);
    }
    if (a[0] == "note") {
      if (a.size() != 3) return Usage();
      request.set_note(a[2]);
    } else {
      for (size_t i = 2; i < a.size(); ++i) {
        const size_t eq = a[i].find('=');
        if (a[i].rfind("-", 0) == 0 && eq == std::string::npos) {
          request.add_remove_tags(a[i].substr(1));
        } else if (eq != std::string::npos && eq > 0) {
          (*request.mutable_set_tags())[a[i].substr(0, eq)] =
              a[i].substr(eq + 1);
        } else {
          err_ << "tag: \"" << a[i] << "\" is neither KEY=VALUE nor -KEY\n";
          return 2;
        }
      }
    }
    grpc::ClientContext context;
    v1::AnnotateResponse response;
    grpc::Status status = stub_->Annotate(&context, request, &response);
    if (!status.ok()) return Refused(a[0].c_str(), status);
    MakeTerminalSafe(&response);
    std::vector<std::string> tags;
    for (const auto& [key, value] : response.tags())
      tags.push_back(absl::StrCat(key, "=", value));
    std::sort(tags.begin(), tags.end());
    out_ << (request.has_run_id()
                 ? absl::StrCat("run ", request.run_id())
                 : absl::StrCat("sweep ", TerminalSafe(request.sweep())))
         << ": tags " << (tags.empty() ? "(none)" : absl::StrJoin(tags, " "));
    if (!response.note().empty()) out_ << "; note: " << response.note();
    out_ << "\n";
    return 0;
  }

  // `compare A B` (two sweeps) or `compare --runs=ID,ID,...`, with
  // --columns and --format.
  int Compare(const std::vector<std::string>& a) {
    std::vector<std::string> sweeps;
    std::vector<int64_t> run_ids;
    std::string column_names, format_name = "table";
    for (size_t i = 1; i < a.size(); ++i) {
      if (a[i].rfind("--columns=", 0) == 0) {
        column_names = a[i].substr(10);
      } else if (a[i].rfind("--format=", 0) == 0) {
        format_name = a[i].substr(9);
      } else if (a[i].rfind("--runs=", 0) == 0) {
        for (absl::string_view id : absl::StrSplit(a[i].substr(7), ',')) {
          int64_t run = 0;
          if (!absl::SimpleAtoi(id, &run) || run < 1) {
            err_ << "compare: \"" << id << "\" is not a run id\n";
            return 2;
          }
          run_ids.push_back(run);
        }
      } else if (a[i].rfind("--", 0) == 0) {
        return Usage();
      } else {
        sweeps.push_back(a[i]);
      }
    }
    absl::StatusOr<std::vector<ResultColumn>> columns =
        ParseResultColumns(column_names.empty() ? "top1" : column_names);
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_name);
    for (const absl::Status& s : {columns.status(), format.status()}) {
      if (!s.ok()) {
        err_ << "compare: " << s.message() << "\n";
        return 2;
      }
    }
    if (!run_ids.empty() && sweeps.empty()) {
      if (run_ids.size() > 100) {
        err_ << "compare: at most 100 runs, got " << run_ids.size() << "\n";
        return 2;
      }
      std::vector<v1::Run> runs;
      for (int64_t id : run_ids) {
        v1::Run& run = runs.emplace_back();
        if (grpc::Status s = FetchRun(id, &run); !s.ok())
          return Refused("compare", s);
        if (*format != OutputFormat::kJson) MakeTerminalSafe(&run);
      }
      out_ << FormatRunComparison(runs, *format);
      return 0;
    }
    if (sweeps.size() != 2 || !run_ids.empty()) {
      err_ << "compare takes two sweeps (ids or names) or --runs=ID,ID,...\n";
      return 2;
    }
    v1::SweepResults results[2];
    for (int i = 0; i < 2; ++i) {
      v1::GetSweepResultsRequest request;
      request.set_sweep(sweeps[i]);
      grpc::ClientContext context;
      grpc::Status status =
          stub_->GetSweepResults(&context, request, &results[i]);
      if (!status.ok()) return Refused("compare", status);
      if (*format != OutputFormat::kJson) MakeTerminalSafe(&results[i]);
    }
    out_ << FormatSweepComparison(results[0], results[1], *columns, *format);
    return 0;
  }

  // tokens create --role=ROLE --name=NAME [--out=FILE]: the secret goes to
  // FILE (0600) or alone on stdout; what was made to stderr.
  int CreateToken(const std::vector<std::string>& a) {
    v1::CreateTokenRequest request;
    std::string out_file;
    for (size_t i = 2; i < a.size(); ++i) {
      v1::Role role;
      if (a[i].rfind("--role=", 0) == 0 &&
          v1::Role_Parse("ROLE_" + absl::AsciiStrToUpper(a[i].substr(7)),
                         &role) &&
          role != v1::ROLE_UNSPECIFIED) {
        request.set_role(role);
      } else if (a[i].rfind("--name=", 0) == 0) {
        request.set_name(a[i].substr(7));
      } else if (a[i].rfind("--out=", 0) == 0) {
        out_file = a[i].substr(6);
      } else {
        err_ << "tokens create takes --role=viewer|researcher|worker|admin, "
                "--name=NAME and --out=FILE, got \""
             << a[i] << "\"\n";
        return 2;
      }
    }
    if (request.role() == v1::ROLE_UNSPECIFIED || request.name().empty()) {
      err_ << "tokens create needs --role and --name\n";
      return 2;
    }
    grpc::ClientContext context;
    v1::CreateTokenResponse response;
    grpc::Status status = admin_->CreateToken(&context, request, &response);
    if (!status.ok()) return Refused("tokens create", status);
    MakeTerminalSafe(response.mutable_token());
    if (!out_file.empty()) {
      if (absl::Status s = WriteTokenFile(out_file, response.secret());
          !s.ok()) {
        err_ << "tokens create: " << s.message() << " (token "
             << response.token().id() << " was made; revoke it)\n";
        return 1;
      }
    } else {
      out_ << response.secret() << "\n";
    }
    err_ << "made token " << response.token().id() << " \""
         << response.token().name() << "\" ("
         << RoleWord(response.token().role()) << ")"
         << (out_file.empty() ? "" : " in " + out_file)
         << "; the secret is not shown again\n";
    return 0;
  }

  int ListTokens(const std::string& format_name = "table") {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_name);
    if (!format.ok()) {
      err_ << "tokens list: " << format.status().message() << "\n";
      return 2;
    }
    std::vector<v1::Token> tokens;
    grpc::Status status = AllPages<v1::ListTokensResponse>(
        v1::ListTokensRequest(),
        [&](auto* c, auto& r, auto* p) { return admin_->ListTokens(c, r, p); },
        [](const v1::ListTokensResponse& p) -> const auto& {
          return p.tokens();
        },
        &tokens);
    if (!status.ok()) return Refused("tokens list", status);
    if (*format == OutputFormat::kJson) {
      v1::ListTokensResponse all;
      for (v1::Token& t : tokens) *all.add_tokens() = std::move(t);
      out_ << ToJson(all) << "\n";
      return 0;
    }
    for (v1::Token& t : tokens) MakeTerminalSafe(&t);
    if (*format == OutputFormat::kCsv) {
      out_ << "id,name,role,created_ms,revoked_ms\n";
      for (const v1::Token& t : tokens) {
        out_ << t.id() << "," << CsvField(t.name()) << "," << RoleWord(t.role())
             << "," << t.created_ms() << "," << t.revoked_ms() << "\n";
      }
      return 0;
    }
    out_ << absl::StrFormat("%-5s %-24s %-11s %-20s %s\n", "ID", "NAME", "ROLE",
                            "CREATED", "REVOKED");
    for (const v1::Token& t : tokens) {
      out_ << absl::StrFormat("%-5d %-24s %-11s %-20s %s\n", t.id(), t.name(),
                              RoleWord(t.role()), Time(t.created_ms()),
                              t.revoked_ms() ? Time(t.revoked_ms()) : "-");
    }
    return 0;
  }

  int RevokeToken(int64_t id) {
    v1::RevokeTokenRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    v1::Token token;
    grpc::Status status = admin_->RevokeToken(&context, request, &token);
    if (!status.ok()) return Refused("tokens revoke", status);
    MakeTerminalSafe(&token);
    out_ << "revoked token " << token.id() << " \"" << token.name() << "\" ("
         << RoleWord(token.role()) << ")\n";
    return 0;
  }

  // For probes (Compose healthcheck, Kubernetes exec probes, which unlike
  // gRPC probes speak TLS): the standard health check, no token needed.
  int Health() {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(5));
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = health_->Check(
        &context, grpc::health::v1::HealthCheckRequest(), &response);
    if (!status.ok()) return Refused("health", status);
    out_ << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                response.status())
         << "\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
               ? 0
               : 1;
  }

  // `runs show ID --format=csv|json`: the run (spec, results, tags,
  // provenance, files) as data; table is `runs show ID` itself.
  int ShowAs(int64_t id, const std::string& format_name) {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_name);
    if (!format.ok()) {
      err_ << "runs show: " << format.status().message() << "\n";
      return 2;
    }
    if (*format == OutputFormat::kTable) return Show(id);
    v1::Run run;
    if (grpc::Status s = FetchRun(id, &run); !s.ok())
      return Refused("runs show", s);
    out_ << (*format == OutputFormat::kJson
                 ? ToJson(run) + "\n"
                 : FormatRunCsv(TerminalSafeCopy(run)));
    return 0;
  }

  int ListWorkers(const std::string& format_name = "table") {
    absl::StatusOr<OutputFormat> format = ParseOutputFormat(format_name);
    if (!format.ok()) {
      err_ << "workers list: " << format.status().message() << "\n";
      return 2;
    }
    std::vector<v1::Worker> workers;
    grpc::Status status = AllPages<v1::ListWorkersResponse>(
        v1::ListWorkersRequest(),
        [&](auto* c, auto& r, auto* p) { return stub_->ListWorkers(c, r, p); },
        [](const v1::ListWorkersResponse& p) -> const auto& {
          return p.workers();
        },
        &workers);
    if (!status.ok()) return Refused("workers list", status);
    if (*format == OutputFormat::kJson) {
      v1::ListWorkersResponse all;
      for (v1::Worker& w : workers) *all.add_workers() = std::move(w);
      out_ << ToJson(all) << "\n";
      return 0;
    }
    for (v1::Worker& w : workers) MakeTerminalSafe(&w);
    if (*format == OutputFormat::kCsv) {
      out_ << FormatWorkersCsv(workers);
      return 0;
    }
    out_ << absl::StrFormat("%-28s %-9s %-8s %5s  %-19s  %s\n", "ID", "STATE",
                            "DEVICE", "RUN", "LAST SEEN (UTC)",
                            "LIBTORCH, BLAS");
    for (const v1::Worker& w : workers) {
      out_ << absl::StrFormat(
          "%-28s %-9s %-8s %5s  %-19s  %s, %s\n", w.id(), w.state(), w.device(),
          w.run_id() ? absl::StrCat(w.run_id()) : "-", Time(w.last_seen_ms()),
          w.libtorch_version(),
          std::filesystem::path(w.blas()).filename().string());
    }
    return 0;
  }

  int Drain(const std::string& id) {
    v1::DrainWorkerRequest request;
    request.set_id(id);
    grpc::ClientContext context;
    v1::Worker worker;
    grpc::Status status = stub_->DrainWorker(&context, request, &worker);
    if (!status.ok()) return Refused("workers drain", status);
    MakeTerminalSafe(&worker);
    out_ << "worker " << worker.id() << " drains"
         << (worker.run_id() ? absl::StrCat(": run ", worker.run_id(),
                                            " is handed back with a resume "
                                            "point, then it stops")
                             : ", then stops")
         << "\n";
    return 0;
  }

  static std::string RoleWord(v1::Role role) {
    // A role this CLI does not know (a newer coordinator's) by its number:
    // Role_Name gives "" for it.
    const std::string name = v1::Role_Name(role);
    if (!absl::StartsWith(name, "ROLE_"))
      return absl::StrCat("role ", static_cast<int>(role));
    return absl::AsciiStrToLower(name.substr(5));
  }

  static std::string Time(int64_t ms) {
    return absl::FormatTime("%Y-%m-%d %H:%M:%S", absl::FromUnixMillis(ms),
                            absl::UTCTimeZone());
  }

  std::unique_ptr<ExperimentService::Stub> stub_;
  std::unique_ptr<v1::AdminService::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::ostream& out_;
  std::ostream& err_;
  const bool tty_;
};

}  // namespace

std::string CliUsage() {
  return "usage: distill [--coordinator=HOST:PORT] [--token_file=FILE] "
         "[--tls_ca=CA.pem [--tls_cert=C.pem --tls_key=K.pem]] COMMAND\n"
         "  submit FILE             submit one run (an ExperimentSpec YAML "
         "file)\n"
         "  sweep FILE --dry-run    list the members a sweep file expands to\n"
         "  sweep retry SWEEP       queue again its failed and cancelled "
         "members\n"
         "  sweep cancel SWEEP      cancel every run of it that has not ended\n"
         "  sweep FILE [--wait]     submit a sweep (a SweepSpec YAML file); "
         "--wait\n"
         "                          watches every run and prints the results "
         "table\n"
         "  runs list [--sweep=ID] [--status=S] [--kind=K] [--teacher=RUN]\n"
         "            [--member=NAME|GLOB] [--dataset=NAME] [--arch=ARCH]\n"
         "            [--where=PATH=VALUE]... [--since=DATE] [--before=DATE]\n"
         "            [--tag=KEY[=VALUE]]... [--search=NOTE TEXT]\n"
         "            [--sort=[-]RESULT] [--limit=N] "
         "[--format=table|csv|json]\n"
         "  runs show ID [--format=table|csv|json]\n"
         "                          spec, results, files, plots of loss and "
         "top-1\n"
         "  runs metrics ID [--out=FILE.csv]\n"
         "                          every metric point of the run, as CSV\n"
         "  watch ID                one live progress line; exit 1 unless it "
         "succeeded\n"
         "  cancel ID               cancel a waiting, queued or running run\n"
         "  results SWEEP [--columns=top1,knn,nmi,ari,agree,cka,overlap]\n"
         "                [--format=table|csv|json]\n"
         "                          the Table 1 layout for a sweep (id or "
         "name)\n"
         "  tag RUN|--sweep=S KEY=VALUE... [-KEY]...  set or remove tags\n"
         "  note RUN|--sweep=S TEXT  replace the note of a run or a sweep\n"
         "  report SWEEP [-o FILE] [--columns=...]\n"
         "                          one self-contained HTML file: the table, "
         "curves,\n"
         "                          a heat map over two grid axes, t-SNE maps\n"
         "  compare A B [--columns=...] [--format=...]\n"
         "                          two sweeps' members side by side, and the "
         "difference\n"
         "  compare --runs=ID,ID,... every result of the runs side by side\n"
         "  tsne ID                 plot the run's t-SNE maps of teacher and "
         "student\n"
         "  download ID NAME [OUT]  save a file of the run (checkpoint, "
         "tsne.csv)\n"
         "  health                  SERVING (exit 0) or not: for probes, no "
         "token needed\n"
         "  workers list            every worker: state (idle, running, "
         "draining, lost,\n"
         "                          stopped), its run, last heartbeat\n"
         "  workers drain ID        the worker hands its run back (resume "
         "point) and stops\n"
         "  tokens create --role=viewer|researcher|worker|admin --name=NAME "
         "[--out=FILE]\n"
         "                          (admin) a new token: its secret to FILE "
         "or stdout\n"
         "  tokens list [--format=table|csv|json]\n"
         "                          (admin) every token, revoked ones too\n"
         "  tokens revoke ID        (admin) the token stops working at once\n"
         "The coordinator defaults to $DISTILL_COORDINATOR, else "
         "127.0.0.1:50051;\n"
         "TLS to it when --tls_ca (or $DISTILL_TLS_CA) names the CA its "
         "certificate chains to;\n"
         "a client certificate from --tls_cert/--tls_key ($DISTILL_TLS_CERT, "
         "$DISTILL_TLS_KEY).\n"
         "The token goes with every call: --token_file=FILE, else "
         "$DISTILL_TOKEN_FILE, else $DISTILL_TOKEN.\n";
}

int RunCli(const std::vector<std::string>& args,
           std::shared_ptr<grpc::Channel> channel, std::ostream& out,
           std::ostream& err) {
  return Cli(std::move(channel), out, err).Run(args);
}

}  // namespace distill
