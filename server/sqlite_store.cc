// The SQLite implementation of Store. Every statement binds its values
// with `?`; no SQL is built from data.
#include <sqlite3.h>

#include <string>
#include <variant>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/spec_resolution.h"
#include "server/store.h"

namespace distill {
namespace {

// Strings bind as TEXT; serialised protos as BLOB.
struct Blob {
  std::string bytes;
};
using Value = std::variant<int64_t, double, std::string, Blob>;

// The status for SQLite result `rc`: a full disk is RESOURCE_EXHAUSTED, a
// disk that cannot be written or read now (read-only, I/O error, busy) is
// UNAVAILABLE (the coordinator recovers when the disk does), a damaged
// file DATA_LOSS; the rest INTERNAL.
absl::Status SqliteError(int rc, absl::string_view what,
                         absl::string_view message) {
  const std::string text = absl::StrCat("sqlite ", what, ": ", message);
  switch (rc & 0xff) {
    case SQLITE_FULL:
      DISTILL_LOG(WARNING) << text;
      return absl::ResourceExhaustedError(
          absl::StrCat(text, " (the data directory's disk is full)"));
    case SQLITE_READONLY:
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
      DISTILL_LOG(WARNING) << text;
      return absl::UnavailableError(text);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL:
      return absl::UnavailableError(text);
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return absl::DataLossError(text);
    default:
      return absl::InternalError(text);
  }
}

// A prepared statement that finalises itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    status_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status Bind(std::initializer_list<Value> values) {
    if (status_ != SQLITE_OK) return Error("prepare");
    int i = 1;
    for (const Value& v : values) {
      int rc;
      if (const auto* n = std::get_if<int64_t>(&v)) {
        rc = sqlite3_bind_int64(stmt_, i, *n);
      } else if (const auto* d = std::get_if<double>(&v)) {
        rc = sqlite3_bind_double(stmt_, i, *d);
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        rc = sqlite3_bind_text(stmt_, i, s->data(), int(s->size()),
                               SQLITE_TRANSIENT);
      } else {
        const std::string& b = std::get<Blob>(v).bytes;
        rc = sqlite3_bind_blob(stmt_, i, b.data(), int(b.size()),
                               SQLITE_TRANSIENT);
      }
      if (rc != SQLITE_OK) return Error("bind");
      ++i;
    }
    return absl::OkStatus();
  }

  // True while a row is available.
  absl::StatusOr<bool> Step() {
    if (status_ != SQLITE_OK) return Error("prepare");
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqliteError(rc, "step failed", sqlite3_errmsg(db_));
  }

