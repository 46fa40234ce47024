// A run's files (its checkpoint, resume points, tsne.csv): uploads checked
// against the lease before and after, each file recorded once its digest
// matched; reads by run and name, and by digest for the worker that needs
// one. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_UPLOADS_H_
#define DISTILL_SERVER_SCHEDULING_UPLOADS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "distill/v1/worker_service.pb.h"
#include "server/scheduling/scheduler_core.h"
#include "server/storage/run_file_store.h"

namespace distill {

class Uploads {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Uploads(SchedulerCore& core) : core_(core) {}

  // Begin checks the header and the lease; the writer takes no more than
  // the header's size. Finish verifies the digest and the lease again, and
  // records the file (a run keeps only its latest resume point).
  absl::StatusOr<std::unique_ptr<RunFileWriter>> Begin(
      const v1::RunFileHeader& header, int64_t caller);
  absl::Status Finish(const v1::RunFileHeader& header, RunFileWriter& writer,
                      int64_t caller);
  // A file the run uploaded, by name ("checkpoint", "tsne.csv").
  absl::StatusOr<std::unique_ptr<RunFileReader>> Open(int64_t run_id,
                                                      const std::string& name);
  // Its whole content, at most `max_bytes` (OUT_OF_RANGE beyond).
  absl::StatusOr<std::string> ReadWhole(int64_t run_id, const std::string& name,
                                        size_t max_bytes);
  // A file by digest, for a worker: with tokens (`caller` != 0) only one a
  // run its worker holds needs — the run's own (its resume point), its
  // teacher's or its student's checkpoint. PERMISSION_DENIED otherwise.
  absl::StatusOr<std::unique_ptr<RunFileReader>> OpenByDigest(
      const std::string& sha256, int64_t caller);

 private:
  // Whether `sha256` is the resume point, or the teacher's or student's
  // checkpoint, of a run `caller`'s worker holds.
  absl::StatusOr<bool> NeededByCallerLocked(const Locked& lock,
                                            const std::string& sha256,
                                            int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(core_.mutex());

  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_UPLOADS_H_
