#include "server/storage/run_file_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/sha256.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

// What a failed write of the data directory means to a caller: a full
// disk is RESOURCE_EXHAUSTED, anything else (read-only, I/O error) is
// UNAVAILABLE until the disk recovers.
absl::Status WriteError(const std::string& what, int error) {
  const std::string text = absl::StrCat(what, ": ", std::strerror(error));
  DISTILL_LOG(WARNING) << text;
  if (error == ENOSPC || error == EDQUOT) {
    return absl::ResourceExhaustedError(
        absl::StrCat(text, " (the data directory's disk is full)"));
  }
  return absl::UnavailableError(text);
}

class DirectoryRunFileStore;

class DirectoryRunFileWriter final : public RunFileWriter {
 public:
  // `fd` is open on `temp`.
  DirectoryRunFileWriter(int fd, fs::path temp, DirectoryRunFileStore* store)
      : fd_(fd), temp_(std::move(temp)), store_(store) {}
  ~DirectoryRunFileWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!published_) {
      std::error_code ignored;
      fs::remove(temp_, ignored);
    }
  }

  absl::Status Append(std::string_view data) override {
    if (fd_ < 0) return absl::FailedPreconditionError("the upload has ended");
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = ::write(fd_, data.data() + done, data.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return WriteError("cannot write " + temp_.string(), errno);
      done += size_t(n);
    }
    hash_.Update(data);
    size_ += int64_t(data.size());
    return absl::OkStatus();
  }

  absl::Status Seal(const std::string& expected_sha256) override {
    if (fd_ < 0) return absl::FailedPreconditionError("the upload has ended");
    const int fd = std::exchange(fd_, -1);
    // On disk before it is recorded: the record must never name a file a
    // crash could have lost.
    const bool synced = ::fsync(fd) == 0;
    const int sync_error = errno;
    if (::close(fd) != 0 || !synced) {
      return WriteError("cannot write " + temp_.string(),
                        synced ? errno : sync_error);
    }
    const std::string actual = hash_.HexDigest();
    if (actual != expected_sha256) {
      return absl::DataLossError(absl::StrCat(
          "run file sha256 mismatch: expected ", expected_sha256,
          ", the data hashes to ", actual, " (", size_, " bytes)"));
    }
    sealed_ = actual;
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Publish() override;

  int64_t size() const override { return size_; }

 private:
  int fd_;
  fs::path temp_;
  DirectoryRunFileStore* const store_;
  Sha256 hash_;
  int64_t size_ = 0;
  std::string sealed_;  // The digest, once sealed.
  bool published_ = false;
};

class DirectoryRunFileReader final : public RunFileReader {
 public:
  explicit DirectoryRunFileReader(const fs::path& path)
      : in_(path, std::ios::binary) {}
  bool ok() const { return bool(in_); }

  absl::StatusOr<std::string> Read(size_t max_bytes) override {
    std::string buffer(max_bytes, '\0');
    in_.read(buffer.data(), std::streamsize(max_bytes));
    buffer.resize(size_t(in_.gcount()));
    if (in_.bad()) return absl::InternalError("run file read failed");
    return buffer;
  }

 private:
  std::ifstream in_;
};

class DirectoryRunFileStore final : public RunFileStore {
 public:
  explicit DirectoryRunFileStore(fs::path directory)
      : directory_(std::move(directory)) {}

  absl::StatusOr<std::unique_ptr<RunFileWriter>> NewWriter() override {
    const fs::path temp =
        directory_ / absl::StrCat(".upload-", ::getpid(), "-", next_++);
    const int fd =
        ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return WriteError("cannot create " + temp.string(), errno);
    return std::make_unique<DirectoryRunFileWriter>(fd, temp, this);
  }

  // Renames `temp` to its digest's name. Under mu_: a removal a pin
  // postponed never deletes a file published since it was asked for.
  absl::StatusOr<std::string> Publish(const fs::path& temp,
                                      const std::string& sha256) {
    const fs::path final_path = directory_ / sha256;
    absl::MutexLock lock(&mu_);
    if (::rename(temp.c_str(), final_path.c_str()) != 0) {
      return WriteError("cannot move the run file to " + final_path.string(),
                        errno);
    }
    deferred_.erase(sha256);
    return final_path.string();
  }

