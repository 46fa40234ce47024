// The verbs about labels and the installation: tag, note, health, workers
// list|drain, tokens create|list|revoke.
#include <algorithm>
#include <filesystem>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "common/byte_sizes.h"
#include "common/roles.h"
#include "common/token.h"
#include "common/worker_status.h"
#include "render/runs.h"
#include "render/terminal.h"

namespace distill {
namespace {

// What a tag or note is on: a run (its id) or, with --sweep, a sweep.
struct Target {
  std::string run;  // The first word, when it names the run.
  std::string sweep;
};

// Fills the request's target from `target`; false with an error shown.
bool SetTarget(Session& s, const char* verb, const Target& target,
               v1::AnnotateRequest* request) {
  if (!target.sweep.empty()) {
    request->set_sweep(target.sweep);
    return true;
  }
  int64_t id;
  if (!ParseRunId(target.run, &id)) {
    s.Usage(verb, absl::StrCat("a run id is a positive integer, got \"",
                               target.run, "\" (or --sweep=SWEEP)"));
    return false;
  }
  request->set_run_id(id);
  return true;
}

int Annotate(Session& s, const char* verb, v1::AnnotateRequest request) {
  grpc::ClientContext context;
  v1::AnnotateResponse response;
  grpc::Status status = s.experiments().Annotate(&context, request, &response);
  if (!status.ok()) return s.Refused(verb, status);
  MakeTerminalSafe(&response);
  std::vector<std::string> tags;
  for (const auto& [key, value] : response.tags())
    tags.push_back(absl::StrCat(key, "=", value));
  std::sort(tags.begin(), tags.end());
  s.out() << (request.has_run_id()
                  ? absl::StrCat("run ", request.run_id())
                  : absl::StrCat("sweep ", TerminalSafe(request.sweep())))
          << ": tags " << (tags.empty() ? "(none)" : absl::StrJoin(tags, " "));
  if (!response.note().empty()) s.out() << "; note: " << response.note();
  s.out() << "\n";
  return kExitOk;
}

// `tag RUN|--sweep=S KEY=VALUE... -KEY...`: "-KEY" removes a tag, so the
// words after the target are taken as they are, not as flags.
void AddTag(CLI::App& app, Command* chosen) {
  auto target = std::make_shared<Target>();
  CLI::App* verb = app.add_subcommand(
      "tag", "set (KEY=VALUE) or remove (-KEY) tags of a run or a sweep");
  verb->add_option("--sweep", target->sweep, "a sweep's id or name");
  verb->add_option("run", target->run, "the run's id (or --sweep)");
  verb->prefix_command();
  verb->fallthrough(false);
  verb->callback([=] {
    std::vector<std::string> words = verb->remaining();
    // With --sweep the first word is a tag.
    if (!target->sweep.empty() && !target->run.empty())
      words.insert(words.begin(), target->run);
    *chosen = [=](Session& s) {
      v1::AnnotateRequest request;
      if (!SetTarget(s, "tag", *target, &request)) return kExitUsage;
      if (words.empty()) return s.Usage("tag", "no KEY=VALUE or -KEY given");
      for (const std::string& w : words) {
        const size_t eq = w.find('=');
        if (absl::StartsWith(w, "-") && eq == std::string::npos) {
          request.add_remove_tags(w.substr(1));
        } else if (eq != std::string::npos && eq > 0) {
          (*request.mutable_set_tags())[w.substr(0, eq)] = w.substr(eq + 1);
        } else {
          return s.Usage(
              "tag", absl::StrCat("\"", w, "\" is neither KEY=VALUE nor -KEY"));
        }
      }
      return Annotate(s, "tag", std::move(request));
    };
  });
}

void AddNote(CLI::App& app, Command* chosen) {
  auto target = std::make_shared<Target>();
  auto words = std::make_shared<std::vector<std::string>>();
  CLI::App* verb = app.add_subcommand(
      "note", "replace the note of a run or a sweep (\"\" clears it)");
  verb->add_option("--sweep", target->sweep, "a sweep's id or name");
  verb->add_option("words", *words, "RUN TEXT, or TEXT with --sweep")
      ->expected(1, 2)
      ->required();
  verb->callback([=] {
    const size_t want = target->sweep.empty() ? 2 : 1;
    if (words->size() != want) {
      throw CLI::ValidationError("note takes RUN TEXT, or --sweep=SWEEP TEXT");
    }
    if (want == 2) target->run = words->front();
    *chosen = [=](Session& s) {
      v1::AnnotateRequest request;
      if (!SetTarget(s, "note", *target, &request)) return kExitUsage;
      request.set_note(words->back());
      return Annotate(s, "note", std::move(request));
    };
  });
}

// For probes (Compose healthcheck, Kubernetes exec probes, which unlike
// gRPC probes speak TLS): the standard health check, no token needed.
void AddHealth(CLI::App& app, Command* chosen) {
  CLI::App* verb = app.add_subcommand(
      "health",
      "SERVING (exit 0) or not (exit 1): for probes, no token needed");
  verb->callback([=] {
    *chosen = [](Session& s) {
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           std::chrono::seconds(5));
      grpc::health::v1::HealthCheckResponse response;
      grpc::Status status = s.health().Check(
          &context, grpc::health::v1::HealthCheckRequest(), &response);
      if (!status.ok()) return s.Refused("health", status);
      s.out() << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
                     response.status())
              << "\n";
      return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
                 ? kExitOk
                 : kExitFailed;
    };
  });
}

