// The SQLite implementation of Store. Every statement binds its values
// with `?`; no SQL is built from data.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/spec_fields.h"
#include "common/spec_resolution.h"
#include "server/heap_shm_vfs.h"
#include "server/no_throw.h"
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

// A prepared statement kept by the store for reuse (see Cached): `in_use`
// stops a nested query from resetting one still stepping.
struct CachedStatement {
  sqlite3_stmt* stmt = nullptr;
  bool in_use = false;
};

// The prepared statements of one connection, by SQL text.
class StatementCache {
 public:
  explicit StatementCache(sqlite3* db) : db_(db) {}
  ~StatementCache() {
    for (auto& [sql, cached] : map_) sqlite3_finalize(cached.stmt);
  }
  // The statement for `sql`, marked in use; nullptr when it is in use
  // already or does not prepare (the caller prepares its own).
  CachedStatement* Get(const std::string& sql) {
    auto [it, inserted] = map_.try_emplace(sql);
    if (inserted &&
        sqlite3_prepare_v3(db_, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT,
                           &it->second.stmt, nullptr) != SQLITE_OK) {
      sqlite3_finalize(it->second.stmt);
      map_.erase(it);
      return nullptr;
    }
    if (it->second.in_use) return nullptr;
    it->second.in_use = true;
    return &it->second;
  }
  // Statements must not outlive a schema change that drops what they
  // read (migrations).
  void Clear() {
    for (auto& [sql, cached] : map_) sqlite3_finalize(cached.stmt);
    map_.clear();
  }

 private:
  sqlite3* db_;
  std::map<std::string, CachedStatement> map_;
};

