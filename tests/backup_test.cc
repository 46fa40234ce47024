// Backups taken while the store is written, restores that equal their
// source, and what a killed or damaged backup leaves
// (server/operations/backup.h, server/operations/backups.h).
#include "server/operations/backup.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "server/base/clock.h"
#include "server/base/durable.h"
#include "server/coordinator.h"
#include "server/operations/backups.h"
#include "tests/scheduler_steps.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class BackupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    fs::create_directories(data_ / "run-files");
    auto store = Store::OpenSqlite((data_ / "distill.db").string());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    auto files = RunFileStore::OpenDirectory((data_ / "run-files").string());
    ASSERT_TRUE(files.ok()) << files.status();
    files_ = *std::move(files);
  }

  // A run of `status` with `points` metric points and a run file of
  // `bytes` (its digest returned).
  std::string AddRun(v1::RunStatus status, int points,
                     const std::string& bytes) {
    v1::Run run;
    run.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
    run.set_status(status);
    run.set_created_ms(1000);
    if (status == v1::RUNNING) {
      run.set_attempt(1);
      run.set_worker_id("gpu-1");
      run.set_lease_expires_ms(9'000'000'000'000);
    }
    const int64_t id = *store_->InsertRun(run);
    run.set_id(id);
    EXPECT_TRUE(store_->UpdateRun(run).ok());  // The lease's columns.
    std::vector<v1::MetricPoint> metrics(static_cast<size_t>(points));
    for (int i = 0; i < points; ++i) {
      metrics[size_t(i)].set_key("train/loss");
      metrics[size_t(i)].set_step(i);
      metrics[size_t(i)].set_value(1.0 / (i + 1));
    }
    EXPECT_TRUE(store_->AppendMetrics(id, 1, metrics).ok());
    auto writer = *files_->NewWriter();
    EXPECT_TRUE(writer->Append(bytes).ok());
    const std::string sha256 = Sha256Hex(bytes);
    EXPECT_TRUE(writer->Commit(sha256).ok());
    EXPECT_TRUE(store_
                    ->InsertRunFile({sha256, id, 1, int64_t(bytes.size()),
                                     (data_ / "run-files" / sha256).string(),
                                     "checkpoint"})
                    .ok());
    return sha256;
  }

  absl::StatusOr<BackupResult> Backup(absl::Time now) {
    auto reader = store_->OpenReader();
    if (!reader.ok()) return reader.status();
    return TakeBackup(**reader, *files_, (data_ / "run-files").string(),
                      backups_.string(), now);
  }

  TempDir temp_{"distill_backup_test"};
  const fs::path data_ = temp_.path() / "data";
  const fs::path backups_ = temp_.path() / "backups";
  std::unique_ptr<Store> store_;
  std::unique_ptr<RunFileStore> files_;
};

// What a listing shows of a store: each run's id, status, attempt and
// metric count, and every run file.
std::string Listing(Store& store) {
  std::string out;
  const std::vector<v1::Run> runs =
      *store.ListRuns(0, v1::RUN_STATUS_UNSPECIFIED);
  for (const v1::Run& run : runs) {
    absl::StrAppend(&out, run.id(), " ", v1::RunStatus_Name(run.status()),
                    " attempt ", run.attempt(), " points ",
                    store.Metrics(run.id(), 0)->size(), "\n");
  }
  const std::vector<RunFileRecord> files = *store.ListRunFiles();
  for (const RunFileRecord& f : files) {
    absl::StrAppend(&out, f.run_id, " ", f.name, " ", f.sha256, " ", f.size,
                    "\n");
  }
  return out;
}

