// The SQLite store and its migrations.
#include "server/storage/store.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
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

  // A queued run inserted as an older coordinator would: the columns of
  // 001_initial.sql alone. Returns its id (the database's first run).
  int64_t InsertOldRun() {
    Exec(
        "INSERT INTO runs(kind, spec, status, created_ms) VALUES (2, x'', 2, "
        "1)");
    return 1;
  }

  TempDir temp_{"distill_store_test"};
  const fs::path dir_ = temp_.path();
  std::string path_;
};

TEST_F(StoreTest, Migration11DropsMaxRestartsAndMakesFilePathsRelative) {
  {
    const std::vector<Migration> upto10(Migrations().begin(),
                                        Migrations().begin() + 10);
    auto old = Store::OpenSqlite(path_, upto10);
    ASSERT_TRUE(old.ok()) << old.status();
    ASSERT_EQ((*old)->SchemaVersion(), 10);
  }
  InsertOldRun();
  const std::string sha256(64, 'a');
  Exec(
      "INSERT INTO run_files(sha256, run_id, attempt, size, path, name, "
      "created_ms) VALUES('" +
      sha256 + "', 1, 1, 3, '/srv/old/run-files/" + sha256 +
      "', 'checkpoint', 1)");
  auto store = Store::OpenSqlite(path_);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->FindRunFileByDigest(sha256)->path, "run-files/" + sha256);
  EXPECT_EQ((*store)->GetRun(1)->id(), 1);
  store->reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path_.c_str(), &db), SQLITE_OK);
  EXPECT_NE(sqlite3_exec(db, "SELECT max_restarts FROM runs", nullptr, nullptr,
                         nullptr),
            SQLITE_OK);
  EXPECT_THAT(sqlite3_errmsg(db), HasSubstr("no such column: max_restarts"));
  sqlite3_close(db);
}

// Migration 014: the settings of a loss term turned off, stored before,
// are no longer what runs are found by.
TEST_F(StoreTest, Migration14ForgetsTheSettingsOfLossesTurnedOff) {
  {
    const std::vector<Migration> upto13(Migrations().begin(),
                                        Migrations().begin() + 13);
    ASSERT_TRUE(Store::OpenSqlite(path_, upto13).ok());
  }
  InsertOldRun();
  InsertOldRun();
  Exec(
      "INSERT INTO run_fields(run_id, path, value) VALUES"
      "(1, 'losses.ikd.weight', '0'), (1, 'losses.ikd.temperature', '4'),"
      "(2, 'losses.ikd.weight', '1'), (2, 'losses.ikd.temperature', '4')");
  auto store = *Store::OpenSqlite(path_);
  RunQuery q;
  q.fields = {{"losses.ikd.temperature", "4"}};
  const absl::StatusOr<std::vector<v1::Run>> runs = store->FindRuns(q);
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().id(), 2);
  q.fields = {{"losses.ikd.weight", "0"}};
  EXPECT_EQ(store->FindRuns(q)->size(), 1u);
}

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
      {"999_later.sql", "ALTER TABLE runs ADD COLUMN later TEXT;"});
  auto store = Store::OpenSqlite(path_, migrations);
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_EQ((*store)->SchemaVersion(), int(migrations.size()));
}

