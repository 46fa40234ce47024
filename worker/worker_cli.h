// distill-worker's command line, apart from its main so that a test binary
// can run the same worker with a StageHook of its own.
#ifndef DISTILL_WORKER_WORKER_CLI_H_
#define DISTILL_WORKER_WORKER_CLI_H_

#include "worker/stage_hook.h"

namespace distill {

// Parses the flags and runs the worker daemon (or --run_local) to its end;
// returns the process's exit status. `stage_hook` (null in distill-worker)
// is called before each stage of a run (worker/stage_hook.h).
int WorkerMain(int argc, char** argv, StageHook* stage_hook);

}  // namespace distill

#endif  // DISTILL_WORKER_WORKER_CLI_H_
