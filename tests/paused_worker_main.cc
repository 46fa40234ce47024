// distill-worker with a StageHook that pauses, for tests/e2e_restart_test.sh:
// the same flags as distill-worker, plus --pause_before=STAGE,... and
// --pause_dir=DIR. Before each stage named, the worker prints
// "pausing before STAGE (N)" (N counting the pauses from 1) and waits until
// DIR/go-N exists, so that the test takes the coordinator down while the
// worker is between stages, then lets it make its call. Built only here:
// distill-worker links no hook.
#include <unistd.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "worker/worker_cli.h"

ABSL_FLAG(std::vector<std::string>, pause_before, {},
          "stages to pause before: fetch, resume_upload, upload, complete, "
          "fail");
ABSL_FLAG(std::string, pause_dir, "",
          "where the test creates go-N to end pause N");

namespace {

class PauseHook : public distill::StageHook {
 public:
  void Before(absl::string_view stage) override {
    const std::vector<std::string> stages = absl::GetFlag(FLAGS_pause_before);
    if (std::find(stages.begin(), stages.end(), stage) == stages.end()) return;
    int n;
    {
      absl::MutexLock lock(&mu_);
      n = ++pauses_;
    }
    const std::string go =
        absl::StrCat(absl::GetFlag(FLAGS_pause_dir), "/go-", n);
    std::cerr << "pausing before " << stage << " (" << n << ")" << std::endl;
    // A test that died leaves no worker behind for long.
    const absl::Time give_up = absl::Now() + absl::Minutes(5);
    while (access(go.c_str(), F_OK) != 0 && absl::Now() < give_up)
      absl::SleepFor(absl::Milliseconds(20));
  }

 private:
  absl::Mutex mu_;
  int pauses_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

int main(int argc, char** argv) {
  static PauseHook hook;
  return distill::WorkerMain(argc, argv, &hook);
}
