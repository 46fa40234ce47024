// distill: the researchers' command line.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"

int main(int argc, char** argv) {
  const char* env = std::getenv("DISTILL_COORDINATOR");
  std::string address = env && *env ? env : "127.0.0.1:50051";
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "help") {
      std::cout << distill::CliUsage();
      return 0;
    }
    if (arg.rfind("--coordinator=", 0) == 0) {
      address = arg.substr(14);
    } else if (arg == "--coordinator" && i + 1 < argc) {
      address = argv[++i];
    } else {
      args.push_back(arg);  // Command words and their own flags.
    }
  }
  return distill::RunCli(
      args, grpc::CreateChannel(address, grpc::InsecureChannelCredentials()),
      std::cout, std::cerr);
}
