#include "client/cli.h"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/commands.h"
#include "client/session.h"
#include "common/api.h"
#include "common/channel.h"
#include "common/token.h"
#include "common/version.h"
#include "render/terminal.h"

namespace distill {
namespace {

// Where the coordinator is and how to reach it: the global flags.
struct Connection {
  std::string coordinator = kDefaultCoordinator;
  std::string token_file;
  TlsFiles tls;
};

constexpr char kFooter[] =
    "Every flag takes --flag=value or --flag value; `distill VERB --help` "
    "tells a verb's.\n"
    "The coordinator: --coordinator, else $DISTILL_COORDINATOR, else "
    "127.0.0.1:50051. TLS when --tls_ca ($DISTILL_TLS_CA) names the CA its "
    "certificate chains to; a client certificate from --tls_cert/--tls_key "
    "($DISTILL_TLS_CERT, $DISTILL_TLS_KEY). The token goes with every call: "
    "--token_file, else $DISTILL_TOKEN_FILE, else the secret in "
    "$DISTILL_TOKEN.\n"
    "Exit codes: 0 ok; 1 the run, sweep or check waited for failed; 2 the "
    "command line or a spec file is wrong; 3 the coordinator could not be "
    "reached or refused.";

// The whole grammar. The verb the words name sets `*chosen`; `completion`
// sets `*completion` to its shell instead.
std::unique_ptr<CLI::App> BuildApp(Connection* connection, Command* chosen,
                                   std::string* completion) {
  auto app = std::make_unique<CLI::App>(
      "distill: knowledge-distillation runs and sweeps, on a coordinator",
      "distill");
  app->require_subcommand(1);
  app->fallthrough();  // Global flags after the verb too.
  // The build, before anything is asked of a coordinator.
  app->set_version_flag(
      "--version",
      absl::StrCat("distill ", DistillVersion(), ", ", BuildType()),
      "the build: version, commit, build type");
  app->add_option("--coordinator", connection->coordinator,
                  "the coordinator's HOST:PORT")
      ->envname("DISTILL_COORDINATOR");
  app->add_option("--token_file", connection->token_file,
                  "a file holding the token")
      ->envname("DISTILL_TOKEN_FILE");
  app->add_option("--tls_ca", connection->tls.ca,
                  "the CA the coordinator's certificate chains to (PEM)")
      ->envname("DISTILL_TLS_CA");
  app->add_option("--tls_cert", connection->tls.cert,
                  "this client's certificate (PEM), when asked for one")
      ->envname("DISTILL_TLS_CERT");
  app->add_option("--tls_key", connection->tls.key, "its private key (PEM)")
      ->envname("DISTILL_TLS_KEY");
  AddRunCommands(*app, chosen);
  AddSweepCommands(*app, chosen);
  AddAdminCommands(*app, chosen);
  AddOwnerCommands(*app, chosen);
  AddForkCommands(*app, chosen);
  CLI::App* verb = app->add_subcommand(
      "completion", "a completion script for the shell (bash)");
  verb->add_option("shell", *completion, "bash")
      ->required()
      ->check(CLI::IsMember({"bash"}));
  app->footer(kFooter);  // The root's alone: verbs inherit what is set before.
  return app;
}

// Parses `args` (the words after the program's name) into `app`; the exit
// code when that ends the command (help, or a usage error), else -1.
int Parse(CLI::App& app, std::vector<std::string> args, std::ostream& out,
          std::ostream& err) {
  if (args.empty()) {
    err << app.help();
    return kExitUsage;
  }
  std::reverse(args.begin(), args.end());  // CLI11 takes them reversed.
  try {
    app.parse(args);
  } catch (const CLI::CallForVersion& e) {
    // One line, ended (CLI11 leaves the version without its newline).
    std::string version = e.what();
    while (!version.empty() && version.back() == '\n') version.pop_back();
    out << version << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // A first word that is no verb: say so, rather than that one is needed.
    const std::vector<std::string> extra = app.remaining();
    if (app.get_subcommands().empty() && !extra.empty() &&
        extra.front().rfind("-", 0) != 0) {
      err << "\"" << TerminalSafe(extra.front())
          << "\" is not a verb of distill (distill --help lists them)\n";
      return kExitUsage;
    }
    return app.exit(e, out, err) == 0 ? kExitOk : kExitUsage;
  }
  return -1;
}

// The channel the global flags describe; an error shown and kExitUsage.
absl::StatusOr<std::shared_ptr<grpc::Channel>> Connect(
    const Connection& connection) {
  std::string token;
  if (const char* secret = std::getenv("DISTILL_TOKEN")) token = secret;
  if (!connection.token_file.empty()) {
    absl::StatusOr<std::string> read = ReadTokenFile(connection.token_file);
    if (!read.ok()) return read.status();
    token = *read;
  }
  return Dial(connection.coordinator, connection.tls, token);
}

// For every path of verbs (" runs list"), its verbs and flags.
void CompletionWords(const CLI::App& app, const std::string& path,
                     const std::vector<std::string>& global,
                     std::vector<std::pair<std::string, std::string>>* out) {
  std::vector<std::string> words;
  std::vector<const CLI::App*> verbs =
      app.get_subcommands([](const CLI::App*) { return true; });
  for (const CLI::App* verb : verbs) words.push_back(verb->get_name());
  for (const CLI::Option* option : app.get_options()) {
    if (!option->nonpositional()) continue;
    for (const std::string& name : option->get_lnames())
      words.push_back("--" + name);
  }
  if (!path.empty()) words.insert(words.end(), global.begin(), global.end());
  out->emplace_back(path, absl::StrJoin(words, " "));
  for (const CLI::App* verb : verbs)
    CompletionWords(*verb, absl::StrCat(path, " ", verb->get_name()), global,
                    out);
}

}  // namespace

CLI::Validator IdCheck(const std::string& what, const std::string& noun) {
  return CLI::Validator(
      [what, noun](std::string& text) -> std::string {
        int64_t id = 0;
        if (ParseRunId(text, &id)) return "";
        return absl::StrCat(what, " \"", TerminalSafe(text.substr(0, 64)),
                            "\" is not ", noun, " (a whole number from 1)");
      },
      "");
}

void AddFormatFlag(CLI::App* verb, std::string* format) {
  verb->add_option("--format", *format, "table, csv or json")
      ->check(CLI::IsMember({"table", "csv", "json"}))
      ->capture_default_str();
}

OutputFormat FormatOf(const std::string& format) {
  absl::StatusOr<OutputFormat> f = ParseOutputFormat(format);
  return f.ok() ? *f : OutputFormat::kTable;
}

std::string CliUsage() {
  Connection connection;
  Command chosen;
  std::string completion;
  return BuildApp(&connection, &chosen, &completion)->help();
}

std::string BashCompletion() {
  Connection connection;
  Command chosen;
  std::string shell;
  std::unique_ptr<CLI::App> app = BuildApp(&connection, &chosen, &shell);
  std::vector<std::string> global;
  for (const CLI::Option* option : app->get_options()) {
    for (const std::string& name : option->get_lnames())
      if (name != "help") global.push_back("--" + name);
  }
  std::vector<std::pair<std::string, std::string>> paths;
  CompletionWords(*app, "", global, &paths);
  std::string known, cases;
  for (const auto& [path, words] : paths) {
    if (!path.empty())
      absl::StrAppend(&known, known.empty() ? "" : "|", "\"", path, "\"");
    absl::StrAppend(&cases, "    \"", path, "\") words=\"", words, "\" ;;\n");
  }
  return absl::StrCat(
      "# bash completion for distill: eval \"$(distill completion bash)\"\n"
      "_distill() {\n"
      "  local cur=\"${COMP_WORDS[COMP_CWORD]}\" "
      "prev=\"${COMP_WORDS[COMP_CWORD-1]}\" path=\"\" word i words\n"
      "  case \"$prev\" in\n"
      "    --format) COMPREPLY=($(compgen -W \"table csv json\" -- \"$cur\"));"
      " return ;;\n"
      "    --role) COMPREPLY=($(compgen -W \"viewer researcher worker admin\""
      " -- \"$cur\")); return ;;\n"
      "  esac\n"
      "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
      "    word=\"${COMP_WORDS[i]}\"\n"
      "    case \"$path $word\" in\n"
      "      ",
      known,
      ") path=\"$path $word\" ;;\n"
      "    esac\n"
      "  done\n"
      "  case \"$path\" in\n",
      cases,
      "  esac\n"
      "  COMPREPLY=($(compgen -W \"$words\" -- \"$cur\"))\n"
      "}\n"
      "complete -F _distill distill\n");
}

int RunCli(const std::vector<std::string>& args,
           std::shared_ptr<grpc::Channel> channel, std::ostream& out,
           std::ostream& err) {
  Connection connection;
  Command chosen;
  std::string completion;
  std::unique_ptr<CLI::App> app = BuildApp(&connection, &chosen, &completion);
  if (const int code = Parse(*app, args, out, err); code >= 0) return code;
  if (!completion.empty()) {
    out << BashCompletion();
    return kExitOk;
  }
  Session session(std::move(channel), out, err,
                  &out == &std::cout && isatty(STDOUT_FILENO));
  return chosen(session);
}

int CliMain(int argc, const char* const* argv, std::ostream& out,
            std::ostream& err) {
  std::vector<std::string> args(argv + 1, argv + argc);
  Connection connection;
  Command chosen;
  std::string completion;
  std::unique_ptr<CLI::App> app = BuildApp(&connection, &chosen, &completion);
  if (const int code = Parse(*app, args, out, err); code >= 0) return code;
  if (!completion.empty()) {
    out << BashCompletion();
    return kExitOk;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = Connect(connection);
  if (!channel.ok()) {
    err << TerminalSafe(channel.status().message()) << "\n";
    return kExitUsage;
  }
  Session session(*std::move(channel), out, err,
                  &out == &std::cout && isatty(STDOUT_FILENO));
  return chosen(session);
}

}  // namespace distill
