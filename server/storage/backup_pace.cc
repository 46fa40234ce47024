#include "server/storage/backup_pace.h"

#include <fcntl.h>

#include "absl/time/clock.h"

namespace distill {

void PaceBackupWrites(int fd, absl::Time start, int64_t written) {
  if (fd >= 0) {
    ::sync_file_range(fd, 0, 0,
                      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
                          SYNC_FILE_RANGE_WAIT_AFTER);
  }
  const absl::Time due =
      start + absl::Seconds(double(written) / double(kBackupBytesPerSecond));
  const absl::Time now = absl::Now();
  if (due > now) absl::SleepFor(due - now);
}

}  // namespace distill
