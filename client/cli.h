// The `distill` command line: one table of verbs (client/commands.h, on
// CLI11) from which dispatch, every verb's --help, the usage text and the
// bash completion come; both `--flag value` and `--flag=value`.
//
// Exit codes: 0 ok; 1 the run, sweep or check waited for failed; 2 the
// command line or a spec file is wrong (nothing was sent); 3 the
// coordinator could not be reached or refused the call.
#ifndef DISTILL_CLIENT_CLI_H_
#define DISTILL_CLIENT_CLI_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <ostream>
#include <string>
#include <vector>

namespace distill {

// `distill ARGS...` as the process runs it: global flags (and their
// $DISTILL_* variables) say where the coordinator is and how to reach it;
// the verb runs against it.
int CliMain(int argc, const char* const* argv, std::ostream& out,
            std::ostream& err);

// The same against `channel` (the global connection flags are accepted and
// not used): `args` are the words after the program's name.
int RunCli(const std::vector<std::string>& args,
           std::shared_ptr<grpc::Channel> channel, std::ostream& out,
           std::ostream& err);

// The usage text: every verb with its one-line description.
std::string CliUsage();

// `distill completion bash`: a bash completion script for every verb and
// flag.
std::string BashCompletion();

}  // namespace distill

#endif  // DISTILL_CLIENT_CLI_H_
