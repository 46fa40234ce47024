// The scheduler's run files (server/scheduling/uploads.h): bounds, digests,
// names, superseded attempts, what a failed run keeps.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>
#include <thread>

#include "absl/synchronization/notification.h"
#include "common/sha256.h"
#include "server/storage/heap_shm_vfs.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST_F(SchedulerTest, TwoRunsMayUploadIdenticalCheckpoints) {
  // Same spec and seed give the same bytes: both runs still complete.
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  Succeed(Lease(), "teacher", 0.8);
  Succeed(Lease(), "identical student", 0.5);
  Succeed(Lease(), "identical student", 0.5);
  EXPECT_EQ(StatusOf(sweep.runs(1).id()), v1::SUCCEEDED);
  EXPECT_EQ(StatusOf(sweep.runs(2).id()), v1::SUCCEEDED);
}

TEST_F(SchedulerTest, UploadsAreBoundedBySizeAndBySelfDeclaredSize) {
  scheduler_ = std::make_unique<Scheduler>(
      store_.get(), run_files_.get(), &clock_,
      SchedulerOptions{60'000, 10'000, /*max_run_file_bytes=*/100});
  v1::RegisterWorkerRequest request;
  worker_ = scheduler_->RegisterWorker(request)->worker_id();
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header = HeaderFor(run, "x");
  header.set_size(101);
  auto big = scheduler_->BeginUpload(header);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()),
              HasSubstr("header.size 101 is beyond this coordinator's limit "
                        "of 100 bytes"));
  header.set_size(5);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append("12345").ok());
  absl::Status more = writer->Append("6");
  EXPECT_EQ(more.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(more.message()),
              HasSubstr("more than the 5 bytes its header announced"));
}

TEST_F(SchedulerTest, ASupersededAttemptsUploadLeavesNoFile) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  const std::string data = "a late checkpoint";
  const v1::RunFileHeader header = HeaderFor(run, data);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append(data).ok());
  clock_.AdvanceMs(61'000);  // Lost: the run goes to attempt 2.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(scheduler_->FinishUpload(header, *writer).code(),
            absl::StatusCode::kFailedPrecondition);
  writer.reset();
  EXPECT_EQ(run_files_->Open(Sha256Hex(data)).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_TRUE(fs::is_empty(dir_));
}

TEST_F(SchedulerTest, UploadWithAWrongDigestIsRejectedAndNotRecorded) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header;
  header.set_run_id(run.id());
  header.set_attempt(run.attempt());
  header.set_sha256(Sha256Hex("what was promised"));
  header.set_size(13);
  auto writer = *scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer->Append("what was sent").ok());
  absl::Status s = scheduler_->FinishUpload(header, *writer);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sha256 mismatch"));
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(header.sha256());
  EXPECT_EQ(scheduler_->CompleteRun(complete).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
}

TEST_F(SchedulerTest, RunFilesNeedSafeNames) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::RunFileHeader header;
  header.set_run_id(run.id());
  header.set_attempt(run.attempt());
  header.set_sha256(Sha256Hex("x"));
  header.set_size(1);
  for (const char* bad : {"../etc/passwd", ".hidden", "a b"}) {
    header.set_name(bad);
    auto writer = scheduler_->BeginUpload(header);
    EXPECT_EQ(writer.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(std::string(writer.status().message()), HasSubstr(bad));
  }
  header.set_name("tsne.csv");
  auto writer = scheduler_->BeginUpload(header);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  ASSERT_TRUE(scheduler_->FinishUpload(header, **writer).ok());
  v1::Run with_file = *scheduler_->GetRun(run.id());
  ASSERT_EQ(with_file.files_size(), 1);
  EXPECT_EQ(with_file.files(0).name(), "tsne.csv");
  auto reader = scheduler_->OpenRunFile(run.id(), "tsne.csv");
  ASSERT_TRUE(reader.ok());
  EXPECT_EQ(*(*reader)->Read(100), "x");
  EXPECT_EQ(scheduler_->OpenRunFile(run.id(), "nope").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, ARunThatFailsKeepsNoFile) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("junk"));
  const v1::Run run = Lease();
  Upload(run, std::string(4096, 'j'));
  Upload(run, "map", "tsne.csv");
  EXPECT_TRUE(scheduler_->OpenRunFile(run.id(), "checkpoint").ok());
  v1::FailRunRequest fail;
  fail.set_run_id(run.id());
  fail.set_attempt(run.attempt());
  ASSERT_TRUE(scheduler_->FailRun(fail).ok());
  for (const char* name : {"checkpoint", "tsne.csv"}) {
    EXPECT_EQ(scheduler_->OpenRunFile(run.id(), name).status().code(),
              absl::StatusCode::kNotFound)
        << name;
  }
  EXPECT_FALSE(fs::exists(dir_ / Sha256Hex(std::string(4096, 'j'))));
  EXPECT_TRUE(scheduler_->GetRun(run.id())->files().empty());
}

}  // namespace
}  // namespace distill

