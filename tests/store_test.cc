// The SQLite store and its migrations.
#include "server/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <filesystem>

#include "tests/temp_dir.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override { path_ = (dir_ / "distill.db").string(); }

  static v1::Run QueuedRun() {
    v1::Run run;
    run.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
    run.mutable_spec()->set_epochs(3);
    run.set_status(v1::QUEUED);
    run.set_created_ms(1000);
    return run;
  }

  void Exec(const std::string& sql) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
    ASSERT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  }

  TempDir temp_{"distill_store_test"};
  const fs::path dir_ = temp_.path();
  std::string path_;
};

TEST_F(StoreTest, FreshDatabaseGetsTheNewestSchemaInWalMode) {
  auto store = Store::OpenSqlite(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), int(Migrations().size()));
  EXPECT_GE(Migrations().size(), 1u);
  EXPECT_EQ(Migrations()[0].name, "001_initial.sql");
  EXPECT_TRUE(fs::exists(path_ + "-wal"));
}

TEST_F(StoreTest, TokensAreKeptAsDigestsAndRevokedOnce) {
  auto store = *Store::OpenSqlite(path_);
  TokenRecord token{0, "alice", 2, std::string(64, 'a'), 1000, 0};
  const int64_t id = *store->InsertToken(token);
  token.sha256 = std::string(64, 'b');
  EXPECT_EQ(*store->InsertToken(token), id + 1);
  // The same digest twice is refused (UNIQUE), not a second way in.
  EXPECT_FALSE(store->InsertToken(token).ok());
  auto revoked = store->RevokeToken(id, 5000);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_EQ(revoked->revoked_ms, 5000);
  EXPECT_EQ(store->RevokeToken(id, 9000)->revoked_ms, 5000);  // Kept.
  EXPECT_EQ(store->RevokeToken(99, 9000).status().code(),
            absl::StatusCode::kNotFound);
  store.reset();
  auto reopened = *Store::OpenSqlite(path_);
  auto tokens = *reopened->ListTokens();
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].name, "alice");
  EXPECT_EQ(tokens[0].role, 2);
  EXPECT_EQ(tokens[0].revoked_ms, 5000);
  EXPECT_EQ(tokens[1].revoked_ms, 0);
  EXPECT_EQ(tokens[1].sha256, std::string(64, 'b'));
}

TEST_F(StoreTest, AWorkerKeepsTheTokenItRegisteredWith) {
  auto store = *Store::OpenSqlite(path_);
  WorkerRecord worker;
  worker.id = "gpu1-abc";
  worker.token_id = 12;
  ASSERT_TRUE(store->UpsertWorker(worker).ok());
  EXPECT_EQ(store->GetWorker("gpu1-abc")->token_id, 12);
}

TEST_F(StoreTest, ReopenedDatabaseKeepsEverything) {
  int64_t run_id;
  {
    auto store = *Store::OpenSqlite(path_);
    run_id = *store->InsertRun(QueuedRun());
    v1::Run run = *store->GetRun(run_id);
    run.set_status(v1::SUCCEEDED);
    run.set_attempt(1);
    run.set_checkpoint_sha256(std::string(64, 'a'));
    (*run.mutable_results())["eval/top1"] = 0.875;
    ASSERT_TRUE(store->UpdateRun(run).ok());
    v1::MetricPoint p;
    p.set_step(10);
    p.set_epoch(1);
    p.set_key("train/loss");
    p.set_value(0.5);
    p.set_time_ms(1234);
    ASSERT_TRUE(store->AppendMetrics(run_id, 1, {p, p}).ok());
    v1::Sweep sweep;
    sweep.set_name("table1");
    sweep.set_teacher_run_id(run_id);
    ASSERT_TRUE(store->InsertSweep(sweep).ok());
    ASSERT_TRUE(
        store->InsertRunFile({std::string(64, 'a'), run_id, 1, 42, "/x"}).ok());
  }
  auto store = Store::OpenSqlite(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::Run run = *(*store)->GetRun(run_id);
  EXPECT_EQ(run.status(), v1::SUCCEEDED);
  EXPECT_EQ(run.spec().epochs(), 3);
  EXPECT_EQ(run.results().at("eval/top1"), 0.875);
  auto metrics = *(*store)->Metrics(run_id, 0);
  ASSERT_EQ(metrics.size(), 2u);
  EXPECT_EQ(metrics[1].point.key(), "train/loss");
  EXPECT_EQ(metrics[1].point.time_ms(), 1234);
  EXPECT_EQ((*(*store)->Metrics(run_id, metrics[0].sequence)).size(), 1u);
  EXPECT_EQ((*store)->FindSweep("table1")->teacher_run_id(), run_id);
  EXPECT_EQ((*store)->FindRunFileByDigest(std::string(64, 'a'))->size, 42);
}

TEST_F(StoreTest, NewerDatabaseIsRefusedAndLeftAlone) {
  { ASSERT_TRUE(Store::OpenSqlite(path_).ok()); }
  Exec("INSERT INTO schema_version(version, applied_ms) VALUES(99, 0)");
  auto store = Store::OpenSqlite(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(store.status().message()),
              HasSubstr("schema is version 99"));
  EXPECT_THAT(std::string(store.status().message()), HasSubstr(path_));
}

TEST_F(StoreTest, AFailingMigrationAppliesNothing) {
  std::vector<Migration> migrations = Migrations();
  migrations.push_back(
      {"002_half.sql", "CREATE TABLE half(x); THIS IS NOT SQL;"});
  auto store = Store::OpenSqlite(path_, migrations);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(std::string(store.status().message()), HasSubstr("002_half.sql"));
  // Nothing of version 1 or 2 was kept: the whole upgrade was one transaction.
  auto fresh = Store::OpenSqlite(path_, {});
  ASSERT_TRUE(fresh.ok()) << fresh.status();
  EXPECT_EQ((*fresh)->SchemaVersion(), 0);
}

TEST_F(StoreTest, UpgradesAnOlderDatabaseStepByStep) {
  { ASSERT_TRUE(Store::OpenSqlite(path_).ok()); }
  std::vector<Migration> migrations = Migrations();
  migrations.push_back(
      {"002_note.sql", "ALTER TABLE runs ADD COLUMN note TEXT;"});
  auto store = Store::OpenSqlite(path_, migrations);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), int(migrations.size()));
}

