#include "worker/file_transfer.h"

#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/grpc_status.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "worker/scratch.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

}  // namespace

FileTransfer::FileTransfer(v1::WorkerService::Stub* stub,
                           std::string scratch_dir)
    : stub_(stub), scratch_dir_(std::move(scratch_dir)) {}

std::string FileTransfer::CachePath(const std::string& sha256,
                                    const std::string& dir) const {
  return absl::StrCat(dir.empty() ? scratch_dir_ : dir, "/", sha256, ".pt");
}

bool FileTransfer::Cached(const std::string& sha256,
                          const std::string& dir) const {
  absl::StatusOr<std::string> digest = Sha256File(CachePath(sha256, dir));
  return digest.ok() && *digest == sha256;
}

absl::StatusOr<std::string> FileTransfer::Fetch(const std::string& sha256,
                                                const std::string& dir) {
  if (!IsSha256Hex(sha256)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no such file (sha256 \"", sha256, "\")"));
  }
  const std::string path = CachePath(sha256, dir);
  if (Cached(sha256, dir)) {
    TouchCacheFile(path);
    return path;
  }
  // Workers on one host may share a scratch directory (one per GPU, or the
  // default): each downloads into a name of its own, and the complete file
  // replaces whatever is there (the same bytes, by digest).
  static std::atomic<int64_t> downloads{0};
  const std::string temp =
      absl::StrCat(path, ".part-", ::getpid(), "-", downloads++);
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  if (!out) {
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temp, " (disk full or read-only?)"));
  }
  v1::FetchRunFileRequest request;
  request.set_sha256(sha256);
  auto context = ContextWithTimeout(absl::Minutes(10), /*wait_for_ready=*/true);
  auto reader = stub_->FetchRunFile(context.get(), request);
  v1::RunFileChunk chunk;
  Sha256 hash;
  while (reader->Read(&chunk)) {
    out.write(chunk.data().data(), std::streamsize(chunk.data().size()));
    hash.Update(chunk.data());
  }
  grpc::Status status = reader->Finish();
  out.close();
  std::error_code error;
  if (!status.ok()) {
    fs::remove(temp, error);
    return FromGrpcStatus(status);
  }
  if (!out) {
    fs::remove(temp, error);
    return absl::UnavailableError(
        absl::StrCat("cannot write ", temp, " (disk full or read-only?)"));
  }
  const std::string actual = hash.HexDigest();
  if (actual != sha256) {
    fs::remove(temp, error);
    return absl::DataLossError(absl::StrCat("downloaded file hashes to ",
                                            actual, ", expected ", sha256));
  }
  fs::rename(temp, path, error);
  if (error) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", temp, " to ",
                                               path, ": ", error.message()));
  }
  return path;
}

absl::StatusOr<std::string> FileTransfer::Upload(int64_t run_id,
                                                 int32_t attempt,
                                                 const std::string& path,
                                                 const std::string& name) {
  absl::StatusOr<std::string> sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  std::error_code error;
  const auto size = fs::file_size(path, error);
  std::ifstream in(path, std::ios::binary);
  if (error || !in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path));
  }
  v1::RunFileChunk chunk;
  v1::RunFileHeader* header = chunk.mutable_header();
  header->set_run_id(run_id);
  header->set_attempt(attempt);
  header->set_sha256(*sha);
  header->set_size(int64_t(size));
  header->set_name(name);
  v1::UploadRunFileResponse response;
  auto context = ContextWithTimeout(absl::Minutes(10), /*wait_for_ready=*/true);
  auto writer = stub_->UploadRunFile(context.get(), &response);
  std::string buffer(kFileChunkBytes, '\0');
  bool first = true;
  while (first || in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    chunk.set_data(buffer.data(), size_t(in.gcount()));
    if (!writer->Write(chunk)) break;
    chunk.clear_header();
    first = false;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return *sha;
}

absl::StatusOr<std::string> FileTransfer::Digest(const std::string& path) {
  std::error_code error;
  const auto size = fs::file_size(path, error);
  const auto time =
      error ? fs::file_time_type() : fs::last_write_time(path, error);
  if (error) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const std::string stamp =
      absl::StrCat(size, "@", time.time_since_epoch().count());
  auto it = digests_.find(path);
  if (it != digests_.end() && it->second.first == stamp)
    return it->second.second;
  absl::StatusOr<std::string> sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  digests_[path] = {stamp, *sha};
  return *sha;
}

}  // namespace distill
