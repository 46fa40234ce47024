// The coordinator's backups (server/operations/backup.h): taken on demand
// (`distill backup`) and on a schedule (--backup_dir, --backup_every,
// --backup_keep), one at a time, counted in /metrics.
#ifndef DISTILL_SERVER_OPERATIONS_BACKUPS_H_
#define DISTILL_SERVER_OPERATIONS_BACKUPS_H_

#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/base/clock.h"
#include "server/base/metrics.h"
#include "server/operations/backup.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"

namespace distill {

struct BackupOptions {
  // Where snapshots go (server/operations/backup.h); empty: no backups.
  std::string dir;
  // A scheduled backup this long after the last good one; 0: on demand
  // only.
  absl::Duration every = absl::ZeroDuration();
  // Snapshots kept; older ones, and run files only they named, go.
  int keep = 7;
  // What a backup may take of its disk: the free bytes of a directory's
  // disk (FreeDiskBytes when unset), and what to leave free there (the
  // coordinator sets its --min_free_disk where backups share its disk).
  std::function<absl::StatusOr<int64_t>(const std::string& dir)> free_bytes;
  int64_t keep_free = 0;
  // The database's path, to size its snapshot before taking it.
  std::string database;
};

// Thread-safe.
class Backups {
 public:
  // `store` is the coordinator's (a reader of it takes each snapshot),
  // `files` its run files in `run_files_dir`; `metrics` may be null.
  Backups(BackupOptions options, Store* store, RunFileStore* files,
          std::string run_files_dir, CoordinatorMetrics* metrics, Clock* clock);

  bool enabled() const { return !options_.dir.empty(); }

  // A backup now, then the old ones pruned. FAILED_PRECONDITION without a
  // backup directory; UNAVAILABLE while another backup is being taken.
  absl::StatusOr<BackupResult> Take();

  // The scheduled backup when one is due; the age gauge in any case. A
  // failed one is tried again after 1 minute, then 2, 4, ... (at most
  // `every`), so that a full disk is not filled again every minute.
  void Tick();

  // After `failures` failed tries in a row, how long until the next.
  static absl::Duration RetryAfter(int failures, absl::Duration every);

 private:
  const BackupOptions options_;
  Store* const store_;
  RunFileStore* const files_;
  const std::string run_files_dir_;
  CoordinatorMetrics* const metrics_;
  Clock* const clock_;
  absl::Mutex state_mu_;
  bool taking_ ABSL_GUARDED_BY(state_mu_) = false;  // One backup at a time.
  // When the last good backup was taken (the newest snapshot's at start).
  absl::Time last_good_ ABSL_GUARDED_BY(state_mu_) = absl::InfinitePast();
  absl::Time last_try_ ABSL_GUARDED_BY(state_mu_) = absl::InfinitePast();
  int failures_ ABSL_GUARDED_BY(state_mu_) = 0;  // In a row.
};

}  // namespace distill

#endif  // DISTILL_SERVER_OPERATIONS_BACKUPS_H_