TEST_F(StoreTest, RunFilesRecordedBeforeTheRenameAreFoundAfterIt) {
  std::vector<Migration> migrations = Migrations();
  ASSERT_GE(migrations.size(), 3u);
  migrations.resize(2);  // A database as the coordinator of version 2 left it.
  int64_t run_id = 0;
  {
    auto store = Store::OpenSqlite(path_, migrations);
    ASSERT_TRUE(store.ok()) << store.status();
    run_id = *(*store)->InsertRun(QueuedRun());
  }
  Exec(
      "INSERT INTO checkpoints(sha256, run_id, attempt, size, path, "
      "created_ms, name) VALUES ('ab', " +
      std::to_string(run_id) + ", 1, 5, '/d/ab', 1, 'tsne.csv')");
  auto store = Store::OpenSqlite(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), int(Migrations().size()));
  absl::StatusOr<RunFileRecord> file =
      (*store)->FindRunFile(run_id, "tsne.csv");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->sha256, "ab");
  EXPECT_EQ(file->size, 5);
}

TEST_F(StoreTest, QueueOrderFiltersAndExpiredLeases) {
  auto store = *Store::OpenSqlite(":memory:");
  const int64_t a = *store->InsertRun(QueuedRun());
  const int64_t b = *store->InsertRun(QueuedRun());
  EXPECT_EQ((*store->NextQueuedRun())->id(), a);
  v1::Run run = *store->GetRun(a);
  run.set_status(v1::RUNNING);
  run.set_lease_expires_ms(500);
  ASSERT_TRUE(store->UpdateRun(run).ok());
  EXPECT_EQ((*store->NextQueuedRun())->id(), b);
  EXPECT_EQ(store->ExpiredLeases(400)->size(), 0u);
  EXPECT_EQ(store->ExpiredLeases(501)->size(), 1u);
  EXPECT_EQ(store->ListRuns(0, v1::RUNNING)->size(), 1u);
  EXPECT_EQ(store->ListRuns(0, v1::RUN_STATUS_UNSPECIFIED)->size(), 2u);
  EXPECT_EQ(store->GetRun(77).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, AnOldSpecStoredAsSubmittedIsResolvedOnRead) {
  auto store = Store::OpenSqlite(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  v1::Run run = QueuedRun();  // As a coordinator before resolution stored it.
  run.mutable_spec()->mutable_teacher()->mutable_vit()->set_preset("small-28");
  const int64_t id = *(*store)->InsertRun(run);
  const v1::ExperimentSpec spec = (*store)->GetRun(id)->spec();
  EXPECT_EQ(spec.teacher().vit().width(), 96);
  EXPECT_EQ(spec.teacher().vit().patch_size(), 7);
  EXPECT_EQ(spec.epochs(), 3);
  EXPECT_EQ(spec.batch_size(), 128);
  EXPECT_EQ(spec.max_restarts(), 2);
  EXPECT_EQ(spec.dataset().name(), "fashion-mnist");
}

}  // namespace
}  // namespace distill