int ListWorkers(Session& s, const std::string& format_name) {
  std::vector<v1::Worker> workers;
  std::string paused;  // Why no run is leased, as the first page says.
  grpc::Status status = Session::AllPages<v1::ListWorkersResponse>(
      v1::ListWorkersRequest(),
      [&](auto* c, auto& r, auto* p) {
        return s.experiments().ListWorkers(c, r, p);
      },
      [&](const v1::ListWorkersResponse& p) -> const auto& {
        if (paused.empty()) paused = p.leasing_paused();
        return p.workers();
      },
      &workers);
  if (!status.ok()) return s.Refused("workers list", status);
  const OutputFormat format = FormatOf(format_name);
  if (format == OutputFormat::kJson) {
    v1::ListWorkersResponse all;
    for (v1::Worker& w : workers) *all.add_workers() = std::move(w);
    all.set_leasing_paused(paused);
    s.out() << ToJson(all) << "\n";
    return kExitOk;
  }
  for (v1::Worker& w : workers) MakeTerminalSafe(&w);
  if (!paused.empty()) {
    // Beside the table, not in it: a CSV's reader gets only rows.
    (format == OutputFormat::kCsv ? s.err() : s.out())
        << "leasing paused: " << TerminalSafe(paused) << "\n";
  }
  if (format == OutputFormat::kCsv) {
    s.out() << FormatWorkersCsv(workers);
    return kExitOk;
  }
  s.out() << absl::StrFormat("%-28s %-9s %-8s %5s  %-19s  %-24s  %-9s  %s\n",
                             "ID", "STATE", "DEVICE", "RUN", "LAST SEEN (UTC)",
                             "LIBTORCH, BLAS", "MEMORY", "LABELS");
  for (const v1::Worker& w : workers) {
    std::vector<std::string> labels(w.labels().begin(), w.labels().end());
    s.out() << absl::StrFormat(
        "%-28s %-9s %-8s %5s  %-19s  %-24s  %-9s  %s\n", w.id(),
        WorkerStatusWord(w), w.device(),
        w.run_id() ? absl::StrCat(w.run_id()) : "-", TimeText(w.last_seen_ms()),
        absl::StrCat(w.libtorch_version(), ", ",
                     std::filesystem::path(w.blas()).filename().string()),
        w.device_memory_bytes() > 0 ? HumanBytes(w.device_memory_bytes()) : "-",
        labels.empty() ? "-" : absl::StrJoin(labels, ","));
  }
  return kExitOk;
}

void AddWorkers(CLI::App& app, Command* chosen) {
  CLI::App* workers = app.add_subcommand("workers", "the GPU workers");
  workers->require_subcommand(1);
  {
    auto format = std::make_shared<std::string>("table");
    CLI::App* verb = workers->add_subcommand(
        "list",
        "every worker: state (idle, running, draining, lost, stopped), its "
        "run, last heartbeat");
    AddFormatFlag(verb, format.get());
    verb->callback(
        [=] { *chosen = [=](Session& s) { return ListWorkers(s, *format); }; });
  }
  auto id = std::make_shared<std::string>();
  CLI::App* verb = workers->add_subcommand(
      "drain", "the worker hands its run back (resume point) and stops");
  verb->add_option("worker", *id, "the worker's id")->required();
  verb->callback([=] {
    *chosen = [=](Session& s) {
      v1::DrainWorkerRequest request;
      request.set_id(*id);
      grpc::ClientContext context;
      v1::Worker worker;
      grpc::Status status =
          s.experiments().DrainWorker(&context, request, &worker);
      if (!status.ok()) return s.Refused("workers drain", status);
      MakeTerminalSafe(&worker);
      s.out() << "worker " << worker.id() << " drains"
              << (worker.run_id()
                      ? absl::StrCat(": run ", worker.run_id(),
                                     " is handed back with a resume point, "
                                     "then it stops")
                      : ", then stops")
              << "\n";
      return kExitOk;
    };
  });
}

