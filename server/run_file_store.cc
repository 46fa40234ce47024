#include "server/run_file_store.h"

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/sha256.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

class DirectoryRunFileWriter final : public RunFileWriter {
 public:
  DirectoryRunFileWriter(fs::path temp, fs::path directory)
      : temp_(std::move(temp)),
        directory_(std::move(directory)),
        out_(temp_, std::ios::binary | std::ios::trunc) {}
  ~DirectoryRunFileWriter() override {
    if (!committed_) {
      std::error_code ignored;
      fs::remove(temp_, ignored);
    }
  }

  absl::Status Append(std::string_view data) override {
    out_.write(data.data(), std::streamsize(data.size()));
    if (!out_)
      return absl::InternalError(absl::StrCat("cannot write ", temp_.string()));
    hash_.Update(data);
    size_ += int64_t(data.size());
    return absl::OkStatus();
  }

  absl::StatusOr<std::string> Commit(
      const std::string& expected_sha256) override {
    out_.close();
    if (!out_)
      return absl::InternalError(absl::StrCat("cannot write ", temp_.string()));
    const std::string actual = hash_.HexDigest();
    if (actual != expected_sha256) {
      return absl::DataLossError(absl::StrCat(
          "run file sha256 mismatch: expected ", expected_sha256,
          ", the data hashes to ", actual, " (", size_, " bytes)"));
    }
    const fs::path final_path = directory_ / actual;
    std::error_code ec;
    fs::rename(temp_, final_path, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot move the run file to ",
                                              final_path.string(), ": ",
                                              ec.message()));
    }
    committed_ = true;
    return final_path.string();
  }

  int64_t size() const override { return size_; }

 private:
  fs::path temp_, directory_;
  std::ofstream out_;
  Sha256 hash_;
  int64_t size_ = 0;
  bool committed_ = false;
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
    return std::make_unique<DirectoryRunFileWriter>(temp, directory_);
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
    std::error_code ec;
    fs::remove(directory_ / sha256, ec);
    if (ec) {
      return absl::UnavailableError(
          absl::StrCat("cannot remove run file ", sha256, ": ", ec.message()));
    }
    return absl::OkStatus();
  }

 private:
  fs::path directory_;
  std::atomic<int64_t> next_{0};
};

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