TEST_F(BackupTest, ARestoreEqualsItsSourceAndFencesTheLeasedRuns) {
  AddRun(v1::SUCCEEDED, 500, "teacher weights");
  AddRun(v1::FAILED, 20, "half a student");
  const std::string leased = AddRun(v1::RUNNING, 30, "resume point");
  const std::string before = Listing(*store_);

  auto taken = Backup(absl::FromUnixSeconds(1'800'000'000));
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_EQ(taken->files, 3);
  EXPECT_EQ(taken->files_copied, 3);
  EXPECT_GT(taken->database_bytes, 0);
  EXPECT_EQ(fs::path(taken->snapshot).filename(), "2027-01-15T08-00-00.000Z");

  const fs::path restored = temp_.path() / "restored";
  auto result = RestoreBackup(taken->snapshot, restored.string());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->files, 3);
  EXPECT_EQ(result->requeued, 1);
  auto copy = Store::OpenSqlite((restored / "distill.db").string());
  ASSERT_TRUE(copy.ok()) << copy.status();
  // Everything equal but the leased run, which is queued again: its next
  // lease is attempt 2, so attempt 1's worker cannot write into it.
  std::string want = before;
  const size_t leased_run = want.find("3 RUNNING");
  ASSERT_NE(leased_run, std::string::npos) << before;
  want.replace(leased_run, 9, "3 QUEUED");
  EXPECT_EQ(Listing(**copy), want);
  v1::Run run = *(*copy)->GetRun(3);
  EXPECT_EQ(run.worker_id(), "");
  EXPECT_THAT(run.message(), HasSubstr("attempt 1 on worker gpu-1 was fenced"));
  const std::vector<RunFileRecord> files = *(*copy)->ListRunFiles();
  ASSERT_EQ(files.size(), 3u);
  for (const RunFileRecord& f : files) {
    EXPECT_EQ(*Sha256File((restored / "run-files" / f.sha256).string()),
              f.sha256);
  }
  EXPECT_TRUE(fs::exists(restored / "run-files" / leased));
}

TEST_F(BackupTest, ALaterBackupCopiesOnlyTheNewFiles) {
  AddRun(v1::SUCCEEDED, 5, "first");
  ASSERT_TRUE(Backup(absl::FromUnixSeconds(100)).ok());
  AddRun(v1::SUCCEEDED, 5, "second, longer");
  auto second = Backup(absl::FromUnixSeconds(200));
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->files, 2);
  EXPECT_EQ(second->files_copied, 1);
  EXPECT_EQ(second->bytes_copied,
            int64_t(std::string("second, longer").size()));
  EXPECT_EQ(ListSnapshots(backups_.string()).size(), 2u);
}

TEST_F(BackupTest, AKilledBackupLeavesTheEarlierOnesWhole) {
  AddRun(v1::SUCCEEDED, 5, "kept");
  auto good = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(good.ok());
  // What kill -9 leaves mid-backup: a snapshot directory not yet renamed
  // and a run file half copied into the pool.
  fs::create_directories(backups_ / ".partial-1970-01-01T00-03-20.000Z");
  std::ofstream(backups_ / ".partial-1970-01-01T00-03-20.000Z" / "distill.db")
      << "half a database";
  std::ofstream(backups_ / "files" / "0123.tmp") << "half a file";
  EXPECT_EQ(ListSnapshots(backups_.string()),
            std::vector<std::string>{good->snapshot});
  auto restored =
      RestoreBackup(good->snapshot, (temp_.path() / "restored").string());
  ASSERT_TRUE(restored.ok()) << restored.status();
  // The next pruning clears the leftovers.
  ASSERT_TRUE(PruneBackups(backups_.string(), 5).ok());
  EXPECT_FALSE(fs::exists(backups_ / ".partial-1970-01-01T00-03-20.000Z"));
  EXPECT_FALSE(fs::exists(backups_ / "files" / "0123.tmp"));
}

