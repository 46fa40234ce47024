#ifndef DISTILL_SERVER_STORAGE_RUN_FILE_STORE_H_
#define DISTILL_SERVER_STORAGE_RUN_FILE_STORE_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace distill {

// Receives one run file in pieces. Dropping it before Publish leaves no
// trace. Not thread-safe.
class RunFileWriter {
 public:
  virtual ~RunFileWriter() = default;
  virtual absl::Status Append(std::string_view data) = 0;
  // Puts the bytes on disk (fsync: seconds for gigabytes, so never under a
  // lock others wait on) and verifies they hash to `expected_sha256`
  // (DATA_LOSS naming both digests otherwise). The file is not visible yet.
  virtual absl::Status Seal(const std::string& expected_sha256) = 0;
  // REQUIRES: Seal succeeded. Makes the file visible under its digest (a
  // rename: quick) and cancels a removal of that digest a pin postponed.
  // Returns its path.
  virtual absl::StatusOr<std::string> Publish() = 0;
  // Seal, then Publish.
  absl::StatusOr<std::string> Commit(const std::string& expected_sha256) {
    if (absl::Status s = Seal(expected_sha256); !s.ok()) return s;
    return Publish();
  }
  virtual int64_t size() const = 0;
};

// Reads one run file in pieces. Not thread-safe.
class RunFileReader {
 public:
  virtual ~RunFileReader() = default;
  // Up to `max_bytes`; an empty string at the end.
  virtual absl::StatusOr<std::string> Read(size_t max_bytes) = 0;
};

// The run files' directory in a data directory; a run file's record holds
// its path relative to the data directory, "run-files/SHA256".
inline constexpr char kRunFilesDir[] = "run-files";

// Run files (checkpoints, resume points, tsne.csv), content-addressed by
// sha256. Thread-safe.
class RunFileStore {
 public:
  virtual ~RunFileStore() = default;

  // Files live in `directory` (created if missing), named by their digest.
  static absl::StatusOr<std::unique_ptr<RunFileStore>> OpenDirectory(
      const std::string& directory);

  virtual absl::StatusOr<std::unique_ptr<RunFileWriter>> NewWriter() = 0;
  // NOT_FOUND when no run file has that digest; INVALID_ARGUMENT when it
  // is not a sha256.
  virtual absl::StatusOr<std::unique_ptr<RunFileReader>> Open(
      const std::string& sha256) = 0;
  // Deletes the file of that digest; OK when there is none. A reader that
  // has it open reads on to its end.
  virtual absl::Status Remove(const std::string& sha256) = 0;
  // While a pin lives, Remove forgets nothing on disk: its deletions wait
  // for the last pin's end (a backup copies the files its snapshot names).
  // A digest published again meanwhile is not deleted then.
  virtual std::shared_ptr<void> Pin() = 0;
  // Deletes what no record names: the temporaries of uploads a crash cut
  // short (".upload-*") and the files whose digest `recorded` does not
  // hold (an upload published but never recorded). REQUIRES: no upload in
  // progress (the coordinator's start). Returns how many files went.
  virtual absl::StatusOr<int64_t> RemoveUnrecorded(
      const std::function<bool(const std::string& sha256)>& recorded) = 0;
};

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_RUN_FILE_STORE_H_