  absl::Status Run() {
    absl::StatusOr<bool> row = Step();
    return row.ok() ? absl::OkStatus() : row.status();
  }

  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }
  double Double(int col) { return sqlite3_column_double(stmt_, col); }
  std::string Text(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p),
                           sqlite3_column_bytes(stmt_, col))
             : std::string();
  }

 private:
  absl::Status Error(const char* what) {
    return SqliteError(sqlite3_extended_errcode(db_),
                       absl::StrCat(what, " failed"), sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
  int status_;
};

constexpr char kRunColumns[] =
    "id, sweep_id, member, spec, status, attempt, worker_id, lease_expires_ms, "
    "message, teacher_run_id, checkpoint_sha256, created_ms, started_ms, "
    "finished_ms, releases";

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(sqlite3* db) : db_(db) {}
  ~SqliteStore() override { sqlite3_close(db_); }

  absl::Status Migrate(const std::vector<Migration>& migrations) {
    if (absl::Status s =
            // Exclusive before WAL: one coordinator owns the database
            // (data_dir/LOCK), and SQLite then keeps the WAL index in the
            // heap instead of a memory-mapped -shm file, whose pages fault
            // with SIGBUS when the disk fills up or turns read-only.
        Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL; "
             "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;");
        !s.ok()) {
      return s;
    }
    return InTransaction([&]() -> absl::Status {
      if (absl::Status s =
              Exec("CREATE TABLE IF NOT EXISTS schema_version "
                   "(version INTEGER NOT NULL, applied_ms INTEGER NOT NULL)");
          !s.ok()) {
        return s;
      }
      int64_t current = 0;
      {
        // Finalised before the migrations run: SQLite refuses to drop a
        // table or index while a statement still reads (SQLITE_LOCKED).
        Statement q(db_,
                    "SELECT COALESCE(MAX(version), 0) FROM schema_version");
        if (absl::StatusOr<bool> row = q.Step(); !row.ok()) return row.status();
        current = q.Int(0);
      }
      const int64_t newest = static_cast<int64_t>(migrations.size());
      if (current > newest) {
        return absl::FailedPreconditionError(
            absl::StrCat("the database schema is version ", current,
                         " but this coordinator knows "
                         "versions up to ",
                         newest, "; run a newer distill-coordinator"));
      }
      for (int64_t v = current + 1; v <= newest; ++v) {
        if (absl::Status s = Exec(migrations[v - 1].sql); !s.ok()) {
          return absl::InternalError(absl::StrCat(
              "migration ", migrations[v - 1].name, ": ", s.message()));
        }
        Statement insert(db_,
                         "INSERT INTO schema_version(version, applied_ms) "
                         "VALUES(?, strftime('%s','now') * 1000)");
        if (absl::Status s = insert.Bind({v}); !s.ok()) return s;
        if (absl::Status s = insert.Run(); !s.ok()) return s;
      }
      version_ = int(newest);
      return absl::OkStatus();
    });
  }

  int SchemaVersion() override { return version_; }

  absl::Status InTransaction(
      const std::function<absl::Status()>& body) override {
    if (absl::Status s = Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    absl::Status result = body();
    if (!result.ok()) {
      Exec("ROLLBACK").IgnoreError();
      return result;
    }
    return Exec("COMMIT");
  }

  absl::StatusOr<int64_t> InsertRun(const v1::Run& run) override {
    Statement q(
        db_,
        "INSERT INTO runs(sweep_id, member, kind, spec, status, attempt, "
        "max_restarts, teacher_run_id, message, created_ms) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    if (absl::Status s =
            q.Bind({run.sweep_id(), run.member(), int64_t{run.spec().kind()},
                    Blob{run.spec().SerializeAsString()}, int64_t{run.status()},
                    int64_t{run.attempt()}, int64_t{run.spec().max_restarts()},
                    run.teacher_run_id(), run.message(), run.created_ms()});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = q.Run(); !s.ok()) return s;
    return sqlite3_last_insert_rowid(db_);
  }

  absl::Status UpdateRun(const v1::Run& run) override {
    Statement q(db_,
                "UPDATE runs SET status = ?, attempt = ?, worker_id = ?, "
                "lease_expires_ms = ?, message = ?, checkpoint_sha256 = ?, "
                "started_ms = ?, finished_ms = ?, releases = ? WHERE id = ?");
    if (absl::Status s =
            q.Bind({int64_t{run.status()}, int64_t{run.attempt()},
                    run.worker_id(), run.lease_expires_ms(), run.message(),
                    run.checkpoint_sha256(), run.started_ms(),
                    run.finished_ms(), int64_t{run.releases()}, run.id()});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = q.Run(); !s.ok()) return s;
    if (sqlite3_changes(db_) != 1) {
      return absl::NotFoundError(
          absl::StrCat("run ", run.id(), " does not exist"));
    }
    for (const auto& [key, value] : run.results()) {
      Statement r(db_,
                  "INSERT OR REPLACE INTO run_results(run_id, key, value) "
                  "VALUES(?, ?, ?)");
      if (absl::Status s = r.Bind({run.id(), key, value}); !s.ok()) return s;
      if (absl::Status s = r.Run(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<v1::Run> GetRun(int64_t id) override {
    absl::StatusOr<std::vector<v1::Run>> runs = QueryRuns(
        absl::StrCat("SELECT ", kRunColumns, " FROM runs WHERE id = ?"), {id});
    if (!runs.ok()) return runs.status();
    if (runs->empty())
      return absl::NotFoundError(absl::StrCat("run ", id, " does not exist"));
    return std::move(runs->front());
  }

  absl::StatusOr<std::vector<v1::Run>> ListRuns(int64_t sweep_id,
                                                v1::RunStatus status) override {
    return QueryRuns(absl::StrCat("SELECT ", kRunColumns,
                                  " FROM runs WHERE (? = 0 OR sweep_id = ?) "
                                  "AND (? = 0 OR status = ?) ORDER BY id"),
                     {sweep_id, sweep_id, int64_t{status}, int64_t{status}});
  }

  absl::StatusOr<std::vector<v1::Run>> RunsWithTeacher(
      int64_t teacher_run_id) override {
    return QueryRuns(
        absl::StrCat("SELECT ", kRunColumns,
                     " FROM runs WHERE teacher_run_id = ? ORDER BY id"),
        {teacher_run_id});
  }

  absl::StatusOr<std::optional<v1::Run>> NextQueuedRun() override {
    absl::StatusOr<std::vector<v1::Run>> runs = QueryRuns(
        absl::StrCat("SELECT ", kRunColumns,
                     " FROM runs WHERE status = ? ORDER BY id LIMIT 1"),
        {int64_t{v1::QUEUED}});
    if (!runs.ok()) return runs.status();
    if (runs->empty()) return std::nullopt;
    return std::move(runs->front());
  }

  absl::StatusOr<std::vector<v1::Run>> ExpiredLeases(int64_t now_ms) override {
    return QueryRuns(
        absl::StrCat("SELECT ", kRunColumns,
                     " FROM runs WHERE status = ? AND lease_expires_ms < ? "
                     "ORDER BY id"),
        {int64_t{v1::RUNNING}, now_ms});
  }

  absl::StatusOr<int64_t> InsertSweep(const v1::Sweep& sweep) override {
    Statement q(db_,
                "INSERT INTO sweeps(name, spec, teacher_run_id, created_ms) "
                "VALUES(?, ?, ?, ?)");
    if (absl::Status s =
            q.Bind({sweep.name(), Blob{sweep.spec().SerializeAsString()},
                    sweep.teacher_run_id(), sweep.created_ms()});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = q.Run(); !s.ok()) return s;
    return sqlite3_last_insert_rowid(db_);
  }

  absl::Status SetSweepTeacher(int64_t sweep_id,
                               int64_t teacher_run_id) override {
    Statement q(db_, "UPDATE sweeps SET teacher_run_id = ? WHERE id = ?");
    if (absl::Status s = q.Bind({teacher_run_id, sweep_id}); !s.ok()) return s;
    return q.Run();
  }

  absl::StatusOr<v1::Sweep> GetSweep(int64_t id) override {
    return QuerySweep(
        "SELECT id, name, spec, teacher_run_id, created_ms FROM sweeps "
        "WHERE id = ?",
        {id}, absl::StrCat("sweep ", id, " does not exist"));
  }

  absl::StatusOr<v1::Sweep> FindSweep(const std::string& name) override {
    return QuerySweep(
        "SELECT id, name, spec, teacher_run_id, created_ms FROM sweeps "
        "WHERE name = ? ORDER BY id DESC LIMIT 1",
        {name}, absl::StrCat("no sweep is named \"", name, "\""));
  }

  absl::Status AppendMetrics(
      int64_t run_id, int32_t attempt,
      const std::vector<v1::MetricPoint>& points) override {
    for (const v1::MetricPoint& p : points) {
      Statement q(db_,
                  "INSERT INTO metrics(run_id, attempt, step, epoch, key, "
                  "value, time_ms) "
                  "VALUES(?, ?, ?, ?, ?, ?, ?)");
      if (absl::Status s =
              q.Bind({run_id, int64_t{attempt}, p.step(), int64_t{p.epoch()},
                      p.key(), p.value(), p.time_ms()});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = q.Run(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<StoredMetric>> Metrics(
      int64_t run_id, int64_t after_sequence) override {
    Statement q(
        db_,
        "SELECT id, attempt, step, epoch, key, value, time_ms FROM metrics "
        "WHERE run_id = ? AND id > ? ORDER BY id");
    if (absl::Status s = q.Bind({run_id, after_sequence}); !s.ok()) return s;
    std::vector<StoredMetric> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      StoredMetric m;
      m.sequence = q.Int(0);
      m.attempt = int32_t(q.Int(1));
      m.point.set_step(q.Int(2));
      m.point.set_epoch(int32_t(q.Int(3)));
      m.point.set_key(q.Text(4));
      m.point.set_value(q.Double(5));
      m.point.set_time_ms(q.Int(6));
      m.point.set_attempt(m.attempt);
      out.push_back(std::move(m));
    }
    return out;
  }

  absl::Status UpsertWorker(const WorkerRecord& w) override {
    Statement q(
        db_,
        "INSERT INTO workers(id, hostname, device, threads, libtorch_version, "
        "blas, registered_ms, last_seen_ms, token_id, draining, stopped_ms) "
        "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, "
        "draining = excluded.draining, stopped_ms = excluded.stopped_ms");
    if (absl::Status s =
            q.Bind({w.id, w.hostname, w.device, int64_t{w.threads},
                    w.libtorch_version, w.blas, w.registered_ms, w.last_seen_ms,
                    w.token_id, int64_t{w.draining}, w.stopped_ms});
        !s.ok()) {
      return s;
    }
    return q.Run();
  }

  absl::StatusOr<WorkerRecord> GetWorker(const std::string& id) override {
    absl::StatusOr<std::vector<WorkerRecord>> found =
        QueryWorkers(absl::StrCat(kWorkerQuery, " WHERE id = ?"), {id});
    if (!found.ok()) return found.status();
    if (found->empty()) {
      return absl::NotFoundError(
          absl::StrCat("worker ", id, " is not registered"));
    }
    return found->front();
  }

  absl::StatusOr<std::map<v1::RunStatus, int64_t>> CountRunsByStatus()
      override {
    Statement q(db_, "SELECT status, COUNT(*) FROM runs GROUP BY status");
    if (absl::Status s = q.Bind({}); !s.ok()) return s;
    std::map<v1::RunStatus, int64_t> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out[static_cast<v1::RunStatus>(q.Int(0))] = q.Int(1);
    }
    return out;
  }

  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() override {
    return QueryWorkers(
        absl::StrCat(kWorkerQuery, " ORDER BY registered_ms DESC, id"), {});
  }

  absl::StatusOr<int64_t> InsertToken(const TokenRecord& t) override {
    Statement q(db_,
                "INSERT INTO tokens(name, role, sha256, created_ms, "
                "revoked_ms) VALUES(?, ?, ?, ?, ?)");
    if (absl::Status s = q.Bind(
            {t.name, int64_t{t.role}, t.sha256, t.created_ms, t.revoked_ms});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = q.Run(); !s.ok()) return s;
    return sqlite3_last_insert_rowid(db_);
  }

  absl::StatusOr<std::vector<TokenRecord>> ListTokens() override {
    Statement q(db_,
                "SELECT id, name, role, sha256, created_ms, revoked_ms "
                "FROM tokens ORDER BY id");
    if (absl::Status s = q.Bind({}); !s.ok()) return s;
    std::vector<TokenRecord> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({q.Int(0), q.Text(1), int32_t(q.Int(2)), q.Text(3),
                     q.Int(4), q.Int(5)});
    }
    return out;
  }

  absl::StatusOr<TokenRecord> RevokeToken(int64_t id, int64_t now_ms) override {
    Statement update(db_,
                     "UPDATE tokens SET revoked_ms = ? "
                     "WHERE id = ? AND revoked_ms = 0");
    if (absl::Status s = update.Bind({now_ms, id}); !s.ok()) return s;
    if (absl::Status s = update.Run(); !s.ok()) return s;
    Statement q(db_,
                "SELECT id, name, role, sha256, created_ms, revoked_ms "
                "FROM tokens WHERE id = ?");
    if (absl::Status s = q.Bind({id}); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) {
      return absl::NotFoundError(absl::StrCat("no token has id ", id));
    }
    return TokenRecord{q.Int(0),  q.Text(1), int32_t(q.Int(2)),
                       q.Text(3), q.Int(4),  q.Int(5)};
  }

  absl::Status InsertRunFile(const RunFileRecord& c) override {
    Statement q(db_,
                "INSERT OR REPLACE INTO run_files(sha256, run_id, attempt, "
                "size, path, "
                "name, created_ms) VALUES(?, ?, ?, ?, ?, ?, "
                "strftime('%s','now') * 1000)");
    if (absl::Status s = q.Bind(
            {c.sha256, c.run_id, int64_t{c.attempt}, c.size, c.path, c.name});
        !s.ok()) {
      return s;
    }
    return q.Run();
  }

  absl::StatusOr<RunFileRecord> FindRunFileByDigest(
      const std::string& sha256) override {
    return QueryFile(
        "SELECT sha256, run_id, attempt, size, path, name FROM run_files "
        "WHERE sha256 = ? LIMIT 1",
        {sha256}, absl::StrCat("no checkpoint has sha256 ", sha256));
  }

  absl::StatusOr<RunFileRecord> FindRunFile(int64_t run_id,
                                            const std::string& name) override {
    return QueryFile(
        "SELECT sha256, run_id, attempt, size, path, name FROM run_files "
        "WHERE run_id = ? AND name = ? ORDER BY attempt DESC, created_ms DESC "
        "LIMIT 1",
        {run_id, name},
        absl::StrCat("run ", run_id, " has no file \"", name, "\""));
  }

  absl::StatusOr<std::vector<std::string>> DeleteRunFiles(
      int64_t run_id, const std::string& name,
      const std::string& keep) override {
    std::vector<std::string> doomed;
    {
      Statement q(db_,
                  "SELECT sha256 FROM run_files WHERE run_id = ? AND "
                  "(? = '' OR name = ?) AND sha256 != ?");
      if (absl::Status s = q.Bind({run_id, name, name, keep}); !s.ok())
        return s;
      while (true) {
        absl::StatusOr<bool> row = q.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        doomed.push_back(q.Text(0));
      }
    }
    std::vector<std::string> unreferenced;
    for (const std::string& sha256 : doomed) {
      Statement d(db_, "DELETE FROM run_files WHERE run_id = ? AND sha256 = ?");
      if (absl::Status s = d.Bind({run_id, sha256}); !s.ok()) return s;
      if (absl::Status s = d.Run(); !s.ok()) return s;
      Statement q(db_, "SELECT 1 FROM run_files WHERE sha256 = ? LIMIT 1");
      if (absl::Status s = q.Bind({sha256}); !s.ok()) return s;
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) unreferenced.push_back(sha256);
    }
    return unreferenced;
  }

 private:
  absl::StatusOr<RunFileRecord> QueryFile(const char* sql,
                                          std::initializer_list<Value> args,
                                          const std::string& not_found) {
    Statement q(db_, sql);
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(not_found);
    return RunFileRecord{q.Text(0), q.Int(1),  int32_t(q.Int(2)),
                         q.Int(3),  q.Text(4), q.Text(5)};
  }

  absl::Status Exec(const std::string& sql) {
    char* error = nullptr;
    if (const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
        rc != SQLITE_OK) {
      absl::Status s = SqliteError(rc, "exec failed", error ? error : "?");
      sqlite3_free(error);
      return s;
    }
    return absl::OkStatus();
  }

  static constexpr char kWorkerQuery[] =
      "SELECT id, hostname, device, threads, libtorch_version, blas, "
      "registered_ms, last_seen_ms, token_id, draining, stopped_ms "
      "FROM workers";

  absl::StatusOr<std::vector<WorkerRecord>> QueryWorkers(
      const std::string& sql, std::initializer_list<Value> args) {
    Statement q(db_, sql.c_str());
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    std::vector<WorkerRecord> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({q.Text(0), q.Text(1), q.Text(2), int32_t(q.Int(3)),
                     q.Text(4), q.Text(5), q.Int(6), q.Int(7), q.Int(8),
                     q.Int(9) != 0, q.Int(10)});
    }
    return out;
  }

  absl::StatusOr<std::vector<v1::Run>> QueryRuns(
      const std::string& sql, std::initializer_list<Value> args) {
    Statement q(db_, sql.c_str());
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    std::vector<v1::Run> runs;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      v1::Run run;
      run.set_id(q.Int(0));
      run.set_sweep_id(q.Int(1));
      run.set_member(q.Text(2));
      if (!run.mutable_spec()->ParseFromString(q.Text(3))) {
        return absl::DataLossError(
            absl::StrCat("run ", run.id(), ": stored spec is corrupt"));
      }
      // Databases from before specs were resolved at submit time hold them
      // as submitted; resolving is idempotent.
      if (absl::StatusOr<v1::ExperimentSpec> resolved = ResolveSpec(run.spec());
          resolved.ok()) {
        *run.mutable_spec() = *std::move(resolved);
      }
      run.set_status(static_cast<v1::RunStatus>(q.Int(4)));
      run.set_attempt(int32_t(q.Int(5)));
      run.set_worker_id(q.Text(6));
      run.set_lease_expires_ms(q.Int(7));
      run.set_message(q.Text(8));
      run.set_teacher_run_id(q.Int(9));
      run.set_checkpoint_sha256(q.Text(10));
      run.set_created_ms(q.Int(11));
      run.set_started_ms(q.Int(12));
      run.set_finished_ms(q.Int(13));
      run.set_releases(int32_t(q.Int(14)));
      runs.push_back(std::move(run));
    }
    for (v1::Run& run : runs) {
      Statement r(db_, "SELECT key, value FROM run_results WHERE run_id = ?");
      if (absl::Status s = r.Bind({run.id()}); !s.ok()) return s;
      while (true) {
        absl::StatusOr<bool> row = r.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        (*run.mutable_results())[r.Text(0)] = r.Double(1);
      }
      // The files of the run's latest attempt that uploaded any.
      Statement f(db_,
                  "SELECT name, sha256, size FROM run_files WHERE run_id = ? "
                  "AND attempt = "
                  "(SELECT MAX(attempt) FROM run_files WHERE run_id = ?) "
                  "ORDER BY name");
      if (absl::Status s = f.Bind({run.id(), run.id()}); !s.ok()) return s;
      while (true) {
        absl::StatusOr<bool> row = f.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        v1::RunFile* file = run.add_files();
        file->set_name(f.Text(0));
        file->set_sha256(f.Text(1));
        file->set_size(f.Int(2));
      }
    }
    return runs;
  }

  absl::StatusOr<v1::Sweep> QuerySweep(const char* sql,
                                       std::initializer_list<Value> args,
                                       const std::string& not_found) {
    Statement q(db_, sql);
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(not_found);
    v1::Sweep sweep;
    sweep.set_id(q.Int(0));
    sweep.set_name(q.Text(1));
    if (!sweep.mutable_spec()->ParseFromString(q.Text(2))) {
      return absl::DataLossError(
          absl::StrCat("sweep ", sweep.id(), ": stored spec is corrupt"));
    }
    sweep.set_teacher_run_id(q.Int(3));
    sweep.set_created_ms(q.Int(4));
    return sweep;
  }

  sqlite3* db_;
  int version_ = 0;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenSqlite(
    const std::string& path, const std::vector<Migration>& migrations) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(
          path.c_str(), &db,
          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
          nullptr) != SQLITE_OK) {
    absl::Status s = absl::UnavailableError(
        absl::StrCat("cannot open database ", path, ": ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  auto store = std::make_unique<SqliteStore>(db);
  if (absl::Status s = store->Migrate(migrations); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return store;
}

}  // namespace distill
