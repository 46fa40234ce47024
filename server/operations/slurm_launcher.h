// Workers on demand from Slurm: while runs are queued and fewer workers are
// alive than allowed, submit batch jobs of deploy/slurm/distill-worker.sbatch
// (sbatch); see a job Slurm ended (squeue) and queue its runs again at once;
// submit nothing while nothing is queued. It talks to Slurm only through its
// commands.
#ifndef DISTILL_SERVER_OPERATIONS_SLURM_LAUNCHER_H_
#define DISTILL_SERVER_OPERATIONS_SLURM_LAUNCHER_H_

#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "server/scheduling/scheduler.h"

namespace distill {

struct SlurmLauncherOptions {
  // The most worker jobs at once (pending or running).
  int max_workers = 0;
  std::string partition;   // sbatch --partition, when set.
  std::string account;     // sbatch --account, when set.
  std::string time_limit;  // sbatch --time, when set.
  // More sbatch arguments, e.g. --gpus=1 --export=ALL,DISTILL_...
  std::vector<std::string> sbatch_args;
  // The batch script (deploy/slurm/distill-worker.sbatch). Its workers need
  // DISTILL_COORDINATOR (and the token, CA) in the environment sbatch
  // passes on: the coordinator's own, unless sbatch_args say otherwise.
  std::string script;
};

// Not thread-safe: one thread calls Tick.
class SlurmLauncher {
 public:
  SlurmLauncher(Scheduler* scheduler, SlurmLauncherOptions options)
      : scheduler_(scheduler), options_(std::move(options)) {}

  // One look: jobs that ended are forgotten (their runs queued again),
  // jobs are submitted for queued runs. Returns how many were submitted.
  absl::StatusOr<int> Tick();

  const std::set<std::string>& jobs() const { return jobs_; }

 private:
  Scheduler* const scheduler_;
  const SlurmLauncherOptions options_;
  std::set<std::string> jobs_;  // Submitted and not yet seen ending.
};

// Runs `argv` (no shell) and returns its standard output; UNAVAILABLE with
// its exit status and output when it fails.
absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv);

}  // namespace distill

#endif  // DISTILL_SERVER_OPERATIONS_SLURM_LAUNCHER_H_
