// The provenance keys a worker reports itself (the coordinator sets the
// others when it leases a run: versions, host, device, spec digest).
#ifndef DISTILL_COMMON_PROVENANCE_H_
#define DISTILL_COMMON_PROVENANCE_H_

#include <array>
#include <string_view>

namespace distill::provenance {

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
