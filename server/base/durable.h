// fsync of a file or a directory by its path, the one way the coordinator's
// own files (backups, restores, run files) reach the disk; tests watch
// which paths were synced.
#ifndef DISTILL_SERVER_BASE_DURABLE_H_
#define DISTILL_SERVER_BASE_DURABLE_H_

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

// A stretch of a thread in which nothing may be synced to disk: the
// scheduler's lock (SchedulerCore::Locked) is one, since every lease,
// heartbeat and report waits for it. Nests.
class NoSyncZone {
 public:
  NoSyncZone();
  ~NoSyncZone();
  NoSyncZone(const NoSyncZone&) = delete;
  NoSyncZone& operator=(const NoSyncZone&) = delete;
};

// Called before every fsync the coordinator makes (FsyncPath, the WAL's
// sync, SQLite's own through its VFS): inside a NoSyncZone it counts the
// sync and, in a debug build, aborts naming `what`.
void CheckSyncAllowed(const char* what);
// Syncs made inside a NoSyncZone since the process started.
int64_t SyncsInNoSyncZones();
// SQLite's sync of a new WAL header, the first commit after a checkpoint
// copied the whole log makes (at most once a checkpoint, 32 bytes): the
// one sync left under the scheduler's lock, counted here, not refused.
void NoteWalHeaderSync();
int64_t WalHeaderSyncsInNoSyncZones();

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_DURABLE_H_
