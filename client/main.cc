// distill: the researchers' command line.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/cli.h"
#include "common/channel.h"
#include "common/token.h"

int main(int argc, char** argv) {
  const char* env = std::getenv("DISTILL_COORDINATOR");
  std::string address = env && *env ? env : "127.0.0.1:50051";
  // TLS to the coordinator when a CA is named, with a client certificate
  // when the coordinator requires one: flags, else the environment.
  auto from_env = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value != nullptr ? value : "");
  };
  distill::TlsFiles tls{from_env("DISTILL_TLS_CERT"),
                        from_env("DISTILL_TLS_KEY"),
                        from_env("DISTILL_TLS_CA")};
  std::string token_file = from_env("DISTILL_TOKEN_FILE");
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
    } else if (arg.rfind("--tls_ca=", 0) == 0) {
      tls.ca = arg.substr(9);
    } else if (arg.rfind("--tls_cert=", 0) == 0) {
      tls.cert = arg.substr(11);
    } else if (arg.rfind("--token_file=", 0) == 0) {
      token_file = arg.substr(13);
    } else if (arg.rfind("--tls_key=", 0) == 0) {
      tls.key = arg.substr(10);
    } else {
      args.push_back(arg);  // Command words and their own flags.
    }
  }
  std::string token = from_env("DISTILL_TOKEN");
  if (!token_file.empty()) {
    absl::StatusOr<std::string> read = distill::ReadTokenFile(token_file);
    if (!read.ok()) {
      std::cerr << read.status().message() << "\n";
      return 2;
    }
    token = *read;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      distill::Dial(address, tls, token);
  if (!channel.ok()) {
    std::cerr << channel.status().message() << "\n";
    return 2;
  }
  return distill::RunCli(args, *channel, std::cout, std::cerr);
}
