// How fast a backup writes: the store's snapshot (sqlite_backup.cc) and the
// run files a backup copies (server/operations/backup.h) alike.
#ifndef DISTILL_SERVER_STORAGE_BACKUP_PACE_H_
#define DISTILL_SERVER_STORAGE_BACKUP_PACE_H_

#include <cstdint>

#include "absl/time/time.h"

namespace distill {

// A backup writes at most this many bytes a second, each few MiB sent to
// the disk before the next (README "Backup and restore": what a backup
// costs the coordinator's leases).
inline constexpr int64_t kBackupBytesPerSecond = 100'000'000;

// After `written` bytes a backup wrote to `fd` since `start`: sends them
// to the disk (sync_file_range, data only: no journal commit, so that the
// coordinator's own fsyncs never queue behind a backup's backlog) and
// sleeps as long as kBackupBytesPerSecond asks. fd < 0: only the sleep.
void PaceBackupWrites(int fd, absl::Time start, int64_t written);

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_BACKUP_PACE_H_