  absl::StatusOr<std::unique_ptr<RunFileReader>> Open(
      const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sha256 must be 64 lower-case hex digits, got \"", sha256, "\""));
    }
    const fs::path path = directory_ / sha256;
    auto reader = std::make_unique<DirectoryRunFileReader>(path);
    if (!reader->ok()) {
      return absl::NotFoundError(
          absl::StrCat("no run file has sha256 ", sha256));
    }
    // A file the disk damaged since it was written is reported, not served:
    // a worker would train on it.
    absl::StatusOr<std::string> actual = Sha256File(path.string());
    if (!actual.ok()) return actual.status();
    if (*actual != sha256) {
      DISTILL_LOG(ERROR) << "run file " << path.string()
                         << " is corrupt: it hashes to " << *actual;
      return absl::DataLossError(
          absl::StrCat("the run file ", sha256,
                       " is corrupt on the coordinator (it hashes "
                       "to ",
                       *actual, ")"));
    }
    return reader;
  }

  absl::Status Remove(const std::string& sha256) override {
    if (!IsSha256Hex(sha256)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sha256 must be 64 lower-case hex digits, got \"", sha256, "\""));
    }
    absl::MutexLock lock(&mu_);
    if (pins_ > 0) {
      deferred_.insert(sha256);
      return absl::OkStatus();
    }
    return RemoveNow(sha256);
  }

  absl::StatusOr<int64_t> RemoveUnrecorded(
      const std::function<bool(const std::string& sha256)>& recorded) override {
    int64_t removed = 0;
    std::error_code ec;
    for (const fs::directory_entry& entry :
         fs::directory_iterator(directory_, ec)) {
      const std::string name = entry.path().filename().string();
      const bool temporary = name.starts_with(".upload-");
      if (!temporary && (!IsSha256Hex(name) || recorded(name))) continue;
      std::error_code gone;
      if (fs::remove(entry.path(), gone)) {
        ++removed;
        DISTILL_LOG(INFO) << "removed " << entry.path().string()
                          << (temporary ? ": an upload a stop cut short"
                                        : ": no run records it");
      }
    }
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot list the run files in ", directory_.string(),
                       ": ", ec.message()));
    }
    return removed;
  }

  std::shared_ptr<void> Pin() override {
    absl::MutexLock lock(&mu_);
    ++pins_;
    return std::shared_ptr<void>(nullptr, [this](void*) { Unpin(); });
  }

 private:
  absl::Status RemoveNow(const std::string& sha256)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::error_code ec;
    fs::remove(directory_ / sha256, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot remove run file ", sha256, ": ", ec.message()));
    }
    return absl::OkStatus();
  }

  // The postponed removals, under mu_ so that no publish of the same
  // digest falls between the decision and the unlink (unlinks are quick).
  void Unpin() {
    absl::MutexLock lock(&mu_);
    if (--pins_ > 0) return;
    for (const std::string& sha256 : deferred_) {
      if (absl::Status s = RemoveNow(sha256); !s.ok()) {
        DISTILL_LOG(WARNING) << s.message();
      }
    }
    deferred_.clear();
  }

  fs::path directory_;
  std::atomic<int64_t> next_{0};
  absl::Mutex mu_;
  int pins_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<std::string> deferred_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::string> DirectoryRunFileWriter::Publish() {
  if (sealed_.empty()) {
    return absl::FailedPreconditionError("the upload is not sealed");
  }
  if (published_) return absl::FailedPreconditionError("already published");
  absl::StatusOr<std::string> path = store_->Publish(temp_, sealed_);
  if (path.ok()) published_ = true;
  return path;
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunFileStore>> RunFileStore::OpenDirectory(
    const std::string& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the run-file directory ", directory, ": ",
                     ec.message()));
  }
  return std::make_unique<DirectoryRunFileStore>(directory);
}

}  // namespace distill
