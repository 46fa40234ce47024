#ifndef DISTILL_WORKER_FILE_TRANSFER_H_
#define DISTILL_WORKER_FILE_TRANSFER_H_

#include <map>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "distill/v1/worker_service.grpc.pb.h"

namespace distill {

// A worker's files on the coordinator: downloads by content digest into its
// scratch directory (kept for later runs), uploads of an attempt's run
// files, and the digests of local files. Every file-system failure (a full
// or read-only disk) is a status naming the file, never an exception. Not
// thread-safe: the worker's serving thread owns it.
class FileTransfer {
 public:
  // `stub` must outlive this.
  FileTransfer(v1::WorkerService::Stub* stub, std::string scratch_dir);

  // The file of that sha256 in `dir` (the scratch directory when empty),
  // downloaded unless it is there already with that digest. DATA_LOSS when
  // the download does not hash to it.
  absl::StatusOr<std::string> Fetch(const std::string& sha256,
                                    const std::string& dir = "");
  // Whether Fetch would find the file there already (no call).
  bool Cached(const std::string& sha256, const std::string& dir = "") const;

  // Uploads the file at `path` as the run file `name` of (run_id,
  // attempt); returns its sha256.
  absl::StatusOr<std::string> Upload(int64_t run_id, int32_t attempt,
                                     const std::string& path,
                                     const std::string& name);

  // sha256 of a file, remembered by (path, size, modification time).
  absl::StatusOr<std::string> Digest(const std::string& path);

 private:
  // Where Fetch keeps the file of `sha256` for `dir`.
  std::string CachePath(const std::string& sha256,
                        const std::string& dir) const;

  v1::WorkerService::Stub* const stub_;
  const std::string scratch_dir_;
  // path -> (size@mtime, sha256)
  std::map<std::string, std::pair<std::string, std::string>> digests_;
};

}  // namespace distill

#endif  // DISTILL_WORKER_FILE_TRANSFER_H_