struct NewToken {
  std::string role, name, out;
};

int CreateToken(Session& s, const NewToken& t) {
  v1::CreateTokenRequest request;
  v1::Role role;
  v1::Role_Parse("ROLE_" + absl::AsciiStrToUpper(t.role), &role);
  request.set_role(role);
  request.set_name(t.name);
  grpc::ClientContext context;
  v1::CreateTokenResponse response;
  grpc::Status status = s.admin().CreateToken(&context, request, &response);
  if (!status.ok()) return s.Refused("tokens create", status);
  MakeTerminalSafe(response.mutable_token());
  if (!t.out.empty()) {
    if (absl::Status st = WriteTokenFile(t.out, response.secret()); !st.ok()) {
      s.err() << "tokens create: " << st.message() << " (token "
              << response.token().id() << " was made; revoke it)\n";
      return kExitFailed;
    }
  } else {
    s.out() << response.secret() << "\n";
  }
  s.err() << "made token " << response.token().id() << " \""
          << response.token().name() << "\" ("
          << RoleName(response.token().role()) << ")"
          << (t.out.empty() ? "" : " in " + t.out)
          << "; the secret is not shown again\n";
  return kExitOk;
}

int ListTokens(Session& s, const std::string& format_name) {
  std::vector<v1::Token> tokens;
  grpc::Status status = Session::AllPages<v1::ListTokensResponse>(
      v1::ListTokensRequest(),
      [&](auto* c, auto& r, auto* p) { return s.admin().ListTokens(c, r, p); },
      [](const v1::ListTokensResponse& p) -> const auto& { return p.tokens(); },
      &tokens);
  if (!status.ok()) return s.Refused("tokens list", status);
  const OutputFormat format = FormatOf(format_name);
  if (format == OutputFormat::kJson) {
    v1::ListTokensResponse all;
    for (v1::Token& t : tokens) *all.add_tokens() = std::move(t);
    s.out() << ToJson(all) << "\n";
    return kExitOk;
  }
  for (v1::Token& t : tokens) MakeTerminalSafe(&t);
  if (format == OutputFormat::kCsv) {
    s.out() << "id,name,role,created_ms,revoked_ms\n";
    for (const v1::Token& t : tokens) {
      s.out() << t.id() << "," << CsvField(t.name()) << ","
              << RoleName(t.role()) << "," << t.created_ms() << ","
              << t.revoked_ms() << "\n";
    }
    return kExitOk;
  }
  s.out() << absl::StrFormat("%-5s %-24s %-11s %-20s %s\n", "ID", "NAME",
                             "ROLE", "CREATED", "REVOKED");
  for (const v1::Token& t : tokens) {
    s.out() << absl::StrFormat("%-5d %-24s %-11s %-20s %s\n", t.id(), t.name(),
                               RoleName(t.role()), TimeText(t.created_ms()),
                               t.revoked_ms() ? TimeText(t.revoked_ms()) : "-");
  }
  return kExitOk;
}

