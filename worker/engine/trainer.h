// The engine's entry point: one run, start to end.
#ifndef DISTILL_WORKER_ENGINE_TRAINER_H_
#define DISTILL_WORKER_ENGINE_TRAINER_H_

#include "absl/status/statusor.h"
#include "worker/engine/run_config.h"
#include "worker/engine/run_hooks.h"

namespace distill::engine {

// Trains the teacher, distils the student or judges checkpoints as `config`
// says. Every LibTorch exception is caught and returned as a status naming
// what failed.
absl::StatusOr<RunOutcome> ExecuteRun(const RunConfig& config,
                                      const RunHooks& hooks);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_TRAINER_H_
