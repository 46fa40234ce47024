// The keys of a run's provenance: those the coordinator records when it
// leases the run (versions, host, device, spec and checkpoint digests), and
// those a worker reports itself (kWorkerKeys). One place for all of them:
// the scheduler writes them, `runs show` reads them.
#ifndef DISTILL_COMMON_PROVENANCE_H_
#define DISTILL_COMMON_PROVENANCE_H_

#include <array>
#include <string_view>

namespace distill::provenance {

// Set by the coordinator at each lease.
inline constexpr char kCoordinatorVersion[] = "coordinator_version";
inline constexpr char kWorkerVersion[] = "worker_version";
inline constexpr char kWorker[] = "worker";
inline constexpr char kHost[] = "host";
inline constexpr char kDevice[] = "device";
inline constexpr char kThreads[] = "threads";
inline constexpr char kLibTorch[] = "libtorch";
inline constexpr char kBlas[] = "blas";
// SHA-256 of the spec's wire bytes.
inline constexpr char kSpecSha256[] = "spec_sha256";
// The checkpoint the run starts from: its teacher's, its student's.
inline constexpr char kTeacherCheckpointSha256[] = "teacher_checkpoint_sha256";
inline constexpr char kStudentCheckpointSha256[] = "student_checkpoint_sha256";
// What a fork started from: its parent's checkpoint, or (continuing) its
// final training state ("state.pt").
inline constexpr char kForkSha256[] = "fork_sha256";

// SHA-256 of the manifest of the data files the run reads: one line
// "<path relative to the data set's root> <sha256 of the file>\n" per
// file, sorted by path. Equal digests: the same bytes under the same names,
// wherever the data set lives.
inline constexpr char kDataSha256[] = "data_sha256";
// How many files the manifest lists.
inline constexpr char kDataFiles[] = "data_files";
// SHA-256 of a TorchScript teacher's file (teacher.torchscript).
inline constexpr char kTeacherTorchScriptSha256[] =
    "teacher_torchscript_sha256";

// Set by the coordinator when a retention policy dropped a run file: what,
// when and why (server/scheduling/retention.h).
inline constexpr char kRetention[] = "retention";
inline constexpr std::array<const char*, 3> kWorkerKeys = {
    kDataSha256, kDataFiles, kTeacherTorchScriptSha256};

constexpr bool IsWorkerKey(std::string_view key) {
  for (const char* k : kWorkerKeys) {
    if (std::string_view(k) == key) return true;
  }
  return false;
}

}  // namespace distill::provenance

#endif  // DISTILL_COMMON_PROVENANCE_H_
