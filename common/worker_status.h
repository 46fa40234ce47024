// A worker's status as people read it: the word the CLI shows and the
// metrics label carry.
#ifndef DISTILL_COMMON_WORKER_STATUS_H_
#define DISTILL_COMMON_WORKER_STATUS_H_

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "distill/v1/experiment_service.pb.h"

namespace distill {

// "idle", "running", "draining", "lost", "stopped": the enum's name
// without WORKER_, in lower case; "unknown" for a value this build does not
// know (a newer coordinator's).
inline std::string WorkerStatusWord(v1::WorkerStatus status) {
  std::string name = v1::WorkerStatus_Name(status);
  if (!absl::StartsWith(name, "WORKER_") ||
      status == v1::WORKER_STATUS_UNSPECIFIED) {
    return "unknown";
  }
  return absl::AsciiStrToLower(name.substr(7));
}

// The word for `worker`: its status's, or the `state` an older coordinator
// sent.
inline std::string WorkerStatusWord(const v1::Worker& worker) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  if (worker.status() == v1::WORKER_STATUS_UNSPECIFIED &&
      !worker.state().empty()) {
    return worker.state();
  }
#pragma GCC diagnostic pop
  return WorkerStatusWord(worker.status());
}

}  // namespace distill

#endif  // DISTILL_COMMON_WORKER_STATUS_H_
