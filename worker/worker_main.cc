// distill-worker: one per device. Leases runs from the coordinator and
// trains them with the engine; or, with --run_local, runs one spec file
// with no service at all (how the engine is debugged and benchmarked).
#include "worker/worker_cli.h"

int main(int argc, char** argv) {
  return distill::WorkerMain(argc, argv, /*stage_hook=*/nullptr);
}
