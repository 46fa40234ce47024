// The SQLite plumbing of the store: values that bind, errors mapped to
// status codes, prepared statements (cached per connection) that step
// through rows. Every statement binds its values with `?`; no SQL is built
// from data.
#ifndef DISTILL_SERVER_STORAGE_SQLITE_STATEMENT_H_
#define DISTILL_SERVER_STORAGE_SQLITE_STATEMENT_H_

#include <sqlite3.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/log.h"

namespace distill {

// Strings bind as TEXT; serialised protos as BLOB.
struct Blob {
  std::string bytes;
};
using Value = std::variant<int64_t, double, std::string, Blob>;

// The status for SQLite result `rc`: a full disk is RESOURCE_EXHAUSTED, a
// disk that cannot be written or read now (read-only, I/O error, busy) is
// UNAVAILABLE (the coordinator recovers when the disk does), a damaged
// file DATA_LOSS; the rest INTERNAL.
inline absl::Status SqliteError(int rc, absl::string_view what,
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

  // Steps through every row, calling `on_row` at each; one that returns
  // an absl::Status stops the rows at its first error, and that is the
  // answer.
  template <typename OnRow>
  absl::Status EachRow(OnRow on_row) {
    while (true) {
      absl::StatusOr<bool> row = Step();
      if (!row.ok()) return row.status();
      if (!*row) return absl::OkStatus();
      if constexpr (std::is_same_v<decltype(on_row()), absl::Status>) {
        if (absl::Status s = on_row(); !s.ok()) return s;
      } else {
        on_row();
      }
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

inline Statement::Statement(sqlite3* db, StatementCache& cache,
                            const std::string& sql)
    : db_(db), cached_(cache.Get(sql)) {
  if (cached_ != nullptr) {
    stmt_ = cached_->stmt;
    status_ = SQLITE_OK;
  } else {
    status_ = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr);
  }
}

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_SQLITE_STATEMENT_H_
