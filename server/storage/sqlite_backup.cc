// SqliteStore: the whole database at once — snapshots, the run file
// records a backup names, the integrity check a restore runs.
#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "server/storage/backup_pace.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {
namespace {

constexpr char kRunFilesSql[] =
    "SELECT sha256, run_id, attempt, size, path, name FROM run_files "
    "ORDER BY sha256, run_id, name";

absl::StatusOr<std::vector<RunFileRecord>> RunFileRows(Statement& q) {
  std::vector<RunFileRecord> records;
  absl::Status status = q.EachRow([&] {
    records.push_back(RunFileRecord{q.Text(0), q.Int(1), int32_t(q.Int(2)),
                                    q.Int(3), q.Text(4), q.Text(5)});
  });
  if (!status.ok()) return status;
  return records;
}

// Pages a snapshot copies at a time (4 MiB of 4 KiB pages).
constexpr int kPagesPerStep = 1024;

// Steps `backup` to its end, kPagesPerStep at a time, each step's pages
// written out to `path` (sync_file_range: data only, no journal commit)
// and paced by PaceBackupWrites before the next.
int StepAll(sqlite3* from, sqlite3_backup* backup, const std::string& path) {
  int64_t page_size = 4096;
  {
    Statement q(from, "PRAGMA page_size");
    if (absl::StatusOr<bool> row = q.Step(); row.ok() && *row)
      page_size = q.Int(0);
  }
  int fd = -1;
  int rc = SQLITE_OK;
  const absl::Time start = absl::Now();
  int64_t written = 0;
  while (rc == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
    rc = sqlite3_backup_step(backup, kPagesPerStep);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED) break;
    if (fd < 0) fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    written = int64_t{sqlite3_backup_pagecount(backup) -
                      sqlite3_backup_remaining(backup)} *
              page_size;
    PaceBackupWrites(fd, start, written);
  }
  if (fd >= 0) ::close(fd);
  return rc;
}

// Copies every page of `from` into the new database `path`, a few pages at
// a time within one read transaction on `from` (the snapshot is of one
// moment; the writer commits on meanwhile), and reads the run files the
// copy names from the copy itself. The copy is synced as SQLite commits it
// (synchronous=FULL).
absl::StatusOr<std::vector<RunFileRecord>> CopyPages(sqlite3* from,
                                                     const std::string& path) {
  sqlite3* to = nullptr;
  int rc = sqlite3_open_v2(
      path.c_str(), &to,
      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
      nullptr);
  absl::Status status;
  if (rc != SQLITE_OK) {
    status = SqliteError(rc, absl::StrCat("cannot create ", path),
                         sqlite3_errmsg(to));
  } else if (sqlite3_exec(to, "PRAGMA synchronous=FULL", nullptr, nullptr,
                          nullptr) != SQLITE_OK) {
    status =
        SqliteError(sqlite3_errcode(to), "snapshot failed", sqlite3_errmsg(to));
  } else if (sqlite3_backup* backup =
                 sqlite3_backup_init(to, "main", from, "main");
             backup == nullptr) {
    status = SqliteError(sqlite3_errcode(to), "cannot start the snapshot",
                         sqlite3_errmsg(to));
  } else {
    // One read transaction over every step: each reads the same moment.
    const bool read_open =
        sqlite3_exec(from, "BEGIN; SELECT count(*) FROM sqlite_master;",
                     nullptr, nullptr, nullptr) == SQLITE_OK;
    rc = read_open ? StepAll(from, backup, path) : sqlite3_errcode(from);
    sqlite3_backup_finish(backup);
    if (read_open) sqlite3_exec(from, "COMMIT", nullptr, nullptr, nullptr);
    if (rc != SQLITE_DONE) {
      status = SqliteError(rc, "snapshot failed", sqlite3_errstr(rc));
    }
  }
  // The copy is a database of its own: no WAL, nothing beside it.
  if (status.ok() && sqlite3_exec(to, "PRAGMA journal_mode=DELETE", nullptr,
                                  nullptr, nullptr) != SQLITE_OK) {
    status =
        SqliteError(sqlite3_errcode(to), "snapshot failed", sqlite3_errmsg(to));
  }
  absl::StatusOr<std::vector<RunFileRecord>> records;
  if (status.ok()) {
    Statement q(to, kRunFilesSql);
    records = RunFileRows(q);
  } else {
    records = status;
  }
  sqlite3_close(to);
  return records;
}

}  // namespace

absl::StatusOr<std::vector<RunFileRecord>> SqliteStore::ListRunFiles() {
  Statement q(db_, cache_, kRunFilesSql);
  return RunFileRows(q);
}

absl::StatusOr<std::vector<RunFileRecord>> SqliteStore::SnapshotTo(
    const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(path, " exists"));
  }
  absl::StatusOr<std::vector<RunFileRecord>> records = CopyPages(db_, path);
  if (!records.ok()) std::filesystem::remove(path, ec);
  return records;
}

absl::Status SqliteStore::CheckIntegrity() {
  std::vector<std::string> problems;
  Statement q(db_, "PRAGMA integrity_check");
  absl::Status status = q.EachRow([&] {
    if (q.Text(0) != "ok") problems.push_back(q.Text(0));
  });
  if (!status.ok()) return status;
  if (!problems.empty()) {
    return absl::DataLossError(absl::StrCat(
        "database ", path_,
        " fails its integrity check: ", absl::StrJoin(problems, "; ")));
  }
  return absl::OkStatus();
}

}  // namespace distill