// A real kill -9 of a process taking a backup, mid-copy: the earlier
// backup restores whole, the killed one is no snapshot, and the next one
// (after the "coordinator" restarts) is whole and clears what was left.
TEST_F(BackupTest, AKillNineMidBackupLeavesTheEarlierOnesWholeAndTheNextGood) {
  AddRun(v1::SUCCEEDED, 5, "the first run");
  auto good = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(good.ok()) << good.status();
  const std::string at_good = Listing(*store_);
  for (int i = 0; i < 100; ++i) {  // 100 MiB of new run files.
    AddRun(v1::SUCCEEDED, 2,
           std::string(1 << 20, char('a' + i % 26)) + std::to_string(i));
  }
  const std::string at_kill = Listing(*store_);
  // The database has one owner at a time: the child takes it over.
  store_.reset();
  const auto pool_files = [&] {
    int n = 0;
    for (const auto& entry : fs::directory_iterator(backups_ / "files"))
      n += entry.path().extension() != ".tmp";
    return n;
  };
  const int before = pool_files();
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto store = Store::OpenSqlite((data_ / "distill.db").string());
    if (!store.ok()) ::_exit(2);
    store_ = *std::move(store);
    ::_exit(Backup(absl::FromUnixSeconds(200)).ok() ? 0 : 1);
  }
  // Killed once a few of the new files are in the pool, before the end.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (pool_files() < before + 3 && absl::Now() < give_up)
    absl::SleepFor(absl::Microseconds(200));
  ASSERT_EQ(::kill(child, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "the backup ended before the kill";
  const int copied_before_kill = pool_files() - before;
  EXPECT_LT(copied_before_kill, 100) << "the kill came after the copy";
  EXPECT_EQ(ListSnapshots(backups_.string()),
            std::vector<std::string>{good->snapshot});
  EXPECT_FALSE(fs::exists(backups_ / "1970-01-01T00-03-20.000Z"));

  auto restored =
      RestoreBackup(good->snapshot, (temp_.path() / "restored").string());
  ASSERT_TRUE(restored.ok()) << restored.status();
  EXPECT_EQ(Listing(**Store::OpenSqlite(
                (temp_.path() / "restored" / "distill.db").string())),
            at_good);

  // The restarted owner's next backup copies the rest and is whole.
  store_ = *Store::OpenSqlite((data_ / "distill.db").string());
  auto next = Backup(absl::FromUnixSeconds(300));
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->files, 101);
  // Only what the killed one had not copied whole (its half-copied file
  // again).
  EXPECT_EQ(next->files_copied, 100 - copied_before_kill);
  ASSERT_TRUE(PruneBackups(backups_.string(), 5).ok());
  for (const auto& entry : fs::directory_iterator(backups_)) {
    EXPECT_FALSE(entry.path().filename().string().starts_with("."))
        << entry.path();
  }
  for (const auto& entry : fs::directory_iterator(backups_ / "files"))
    EXPECT_NE(entry.path().extension(), ".tmp") << entry.path();
  auto whole =
      RestoreBackup(next->snapshot, (temp_.path() / "restored2").string());
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->files, 101);
  EXPECT_EQ(Listing(**Store::OpenSqlite(
                (temp_.path() / "restored2" / "distill.db").string())),
            at_kill);
}

TEST_F(BackupTest, PruningKeepsTheNewestAndTheFilesTheyName) {
  const std::string old_file = AddRun(v1::SUCCEEDED, 5, "only in the first");
  ASSERT_TRUE(Backup(absl::FromUnixSeconds(100)).ok());
  // The run's file goes (say, garbage-collected) before the next backups.
  ASSERT_TRUE(store_->DeleteRunFiles(1, "", "").ok());
  const std::string new_file = AddRun(v1::SUCCEEDED, 5, "in every later one");
  ASSERT_TRUE(Backup(absl::FromUnixSeconds(200)).ok());
  ASSERT_TRUE(Backup(absl::FromUnixSeconds(300)).ok());
  ASSERT_TRUE(PruneBackups(backups_.string(), 2).ok());
  const std::vector<std::string> kept = ListSnapshots(backups_.string());
  ASSERT_EQ(kept.size(), 2u);
  EXPECT_THAT(kept[0], HasSubstr("00-03-20"));
  EXPECT_FALSE(fs::exists(backups_ / "files" / old_file));
  EXPECT_TRUE(fs::exists(backups_ / "files" / new_file));
  EXPECT_FALSE(PruneBackups(backups_.string(), 0).ok());
}