TEST_F(StoreTest, RunFilesRecordedBeforeTheRenameAreFoundAfterIt) {
  std::vector<Migration> migrations = Migrations();
  ASSERT_GE(migrations.size(), 3u);
  migrations.resize(2);  // A database as the coordinator of version 2 left it.
  {
    auto store = Store::OpenSqlite(path_, migrations);
    ASSERT_TRUE(store.ok()) << store.status();
  }
  const int64_t run_id = InsertOldRun();
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

v1::MetricPoint Point(const std::string& key, int64_t step, double value) {
  v1::MetricPoint p;
  p.set_key(key);
  p.set_step(step);
  p.set_epoch(int32_t(step / 100));
  p.set_value(value);
  p.set_time_ms(1'700'000'000'000 + step);
  return p;
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

TEST_F(StoreTest, TheQueueGoesByPriorityAndSkipsSweepsAtTheirLimit) {
  auto store = *Store::OpenSqlite(":memory:");
  v1::Sweep sweep;
  sweep.set_name("limited");
  sweep.mutable_spec()->set_max_concurrent(1);
  const int64_t sweep_id = *store->InsertSweep(sweep);
  auto queued = [&](int64_t in_sweep, int32_t priority) {
    v1::Run run = QueuedRun();
    run.set_sweep_id(in_sweep);
    run.set_priority(priority);
    return *store->InsertRun(run);
  };
  const int64_t plain = queued(0, 0);
  const int64_t first = queued(sweep_id, 2);
  const int64_t second = queued(sweep_id, 2);
  const int64_t low = queued(0, -3);
  EXPECT_EQ(store->GetRun(first)->priority(), 2);
  EXPECT_EQ((*store->NextQueuedRun())->id(), first);
  v1::Run run = *store->GetRun(first);
  run.set_status(v1::RUNNING);
  ASSERT_TRUE(store->UpdateRun(run).ok());
  EXPECT_EQ((*store->NextQueuedRun())->id(), plain);  // The sweep is full.
  run.set_status(v1::SUCCEEDED);
  ASSERT_TRUE(store->UpdateRun(run).ok());
  EXPECT_EQ((*store->NextQueuedRun())->id(), second);
  for (int64_t id : {second, plain}) {
    v1::Run done = *store->GetRun(id);
    done.set_status(v1::SUCCEEDED);
    ASSERT_TRUE(store->UpdateRun(done).ok());
  }
  EXPECT_EQ((*store->NextQueuedRun())->id(), low);
}

TEST_F(StoreTest, RunsAreFoundByFiltersInSqlAndSortedByAResult) {
  auto store = *Store::OpenSqlite(":memory:");
  auto add = [&](const std::string& member, double temperature,
                 const std::string& arch, int64_t created, double top1) {
    v1::Run run = QueuedRun();
    run.mutable_spec()->set_kind(v1::DISTILL);
    run.mutable_spec()->mutable_losses()->mutable_ikd()->set_weight(1);
    run.mutable_spec()->mutable_losses()->mutable_ikd()->set_temperature(
        temperature);
    run.mutable_spec()->mutable_student()->set_arch(arch);
    run.set_member(member);
    run.set_teacher_run_id(member == "X" ? 0 : 9);
    run.set_created_ms(created);
    const int64_t id = *store->InsertRun(run);
    if (top1 >= 0) {
      run.set_id(id);
      (*run.mutable_results())["eval/top1"] = top1;
      EXPECT_TRUE(store->UpdateRun(run).ok());
    }
    return id;
  };
  const int64_t a = add("G/T=4/seed=1", 4, "resnet18", 100, 0.8);
  const int64_t b = add("G/T=4/seed=2", 4, "resnet50", 200, 0.9);
  const int64_t c = add("G/T=8/seed=1", 8, "resnet18", 300, 0.7);
  const int64_t d = add("X", 4, "resnet18", 400, -1);  // No result yet.
  auto ids = [&](const RunQuery& q) {
    std::vector<int64_t> out;
    const absl::StatusOr<std::vector<v1::Run>> runs = store->FindRuns(q);
    EXPECT_TRUE(runs.ok()) << runs.status();
    for (const v1::Run& r : *runs) out.push_back(r.id());
    return out;
  };
  RunQuery q;
  q.fields = {{"losses.ikd.temperature", "4"}};
  EXPECT_THAT(ids(q), ::testing::ElementsAre(a, b, d));
  q.fields.push_back({"student.arch", "resnet18"});
  EXPECT_THAT(ids(q), ::testing::ElementsAre(a, d));
  q = {};
  q.member = "G/T=4/*";
  EXPECT_THAT(ids(q), ::testing::ElementsAre(a, b));
  q = {};
  q.teacher_run_id = 9;
  q.created_after_ms = 200;
  EXPECT_THAT(ids(q), ::testing::ElementsAre(b, c));
  q.created_before_ms = 300;
  EXPECT_THAT(ids(q), ::testing::ElementsAre(b));
  q = {};
  q.kind = v1::TRAIN_TEACHER;
  EXPECT_TRUE(ids(q).empty());
  // By a result, best first; the run without one last; in pages.
  q = {};
  q.sort_key = "eval/top1";
  q.descending = true;
  EXPECT_THAT(ids(q), ::testing::ElementsAre(b, a, c, d));
  q.offset = 1;
  q.limit = 2;
  EXPECT_THAT(ids(q), ::testing::ElementsAre(a, c));
  q = {};
  q.sort_key = "eval/top1";
  EXPECT_THAT(ids(q), ::testing::ElementsAre(c, a, b, d));
  EXPECT_EQ(store->FindRuns(q)->front().results().at("eval/top1"), 0.7);
}

// A loss term turned off is found by its weight, not by the settings it
// was filled with (issue 32: `--where losses.ikd.temperature=4` matched
// runs with IKD off); a run's words are searched in its sweep's note too.
TEST_F(StoreTest, RunsAreFoundByTheLossesTheyRanAndTheirSweepsNote) {
  auto store = *Store::OpenSqlite(":memory:");
  v1::Sweep sweep;
  sweep.set_name("notes");
  const int64_t sweep_id = *store->InsertSweep(sweep);
  auto add = [&](double ikd_weight, int64_t in_sweep) {
    v1::Run run = QueuedRun();
    run.mutable_spec()->set_kind(v1::DISTILL);
    v1::IkdLoss* ikd = run.mutable_spec()->mutable_losses()->mutable_ikd();
    ikd->set_weight(ikd_weight);
    ikd->set_temperature(4);
    run.set_sweep_id(in_sweep);
    return *store->InsertRun(run);
  };
  const int64_t on = add(1, 0);
  const int64_t off = add(0, sweep_id);
  auto ids = [&](const RunQuery& q) {
    std::vector<int64_t> out;
    const absl::StatusOr<std::vector<v1::Run>> runs = store->FindRuns(q);
    EXPECT_TRUE(runs.ok()) << runs.status();
    if (runs.ok()) {
      for (const v1::Run& r : *runs) out.push_back(r.id());
    }
    return out;
  };
  RunQuery q;
  q.fields = {{"losses.ikd.temperature", "4"}};
  EXPECT_THAT(ids(q), ::testing::ElementsAre(on));
  q.fields = {{"losses.ikd.weight", "0"}};
  EXPECT_THAT(ids(q), ::testing::ElementsAre(off));
  q = {};
  ASSERT_TRUE(store->Annotate(TagTarget::kRun, on, {}, {}, "30 epochs").ok());
  ASSERT_TRUE(store
                  ->Annotate(TagTarget::kSweep, sweep_id, {}, {},
                             "CPU demo size, 30 Epochs")
                  .ok());
  q.note_contains = "30 epochs";
  EXPECT_THAT(ids(q), ::testing::ElementsAre(on, off));
  q.note_contains = "demo size";
  EXPECT_THAT(ids(q), ::testing::ElementsAre(off));
  // With another filter's parameter before it, still bound in order.
  q.member = "";
  q.status = v1::QUEUED;
  q.note_contains = "cpu DEMO";
  EXPECT_THAT(ids(q), ::testing::ElementsAre(off));
}

// A run and its run_fields rows are one write: when the fields cannot be
// stored (here a trigger refuses them), no run is left behind, inside a
// caller's transaction or without one; nor half an update or annotation.
TEST_F(StoreTest, AWriteOfSeveralRowsIsWholeOrNotAtAll) {
  { auto store = *Store::OpenSqlite(path_); }
  Exec(
      "CREATE TRIGGER refuse_fields BEFORE INSERT ON run_fields BEGIN "
      "SELECT RAISE(ABORT, 'injected failure'); END;"
      "CREATE TRIGGER refuse_result BEFORE INSERT ON run_results BEGIN "
      "SELECT RAISE(ABORT, 'injected failure'); END;"
      "CREATE TRIGGER refuse_tag BEFORE INSERT ON tags WHEN NEW.key = 'bad' "
      "BEGIN SELECT RAISE(ABORT, 'injected failure'); END;");
  auto store = *Store::OpenSqlite(path_);
  EXPECT_FALSE(store->InsertRun(QueuedRun()).ok());
  EXPECT_FALSE(store
                   ->InTransaction(
                       [&] { return store->InsertRun(QueuedRun()).status(); })
                   .ok());
  EXPECT_TRUE(store->FindRuns(RunQuery())->empty());

  store.reset();  // The store holds the database alone.
  Exec("DROP TRIGGER refuse_fields");
  store = *Store::OpenSqlite(path_);
  v1::Run run = QueuedRun();
  run.set_id(*store->InsertRun(run));
  run.set_status(v1::RUNNING);
  (*run.mutable_results())["eval/top1"] = 0.5;
  EXPECT_FALSE(store->UpdateRun(run).ok());
  EXPECT_EQ(store->GetRun(run.id())->status(), v1::QUEUED);  // Not half done.
  EXPECT_FALSE(store
                   ->Annotate(TagTarget::kRun, run.id(),
                              {{"bad", "x"}, {"a", "1"}}, {},
                              std::string("a note"))
                   .ok());
  EXPECT_TRUE(store->GetRun(run.id())->tags().empty());
  EXPECT_TRUE(store->GetRun(run.id())->note().empty());
}

// An exception a transaction's body lets through is rolled back and
// answered as INTERNAL, not thrown on through the store.
TEST_F(StoreTest, AnExceptionInATransactionRollsItBack) {
  auto store = *Store::OpenSqlite(":memory:");
  absl::Status s = store->InTransaction([&]() -> absl::Status {
    if (absl::Status i = store->InsertRun(QueuedRun()).status(); !i.ok())
      return i;
    throw std::out_of_range("stod");
  });
  EXPECT_EQ(s.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(s.message()), HasSubstr("stod"));
  EXPECT_TRUE(store->FindRuns(RunQuery())->empty());
  // The store still takes transactions.
  EXPECT_TRUE(store->InsertRun(QueuedRun()).ok());
}

TEST_F(StoreTest, RunsStoredBeforeVersion8AreFoundByTheirFields) {
  std::vector<Migration> migrations = Migrations();
  ASSERT_GE(migrations.size(), 8u);
  migrations.resize(7);
  { auto store = *Store::OpenSqlite(path_, migrations); }
  // A spec as submitted before specs were resolved: defaults left at 0.
  const std::string spec = QueuedRun().spec().SerializeAsString();
  Exec(absl::StrCat(
      "INSERT INTO runs(kind, spec, status, created_ms) VALUES (1, x'",
      absl::BytesToHexString(spec), "', 2, 1)"));
  const int64_t run_id = 1;
  auto store = *Store::OpenSqlite(path_);
  RunQuery q;
  q.fields = {{"dataset.name", "fashion-mnist"}, {"batch_size", "128"}};
  auto runs = store->FindRuns(q);
  ASSERT_TRUE(runs.ok()) << runs.status();
  ASSERT_EQ(runs->size(), 1u);
  EXPECT_EQ(runs->front().id(), run_id);
}

TEST_F(StoreTest, ASweepsMetricComesByRunOldestFirst) {
  auto store = *Store::OpenSqlite(":memory:");
  v1::Sweep sweep;
  sweep.set_name("s");
  const int64_t sweep_id = *store->InsertSweep(sweep);
  v1::Run member = QueuedRun();
  member.set_sweep_id(sweep_id);
  const int64_t a = *store->InsertRun(member);
  const int64_t b = *store->InsertRun(member);
  const int64_t outside = *store->InsertRun(QueuedRun());
  ASSERT_TRUE(store
                  ->AppendMetrics(a, 1,
                                  {Point("eval/top1", 100, 0.5),
                                   Point("train/loss", 150, 2),
                                   Point("eval/top1", 200, 0.6)})
                  .ok());
  ASSERT_TRUE(store->AppendMetrics(b, 1, {Point("eval/top1", 100, 0.4)}).ok());
  ASSERT_TRUE(
      store->AppendMetrics(outside, 1, {Point("eval/top1", 100, 0.9)}).ok());
  auto by_run = *store->SweepMetric(sweep_id, "eval/top1");
  ASSERT_EQ(by_run.size(), 2u);
  ASSERT_EQ(by_run[a].size(), 2u);
  EXPECT_EQ(by_run[a][0].epoch, 1);
  EXPECT_EQ(by_run[a][1].value, 0.6);
  EXPECT_EQ(by_run[b][0].value, 0.4);
  EXPECT_TRUE(store->SweepMetric(sweep_id, "no/such")->empty());
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

TEST_F(StoreTest, MetricsOfVersion5AreConvertedWithTheirOrder) {
  std::vector<Migration> migrations = Migrations();
  ASSERT_GE(migrations.size(), 6u);
  migrations.resize(5);  // The metrics table of versions 1 to 5.
  { auto store = *Store::OpenSqlite(path_, migrations); }
  const int64_t run_id = InsertOldRun();
  Exec(
      "INSERT INTO metrics(run_id, attempt, step, epoch, key, value, "
      "time_ms) VALUES (" +
      std::to_string(run_id) + ", 1, 4, 0, 'train/loss', 2.5, 10), (" +
      std::to_string(run_id) + ", 1, 4, 0, 'train/lr', 0.1, 11), (" +
      std::to_string(run_id) + ", 2, 8, 1, 'train/loss', 1.5, 12)");
  auto store = *Store::OpenSqlite(path_);
  auto points = *store->Metrics(run_id, 0);
  ASSERT_EQ(points.size(), 3u);
  EXPECT_EQ(points[0].point.key(), "train/loss");
  EXPECT_EQ(points[1].point.key(), "train/lr");
  EXPECT_EQ(points[2].point.value(), 1.5);
  EXPECT_EQ(points[2].attempt, 2);
  EXPECT_EQ(points[2].point.time_ms(), 12);
  // New points go after the converted ones.
  ASSERT_TRUE(
      store->AppendMetrics(run_id, 2, {Point("train/lr", 12, 0.05)}).ok());
  auto after = *store->Metrics(run_id, points[2].sequence);
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].point.step(), 12);
}

TEST_F(StoreTest, HistoryPagesAndSamplesKeepOrderAndRareKeys) {
  auto store = *Store::OpenSqlite(path_);
  const int64_t run_id = *store->InsertRun(QueuedRun());
  for (int64_t step = 0; step < 10'000; step += 100) {
    std::vector<v1::MetricPoint> batch;
    for (int64_t s = step; s < step + 100; ++s)
      batch.push_back(Point("train/loss", s, 1.0 / (s + 1)));
    if (step % 1000 == 0) batch.push_back(Point("eval/top1", step, 0.5));
    ASSERT_TRUE(store
                    ->InTransaction(
                        [&] { return store->AppendMetrics(run_id, 1, batch); })
                    .ok());
  }
  auto all = *store->Metrics(run_id, 0);
  ASSERT_EQ(all.size(), 10'010u);
  for (size_t i = 1; i < all.size(); ++i)
    ASSERT_LT(all[i - 1].sequence, all[i].sequence);
  // Pages in sequence order, across keys, join up to the whole history.
  std::vector<StoredMetric> paged;
  int64_t cursor = 0;
  while (true) {
    auto page = *store->Metrics(run_id, cursor, 777);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 777u);
    cursor = page.back().sequence;
    paged.insert(paged.end(), page.begin(), page.end());
  }
  ASSERT_EQ(paged.size(), all.size());
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(paged[i].sequence, all[i].sequence);
  // Sampled: at most 50 of the long key, its first and newest among
  // them, and every point of the rare key.
  auto sampled = *store->SampledMetrics(run_id, 50);
  int loss = 0, top1 = 0;
  for (const StoredMetric& m : sampled)
    (m.point.key() == "train/loss" ? loss : top1)++;
  EXPECT_LE(loss, 50);
  EXPECT_GE(loss, 45);
  EXPECT_EQ(top1, 10);
  int64_t first_loss = -1, last_loss = -1;
  for (const StoredMetric& m : sampled) {
    if (m.point.key() != "train/loss") continue;
    if (first_loss < 0) first_loss = m.point.step();
    last_loss = m.point.step();
  }
  EXPECT_EQ(first_loss, 0);
  EXPECT_EQ(last_loss, 9'999);
  auto keys = *store->MetricKeys(run_id);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].key == "train/loss" ? keys[0].points : keys[1].points,
            10'000);
}

TEST_F(StoreTest, ListRunsPagesByIdWithinItsFilters) {
  auto store = *Store::OpenSqlite(path_);
  std::vector<int64_t> queued;
  for (int i = 0; i < 10; ++i) {
    v1::Run run = QueuedRun();
    run.set_sweep_id(i % 2 + 1);
    const int64_t id = *store->InsertRun(run);
    if (i % 3 == 0) {
      v1::Run running = *store->GetRun(id);
      running.set_status(v1::RUNNING);
      running.set_worker_id(absl::StrCat("w", i));
      ASSERT_TRUE(store->UpdateRun(running).ok());
    } else if (i % 2 == 0) {
      queued.push_back(id);
    }
  }
  RunQuery query;
  query.sweep_id = 1;
  query.status = v1::QUEUED;
  query.limit = 2;
  auto page = *store->FindRuns(query);
  ASSERT_EQ(page.size(), 2u);
  EXPECT_EQ(page[0].id(), queued[0]);
  EXPECT_EQ(page[1].id(), queued[1]);
  query.after_id = page[1].id();
  auto rest = *store->FindRuns(query);
  ASSERT_EQ(rest.size(), queued.size() - 2);
  RunQuery after_three;
  after_three.after_id = 3;
  EXPECT_EQ(store->FindRuns(after_three)->size(), 7u);
  EXPECT_EQ((*store->RunHeldBy("w6"))->id(), 7);
  EXPECT_FALSE(store->RunHeldBy("w1")->has_value());
}

TEST_F(StoreTest, AReaderReadsWhileTheWriterHoldsATransaction) {
  auto store = *Store::OpenSqlite(path_);
  const int64_t id = *store->InsertRun(QueuedRun());
  auto reader = store->OpenReader();
  ASSERT_TRUE(reader.ok()) << reader.status();
  absl::Status s = store->InTransaction([&]() -> absl::Status {
    v1::Run run = *store->GetRun(id);
    run.set_status(v1::RUNNING);
    if (absl::Status s = store->UpdateRun(run); !s.ok()) return s;
    // Not committed: the reader sees the run as it was, at once.
    absl::StatusOr<v1::Run> seen = (*reader)->GetRun(id);
    if (!seen.ok()) return seen.status();
    EXPECT_EQ(seen->status(), v1::QUEUED);
    return absl::OkStatus();
  });
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ((*reader)->GetRun(id)->status(), v1::RUNNING);
  // A commit left in the WAL (no fsync of its own) is committed all the
  // same: readers see it, and so does the next process.
  s = store->InTransaction(
      [&]() -> absl::Status {
        v1::Run run = *store->GetRun(id);
        run.set_lease_expires_ms(4242);
        return store->UpdateRun(run);
      },
      Store::Durability::kInWal);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ((*reader)->GetRun(id)->lease_expires_ms(), 4242);
  // A commit whose fsync the caller does after its own lock: counted, and
  // on disk once SyncWal returns.
  const int64_t before = store->UnsyncedCommits();
  s = store->InTransaction(
      [&]() -> absl::Status {
        v1::Run run = *store->GetRun(id);
        run.set_message("synced after");
        return store->UpdateRun(run);
      },
      Store::Durability::kSyncAfter);
  ASSERT_TRUE(s.ok()) << s;
  EXPECT_EQ(store->UnsyncedCommits(), before + 1);
  EXPECT_TRUE(store->SyncWal(store->UnsyncedCommits()).ok());
  EXPECT_TRUE(store->SyncWal(store->UnsyncedCommits()).ok());  // No-op.
  EXPECT_EQ((*reader)->GetRun(id)->message(), "synced after");
  EXPECT_EQ((*reader)->InsertRun(QueuedRun()).status().code(),
            absl::StatusCode::kUnavailable);  // Read-only.
  EXPECT_EQ((*Store::OpenSqlite(":memory:"))->OpenReader().status().code(),
            absl::StatusCode::kFailedPrecondition);
  reader->reset();
  store.reset();
  EXPECT_EQ((*Store::OpenSqlite(path_))->GetRun(id)->lease_expires_ms(), 4242);
}

TEST_F(StoreTest, AnotherProcessCannotOpenTheDatabaseWhileItIsOpen) {
  auto store = *Store::OpenSqlite(path_);
  ASSERT_TRUE(store->InsertRun(QueuedRun()).ok());
  // SQLite's own VFS in another process (here the sqlite3 module of
  // Python) is kept off: it would not see this process's WAL index.
  const std::string probe =
      "/usr/bin/python3 -c \"import sqlite3,sys; "
      "sqlite3.connect(sys.argv[1], timeout=0).execute("
      "'SELECT COUNT(*) FROM runs').fetchall()\" " +
      path_ + " 2>/dev/null";
  EXPECT_NE(std::system(probe.c_str()), 0);
  store.reset();
  EXPECT_EQ(std::system(probe.c_str()), 0);
}

}  // namespace
}  // namespace distill
