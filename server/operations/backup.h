// Backups of a coordinator's data, taken while it serves, and restores
// from them (README "Backup and restore").
//
// A backup directory holds snapshots and one pool of run files:
//   BACKUP_DIR/files/<sha256>           each run file once, copied when new
//   BACKUP_DIR/<UTC time>/distill.db    the database as of one moment
//   BACKUP_DIR/<UTC time>/MANIFEST      "sha256 size" of every run file
//                                       that database names, a line each
// A snapshot's directory gets its name (a rename) only once it and every
// file it names are on disk: a backup killed half-way leaves the earlier
// ones as they were and names nothing.
#ifndef DISTILL_SERVER_OPERATIONS_BACKUP_H_
#define DISTILL_SERVER_OPERATIONS_BACKUP_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/storage/backup_pace.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"

namespace distill {

struct BackupResult {
  std::string snapshot;  // Its directory.
  int64_t database_bytes = 0;
  int64_t files = 0;         // Run files it names.
  int64_t files_copied = 0;  // Of those, the ones no earlier backup had.
  int64_t bytes_copied = 0;
  absl::Duration took;
};

// What a backup may take of its disk.
struct BackupSpace {
  // The free bytes of the disk of a directory (FreeDiskBytes); none: not
  // checked.
  std::function<absl::StatusOr<int64_t>(const std::string& dir)> free_bytes;
  // Bytes left free after the backup (the coordinator's --min_free_disk
  // where the backups share the data directory's disk).
  int64_t keep_free = 0;
  // The database's size, for the check before its snapshot (the main file
  // and its WAL: no more than the snapshot takes).
  int64_t database_bytes = 0;
};

// Snapshots `reader` (a reader of the coordinator's store: the writer
// never waits for it) into a new snapshot of `backup_dir` named by `now`,
// with the run files it names (in `files`, the directory `run_files_dir`)
// that the pool lacks; `files` is pinned meanwhile. Each copied file's
// sha256 is checked on the way; DATA_LOSS names one that does not match.
// RESOURCE_EXHAUSTED, before writing them, when the database's or the new
// files' bytes do not fit in `space`. A failed backup leaves nothing: no
// snapshot, and none of the files it copied into the pool.
absl::StatusOr<BackupResult> TakeBackup(Store& reader, RunFileStore& files,
                                        const std::string& run_files_dir,
                                        const std::string& backup_dir,
                                        absl::Time now,
                                        const BackupSpace& space = {});

// The snapshots of `backup_dir`, oldest first (their directories).
std::vector<std::string> ListSnapshots(const std::string& backup_dir);

// Deletes all but the newest `keep` (>= 1) snapshots, the run files no
// kept snapshot names, and what killed backups left.
absl::Status PruneBackups(const std::string& backup_dir, int keep);

struct RestoreResult {
  int64_t files = 0;
  int64_t requeued = 0;  // Runs that were RUNNING, queued again.
};

// Restores `snapshot` (a directory of a backup; a trailing '/' is the same)
// into `data_dir`, which
// must be missing or empty: the database and every run file its manifest
// names, each file's sha256 checked, the database's integrity checked,
// and the runs that were leased when it was taken queued again (their
// next lease is a new attempt: the old attempt's worker is fenced out).
// DATA_LOSS when a file is missing or damaged; nothing is then left in
// `data_dir` to start from. The database, the run files and both
// directories are synced before it returns.
absl::StatusOr<RestoreResult> RestoreBackup(const std::string& snapshot,
                                            const std::string& data_dir);

}  // namespace distill

#endif  // DISTILL_SERVER_OPERATIONS_BACKUP_H_
