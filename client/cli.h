#ifndef DISTILL_CLIENT_CLI_H_
#define DISTILL_CLIENT_CLI_H_

#include <grpcpp/grpcpp.h>

#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace distill {

// The `distill` command line: `args` are the words after the program name
// and its flags. Returns the process exit code (0 ok, 1 a run failed or
// the coordinator refused, 2 bad usage or spec file).
int RunCli(const std::vector<std::string>& args,
           std::shared_ptr<grpc::Channel> channel, std::ostream& out,
           std::ostream& err);

// The usage text.
std::string CliUsage();

}  // namespace distill

#endif  // DISTILL_CLIENT_CLI_H_
