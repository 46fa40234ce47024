// The CLI's verbs, a file per group. Each Add* declares its verbs, their
// arguments and flags on `app` (CLI11: dispatch, --help, the usage text and
// the shell completion all come from these declarations); the verb the
// user named sets `*chosen` to what it does.
#ifndef DISTILL_CLIENT_COMMANDS_H_
#define DISTILL_CLIENT_COMMANDS_H_

#include <CLI/CLI.hpp>
#include <string>

#include "client/session.h"

namespace distill {

// submit, runs list|show|metrics, watch, cancel, download, tsne.
void AddRunCommands(CLI::App& app, Command* chosen);
// sweep FILE [--wait|--dry-run], sweep retry|cancel, results, compare,
// report.
void AddSweepCommands(CLI::App& app, Command* chosen);
// tag, note, health, workers list|drain, tokens create|list|revoke.
void AddAdminCommands(CLI::App& app, Command* chosen);
// owners, owners set (fair share).
void AddOwnerCommands(CLI::App& app, Command* chosen);
// fork RUN, sweep fork SWEEP (after AddSweepCommands).
void AddForkCommands(CLI::App& app, Command* chosen);

// Checks an id (or a count, `noun` "a count") on the command line as CLI11
// parses it: a whole number from 1, else "WHAT "abc" is not an id (...)".
CLI::Validator IdCheck(const std::string& what,
                       const std::string& noun = "an id");

// The shared --format=table|csv|json flag of a verb, into `*format`.
void AddFormatFlag(CLI::App* verb, std::string* format);

// `format` (checked by AddFormatFlag's flag) as an OutputFormat.
OutputFormat FormatOf(const std::string& format);

// Streams a run's events: one live line (rewritten on a terminal, a line an
// epoch otherwise) until the run ends. kExitOk when it succeeded (or, with
// `pruned_ok`, was pruned by its sweep's rule), kExitFailed otherwise.
int WatchRun(Session& session, int64_t id, bool pruned_ok);

// The Table 1 layout of a sweep (id or name) in `format` with `columns`
// (comma-separated names; all when empty).
int ShowResults(Session& session, const std::string& sweep,
                const std::string& column_names, const std::string& format,
                const std::string& baseline = "", bool claims = false);

}  // namespace distill

#endif  // DISTILL_CLIENT_COMMANDS_H_
