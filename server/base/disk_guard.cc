#include "server/base/disk_guard.h"

#include <sys/statvfs.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "server/base/metrics.h"

namespace distill {

absl::StatusOr<int64_t> FreeDiskBytes(const std::string& path) {
  struct statvfs fs;
  if (::statvfs(path.c_str(), &fs) != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot ask the disk of ", path,
                     " for its free space: ", std::strerror(errno)));
  }
  return int64_t(fs.f_bavail) * int64_t(fs.f_frsize);
}

DiskGuard::DiskGuard(int64_t min_free_bytes,
                     std::function<absl::StatusOr<int64_t>()> free_bytes,
                     CoordinatorMetrics* metrics)
    : min_free_bytes_(min_free_bytes),
      free_bytes_(std::move(free_bytes)),
      metrics_(metrics) {}

std::string DiskGuard::LeasingPaused() {
  if (min_free_bytes_ <= 0 || !free_bytes_) return "";
  absl::StatusOr<int64_t> free = free_bytes_();
  std::string reason;
  if (!free.ok()) {
    reason = absl::StrCat("no run is leased: ", free.status().message());
  } else if (*free < min_free_bytes_) {
    reason = absl::StrCat("no run is leased: the data directory's disk has ",
                          HumanBytes(*free), " free, below --min_free_disk ",
                          HumanBytes(min_free_bytes_));
  }
  if (metrics_ != nullptr && free.ok()) {
    metrics_->SetDisk(*free, !reason.empty());
  }
  absl::MutexLock lock(&mu_);
  if (paused_ != !reason.empty()) {
    paused_ = !reason.empty();
    if (paused_) {
      DISTILL_LOG(WARNING) << reason << " (runs already training go on)";
    } else {
      DISTILL_LOG(INFO) << "leasing resumes: the data directory's disk has "
                        << HumanBytes(*free) << " free";
    }
  }
  return reason;
}

absl::StatusOr<DiskGuard::Reservation> DiskGuard::Reserve(int64_t bytes) {
  if (!free_bytes_) return nullptr;
  absl::StatusOr<int64_t> free = free_bytes_();
  if (!free.ok()) return free.status();
  absl::MutexLock lock(&mu_);
  const int64_t kept = KeptForTheDatabase();
  if (bytes > *free - reserved_ - kept) {
    if (metrics_ != nullptr) metrics_->UploadRefusedForDisk();
    std::string reason =
        absl::StrCat("an upload of ", HumanBytes(bytes),
                     " does not fit: the data directory's disk has ",
                     HumanBytes(*free), " free");
    if (reserved_ > 0) {
      absl::StrAppend(&reason, ", ", HumanBytes(reserved_),
                      " of it promised to uploads in progress");
    }
    if (kept > 0) {
      absl::StrAppend(&reason, ", ", HumanBytes(kept),
                      " kept for the database (half of --min_free_disk)");
    }
    DISTILL_LOG(WARNING) << reason;
    return absl::ResourceExhaustedError(reason);
  }
  reserved_ += bytes;
  return Reservation(nullptr, [this, bytes](void*) { Release(bytes); });
}

void DiskGuard::Release(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  reserved_ -= bytes;
}

}  // namespace distill
