#include "server/operations/backups.h"

#include <sys/stat.h>

#include <algorithm>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/base/disk_guard.h"

namespace distill {
namespace {

int64_t FileBytesOrZero(const std::string& path) {
  struct stat info;
  return ::stat(path.c_str(), &info) == 0 ? int64_t(info.st_size) : 0;
}

// When the newest snapshot of `dir` was finished (its manifest's time).
absl::Time NewestSnapshot(const std::string& dir) {
  const std::vector<std::string> snapshots = ListSnapshots(dir);
  struct stat info;
  if (snapshots.empty() ||
      ::stat((snapshots.back() + "/MANIFEST").c_str(), &info) != 0) {
    return absl::InfinitePast();
  }
  return absl::TimeFromTimespec(info.st_mtim);
}

}  // namespace

Backups::Backups(BackupOptions options, Store* store, RunFileStore* files,
                 std::string run_files_dir, CoordinatorMetrics* metrics,
                 Clock* clock)
    : options_(std::move(options)),
      store_(store),
      files_(files),
      run_files_dir_(std::move(run_files_dir)),
      metrics_(metrics),
      clock_(clock) {
  if (enabled()) last_good_ = NewestSnapshot(options_.dir);
}

absl::StatusOr<BackupResult> Backups::Take() {
  if (!enabled()) {
    return absl::FailedPreconditionError(
        "this coordinator takes no backups: start it with --backup_dir");
  }
  const absl::Time now = absl::FromUnixMillis(clock_->NowMs());
  {
    absl::MutexLock lock(&state_mu_);
    if (taking_) {
      return absl::UnavailableError(
          "a backup is being taken; try again when it is done");
    }
    taking_ = true;
    last_try_ = now;
  }
  absl::StatusOr<BackupResult> result;
  absl::StatusOr<std::unique_ptr<Store>> reader = store_->OpenReader();
  if (!reader.ok()) {
    result = reader.status();
  } else {
    BackupSpace space;
    space.free_bytes =
        options_.free_bytes ? options_.free_bytes : FreeDiskBytes;
    space.keep_free = options_.keep_free;
    if (!options_.database.empty()) {
      space.database_bytes = FileBytesOrZero(options_.database) +
                             FileBytesOrZero(options_.database + "-wal");
    }
    result =
        TakeBackup(**reader, *files_, run_files_dir_, options_.dir, now, space);
  }
  if (result.ok()) {
    if (absl::Status s = PruneBackups(options_.dir, options_.keep); !s.ok()) {
      DISTILL_LOG(WARNING) << "pruning backups: " << s.message();
    }
    DISTILL_LOG(INFO) << "backup " << result->snapshot << ": database "
                      << result->database_bytes << " bytes, "
                      << result->files_copied << " of " << result->files
                      << " run files copied (" << result->bytes_copied
                      << " bytes) in " << result->took;
  } else {
    DISTILL_LOG(ERROR) << "backup failed: " << result.status().message();
  }
  {
    absl::MutexLock lock(&state_mu_);
    taking_ = false;
    if (result.ok()) last_good_ = now;
    failures_ = result.ok() ? 0 : failures_ + 1;
  }
  if (metrics_ != nullptr) {
    metrics_->BackupTaken(result.ok(),
                          result.ok() ? result->took : absl::ZeroDuration());
  }
  return result;
}

void Backups::Tick() {
  if (!enabled()) return;
  const absl::Time now = absl::FromUnixMillis(clock_->NowMs());
  bool due = false;
  {
    absl::MutexLock lock(&state_mu_);
    if (metrics_ != nullptr && last_good_ != absl::InfinitePast()) {
      metrics_->SetBackupAge(now - last_good_);
    }
    due = options_.every > absl::ZeroDuration() &&
          now - last_good_ >= options_.every &&
          now - last_try_ >= RetryAfter(failures_, options_.every);
  }
  if (due) (void)Take();
}

absl::Duration Backups::RetryAfter(int failures, absl::Duration every) {
  if (failures <= 0) return absl::ZeroDuration();
  const absl::Duration wait =
      absl::Minutes(1) * (int64_t{1} << std::min(failures - 1, 20));
  return std::min(wait, every);
}

}  // namespace distill