void AddTokens(CLI::App& app, Command* chosen) {
  CLI::App* tokens = app.add_subcommand("tokens", "(admin) the access tokens");
  tokens->require_subcommand(1);
  {
    auto t = std::make_shared<NewToken>();
    CLI::App* verb = tokens->add_subcommand(
        "create", "a new token: its secret to --out FILE (0600) or stdout");
    verb->add_option("--role", t->role, RoleList(kRoles))
        ->required()
        ->check(CLI::IsMember(RoleNames()));
    verb->add_option("--name", t->name, "who or what it is for")->required();
    verb->add_option("--out", t->out, "a file for the secret (0600)");
    verb->callback(
        [=] { *chosen = [=](Session& s) { return CreateToken(s, *t); }; });
  }
  {
    auto format = std::make_shared<std::string>("table");
    CLI::App* verb =
        tokens->add_subcommand("list", "every token, revoked ones too");
    AddFormatFlag(verb, format.get());
    verb->callback(
        [=] { *chosen = [=](Session& s) { return ListTokens(s, *format); }; });
  }
  auto which = std::make_shared<std::string>();
  CLI::App* verb =
      tokens->add_subcommand("revoke", "the token stops working at once");
  verb->add_option("token", *which, "the token's id or name")->required();
  verb->callback([=] {
    *chosen = [=](Session& s) {
      v1::RevokeTokenRequest request;
      int64_t id = 0;
      if (ParseRunId(*which, &id)) {
        request.set_id(id);
      } else {
        request.set_name(*which);
      }
      grpc::ClientContext context;
      v1::Token token;
      grpc::Status status = s.admin().RevokeToken(&context, request, &token);
      if (!status.ok()) return s.Refused("tokens revoke", status);
      MakeTerminalSafe(&token);
      s.out() << "revoked token " << token.id() << " \"" << token.name()
              << "\" (" << RoleName(token.role()) << ")\n";
      return kExitOk;
    };
  });
}

void AddBackup(CLI::App& app, Command* chosen) {
  CLI::App* verb = app.add_subcommand(
      "backup",
      "(admin) a backup now, into the coordinator's --backup_dir: the "
      "database as of one moment and the run files no earlier backup has");
  verb->callback([=] {
    *chosen = [](Session& s) {
      grpc::ClientContext context;
      v1::BackupResponse taken;
      grpc::Status status =
          s.admin().Backup(&context, v1::BackupRequest(), &taken);
      if (!status.ok()) return s.Refused("backup", status);
      s.out() << "backup " << TerminalSafe(taken.snapshot()) << ": database "
              << taken.database_bytes() << " bytes, " << taken.files()
              << " run files (" << taken.files_copied() << " new, "
              << taken.bytes_copied() << " bytes copied) in " << taken.took_ms()
              << " ms\n";
      return kExitOk;
    };
  });
}

// `distill gc`: what the retention policies drop, one line a file.
int CollectGarbage(Session& s, const v1::CollectGarbageRequest& request) {
  grpc::ClientContext context;
  v1::CollectGarbageResponse answer;
  grpc::Status status = s.admin().CollectGarbage(&context, request, &answer);
  if (!status.ok()) return s.Refused("gc", status);
  MakeTerminalSafe(&answer);
  for (const v1::DroppedRunFile& f : answer.dropped()) {
    s.out() << absl::StrFormat(
        "%s run %d%s %s (%s): %s\n",
        answer.dry_run() ? "would drop" : "dropped", f.run_id(),
        f.member().empty() ? "" : absl::StrCat(" (", f.member(), ")"), f.name(),
        HumanBytes(f.size()), f.reason());
  }
  if (answer.files() > answer.dropped_size()) {
    s.out() << "... and " << answer.files() - answer.dropped_size()
            << " more\n";
  }
  s.out() << (answer.dry_run() ? "would drop " : "dropped ") << answer.files()
          << " run files, " << HumanBytes(answer.bytes_freed())
          << (answer.dry_run() ? " to free; " : " freed; ")
          << HumanBytes(answer.bytes_held()) << " held after\n";
  return kExitOk;
}

void AddGc(CLI::App& app, Command* chosen) {
  CLI::App* verb = app.add_subcommand(
      "gc",
      "(admin) drop the run files the retention policies let go (README "
      "\"Retention\"): failed, cancelled and pruned runs' checkpoints, "
      "students outside their sweep's best");
  auto request = std::make_shared<v1::CollectGarbageRequest>();
  auto dry_run = std::make_shared<bool>(false);
  verb->add_flag("--dry-run,-n", *dry_run,
                 "only list what would go, and the bytes");
  verb->add_option("--sweep", *request->mutable_sweep(),
                   "only this sweep's runs (id or name)");
  verb->callback([=] {
    request->set_dry_run(*dry_run);
    *chosen = [=](Session& s) { return CollectGarbage(s, *request); };
  });
}

}  // namespace

void AddAdminCommands(CLI::App& app, Command* chosen) {
  AddBackup(app, chosen);
  AddGc(app, chosen);
  AddTag(app, chosen);
  AddNote(app, chosen);
  AddHealth(app, chosen);
  AddWorkers(app, chosen);
  AddTokens(app, chosen);
}

}  // namespace distill
