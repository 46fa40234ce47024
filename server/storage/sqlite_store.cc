// SqliteStore: opening (a writer, readers), migrations, transactions and
// savepoints, the WAL's checkpoints and fsync.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "common/spec_fields.h"
#include "common/spec_resolution.h"
#include "server/base/durable.h"
#include "server/base/no_throw.h"
#include "server/storage/heap_shm_vfs.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {

SqliteStore::~SqliteStore() {
  {
    absl::MutexLock lock(&sync_mu_);
    if (wal_fd_ >= 0) ::close(wal_fd_);
  }
  cache_.Clear();
  sqlite3_close(db_);
}

absl::StatusOr<std::unique_ptr<Store>> SqliteStore::OpenReader() {
  if (path_ == ":memory:" || path_.empty()) {
    return absl::FailedPreconditionError(
        "an in-memory database has no second connection");
  }
  return Open(path_, /*reader=*/true);
}

absl::Status SqliteStore::Checkpoint() {
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

absl::Status SqliteStore::SyncWal(int64_t commits) {
  if (synced_ >= commits || path_ == ":memory:") return absl::OkStatus();
  absl::MutexLock lock(&sync_mu_);
  if (synced_ >= commits) return absl::OkStatus();  // Another fsync did.
  const int64_t upto = commits_;  // Every frame of these is written.
  if (wal_fd_ < 0) {
    wal_fd_ = ::open((path_ + "-wal").c_str(), O_RDONLY | O_CLOEXEC);
    if (wal_fd_ < 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot open ", path_, "-wal: ", std::strerror(errno)));
    }
  }
  CheckSyncAllowed("the WAL");
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

absl::StatusOr<std::unique_ptr<SqliteStore>> SqliteStore::Open(
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
            : absl::UnavailableError(absl::StrCat("cannot open database ", path,
                                                  ": ", sqlite3_errmsg(db)));
    sqlite3_close(db);
    return s;
  }
  sqlite3_busy_timeout(db, 5000);
  return std::make_unique<SqliteStore>(db, path, reader);
}

absl::Status SqliteStore::Migrate(const std::vector<Migration>& migrations) {
  // WAL: readers on their own connections never wait for the writer.
  // The WAL index lives in the heap (heap_shm_vfs.h), not in a mapped
  // -shm file whose pages fault with SIGBUS when the disk fills up or
  // turns read-only.
  if (absl::Status s = Exec("PRAGMA journal_mode=WAL; "
                            "PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL; "
                            // The coordinator checkpoints on its own connection
                            // (Checkpoint); this is the bound should it not.
                            "PRAGMA wal_autocheckpoint=10000;");
      !s.ok()) {
    return s;
  }
  return InTransaction(
      [&]() -> absl::Status {
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
        if (current > 0 && current < newest) {
          DISTILL_LOG(INFO)
              << "database schema migrated from version " << current << " to "
              << newest << " (" << migrations[current].name << " to "
              << migrations[newest - 1].name << ")";
        }
        version_ = int(newest);
        // Columns the migrations may have added: asked again.
        owners_.reset();
        placement_.reset();
        run_columns_.clear();
        return absl::OkStatus();
      },
      Durability::kOnDisk);
}

// run_fields for every run stored.
absl::Status SqliteStore::FillRunFields() {
  std::vector<std::pair<int64_t, v1::ExperimentSpec>> specs;
  {
    Statement q(db_, "SELECT id, spec FROM runs");
    if (absl::Status s = q.EachRow([&]() -> absl::Status {
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
          return absl::OkStatus();
        });
        !s.ok()) {
      return s;
    }
  }
  for (const auto& [id, spec] : specs) {
    if (absl::Status s = InsertRunFields(id, spec); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status SqliteStore::InTransaction(
    const std::function<absl::Status()>& body, Durability durability) {
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

// `body`'s status, or INTERNAL for an exception it let through (after
// which the caller rolls back as for any error).
absl::Status SqliteStore::Guarded(const std::function<absl::Status()>& body) {
  return NoThrow("a database transaction", body);
}

// Runs `body` as one unit: a savepoint within a transaction (undone
// alone when it fails), its own transaction outside one. Every write of
// several statements goes through it or InTransaction, so none is ever
// left half done.
absl::Status SqliteStore::Atomically(
    const std::function<absl::Status()>& body) {
  if (absl::Status s = Exec("SAVEPOINT atomically"); !s.ok()) return s;
  absl::Status result = Guarded(body);
  if (result.ok()) result = Exec("RELEASE atomically");
  if (!result.ok()) {
    Exec("ROLLBACK TO atomically").IgnoreError();
    Exec("RELEASE atomically").IgnoreError();
  }
  return result;
}

absl::Status SqliteStore::Exec(const std::string& sql) {
  char* error = nullptr;
  if (const int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error);
      rc != SQLITE_OK) {
    absl::Status s = SqliteError(rc, "exec failed", error ? error : "?");
    sqlite3_free(error);
    return s;
  }
  return absl::OkStatus();
}

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