// A prepared statement: finalised when it goes, or, when it came from the
// store's cache, reset for the next use.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    status_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
  }
  // From `cache` when it has the statement free, else prepared anew.
  Statement(sqlite3* db, class StatementCache& cache, const std::string& sql);
  ~Statement() {
    if (cached_ == nullptr) {
      sqlite3_finalize(stmt_);
      return;
    }
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    cached_->in_use = false;
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  absl::Status Bind(std::initializer_list<Value> values) {
    return Bind(std::vector<Value>(values));
  }
  absl::Status Bind(const std::vector<Value>& values) {
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

  // Steps through every row, calling `on_row` at each.
  template <typename OnRow>
  absl::Status EachRow(OnRow on_row) {
    while (true) {
      absl::StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      on_row();
    }
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
  CachedStatement* cached_ = nullptr;
  int status_;
};

Statement::Statement(sqlite3* db, StatementCache& cache, const std::string& sql)
    : db_(db), cached_(cache.Get(sql)) {
  if (cached_ != nullptr) {
    stmt_ = cached_->stmt;
    status_ = SQLITE_OK;
  } else {
    status_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
}

static_assert(v1::RUNNING == 3, "runs_by_worker indexes status = 3");
static_assert(v1::QUEUED == 2, "runs_queue indexes status = 2");

// A key's points, as ReadPoints reads them; a condition and order follow.
constexpr char kPointQuery[] =
    "SELECT sequence, attempt, step, epoch, value, time_ms FROM metric_points "
    "WHERE run_id = ? AND key_id = ? ";

constexpr char kRunColumns[] =
    "id, sweep_id, member, spec, status, attempt, worker_id, lease_expires_ms, "
    "message, teacher_run_id, checkpoint_sha256, created_ms, started_ms, "
    "finished_ms, releases, priority, note";

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path, bool reader)
      : db_(db), path_(std::move(path)), reader_(reader), cache_(db) {}
  ~SqliteStore() override {
    {
      absl::MutexLock lock(&sync_mu_);
      if (wal_fd_ >= 0) ::close(wal_fd_);
    }
    cache_.Clear();
    sqlite3_close(db_);
  }

  absl::StatusOr<std::unique_ptr<Store>> OpenReader() override {
    if (path_ == ":memory:" || path_.empty()) {
      return absl::FailedPreconditionError(
          "an in-memory database has no second connection");
    }
    return Open(path_, /*reader=*/true);
  }

  absl::Status Checkpoint() override {
    if (path_ == ":memory:" || path_.empty()) return absl::OkStatus();
    absl::MutexLock lock(&checkpoint_mu_);
    if (checkpointer_ == nullptr) {
      absl::StatusOr<std::unique_ptr<SqliteStore>> store =
          Open(path_, /*reader=*/false);
      if (!store.ok()) return store.status();
      checkpointer_ = *std::move(store);
    }
    sqlite3* db = checkpointer_->db_;
    const int rc = sqlite3_wal_checkpoint_v2(
        db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY) {
      return SqliteError(rc, "checkpoint failed", sqlite3_errmsg(db));
    }
    return absl::OkStatus();
  }

  int64_t UnsyncedCommits() override { return commits_; }

  absl::Status SyncWal(int64_t commits) override {
    if (synced_ >= commits || path_ == ":memory:") return absl::OkStatus();
    absl::MutexLock lock(&sync_mu_);
    if (synced_ >= commits) return absl::OkStatus();  // Another fsync did.
    const int64_t upto = commits_;  // Every frame of these is written.
    if (wal_fd_ < 0) {
      wal_fd_ = ::open((path_ + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
      if (wal_fd_ < 0) {
        return absl::UnavailableError(absl::StrCat(
            "cannot open ", path_, "-wal: ", std::strerror(errno)));
      }
    }
    if (::fdatasync(wal_fd_) != 0) {
      const int error = errno;
      DISTILL_LOG(WARNING) << "fdatasync " << path_
                           << "-wal: " << std::strerror(error);
      return error == ENOSPC
                 ? absl::ResourceExhaustedError(
                       absl::StrCat("fdatasync ", path_,
                                    "-wal: the data directory's disk is full"))
                 : absl::UnavailableError(absl::StrCat(
                       "fdatasync ", path_, "-wal: ", std::strerror(error)));
    }
    synced_ = upto;
    return absl::OkStatus();
  }

  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path, bool reader) {
    const bool in_memory = path == ":memory:";
    if (!in_memory) {
      if (absl::Status s = RegisterHeapShmVfs(); !s.ok()) return s;
    }
    sqlite3* db = nullptr;
    const int flags = (reader ? SQLITE_OPEN_READONLY
                              : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
                      SQLITE_OPEN_NOMUTEX;
    if (const int rc = sqlite3_open_v2(path.c_str(), &db, flags,
                                       in_memory ? nullptr : kHeapShmVfs);
        rc != SQLITE_OK) {
      absl::Status s =
          (rc & 0xff) == SQLITE_BUSY
              ? absl::FailedPreconditionError(absl::StrCat(
                    "database ", path, " is open in another process"))
              : absl::UnavailableError(absl::StrCat(
                    "cannot open database ", path, ": ", sqlite3_errmsg(db)));
      sqlite3_close(db);
      return s;
    }
    sqlite3_busy_timeout(db, 5000);
    return std::make_unique<SqliteStore>(db, path, reader);
  }

  absl::Status Migrate(const std::vector<Migration>& migrations) {
    // WAL: readers on their own connections never wait for the writer.
    // The WAL index lives in the heap (heap_shm_vfs.h), not in a mapped
    // -shm file whose pages fault with SIGBUS when the disk fills up or
    // turns read-only.
    if (absl::Status s =
            Exec("PRAGMA journal_mode=WAL; "
                 "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; "
                 // The coordinator checkpoints on its own connection
                 // (Checkpoint); this is the bound should it not.
                 "PRAGMA wal_autocheckpoint=10000;");
        !s.ok()) {
      return s;
    }
    return InTransaction(
        [&]() -> absl::Status {
          if (absl::Status s = Exec(
                  "CREATE TABLE IF NOT EXISTS schema_version "
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
            if (absl::StatusOr<bool> row = q.Step(); !row.ok())
              return row.status();
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
            // What SQL alone cannot convert: the fields of the specs
            // stored before.
            if (migrations[v - 1].name == "008_run_fields.sql") {
              if (absl::Status s = FillRunFields(); !s.ok()) {
                return absl::InternalError(absl::StrCat(
                    "migration ", migrations[v - 1].name, ": ", s.message()));
              }
            }
            Statement insert(db_,
                             "INSERT INTO schema_version(version, applied_ms) "
                             "VALUES(?, strftime('%s','now') * 1000)");
            if (absl::Status s = insert.Bind({v}); !s.ok()) return s;
            if (absl::Status s = insert.Run(); !s.ok()) return s;
          }
          version_ = int(newest);
          return absl::OkStatus();
        },
        Durability::kOnDisk);
  }

  int SchemaVersion() override { return version_; }

  // run_fields for every run stored.
  absl::Status FillRunFields() {
    std::vector<std::pair<int64_t, v1::ExperimentSpec>> specs;
    {
      Statement q(db_, "SELECT id, spec FROM runs");
      while (true) {
        absl::StatusOr<bool> row = q.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        v1::ExperimentSpec spec;
        if (!spec.ParseFromString(q.Text(1))) {
          return absl::DataLossError(
              absl::StrCat("run ", q.Int(0), ": stored spec is corrupt"));
        }
        if (absl::StatusOr<v1::ExperimentSpec> resolved = ResolveSpec(spec);
            resolved.ok()) {
          spec = *std::move(resolved);
        }
        specs.emplace_back(q.Int(0), std::move(spec));
      }
    }
    for (const auto& [id, spec] : specs) {
      if (absl::Status s = InsertRunFields(id, spec); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status InsertRunFields(int64_t run_id, const v1::ExperimentSpec& spec) {
    return InsertFieldRows(run_id, FlattenSpec(spec));
  }

  absl::Status InsertFieldRows(
      int64_t run_id,
      const std::vector<std::pair<std::string, std::string>>& fields) {
    for (const auto& [path, value] : fields) {
      Statement q(db_, cache_,
                  "INSERT OR REPLACE INTO run_fields(run_id, path, value) "
                  "VALUES(?, ?, ?)");
      if (absl::Status s = q.Bind({run_id, path, value}); !s.ok()) return s;
      if (absl::Status s = q.Run(); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  absl::Status InTransaction(const std::function<absl::Status()>& body,
                             Durability durability) override {
    // Without the commit's fsync: the next FULL commit or checkpoint syncs
    // the WAL, this transaction's frames with it. (SQLite takes the safety
    // level only between transactions.)
    const bool in_wal = durability != Durability::kOnDisk && !reader_;
    if (in_wal) {
      if (absl::Status s = Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
    }
    // A reader's transaction is one snapshot; the writer's takes the
    // write lock at once.
    absl::Status result = Exec(reader_ ? "BEGIN" : "BEGIN IMMEDIATE");
    if (result.ok()) {
      result = Guarded(body);
      if (result.ok()) result = Exec("COMMIT");
      if (result.ok() && durability == Durability::kSyncAfter && !reader_)
        ++commits_;
      if (!result.ok()) {
        Exec("ROLLBACK").IgnoreError();
        // What the transaction cached may not have been stored.
        key_ids_.clear();
        key_names_.clear();
        next_sequence_.clear();
      }
    }
    if (in_wal) {
      if (absl::Status s = Exec("PRAGMA synchronous=FULL"); !s.ok()) {
        DISTILL_LOG(ERROR) << "cannot set synchronous=FULL again: "
                           << s.message();
        if (result.ok()) result = s;
      }
    }
    return result;
  }

  absl::StatusOr<int64_t> InsertRun(const v1::Run& run) override {
    // The fields first: nothing is written unless all of it can be.
    const std::vector<std::pair<std::string, std::string>> fields =
        FlattenSpec(run.spec());
    int64_t id = 0;
    absl::Status s = Atomically([&]() -> absl::Status {
      Statement q(
          db_, cache_,
          "INSERT INTO runs(sweep_id, member, kind, spec, status, attempt, "
          "max_restarts, teacher_run_id, message, created_ms, priority) "
          "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      if (absl::Status s = q.Bind(
              {run.sweep_id(), run.member(), int64_t{run.spec().kind()},
               Blob{run.spec().SerializeAsString()}, int64_t{run.status()},
               int64_t{run.attempt()}, int64_t{run.spec().max_restarts()},
               run.teacher_run_id(), run.message(), run.created_ms(),
               int64_t{run.priority()}});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = q.Run(); !s.ok()) return s;
      id = sqlite3_last_insert_rowid(db_);
      return InsertFieldRows(id, fields);
    });
    if (!s.ok()) return s;
    return id;
  }

  absl::Status UpdateRun(const v1::Run& run) override {
    return Atomically([&]() -> absl::Status {
      Statement q(db_, cache_,
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
        Statement r(db_, cache_,
                    "INSERT OR REPLACE INTO run_results(run_id, key, value) "
                    "VALUES(?, ?, ?)");
        if (absl::Status s = r.Bind({run.id(), key, value}); !s.ok()) return s;
        if (absl::Status s = r.Run(); !s.ok()) return s;
      }
      for (const auto& [key, value] : run.provenance()) {
        Statement p(db_, cache_,
                    "INSERT OR REPLACE INTO run_provenance(run_id, key, value) "
                    "VALUES(?, ?, ?)");
        if (absl::Status s = p.Bind({run.id(), key, value}); !s.ok()) return s;
        if (absl::Status s = p.Run(); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
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
    RunQuery query;
    query.sweep_id = sweep_id;
    query.status = status;
    return FindRuns(query);
  }

  absl::StatusOr<std::vector<v1::Run>> FindRuns(
      const RunQuery& query) override {
    std::string sql = absl::StrCat("SELECT ", kRunColumns, " FROM runs");
    std::vector<Value> args;
    if (!query.sort_key.empty()) {
      absl::StrAppend(&sql,
                      " LEFT JOIN run_results sorted ON sorted.run_id = id "
                      "AND sorted.key = ?");
      args.push_back(query.sort_key);
    }
    absl::StrAppend(&sql, " WHERE 1");
    auto where = [&](const char* condition, Value value) {
      absl::StrAppend(&sql, " AND ", condition);
      args.push_back(std::move(value));
    };
    if (query.sweep_id != 0) where("sweep_id = ?", query.sweep_id);
    if (query.status != v1::RUN_STATUS_UNSPECIFIED)
      where("status = ?", int64_t{query.status});
    if (query.kind != v1::EXPERIMENT_KIND_UNSPECIFIED)
      where("kind = ?", int64_t{query.kind});
    if (query.teacher_run_id != 0)
      where("teacher_run_id = ?", query.teacher_run_id);
    if (!query.member.empty()) {
      where(query.member.find_first_of("*?[") != std::string::npos
                ? "member GLOB ?"
                : "member = ?",
            query.member);
    }
    if (query.created_after_ms != 0)
      where("created_ms >= ?", query.created_after_ms);
    if (query.created_before_ms != 0)
      where("created_ms < ?", query.created_before_ms);
    for (const auto& [path, value] : query.fields) {
      absl::StrAppend(&sql,
                      " AND id IN (SELECT run_id FROM run_fields "
                      "WHERE path = ? AND value = ?)");
      args.push_back(path);
      args.push_back(value);
    }
    for (const auto& [key, value] : query.tags) {
      absl::StrAppend(&sql,
                      " AND id IN (SELECT target_id FROM tags WHERE kind = 1 "
                      "AND key = ?",
                      value ? " AND value = ?)" : ")");
      args.push_back(key);
      if (value) args.push_back(*value);
    }
    if (!query.note_contains.empty())
      where("instr(lower(note), lower(?)) > 0", query.note_contains);
    if (query.sort_key.empty() && query.newest_first) {
      if (query.after_id > 0) where("id < ?", query.after_id);
      absl::StrAppend(&sql, " ORDER BY id DESC");
    } else if (query.sort_key.empty()) {
      where("id > ?", query.after_id);
      absl::StrAppend(&sql, " ORDER BY id");
    } else {
      // Runs without the result last.
      absl::StrAppend(&sql, " ORDER BY sorted.value IS NULL, sorted.value ",
                      query.descending ? "DESC" : "ASC", ", id");
    }
    absl::StrAppend(&sql, " LIMIT ? OFFSET ?");
    args.push_back(query.limit > 0 ? query.limit : int64_t{-1});
    args.push_back(query.offset);
    return QueryRunsWith(sql, args);
  }

  absl::Status SetProvenance(
      int64_t id, const std::map<std::string, std::string>& entries) override {
    return Atomically([&]() -> absl::Status {
      for (const auto& [key, value] : entries) {
        Statement q(db_, cache_,
                    value.empty()
                        ? "DELETE FROM run_provenance WHERE run_id = ? "
                          "AND key = ?"
                        : "INSERT OR REPLACE INTO run_provenance(run_id, "
                          "key, value) VALUES(?, ?, ?)");
        absl::Status s =
            value.empty() ? q.Bind({id, key}) : q.Bind({id, key, value});
        if (!s.ok()) return s;
        if (absl::Status s = q.Run(); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }

  absl::Status Annotate(TagTarget target, int64_t id,
                        const std::map<std::string, std::string>& set,
                        const std::vector<std::string>& remove,
                        const std::optional<std::string>& note) override {
    return Atomically([&]() -> absl::Status {
      for (const auto& [key, value] : set) {
        Statement q(db_, cache_,
                    "INSERT OR REPLACE INTO tags(kind, target_id, key, value) "
                    "VALUES(?, ?, ?, ?)");
        if (absl::Status s = q.Bind({int64_t(target), id, key, value}); !s.ok())
          return s;
        if (absl::Status s = q.Run(); !s.ok()) return s;
      }
      for (const std::string& key : remove) {
        Statement q(db_, cache_,
                    "DELETE FROM tags WHERE kind = ? AND target_id = ? AND "
                    "key = ?");
        if (absl::Status s = q.Bind({int64_t(target), id, key}); !s.ok())
          return s;
        if (absl::Status s = q.Run(); !s.ok()) return s;
      }
      if (note) {
        Statement q(db_, cache_,
                    target == TagTarget::kRun
                        ? "UPDATE runs SET note = ? WHERE id = ?"
                        : "UPDATE sweeps SET note = ? WHERE id = ?");
        if (absl::Status s = q.Bind({*note, id}); !s.ok()) return s;
        if (absl::Status s = q.Run(); !s.ok()) return s;
      }
      return absl::OkStatus();
    });
  }

  absl::StatusOr<std::optional<v1::Run>> RunHeldBy(
      const std::string& worker_id) override {
    absl::StatusOr<std::vector<v1::Run>> runs =
        QueryRuns(absl::StrCat("SELECT ", kRunColumns,
                               " FROM runs WHERE worker_id = ? AND status = 3 "
                               "ORDER BY id DESC LIMIT 1"),
                  {worker_id});
    if (!runs.ok()) return runs.status();
    if (runs->empty()) return std::nullopt;
    return std::move(runs->front());
  }

  absl::StatusOr<std::vector<v1::Run>> RunsWithTeacher(
      int64_t teacher_run_id) override {
    return QueryRuns(
        absl::StrCat("SELECT ", kRunColumns,
                     " FROM runs WHERE teacher_run_id = ? ORDER BY id"),
        {teacher_run_id});
  }

  absl::StatusOr<std::optional<v1::Run>> NextQueuedRun() override {
    // The sweeps at their max_concurrent, from the few RUNNING runs; the
    // queue's order read from the partial index runs_queue, which stops at
    // the first run it may lease (left to itself SQLite sorts every queued
    // run: 2.5 ms against 6 us with 10,000 queued).
    absl::StatusOr<std::vector<v1::Run>> runs = QueryRuns(
        absl::StrCat(
            "SELECT ", kRunColumns,
            " FROM runs INDEXED BY runs_queue WHERE status = 2 AND sweep_id "
            "NOT IN ("
            "SELECT r.sweep_id FROM runs r JOIN sweeps s ON s.id = r.sweep_id "
            "WHERE r.status = 3 AND s.max_concurrent > 0 "
            "GROUP BY r.sweep_id HAVING COUNT(*) >= MAX(s.max_concurrent)) "
            "ORDER BY priority DESC, id LIMIT 1"),
        {});
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
    Statement q(db_, cache_,
                "INSERT INTO sweeps(name, spec, teacher_run_id, created_ms, "
                "max_concurrent) VALUES(?, ?, ?, ?, ?)");
    if (absl::Status s =
            q.Bind({sweep.name(), Blob{sweep.spec().SerializeAsString()},
                    sweep.teacher_run_id(), sweep.created_ms(),
                    int64_t{sweep.spec().max_concurrent()}});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = q.Run(); !s.ok()) return s;
    return sqlite3_last_insert_rowid(db_);
  }

  absl::Status SetSweepTeacher(int64_t sweep_id,
                               int64_t teacher_run_id) override {
    Statement q(db_, cache_,
                "UPDATE sweeps SET teacher_run_id = ? WHERE id = ?");
    if (absl::Status s = q.Bind({teacher_run_id, sweep_id}); !s.ok()) return s;
    return q.Run();
  }

  absl::StatusOr<v1::Sweep> GetSweep(int64_t id) override {
    return QuerySweep(
        "SELECT id, name, spec, teacher_run_id, created_ms, note FROM sweeps "
        "WHERE id = ?",
        {id}, absl::StrCat("sweep ", id, " does not exist"));
  }

  absl::StatusOr<v1::Sweep> FindSweep(const std::string& name) override {
    return QuerySweep(
        "SELECT id, name, spec, teacher_run_id, created_ms, note FROM sweeps "
        "WHERE name = ? ORDER BY id DESC LIMIT 1",
        {name}, absl::StrCat("no sweep is named \"", name, "\""));
  }

  absl::StatusOr<std::vector<v1::Sweep>> ListSweeps(int64_t limit) override {
    std::vector<int64_t> ids;
    {
      Statement q(db_, cache_,
                  "SELECT id FROM sweeps ORDER BY id DESC LIMIT ?");
      if (absl::Status s = q.Bind({limit}); !s.ok()) return s;
      while (true) {
        absl::StatusOr<bool> row = q.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        ids.push_back(q.Int(0));
      }
    }
    std::vector<v1::Sweep> sweeps;
    for (int64_t id : ids) {
      absl::StatusOr<v1::Sweep> sweep = GetSweep(id);
      if (!sweep.ok()) return sweep.status();
      sweeps.push_back(*std::move(sweep));
    }
    return sweeps;
  }

  absl::Status AppendMetrics(
      int64_t run_id, int32_t attempt,
      const std::vector<v1::MetricPoint>& points) override {
    if (points.empty()) return absl::OkStatus();
    absl::StatusOr<int64_t> next = NextSequence(run_id);
    if (!next.ok()) return next.status();
    int64_t sequence = *next;
    struct Summary {
      int64_t points = 0;
      int64_t first = 0;
      int64_t last = 0;
    };
    absl::flat_hash_map<int64_t, Summary> summaries;
    for (const v1::MetricPoint& p : points) {
      absl::StatusOr<int64_t> key_id = KeyId(p.key());
      if (!key_id.ok()) return key_id.status();
      Statement q(db_, cache_,
                  "INSERT INTO metric_points(run_id, key_id, sequence, "
                  "attempt, step, epoch, value, time_ms) "
                  "VALUES(?, ?, ?, ?, ?, ?, ?, ?)");
      if (absl::Status s =
              q.Bind({run_id, *key_id, sequence, int64_t{attempt}, p.step(),
                      int64_t{p.epoch()}, p.value(), p.time_ms()});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = q.Run(); !s.ok()) return s;
      Summary& summary = summaries[*key_id];
      if (summary.points++ == 0) summary.first = sequence;
      summary.last = sequence;
      ++sequence;
    }
    for (const auto& [key_id, summary] : summaries) {
      Statement q(db_, cache_,
                  "INSERT INTO run_metric_keys(run_id, key_id, points, "
                  "first_sequence, last_sequence) VALUES(?, ?, ?, ?, ?) "
                  "ON CONFLICT(run_id, key_id) DO UPDATE SET "
                  "points = points + excluded.points, "
                  "last_sequence = excluded.last_sequence");
      if (absl::Status s = q.Bind(
              {run_id, key_id, summary.points, summary.first, summary.last});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = q.Run(); !s.ok()) return s;
    }
    next_sequence_[run_id] = sequence;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<StoredMetric>> Metrics(int64_t run_id,
                                                    int64_t after_sequence,
                                                    int64_t limit) override {
    absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
    if (!keys.ok()) return keys.status();
    std::vector<StoredMetric> out;
    for (const KeySummary& key : *keys) {
      if (key.last <= after_sequence) continue;
      Statement q(db_, cache_,
                  absl::StrCat(kPointQuery,
                               "AND sequence > ? ORDER BY sequence LIMIT ?"));
      if (absl::Status s = q.Bind({run_id, key.id, after_sequence,
                                   limit > 0 ? limit : int64_t{-1}});
          !s.ok()) {
        return s;
      }
      if (absl::Status s = ReadPoints(q, key.name, &out); !s.ok()) return s;
    }
    SortBySequence(&out);
    if (limit > 0 && int64_t(out.size()) > limit) out.resize(limit);
    return out;
  }

  absl::StatusOr<std::vector<StoredMetric>> SampledMetrics(
      int64_t run_id, int64_t per_key) override {
    absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
    if (!keys.ok()) return keys.status();
    std::vector<StoredMetric> out;
    for (const KeySummary& key : *keys) {
      if (key.points <= per_key || per_key < 2) {
        Statement q(db_, cache_,
                    absl::StrCat(kPointQuery, "ORDER BY sequence LIMIT ?"));
        if (absl::Status s = q.Bind({run_id, key.id, per_key}); !s.ok())
          return s;
        if (absl::Status s = ReadPoints(q, key.name, &out); !s.ok()) return s;
        continue;
      }
      // One seek per sample, evenly spaced over the key's sequence range;
      // the first and the last point always.
      int64_t taken = 0;
      for (int64_t i = 0; i < per_key; ++i) {
        const int64_t target =
            key.first + (key.last - key.first) * i / (per_key - 1);
        if (target <= taken) continue;
        Statement q(
            db_, cache_,
            absl::StrCat(kPointQuery,
                         "AND sequence >= ? ORDER BY sequence LIMIT 1"));
        if (absl::Status s = q.Bind({run_id, key.id, target}); !s.ok())
          return s;
        const size_t before = out.size();
        if (absl::Status s = ReadPoints(q, key.name, &out); !s.ok()) return s;
        if (out.size() > before) taken = out.back().sequence;
      }
    }
    SortBySequence(&out);
    return out;
  }

  absl::StatusOr<std::vector<MetricKeyStats>> MetricKeys(
      int64_t run_id) override {
    absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
    if (!keys.ok()) return keys.status();
    std::vector<MetricKeyStats> out;
    for (const KeySummary& key : *keys)
      out.push_back({key.name, key.points, key.last});
    return out;
  }

  absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>> SweepMetric(
      int64_t sweep_id, const std::string& key) override {
    Statement q(db_, cache_,
                "SELECT p.run_id, p.epoch, p.value FROM runs r "
                "JOIN metric_points p ON p.run_id = r.id AND p.key_id = "
                "(SELECT id FROM metric_keys WHERE key = ?) "
                "WHERE r.sweep_id = ? ORDER BY p.run_id, p.sequence");
    if (absl::Status s = q.Bind({key, sweep_id}); !s.ok()) return s;
    std::map<int64_t, std::vector<EpochValue>> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out[q.Int(0)].push_back({int32_t(q.Int(1)), q.Double(2)});
    }
    return out;
  }

  absl::Status UpsertWorker(const WorkerRecord& w) override {
    Statement q(
        db_, cache_,
        "INSERT INTO workers(id, hostname, device, threads, libtorch_version, "
        "blas, registered_ms, last_seen_ms, token_id, draining, stopped_ms, "
        "distill_version) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT(id) DO UPDATE SET last_seen_ms = excluded.last_seen_ms, "
        "draining = excluded.draining, stopped_ms = excluded.stopped_ms");
    if (absl::Status s = q.Bind(
            {w.id, w.hostname, w.device, int64_t{w.threads}, w.libtorch_version,
             w.blas, w.registered_ms, w.last_seen_ms, w.token_id,
             int64_t{w.draining}, w.stopped_ms, w.distill_version});
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
    Statement q(db_, cache_,
                "SELECT status, COUNT(*) FROM runs GROUP BY status");
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
    return QueryWorkers(absl::StrCat(kWorkerQuery, " ORDER BY rowid DESC"), {});
  }

  absl::StatusOr<std::vector<WorkerRecord>> ListWorkersPage(
      int64_t before_row, int64_t limit) override {
    if (before_row == 0) {
      return QueryWorkers(
          absl::StrCat(kWorkerQuery, " ORDER BY rowid DESC LIMIT ?"), {limit});
    }
    return QueryWorkers(absl::StrCat(kWorkerQuery,
                                     " WHERE rowid < ? ORDER BY rowid DESC "
                                     "LIMIT ?"),
                        {before_row, limit});
  }

  absl::StatusOr<int64_t> InsertToken(const TokenRecord& t) override {
    Statement q(db_, cache_,
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
    Statement q(db_, cache_,
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
    Statement update(db_, cache_,
                     "UPDATE tokens SET revoked_ms = ? "
                     "WHERE id = ? AND revoked_ms = 0");
    if (absl::Status s = update.Bind({now_ms, id}); !s.ok()) return s;
    if (absl::Status s = update.Run(); !s.ok()) return s;
    Statement q(db_, cache_,
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
    Statement q(db_, cache_,
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
    std::vector<std::string> unreferenced;
    absl::Status status = Atomically([&]() -> absl::Status {
      std::vector<std::string> doomed;
      {
        Statement q(db_, cache_,
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
      for (const std::string& sha256 : doomed) {
        Statement d(db_, cache_,
                    "DELETE FROM run_files WHERE run_id = ? AND sha256 = ?");
        if (absl::Status s = d.Bind({run_id, sha256}); !s.ok()) return s;
        if (absl::Status s = d.Run(); !s.ok()) return s;
        Statement q(db_, cache_,
                    "SELECT 1 FROM run_files WHERE sha256 = ? LIMIT 1");
        if (absl::Status s = q.Bind({sha256}); !s.ok()) return s;
        absl::StatusOr<bool> row = q.Step();
        if (!row.ok()) return row.status();
        if (!*row) unreferenced.push_back(sha256);
      }
      return absl::OkStatus();
    });
    if (!status.ok()) return status;
    return unreferenced;
  }

 private:
  absl::StatusOr<RunFileRecord> QueryFile(const char* sql,
                                          std::initializer_list<Value> args,
                                          const std::string& not_found) {
    Statement q(db_, cache_, sql);
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::NotFoundError(not_found);
    return RunFileRecord{q.Text(0), q.Int(1),  int32_t(q.Int(2)),
                         q.Int(3),  q.Text(4), q.Text(5)};
  }

  // `body`'s status, or INTERNAL for an exception it let through (after
  // which the caller rolls back as for any error).
  static absl::Status Guarded(const std::function<absl::Status()>& body) {
    return NoThrow("a database transaction", body);
  }

  // Runs `body` as one unit: a savepoint within a transaction (undone
  // alone when it fails), its own transaction outside one. Every write of
  // several statements goes through it or InTransaction, so none is ever
  // left half done.
  absl::Status Atomically(const std::function<absl::Status()>& body) {
    if (absl::Status s = Exec("SAVEPOINT atomically"); !s.ok()) return s;
    absl::Status result = Guarded(body);
    if (result.ok()) result = Exec("RELEASE atomically");
    if (!result.ok()) {
      Exec("ROLLBACK TO atomically").IgnoreError();
      Exec("RELEASE atomically").IgnoreError();
    }
    return result;
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
      "registered_ms, last_seen_ms, token_id, draining, stopped_ms, rowid, "
      "distill_version FROM workers";

  absl::StatusOr<std::vector<WorkerRecord>> QueryWorkers(
      const std::string& sql, std::initializer_list<Value> args) {
    Statement q(db_, cache_, sql.c_str());
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    std::vector<WorkerRecord> out;
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) break;
      out.push_back({q.Text(0), q.Text(1), q.Text(2), int32_t(q.Int(3)),
                     q.Text(4), q.Text(5), q.Int(6), q.Int(7), q.Int(8),
                     q.Int(9) != 0, q.Int(10), q.Int(11)});
      out.back().distill_version = q.Text(12);
    }
    return out;
  }

  absl::StatusOr<std::vector<v1::Run>> QueryRuns(
      const std::string& sql, std::initializer_list<Value> args) {
    return QueryRunsWith(sql, std::vector<Value>(args));
  }

  absl::StatusOr<std::vector<v1::Run>> QueryRunsWith(
      const std::string& sql, const std::vector<Value>& args) {
    Statement q(db_, cache_, sql.c_str());
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
      run.set_priority(int32_t(q.Int(15)));
      run.set_note(q.Text(16));
      runs.push_back(std::move(run));
    }
    for (v1::Run& run : runs) {
      Statement r(db_, cache_,
                  "SELECT key, value FROM run_results WHERE run_id = ?");
      if (absl::Status s = r.Bind({run.id()}); !s.ok()) return s;
      if (absl::Status s = r.EachRow(
              [&] { (*run.mutable_results())[r.Text(0)] = r.Double(1); });
          !s.ok()) {
        return s;
      }
      // The files of the run's latest attempt that uploaded any.
      Statement f(db_, cache_,
                  "SELECT name, sha256, size FROM run_files WHERE run_id = ? "
                  "AND attempt = "
                  "(SELECT MAX(attempt) FROM run_files WHERE run_id = ?) "
                  "ORDER BY name");
      if (absl::Status s = f.Bind({run.id(), run.id()}); !s.ok()) return s;
      if (absl::Status s = f.EachRow([&] {
            v1::RunFile* file = run.add_files();
            file->set_name(f.Text(0));
            file->set_sha256(f.Text(1));
            file->set_size(f.Int(2));
          });
          !s.ok()) {
        return s;
      }
    }
    for (v1::Run& run : runs) {
      absl::StatusOr<std::map<std::string, std::string>> tags =
          ReadTags(TagTarget::kRun, run.id());
      if (!tags.ok()) return tags.status();
      run.mutable_tags()->insert(tags->begin(), tags->end());
      absl::StatusOr<std::map<std::string, std::string>> provenance =
          ReadTextMap("SELECT key, value FROM run_provenance WHERE run_id = ?",
                      {run.id()});
      if (!provenance.ok()) return provenance.status();
      run.mutable_provenance()->insert(provenance->begin(), provenance->end());
    }

    return runs;
  }

  absl::StatusOr<std::map<std::string, std::string>> ReadTags(TagTarget target,
                                                              int64_t id) {
    return ReadTextMap(
        "SELECT key, value FROM tags WHERE kind = ? AND target_id = ?",
        {int64_t(target), id});
  }

  // The (key, value) rows `sql` selects, as a map.
  absl::StatusOr<std::map<std::string, std::string>> ReadTextMap(
      const char* sql, std::initializer_list<Value> args) {
    Statement q(db_, cache_, sql);
    if (absl::Status s = q.Bind(args); !s.ok()) return s;
    std::map<std::string, std::string> out;
    if (absl::Status s = q.EachRow([&] { out[q.Text(0)] = q.Text(1); });
        !s.ok()) {
      return s;
    }
    return out;
  }

  absl::StatusOr<v1::Sweep> QuerySweep(const char* sql,
                                       std::initializer_list<Value> args,
                                       const std::string& not_found) {
    Statement q(db_, cache_, sql);
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
    sweep.set_note(q.Text(5));
    absl::StatusOr<std::map<std::string, std::string>> tags =
        ReadTags(TagTarget::kSweep, sweep.id());
    if (!tags.ok()) return tags.status();
    sweep.mutable_tags()->insert(tags->begin(), tags->end());
    return sweep;
  }

  struct KeySummary {
    int64_t id = 0;
    std::string name;
    int64_t points = 0;
    int64_t first = 0;
    int64_t last = 0;
  };

  // The keys the run reported, with where their points are.
  absl::StatusOr<std::vector<KeySummary>> RunKeys(int64_t run_id) {
    std::vector<KeySummary> keys;
    {
      Statement q(db_, cache_,
                  "SELECT key_id, points, first_sequence, last_sequence "
                  "FROM run_metric_keys WHERE run_id = ? ORDER BY key_id");
      if (absl::Status s = q.Bind({run_id}); !s.ok()) return s;
      while (true) {
        absl::StatusOr<bool> row = q.Step();
        if (!row.ok()) return row.status();
        if (!*row) break;
        keys.push_back({q.Int(0), "", q.Int(1), q.Int(2), q.Int(3)});
      }
    }
    for (KeySummary& key : keys) {
      absl::StatusOr<std::string> name = KeyName(key.id);
      if (!name.ok()) return name.status();
      key.name = *std::move(name);
    }
    return keys;
  }

  absl::StatusOr<std::string> KeyName(int64_t id) {
    if (auto it = key_names_.find(id); it != key_names_.end())
      return it->second;
    Statement q(db_, cache_, "SELECT key FROM metric_keys WHERE id = ?");
    if (absl::Status s = q.Bind({id}); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row)
      return absl::DataLossError(absl::StrCat("metric key ", id, " is gone"));
    return key_names_[id] = q.Text(0);
  }

  // The key's id, interned on first use.
  absl::StatusOr<int64_t> KeyId(const std::string& key) {
    if (auto it = key_ids_.find(key); it != key_ids_.end()) return it->second;
    {
      Statement insert(db_, cache_,
                       "INSERT OR IGNORE INTO metric_keys(key) VALUES(?)");
      if (absl::Status s = insert.Bind({key}); !s.ok()) return s;
      if (absl::Status s = insert.Run(); !s.ok()) return s;
    }
    Statement q(db_, cache_, "SELECT id FROM metric_keys WHERE key = ?");
    if (absl::Status s = q.Bind({key}); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    if (!*row) return absl::InternalError("metric key not interned");
    return key_ids_[key] = q.Int(0);
  }

  // The sequence the run's next point gets.
  absl::StatusOr<int64_t> NextSequence(int64_t run_id) {
    if (auto it = next_sequence_.find(run_id); it != next_sequence_.end())
      return it->second;
    Statement q(db_, cache_,
                "SELECT COALESCE(MAX(last_sequence), 0) FROM run_metric_keys "
                "WHERE run_id = ?");
    if (absl::Status s = q.Bind({run_id}); !s.ok()) return s;
    absl::StatusOr<bool> row = q.Step();
    if (!row.ok()) return row.status();
    return next_sequence_[run_id] = q.Int(0) + 1;
  }

  // Appends the rows of `q` (sequence, attempt, step, epoch, value,
  // time_ms) as points of `key`.
  static absl::Status ReadPoints(Statement& q, const std::string& key,
                                 std::vector<StoredMetric>* out) {
    while (true) {
      absl::StatusOr<bool> row = q.Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      StoredMetric m;
      m.sequence = q.Int(0);
      m.attempt = int32_t(q.Int(1));
      m.point.set_step(q.Int(2));
      m.point.set_epoch(int32_t(q.Int(3)));
      m.point.set_key(key);
      m.point.set_value(q.Double(4));
      m.point.set_time_ms(q.Int(5));
      m.point.set_attempt(m.attempt);
      out->push_back(std::move(m));
    }
  }

  static void SortBySequence(std::vector<StoredMetric>* points) {
    std::sort(points->begin(), points->end(),
              [](const StoredMetric& a, const StoredMetric& b) {
                return a.sequence < b.sequence;
              });
  }

  sqlite3* db_;
  const std::string path_;
  const bool reader_;
  StatementCache cache_;
  int version_ = 0;
  absl::flat_hash_map<std::string, int64_t> key_ids_;
  absl::flat_hash_map<int64_t, std::string> key_names_;
  absl::flat_hash_map<int64_t, int64_t> next_sequence_;
  std::atomic<int64_t> commits_{0};
  std::atomic<int64_t> synced_{0};
  absl::Mutex sync_mu_;
  int wal_fd_ ABSL_GUARDED_BY(sync_mu_) = -1;
  absl::Mutex checkpoint_mu_;
  std::unique_ptr<SqliteStore> checkpointer_ ABSL_GUARDED_BY(checkpoint_mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::OpenSqlite(
    const std::string& path, const std::vector<Migration>& migrations) {
  absl::StatusOr<std::unique_ptr<SqliteStore>> store =
      SqliteStore::Open(path, /*reader=*/false);
  if (!store.ok()) return store.status();
  if (absl::Status s = (*store)->Migrate(migrations); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(path, ": ", s.message()));
  }
  return std::unique_ptr<Store>(*std::move(store));
}

}  // namespace distill
