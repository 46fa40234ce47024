#include "server/base/durable.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace distill {
namespace {

absl::Mutex observer_mu(absl::kConstInit);
// Never destroyed: syncs may come from threads still running at exit.
std::function<void(const std::string&)>& Observer() {
  static auto* observer = new std::function<void(const std::string&)>();
  return *observer;
}

}  // namespace

absl::Status IoError(const std::string& what, int error) {
  const std::string text = absl::StrCat(what, ": ", std::strerror(error));
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(absl::StrCat(text, " (disk full)"));
  }
  return absl::UnavailableError(text);
}

absl::Status FsyncPath(const std::string& path) {
  CheckSyncAllowed(path.c_str());
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return IoError("cannot open " + path, errno);
  const int rc = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (rc != 0) return IoError("cannot fsync " + path, error);
  absl::MutexLock lock(&observer_mu);
  if (Observer()) Observer()(path);
  return absl::OkStatus();
}

namespace {

thread_local int no_sync_depth = 0;
std::atomic<int64_t> syncs_in_zones{0};

}  // namespace

NoSyncZone::NoSyncZone() { ++no_sync_depth; }
NoSyncZone::~NoSyncZone() { --no_sync_depth; }

void CheckSyncAllowed(const char* what) {
  if (no_sync_depth == 0) return;
  syncs_in_zones.fetch_add(1);
#ifndef NDEBUG
  std::fprintf(stderr,
               "a sync (%s) with the scheduler's lock held: every lease, "
               "heartbeat and report would wait for it\n",
               what);
  std::abort();
#endif
}

int64_t SyncsInNoSyncZones() { return syncs_in_zones.load(); }

namespace {
std::atomic<int64_t> header_syncs_in_zones{0};
}  // namespace

void NoteWalHeaderSync() {
  if (no_sync_depth > 0) header_syncs_in_zones.fetch_add(1);
}

int64_t WalHeaderSyncsInNoSyncZones() { return header_syncs_in_zones.load(); }

void SetFsyncObserverForTest(std::function<void(const std::string&)> observer) {
  absl::MutexLock lock(&observer_mu);
  Observer() = std::move(observer);
}

}  // namespace distill
