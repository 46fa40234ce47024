#include "server/scheduling/uploads.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "server/storage/run_file_store.h"

namespace distill {
namespace {

// A run file's name: safe in paths and URLs, and not a hidden file.
bool IsFileName(const std::string& name) {
  if (name.size() > 64 || (!name.empty() && name[0] == '.')) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

// Refuses bytes beyond what the upload's header announced, so that a
// stranger's stream cannot fill the disk past its own declared size.
class BoundedWriter final : public RunFileWriter {
 public:
  BoundedWriter(std::unique_ptr<RunFileWriter> writer, int64_t limit,
                DiskGuard::Reservation reservation)
      : writer_(std::move(writer)),
        limit_(limit),
        reservation_(std::move(reservation)) {}
  absl::Status Append(std::string_view data) override {
    if (writer_->size() + int64_t(data.size()) > limit_) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upload sends more than the ", limit_,
                       " bytes its header announced"));
    }
    return writer_->Append(data);
  }
  absl::Status Seal(const std::string& expected_sha256) override {
    return writer_->Seal(expected_sha256);
  }
  absl::StatusOr<std::string> Publish() override { return writer_->Publish(); }
  int64_t size() const override { return writer_->size(); }

 private:
  std::unique_ptr<RunFileWriter> writer_;
  const int64_t limit_;
  // The disk space its header declared, held until it is dropped.
  DiskGuard::Reservation reservation_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<RunFileWriter>> Uploads::Begin(
    const v1::RunFileHeader& header, int64_t caller) {
  if (!IsFileName(header.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.name must be empty or a file name of at most 64 "
                     "letters, digits, '.', '_' and '-', got \"",
                     header.name(), "\""));
  }
  if (!IsSha256Hex(header.sha256())) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.sha256 must be 64 lower-case hex digits, got \"",
                     header.sha256(), "\""));
  }
  const int64_t limit = core_.options().max_run_file_bytes;
  if (header.size() < 0 || header.size() > limit) {
    return absl::ResourceExhaustedError(
        absl::StrCat("header.size ", header.size(),
                     " is beyond this coordinator's limit of ", limit,
                     " bytes per run file (--max_run_file_mb)"));
  }
  {
    Locked lock(&core_);
    absl::StatusOr<v1::Run> run = core_.CurrentLeaseLocked(
        lock, header.run_id(), header.attempt(), caller);
    if (!run.ok()) return run.status();
  }
  // Refused before its first chunk when it cannot fit: the worker keeps
  // its file and tries again, instead of sending bytes for nothing.
  absl::StatusOr<DiskGuard::Reservation> space =
      core_.disk().Reserve(header.size());
  if (!space.ok()) return space.status();
  absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
      core_.run_files().NewWriter();
  if (!writer.ok()) return writer.status();
  return std::make_unique<BoundedWriter>(*std::move(writer), header.size(),
                                         *std::move(space));
}

absl::Status Uploads::Finish(const v1::RunFileHeader& header,
                             RunFileWriter& writer, int64_t caller) {
  if (writer.size() != header.size()) {
    return absl::DataLossError(
        absl::StrCat("the run file upload ended after ", writer.size(),
                     " bytes, the header promised ", header.size()));
  }
  // On disk and verified before the lock: an fsync of gigabytes must not
  // hold every lease, heartbeat and report behind it (nor let the reaper
  // expire live leases meanwhile).
  if (absl::Status s = writer.Seal(header.sha256()); !s.ok()) return s;
  Locked lock(&core_);
  // Checked before the file becomes visible: a superseded attempt's upload
  // leaves nothing behind (the writer removes it).
  absl::StatusOr<v1::Run> run =
      core_.CurrentLeaseLocked(lock, header.run_id(), header.attempt(), caller);
  if (!run.ok()) return run.status();
  if (absl::StatusOr<std::string> stored = writer.Publish(); !stored.ok()) {
    return stored.status();
  }
  const std::string path = absl::StrCat(kRunFilesDir, "/", header.sha256());
  const std::string name =
      header.name().empty() ? kCheckpointFile : header.name();
  Store& store = core_.store();
  absl::Status written = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    if (absl::Status s =
            store.InsertRunFile({header.sha256(), header.run_id(),
                                 header.attempt(), header.size(), path, name});
        !s.ok()) {
      return s;
    }
    if (name != kResumeFile) return absl::OkStatus();
    // A run keeps only its latest resume point.
    absl::StatusOr<std::vector<std::string>> gone =
        store.DeleteRunFiles(header.run_id(), name, header.sha256());
    if (!gone.ok()) return gone.status();
    core_.OrphanLocked(lock, *gone);
    return absl::OkStatus();
  });
  if (!written.ok()) {
    // Published but not recorded: the file goes unless a record of
    // another run names the same bytes.
    absl::StatusOr<RunFileRecord> other =
        store.FindRunFileByDigest(header.sha256());
    if (absl::IsNotFound(other.status())) {
      if (absl::Status s = core_.run_files().Remove(header.sha256()); !s.ok())
        DISTILL_LOG(WARNING) << s.message();
    }
  }
  return written;
}

