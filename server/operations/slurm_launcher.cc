#include "server/operations/slurm_launcher.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"

namespace distill {

absl::StatusOr<std::string> RunCommand(const std::vector<std::string>& argv) {
  int out[2];
  if (argv.empty() || ::pipe(out) != 0) {
    return absl::InternalError("cannot run a command");
  }
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return absl::UnavailableError("cannot fork");
  }
  if (pid == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(out[1], STDERR_FILENO);
    ::close(out[0]);
    ::close(out[1]);
    std::vector<char*> args;
    for (const std::string& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  ::close(out[1]);
  std::string output;
  char buffer[4096];
  ssize_t n;
  while ((n = ::read(out[0], buffer, sizeof(buffer))) > 0)
    output.append(buffer, n);
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::UnavailableError(
        absl::StrCat(absl::StrJoin(argv, " "), " failed (status ", status,
                     "): ", absl::StripAsciiWhitespace(output)));
  }
  return output;
}

absl::StatusOr<int> SlurmLauncher::Tick() {
  // Jobs Slurm no longer lists have ended: their runs go back to the queue
  // now, not when their leases would expire.
  if (!jobs_.empty()) {
    absl::StatusOr<std::string> listed = RunCommand(
        {"squeue", "-h", "-o", "%i", "-j", absl::StrJoin(jobs_, ",")});
    // squeue fails when none of the jobs exists any more.
    std::set<std::string> alive;
    if (listed.ok()) {
      for (absl::string_view id : absl::StrSplit(*listed, '\n')) {
        id = absl::StripAsciiWhitespace(id);
        if (!id.empty()) alive.insert(std::string(id));
      }
    }
    for (auto it = jobs_.begin(); it != jobs_.end();) {
      if (alive.count(*it) != 0) {
        ++it;
        continue;
      }
      absl::StatusOr<int> requeued =
          scheduler_->ExpireLeasesOfHosts(absl::StrCat("slurm-", *it, "-"));
      if (!requeued.ok()) return requeued.status();
      DISTILL_LOG(INFO) << "Slurm job " << *it << " ended"
                        << (*requeued > 0
                                ? absl::StrCat("; ", *requeued,
                                               " of its runs queued again")
                                : "");
      it = jobs_.erase(it);
    }
  }
  absl::StatusOr<std::vector<v1::Run>> queued =
      scheduler_->ListRuns(0, v1::QUEUED);
  if (!queued.ok()) return queued.status();
  absl::StatusOr<std::vector<v1::Worker>> workers = scheduler_->ListWorkers();
  if (!workers.ok()) return workers.status();
  // Runs that an idle worker, or the worker of a job not yet started, will
  // take need no new job.
  int idle = 0, started = 0;
  for (const v1::Worker& w : *workers) {
    if (w.status() == v1::WORKER_IDLE) ++idle;
    const bool ours =
        std::any_of(jobs_.begin(), jobs_.end(), [&](const std::string& j) {
          return w.hostname().rfind(absl::StrCat("slurm-", j, "-"), 0) == 0;
        });
    if (ours &&
        (w.status() == v1::WORKER_IDLE || w.status() == v1::WORKER_RUNNING ||
         w.status() == v1::WORKER_DRAINING)) {
      ++started;
    }
  }
  const int pending = std::max(0, int(jobs_.size()) - started);
  const int wanted = std::min<int>(int(queued->size()) - idle - pending,
                                   options_.max_workers - int(jobs_.size()));
  int submitted = 0;
  for (int i = 0; i < wanted; ++i) {
    std::vector<std::string> argv = {"sbatch", "--parsable",
                                     "--job-name=distill-worker"};
    if (!options_.partition.empty())
      argv.push_back("--partition=" + options_.partition);
    if (!options_.account.empty())
      argv.push_back("--account=" + options_.account);
    if (!options_.time_limit.empty())
      argv.push_back("--time=" + options_.time_limit);
    argv.insert(argv.end(), options_.sbatch_args.begin(),
                options_.sbatch_args.end());
    argv.push_back(options_.script);
    absl::StatusOr<std::string> job = RunCommand(argv);
    if (!job.ok()) return job.status();
    // --parsable: "id" or "id;cluster".
    std::string id(absl::StripAsciiWhitespace(
        std::vector<std::string>(absl::StrSplit(*job, ';')).front()));
    jobs_.insert(id);
    ++submitted;
    DISTILL_LOG(INFO) << "submitted Slurm job " << id << " for "
                      << queued->size() << " queued run(s)";
  }
  return submitted;
}

}  // namespace distill