namespace distill {
namespace {

// A run-file store whose writers hold their Seal (the fsync) until told:
// what a slow disk does to an 8 GiB upload.
class SlowSealFiles final : public RunFileStore {
 public:
  explicit SlowSealFiles(std::unique_ptr<RunFileStore> files)
      : files_(std::move(files)) {}
  absl::Notification sealing, release;

  absl::StatusOr<std::unique_ptr<RunFileWriter>> NewWriter() override {
    absl::StatusOr<std::unique_ptr<RunFileWriter>> writer = files_->NewWriter();
    if (!writer.ok()) return writer.status();
    return std::make_unique<Writer>(*std::move(writer), this);
  }
  absl::StatusOr<std::unique_ptr<RunFileReader>> Open(
      const std::string& sha256) override {
    return files_->Open(sha256);
  }
  absl::Status Remove(const std::string& sha256) override {
    return files_->Remove(sha256);
  }
  std::shared_ptr<void> Pin() override { return files_->Pin(); }
  absl::StatusOr<int64_t> RemoveUnrecorded(
      const std::function<bool(const std::string&)>& recorded) override {
    return files_->RemoveUnrecorded(recorded);
  }

 private:
  class Writer final : public RunFileWriter {
   public:
    Writer(std::unique_ptr<RunFileWriter> writer, SlowSealFiles* files)
        : writer_(std::move(writer)), files_(files) {}
    absl::Status Append(std::string_view data) override {
      return writer_->Append(data);
    }
    absl::Status Seal(const std::string& sha256) override {
      files_->sealing.Notify();
      files_->release.WaitForNotification();
      return writer_->Seal(sha256);
    }
    absl::StatusOr<std::string> Publish() override {
      return writer_->Publish();
    }
    int64_t size() const override { return writer_->size(); }

   private:
    std::unique_ptr<RunFileWriter> writer_;
    SlowSealFiles* const files_;
  };
  std::unique_ptr<RunFileStore> files_;
};

// Issue 30: an upload's fsync ran with the scheduler's mutex held, so
// every lease, heartbeat and report waited behind it. Now the bytes are
// sealed before the lock: another worker's heartbeat and lease go through
// while one upload is still being synced.
TEST_F(SchedulerTest, AnUploadsFsyncHoldsNoLeaseOrHeartbeat) {
  auto slow = std::make_unique<SlowSealFiles>(
      *RunFileStore::OpenDirectory((dir_ / "slow").string()));
  SlowSealFiles* files = slow.get();
  run_files_ = std::move(slow);
  scheduler_ =
      std::make_unique<Scheduler>(store_.get(), run_files_.get(), &clock_,
                                  SchedulerOptions{60'000, 10'000});
  worker_ = AddWorker("gpu1");
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  const v1::Run uploading = Lease();
  const std::string other = AddWorker("gpu2");
  std::thread upload([&] {
    EXPECT_TRUE(UploadRunFile(*scheduler_, uploading, "weights").ok());
  });
  files->sealing.WaitForNotification();
  absl::Notification done;
  std::thread others([&] {
    v1::HeartbeatRequest beat;
    beat.set_run_id(uploading.id());
    beat.set_attempt(uploading.attempt());
    EXPECT_TRUE(scheduler_->Heartbeat(beat).ok());
    EXPECT_NE(LeaseAs(other).id(), 0);
    done.Notify();
  });
  const bool in_time = done.WaitForNotificationWithTimeout(absl::Seconds(5));
  files->release.Notify();
  upload.join();
  others.join();
  EXPECT_TRUE(in_time) << "a heartbeat and a lease waited for an upload's sync";
  EXPECT_TRUE(scheduler_->OpenRunFile(uploading.id(), "checkpoint").ok());
}

// Issue 30: an upload published (renamed into place) whose record then
// failed to be written stayed on disk for ever. The insert is made to fail
// by a trigger on the database's file; the file goes, unless another run's
// record names the same bytes.
TEST_F(FileSchedulerTest, AnUploadWhoseRecordFailsLeavesNoFile) {
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  const v1::Run first = Lease();
  Upload(first, "shared bytes");
  const v1::Run second = LeaseAs(AddWorker("gpu2"));
  sqlite3* db = nullptr;
  // Through the coordinator's VFS: its WAL index is in this process.
  ASSERT_EQ(sqlite3_open_v2((dir_ / "distill.db").c_str(), &db,
                            SQLITE_OPEN_READWRITE, kHeapShmVfs),
            SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "CREATE TRIGGER refuse BEFORE INSERT ON run_files "
                         "BEGIN SELECT RAISE(ABORT, 'injected'); END",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  EXPECT_FALSE(UploadRunFile(*scheduler_, second, "lonely bytes").ok());
  EXPECT_FALSE(fs::exists(dir_ / "files" / Sha256Hex("lonely bytes")));
  EXPECT_FALSE(UploadRunFile(*scheduler_, second, "shared bytes").ok());
  EXPECT_TRUE(fs::exists(dir_ / "files" / Sha256Hex("shared bytes")))
      << "the first run's record still names it";
  sqlite3_close(db);
}

}  // namespace
}  // namespace distill