TEST_F(BackupTest, ADamagedRunFileIsNamedAndRestoresNothing) {
  const std::string sha256 = AddRun(v1::SUCCEEDED, 5, "good bytes");
  auto taken = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(taken.ok());
  std::ofstream(backups_ / "files" / sha256, std::ios::trunc) << "rotten";
  const fs::path restored = temp_.path() / "restored";
  auto result = RestoreBackup(taken->snapshot, restored.string());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(result.status().message(), HasSubstr(sha256));
  EXPECT_TRUE(fs::is_empty(restored));
  // Damaged in the data directory: the backup fails, naming it.
  std::ofstream(data_ / "run-files" / sha256, std::ios::trunc) << "rotten";
  fs::remove_all(backups_);
  auto again = Backup(absl::FromUnixSeconds(200));
  ASSERT_EQ(again.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(again.status().message(), HasSubstr("damaged"));
  EXPECT_TRUE(ListSnapshots(backups_.string()).empty());
}

TEST_F(BackupTest, ARestoreNeverWritesIntoADirectoryInUse) {
  AddRun(v1::SUCCEEDED, 5, "x");
  auto taken = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(taken.ok());
  auto result = RestoreBackup(taken->snapshot, data_.string());
  ASSERT_EQ(result.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(result.status().message(), HasSubstr("not empty"));
  EXPECT_EQ(store_->ListRuns(0, v1::RUN_STATUS_UNSPECIFIED)->size(), 1u);
  EXPECT_EQ(RestoreBackup((temp_.path() / "no-such-backup").string(),
                          (temp_.path() / "new").string())
                .status()
                .code(),
            absl::StatusCode::kNotFound);
}

TEST_F(BackupTest, AFileRemovedDuringABackupWaitsForItsEnd) {
  AddRun(v1::SUCCEEDED, 5, "named by the snapshot");
  const std::string sha256 = Sha256Hex("named by the snapshot");
  std::shared_ptr<void> pin = files_->Pin();
  ASSERT_TRUE(files_->Remove(sha256).ok());
  EXPECT_TRUE(fs::exists(data_ / "run-files" / sha256));
  pin.reset();
  EXPECT_FALSE(fs::exists(data_ / "run-files" / sha256));
}

TEST_F(BackupTest, TheWriterGoesOnWhileASnapshotIsTaken) {
  AddRun(v1::SUCCEEDED, 5'000, "big history");
  std::atomic<bool> done{false};
  std::atomic<int> commits{0};
  std::thread writer([&] {
    std::vector<v1::MetricPoint> point(1);
    point[0].set_key("train/loss");
    while (!done) {
      point[0].set_step(commits);
      if (store_->AppendMetrics(1, 1, point).ok()) ++commits;
    }
  });
  // The writer running first (on a loaded machine its thread may start
  // late), then the snapshot.
  while (commits.load() == 0) std::this_thread::yield();
  const int before = commits;
  auto taken = Backup(absl::FromUnixSeconds(100));
  const int during = commits - before;
  done = true;
  writer.join();
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_GT(during, 0) << "the writer waited for the whole snapshot";
  auto copy = Store::OpenSqlite(taken->snapshot + "/distill.db");
  ASSERT_TRUE(copy.ok());
  EXPECT_TRUE((*copy)->CheckIntegrity().ok());
  // One moment: the first 5,000 points and some prefix of the writer's.
  const size_t points = (*copy)->Metrics(1, 0)->size();
  EXPECT_GE(points, 5'000u);
  EXPECT_LE(points, size_t(5'000 + commits));
}

TEST(BackupsTest, ScheduledBackupsComeEveryPeriodAndTheOldestGo) {
  TempDir temp("distill_backups_test");
  auto store = *Store::OpenSqlite((temp.path() / "distill.db").string());
  auto files = *RunFileStore::OpenDirectory((temp.path() / "files").string());
  FakeClock clock;
  BackupOptions options{(temp.path() / "backups").string(), absl::Hours(1), 2};
  Backups backups(options, store.get(), files.get(),
                  (temp.path() / "files").string(), nullptr, &clock);
  backups.Tick();  // None yet: one now.
  EXPECT_EQ(ListSnapshots(options.dir).size(), 1u);
  clock.AdvanceMs(30 * 60 * 1000);
  backups.Tick();
  EXPECT_EQ(ListSnapshots(options.dir).size(), 1u);
  clock.AdvanceMs(31 * 60 * 1000);
  backups.Tick();
  EXPECT_EQ(ListSnapshots(options.dir).size(), 2u);
  clock.AdvanceMs(61 * 60 * 1000);
  backups.Tick();
  EXPECT_EQ(ListSnapshots(options.dir).size(), 2u);  // keep: 2.
  // On demand too; refused without a directory.
  EXPECT_TRUE(backups.Take().ok());
  Backups none({}, store.get(), files.get(), "", nullptr, &clock);
  EXPECT_EQ(none.Take().status().code(), absl::StatusCode::kFailedPrecondition);
}

// Issue 30: `--restore_from=DIR/` (a shell's completion adds the slash)
// looked for the pool inside the snapshot and called every file missing.
TEST_F(BackupTest, ASnapshotNamedWithATrailingSlashRestores) {
  AddRun(v1::SUCCEEDED, 5, "bytes");
  auto taken = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(taken.ok());
  for (const std::string& name :
       {taken->snapshot + "/", taken->snapshot + "//"}) {
    const fs::path restored =
        temp_.path() / ("slash" + std::to_string(name.size()));
    auto result = RestoreBackup(name, restored.string());
    ASSERT_TRUE(result.ok()) << name << ": " << result.status();
    EXPECT_EQ(result->files, 1);
  }
}

// Issue 30: a restore's database copy and directories were not synced
// before the coordinator served from them.
TEST_F(BackupTest, ARestoreSyncsTheDatabaseAndItsDirectories) {
  AddRun(v1::SUCCEEDED, 5, "bytes");
  auto taken = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(taken.ok());
  std::vector<std::string> synced;
  absl::Mutex mu;
  SetFsyncObserverForTest([&](const std::string& path) {
    absl::MutexLock lock(&mu);
    synced.push_back(path);
  });
  const fs::path restored = temp_.path() / "restored";
  auto result = RestoreBackup(taken->snapshot, restored.string());
  SetFsyncObserverForTest(nullptr);
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_THAT(synced,
              ::testing::IsSupersetOf({(restored / "distill.db").string(),
                                       (restored / "run-files").string(),
                                       restored.string()}));
}

// Issue 30: backups neither checked free space nor backed off, so one on a
// nearly full disk filled it again every minute. Now each step is checked
// first, and a failed backup leaves none of what it copied.
TEST_F(BackupTest, ABackupThatDoesNotFitWritesNothing) {
  AddRun(v1::SUCCEEDED, 5, std::string(64 << 10, 'a'));
  auto first = Backup(absl::FromUnixSeconds(100));
  ASSERT_TRUE(first.ok());
  AddRun(v1::SUCCEEDED, 5, std::string(64 << 10, 'b'));
  AddRun(v1::SUCCEEDED, 5, std::string(64 << 10, 'c'));
  auto listing = [&] {
    std::vector<std::string> names;
    for (const auto& e : fs::recursive_directory_iterator(backups_))
      names.push_back(e.path().string());
    std::sort(names.begin(), names.end());
    return names;
  };
  const std::vector<std::string> before = listing();
  BackupSpace space;
  space.free_bytes = [](const std::string&) {
    return absl::StatusOr<int64_t>(int64_t{100} << 10);
  };
  space.keep_free = 50 << 10;
  auto reader = *store_->OpenReader();
  auto refused =
      TakeBackup(*reader, *files_, (data_ / "run-files").string(),
                 backups_.string(), absl::FromUnixSeconds(200), space);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("2 new run files needs 128.0 KiB, the disk has "
                        "100.0 KiB free and keeps 50.0 KiB"));
  EXPECT_EQ(listing(), before);
  // A copy that fails half-way (a file damaged on the disk) takes back
  // the files it had copied: the damaged one is the second copied (files
  // are copied in digest order).
  const std::string last = std::max(Sha256Hex(std::string(64 << 10, 'b')),
                                    Sha256Hex(std::string(64 << 10, 'c')));
  std::ofstream(data_ / "run-files" / last, std::ios::trunc) << "rotten";
  auto damaged = Backup(absl::FromUnixSeconds(300));
  ASSERT_EQ(damaged.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(listing(), before);
}

TEST(BackupsTest, AFailingBackupIsTriedAgainLessAndLessOften) {
  EXPECT_EQ(Backups::RetryAfter(0, absl::Hours(1)), absl::ZeroDuration());
  EXPECT_EQ(Backups::RetryAfter(1, absl::Hours(1)), absl::Minutes(1));
  EXPECT_EQ(Backups::RetryAfter(3, absl::Hours(1)), absl::Minutes(4));
  EXPECT_EQ(Backups::RetryAfter(7, absl::Hours(1)), absl::Hours(1));
  EXPECT_EQ(Backups::RetryAfter(1000, absl::Hours(24)), absl::Hours(24));
  TempDir temp("distill_backups_retry_test");
  auto store = *Store::OpenSqlite((temp.path() / "distill.db").string());
  auto files = *RunFileStore::OpenDirectory((temp.path() / "files").string());
  FakeClock clock;
  int tries = 0;
  BackupOptions options{(temp.path() / "backups").string(), absl::Hours(1), 2};
  options.free_bytes = [&](const std::string&) {
    ++tries;
    return absl::StatusOr<int64_t>(0);  // Never room.
  };
  options.keep_free = 1;
  Backups backups(options, store.get(), files.get(),
                  (temp.path() / "files").string(), nullptr, &clock);
  std::vector<int> minutes_of_tries;
  for (int minute = 0; minute < 20; ++minute) {
    const int before = tries;
    backups.Tick();
    if (tries > before) minutes_of_tries.push_back(minute);
    clock.AdvanceMs(60 * 1000);
  }
  EXPECT_EQ(minutes_of_tries, (std::vector<int>{0, 1, 3, 7, 15}));
  EXPECT_TRUE(ListSnapshots(options.dir).empty());
}

// Issue 30: a crash's ".upload-*" temporaries and an upload published but
// never recorded stayed in run-files/ for ever. A coordinator's start
// removes what no record names; recorded files stay.
TEST(CoordinatorStartTest, WhatAStopLeftUnrecordedIsRemovedAtStart) {
  TempDir temp("distill_start_sweep_test");
  CoordinatorOptions options;
  options.listen_address = "127.0.0.1:0";
  options.data_dir = (temp.path() / "data").string();
  const fs::path files = temp.path() / "data" / "run-files";
  std::string recorded;
  {
    auto c = Coordinator::Start(options);
    ASSERT_TRUE(c.ok()) << c.status();
    Scheduler& s = (*c)->scheduler();
    v1::ExperimentSpec spec = SmallSweep("start").teacher().train();
    spec.set_kind(v1::TRAIN_TEACHER);
    ASSERT_TRUE(s.SubmitRun(spec).ok());
    v1::RegisterWorkerRequest reg;
    const std::string worker = s.RegisterWorker(reg)->worker_id();
    const v1::Run run = s.LeaseRun(worker)->run();
    ASSERT_TRUE(UploadRunFile(s, run, "kept").ok());
    recorded = Sha256Hex("kept");
  }
  std::ofstream(files / ".upload-77-0") << "half an upload";
  std::ofstream(files / Sha256Hex("orphan")) << "orphan";
  auto c = Coordinator::Start(options);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(fs::exists(files / ".upload-77-0"));
  EXPECT_FALSE(fs::exists(files / Sha256Hex("orphan")));
  EXPECT_TRUE(fs::exists(files / recorded));
}

}  // namespace
}  // namespace distill
