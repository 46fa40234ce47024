// The coordinator's backups (server/backup.h): taken on demand (`distill
// backup`) and on a schedule (--backup_dir, --backup_every,
// --backup_keep), one at a time, counted in /metrics.
#ifndef DISTILL_SERVER_BACKUPS_H_
#define DISTILL_SERVER_BACKUPS_H_

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/backup.h"
#include "server/clock.h"
#include "server/metrics.h"
#include "server/run_file_store.h"
#include "server/store.h"

namespace distill {

struct BackupOptions {
  // Where snapshots go (server/backup.h); empty: no backups.
  std::string dir;
  // A scheduled backup this long after the last good one; 0: on demand
  // only.
  absl::Duration every = absl::ZeroDuration();
  // Snapshots kept; older ones, and run files only they named, go.
  int keep = 7;
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

  // The scheduled backup when one is due; the age gauge in any case.
  void Tick();

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
};

}  // namespace distill

#endif  // DISTILL_SERVER_BACKUPS_H_