namespace {

// Why run `run_id` has no file `name`: the run does not exist, retention
// dropped the file (when and why, as `runs show` says), or it never had
// one.
absl::Status NoFile(Store& store, int64_t run_id, const std::string& name) {
  absl::StatusOr<v1::Run> run = store.GetRun(run_id);
  if (!run.ok()) return run.status();
  auto dropped = run->provenance().find(provenance::kRetention);
  if (dropped != run->provenance().end() &&
      absl::StartsWith(dropped->second, name + " (")) {
    return absl::NotFoundError(absl::StrCat(
        "run ", run_id, "'s file \"", name,
        "\" was dropped by the retention policy: ", dropped->second,
        " (its results and metrics stay)"));
  }
  return absl::NotFoundError(
      absl::StrCat("run ", run_id, " has no file \"", name, "\""));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RunFileReader>> Uploads::Open(
    int64_t run_id, const std::string& name) {
  std::string sha256;
  if (absl::Status s = core_.Read([&](Store& store) -> absl::Status {
        absl::StatusOr<RunFileRecord> file = store.FindRunFile(run_id, name);
        if (absl::IsNotFound(file.status())) return NoFile(store, run_id, name);
        if (!file.ok()) return file.status();
        sha256 = file->sha256;
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
  }
  return core_.run_files().Open(sha256);
}

absl::StatusOr<std::string> Uploads::ReadWhole(int64_t run_id,
                                               const std::string& name,
                                               size_t max_bytes) {
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader = Open(run_id, name);
  if (!reader.ok()) return reader.status();
  std::string content;
  while (true) {
    absl::StatusOr<std::string> chunk = (*reader)->Read(1 << 20);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) return content;
    content += *chunk;
    if (content.size() > max_bytes) {
      return absl::OutOfRangeError(absl::StrCat("run ", run_id, "'s ", name,
                                                " is larger than ", max_bytes,
                                                " bytes"));
    }
  }
}

absl::StatusOr<bool> Uploads::NeededByCallerLocked(const Locked& lock,
                                                   const std::string& sha256,
                                                   int64_t caller) {
  Store& store = core_.store();
  absl::StatusOr<std::vector<v1::Run>> running = store.ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  for (const v1::Run& run : *running) {
    if (!core_.CheckHolderLocked(lock, run, caller).ok()) continue;
    // By digest, not by the file record's run: identical bytes may have
    // been uploaded by another run first.
    for (int64_t source : {run.teacher_run_id(), run.spec().student_run_id()}) {
      if (source == 0) continue;
      absl::StatusOr<v1::Run> other = store.GetRun(source);
      if (other.ok() && other->checkpoint_sha256() == sha256) return true;
    }
    absl::StatusOr<RunFileRecord> resume =
        store.FindRunFile(run.id(), kResumeFile);
    if (resume.ok() && resume->sha256 == sha256) return true;
    // What a fork starts from, as its lease named it.
    auto fork = run.provenance().find(provenance::kForkSha256);
    if (fork != run.provenance().end() && fork->second == sha256) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<RunFileReader>> Uploads::OpenByDigest(
    const std::string& sha256, int64_t caller) {
  if (caller != 0) {
    if (!IsSha256Hex(sha256)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sha256 must be 64 lower-case hex digits, got \"", sha256, "\""));
    }
    Locked lock(&core_);
    if (absl::Status s = core_.store().FindRunFileByDigest(sha256).status();
        !s.ok()) {
      return s;
    }
    absl::StatusOr<bool> needed = NeededByCallerLocked(lock, sha256, caller);
    if (!needed.ok()) return needed.status();
    if (!*needed) {
      return absl::PermissionDeniedError(absl::StrCat(
          "run file ", sha256,
          " is no resume point, teacher or student checkpoint of a run this "
          "worker holds"));
    }
  }
  return core_.run_files().Open(sha256);
}

}  // namespace distill
