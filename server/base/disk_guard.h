// The coordinator's guard against a full disk (--min_free_disk): below the
// floor no new run is leased (workers wait; runs already training go on),
// and an upload is refused before its first chunk unless its declared size
// fits in what is free less what uploads in progress have declared and
// less half the floor, kept for the database.
#ifndef DISTILL_SERVER_BASE_DISK_GUARD_H_
#define DISTILL_SERVER_BASE_DISK_GUARD_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/byte_sizes.h"

namespace distill {

class CoordinatorMetrics;

// Free bytes for an unprivileged writer on the file system of `path`
// (statvfs); UNAVAILABLE naming the path when it cannot be asked.
absl::StatusOr<int64_t> FreeDiskBytes(const std::string& path);

// Thread-safe.
class DiskGuard {
 public:
  // `min_free_bytes` 0: leasing never pauses, uploads are still checked
  // against what is free. `free_bytes` asks the disk (FreeDiskBytes of the
  // data directory; tests give their own). `metrics` may be null.
  DiskGuard(int64_t min_free_bytes,
            std::function<absl::StatusOr<int64_t>()> free_bytes,
            CoordinatorMetrics* metrics);

  // Empty while new runs may be leased; else why not, naming the free
  // bytes and the floor. Logs when leasing pauses and when it resumes.
  std::string LeasingPaused();

  // Bytes an upload in progress has declared; given back when dropped.
  using Reservation = std::shared_ptr<void>;
  // RESOURCE_EXHAUSTED naming the sizes when `bytes` does not fit in the
  // disk's free bytes less the reservations held and less what is kept
  // for the database. Uploads of runs already training may go below the
  // floor (their run must be able to end), never into the half of it kept
  // for SQLite's journal and writes.
  absl::StatusOr<Reservation> Reserve(int64_t bytes);

  int64_t min_free_bytes() const { return min_free_bytes_; }
  // Half of min_free_bytes: no upload may take it.
  int64_t KeptForTheDatabase() const { return min_free_bytes_ / 2; }

 private:
  void Release(int64_t bytes);

  const int64_t min_free_bytes_;
  const std::function<absl::StatusOr<int64_t>()> free_bytes_;
  CoordinatorMetrics* const metrics_;
  absl::Mutex mu_;
  int64_t reserved_ ABSL_GUARDED_BY(mu_) = 0;
  bool paused_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_DISK_GUARD_H_
