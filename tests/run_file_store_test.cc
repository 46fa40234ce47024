// The content-addressed run-file store: writes verified by digest, nothing
// left behind by a writer that does not commit, reads, removal.
#include "server/storage/run_file_store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "tests/temp_dir.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class RunFileStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = RunFileStore::OpenDirectory((dir_ / "files").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }
  // Names in the store's directory, hidden ones included.
  std::vector<std::string> Files() {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_ / "files"))
      names.push_back(e.path().filename().string());
    return names;
  }
  std::string ReadAll(const std::string& sha256, size_t chunk) {
    auto reader = store_->Open(sha256);
    EXPECT_TRUE(reader.ok()) << reader.status();
    std::string all;
    while (true) {
      absl::StatusOr<std::string> piece = (*reader)->Read(chunk);
      EXPECT_TRUE(piece.ok());
      if (piece->empty()) break;
      EXPECT_LE(piece->size(), chunk);
      all += *piece;
    }
    return all;
  }

  TempDir temp_{"distill_run_file_store_test"};
  const fs::path dir_ = temp_.path();
  std::unique_ptr<RunFileStore> store_;
};

TEST_F(RunFileStoreTest, AFileWrittenInPiecesIsReadBackByItsDigest) {
  const std::string data = "weights of a tiny model, in three pieces";
  auto writer = store_->NewWriter();
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append(data.substr(0, 10)).ok());
  ASSERT_TRUE((*writer)->Append(data.substr(10, 20)).ok());
  ASSERT_TRUE((*writer)->Append(data.substr(30)).ok());
  EXPECT_EQ((*writer)->size(), int64_t(data.size()));
  absl::StatusOr<std::string> path = (*writer)->Commit(Sha256Hex(data));
  ASSERT_TRUE(path.ok()) << path.status();
  EXPECT_EQ(fs::path(*path).filename(), Sha256Hex(data));
  EXPECT_EQ(ReadAll(Sha256Hex(data), 7), data);
}

TEST_F(RunFileStoreTest, AWrongDigestIsDataLossAndLeavesNothing) {
  {
    auto writer = *store_->NewWriter();
    ASSERT_TRUE(writer->Append("abc").ok());
    absl::StatusOr<std::string> path = writer->Commit(Sha256Hex("abd"));
    EXPECT_EQ(path.status().code(), absl::StatusCode::kDataLoss);
    EXPECT_THAT(std::string(path.status().message()),
                HasSubstr(Sha256Hex("abc")));
  }
  {
    auto dropped = *store_->NewWriter();  // Never committed.
    ASSERT_TRUE(dropped->Append("half a file").ok());
  }
  EXPECT_TRUE(Files().empty());
}

TEST_F(RunFileStoreTest, OpenAndRemoveByDigest) {
  const std::string sha = Sha256Hex("x");
  EXPECT_EQ(store_->Open(sha).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(store_->Open("../distill.db").status().code(),
            absl::StatusCode::kInvalidArgument);
  auto writer = *store_->NewWriter();
  ASSERT_TRUE(writer->Append("x").ok());
  ASSERT_TRUE(writer->Commit(sha).ok());
  auto reader = store_->Open(sha);
  ASSERT_TRUE(reader.ok());
  ASSERT_TRUE(store_->Remove(sha).ok());
  EXPECT_EQ(*(*reader)->Read(10), "x");  // An open reader reads on.
  EXPECT_EQ(store_->Open(sha).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(store_->Remove(sha).ok());  // Gone already: fine.
  EXPECT_EQ(store_->Remove("not-a-digest").code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RunFileStoreTest, AFileDamagedOnDiskIsReportedNotServed) {
  const std::string data = "model weights";
  auto writer = *store_->NewWriter();
  ASSERT_TRUE(writer->Append(data).ok());
  absl::StatusOr<std::string> path = writer->Commit(Sha256Hex(data));
  ASSERT_TRUE(path.ok());
  std::ofstream(*path, std::ios::binary | std::ios::in) << "M";  // A bit rots.
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      store_->Open(Sha256Hex(data));
  EXPECT_EQ(reader.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(reader.status().message()),
              HasSubstr("is corrupt on the coordinator"));
}

// A backup's pin postpones removals. Issue 30: a digest removed while
// pinned, then uploaded again before the unpin, was deleted at the unpin,
// and the new upload's record named a missing file.
TEST_F(RunFileStoreTest, AFileUploadedAgainWhilePinnedOutlivesThePin) {
  const std::string data = "a checkpoint dropped, then uploaded again";
  const std::string sha = Sha256Hex(data);
  auto write = [&] {
    auto writer = *store_->NewWriter();
    ASSERT_TRUE(writer->Append(data).ok());
    ASSERT_TRUE(writer->Commit(sha).ok());
  };
  write();
  std::shared_ptr<void> pin = store_->Pin();
  ASSERT_TRUE(store_->Remove(sha).ok());
  EXPECT_TRUE(fs::exists(dir_ / "files" / sha)) << "removal waits for the pin";
  write();  // The same bytes, recorded again.
  pin.reset();
  EXPECT_TRUE(fs::exists(dir_ / "files" / sha));
  EXPECT_EQ(ReadAll(sha, 7), data);
  // A removal asked for after the new upload waits and then happens.
  pin = store_->Pin();
  ASSERT_TRUE(store_->Remove(sha).ok());
  pin.reset();
  EXPECT_FALSE(fs::exists(dir_ / "files" / sha));
}

// A sealed upload is on disk and checked but invisible until published.
TEST_F(RunFileStoreTest, ASealedFileIsHiddenUntilPublished) {
  const std::string data = "sealed";
  auto writer = *store_->NewWriter();
  ASSERT_TRUE(writer->Append(data).ok());
  EXPECT_EQ(writer->Publish().status().code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(writer->Seal(Sha256Hex(data)).ok());
  EXPECT_EQ(store_->Open(Sha256Hex(data)).status().code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(writer->Publish().ok());
  EXPECT_EQ(ReadAll(Sha256Hex(data), 64), data);
}

// What a stop left: an upload cut short (".upload-*") and a file no record
// names go; recorded files and other names stay.
TEST_F(RunFileStoreTest, RemoveUnrecordedTakesWhatNoRecordNames) {
  auto put = [&](const std::string& data) {
    auto writer = *store_->NewWriter();
    EXPECT_TRUE(writer->Append(data).ok());
    EXPECT_TRUE(writer->Commit(Sha256Hex(data)).ok());
  };
  put("recorded");
  put("never recorded");
  std::ofstream(dir_ / "files" / ".upload-123-4") << "half";
  std::ofstream(dir_ / "files" / "README") << "an operator's note";
  absl::StatusOr<int64_t> removed = store_->RemoveUnrecorded(
      [](const std::string& sha) { return sha == Sha256Hex("recorded"); });
  ASSERT_TRUE(removed.ok()) << removed.status();
  EXPECT_EQ(*removed, 2);
  EXPECT_THAT(Files(),
              ::testing::UnorderedElementsAre(Sha256Hex("recorded"), "README"));
}

}  // namespace
}  // namespace distill
