// fsync of a file or a directory by its path, the one way the coordinator's
// own files (backups, restores, run files) reach the disk; tests watch
// which paths were synced.
#ifndef DISTILL_SERVER_DURABLE_H_
#define DISTILL_SERVER_DURABLE_H_

#include <functional>
#include <string>

#include "absl/status/status.h"

namespace distill {

// What a failed write of a file means to a caller: a full disk is
// RESOURCE_EXHAUSTED, anything else (read-only, I/O error) UNAVAILABLE.
// The message is `what`: strerror(error).
absl::Status IoError(const std::string& what, int error);

// fsync(2) of `path` (a file or a directory).
absl::Status FsyncPath(const std::string& path);

// Tests: called with each path FsyncPath syncs (an empty function: none).
void SetFsyncObserverForTest(std::function<void(const std::string&)> observer);

}  // namespace distill

#endif  // DISTILL_SERVER_DURABLE_H_
