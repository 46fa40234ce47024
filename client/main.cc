// distill: the researchers' command line (client/cli.h).
#include <iostream>

#include "client/cli.h"

int main(int argc, char** argv) {
  return distill::CliMain(argc, argv, std::cout, std::cerr);
}
