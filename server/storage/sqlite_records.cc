// SqliteStore: workers, tokens, the records of run files, and which sweep
// of a name has not ended.
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
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/log.h"
#include "common/spec_fields.h"
#include "common/spec_resolution.h"
#include "server/base/no_throw.h"
#include "server/storage/heap_shm_vfs.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {

absl::Status SqliteStore::UpsertWorker(const WorkerRecord& w) {
  const bool placement = HasPlacement();
  Statement q(
      db_, cache_,
      absl::StrCat(
          "INSERT INTO workers(id, hostname, device, threads, "
          "libtorch_version, blas, registered_ms, last_seen_ms, token_id, "
          "draining, stopped_ms, distill_version",
          placement ? ", labels, device_memory_bytes, accelerator, cpu_cores) "
                      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                    : ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ",
          "ON CONFLICT(id) DO UPDATE SET last_seen_ms = "
          "excluded.last_seen_ms, draining = excluded.draining, stopped_ms = "
          "excluded.stopped_ms"));
  std::vector<Value> values = {w.id,
                               w.hostname,
                               w.device,
                               int64_t{w.threads},
                               w.libtorch_version,
                               w.blas,
                               w.registered_ms,
                               w.last_seen_ms,
                               w.token_id,
                               int64_t{w.draining},
                               w.stopped_ms,
                               w.distill_version};
  if (placement) {
    values.push_back(absl::StrJoin(w.labels, "\n"));
    values.push_back(w.device_memory_bytes);
    values.push_back(w.accelerator);
    values.push_back(int64_t{w.cpu_cores});
  }
  if (absl::Status s = q.Bind(values); !s.ok()) return s;
  return q.Run();
}

std::string SqliteStore::WorkerQuery() {
  return absl::StrCat(kWorkerQuery,
                      HasPlacement()
                          ? ", labels, device_memory_bytes, accelerator, "
                            "cpu_cores"
                          : ", '', 0, '', 0",
                      " FROM workers");
}

absl::StatusOr<WorkerRecord> SqliteStore::GetWorker(const std::string& id) {
  absl::StatusOr<std::vector<WorkerRecord>> found =
      QueryWorkers(absl::StrCat(WorkerQuery(), " WHERE id = ?"), {id});
  if (!found.ok()) return found.status();
  if (found->empty()) {
    return absl::NotFoundError(
        absl::StrCat("worker ", id, " is not registered"));
  }
  return found->front();
}

absl::StatusOr<std::vector<WorkerRecord>> SqliteStore::ListWorkers() {
  return QueryWorkers(absl::StrCat(WorkerQuery(), " ORDER BY rowid DESC"), {});
}

absl::StatusOr<std::vector<WorkerRecord>> SqliteStore::ListWorkersPage(
    int64_t before_row, int64_t limit) {
  if (before_row == 0) {
    return QueryWorkers(
        absl::StrCat(WorkerQuery(), " ORDER BY rowid DESC LIMIT ?"), {limit});
  }
  return QueryWorkers(absl::StrCat(WorkerQuery(),
                                   " WHERE rowid < ? ORDER BY rowid DESC "
                                   "LIMIT ?"),
                      {before_row, limit});
}

absl::StatusOr<std::pair<int64_t, int64_t>> SqliteStore::UnendedSweepNamed(
    const std::string& name) {
  Statement q(db_, cache_,
              "SELECT s.id, (SELECT count(*) FROM runs r WHERE r.sweep_id = "
              "s.id AND r.status IN (?, ?, ?)) AS unended FROM sweeps s "
              "WHERE s.name = ? AND unended > 0 ORDER BY s.id DESC LIMIT 1");
  if (absl::Status s = q.Bind({int64_t{v1::WAITING}, int64_t{v1::QUEUED},
                               int64_t{v1::RUNNING}, name});
      !s.ok()) {
    return s;
  }
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return std::pair<int64_t, int64_t>{0, 0};
  return std::pair<int64_t, int64_t>{q.Int(0), q.Int(1)};
}

absl::StatusOr<int64_t> SqliteStore::InsertToken(const TokenRecord& t) {
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

absl::StatusOr<std::vector<TokenRecord>> SqliteStore::ListTokens() {
  Statement q(db_, cache_,
              "SELECT id, name, role, sha256, created_ms, revoked_ms "
              "FROM tokens ORDER BY id");
  if (absl::Status s = q.Bind({}); !s.ok()) return s;
  std::vector<TokenRecord> out;
  if (absl::Status s = q.EachRow([&] {
        out.push_back({q.Int(0), q.Text(1), int32_t(q.Int(2)), q.Text(3),
                       q.Int(4), q.Int(5)});
      });
      !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<TokenRecord> SqliteStore::RevokeToken(int64_t id,
                                                     int64_t now_ms) {
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

absl::StatusOr<int64_t> SqliteStore::DeleteStoppedWorkers(int64_t before_ms) {
  Statement q(db_, cache_,
              "DELETE FROM workers WHERE stopped_ms > 0 AND stopped_ms < ?");
  if (absl::Status s = q.Bind({before_ms}); !s.ok()) return s;
  if (absl::Status s = q.Run(); !s.ok()) return s;
  return int64_t{sqlite3_changes(db_)};
}

absl::Status SqliteStore::InsertRunFile(const RunFileRecord& c) {
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

absl::StatusOr<RunFileRecord> SqliteStore::FindRunFileByDigest(
    const std::string& sha256) {
  return QueryFile(
      "SELECT sha256, run_id, attempt, size, path, name FROM run_files "
      "WHERE sha256 = ? LIMIT 1",
      {sha256}, absl::StrCat("no checkpoint has sha256 ", sha256));
}

absl::StatusOr<RunFileRecord> SqliteStore::FindRunFile(
    int64_t run_id, const std::string& name) {
  return QueryFile(
      "SELECT sha256, run_id, attempt, size, path, name FROM run_files "
      "WHERE run_id = ? AND name = ? ORDER BY attempt DESC, created_ms DESC "
      "LIMIT 1",
      {run_id, name},
      absl::StrCat("run ", run_id, " has no file \"", name, "\""));
}

absl::StatusOr<std::vector<std::string>> SqliteStore::DeleteRunFiles(
    int64_t run_id, const std::string& name, const std::string& keep) {
  std::vector<std::string> unreferenced;
  absl::Status status = Atomically([&]() -> absl::Status {
    std::vector<std::string> doomed;
    {
      Statement q(db_, cache_,
                  "SELECT sha256 FROM run_files WHERE run_id = ? AND "
                  "(? = '' OR name = ?) AND sha256 != ?");
      if (absl::Status s = q.Bind({run_id, name, name, keep}); !s.ok())
        return s;
      if (absl::Status s = q.EachRow([&] { doomed.push_back(q.Text(0)); });
          !s.ok()) {
        return s;
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

absl::StatusOr<RunFileRecord> SqliteStore::QueryFile(
    const char* sql, std::initializer_list<Value> args,
    const std::string& not_found) {
  Statement q(db_, cache_, sql);
  if (absl::Status s = q.Bind(args); !s.ok()) return s;
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row) return absl::NotFoundError(not_found);
  return RunFileRecord{q.Text(0), q.Int(1),  int32_t(q.Int(2)),
                       q.Int(3),  q.Text(4), q.Text(5)};
}

absl::StatusOr<std::vector<WorkerRecord>> SqliteStore::QueryWorkers(
    const std::string& sql, std::initializer_list<Value> args) {
  Statement q(db_, cache_, sql.c_str());
  if (absl::Status s = q.Bind(args); !s.ok()) return s;
  std::vector<WorkerRecord> out;
  if (absl::Status s = q.EachRow([&] {
        out.push_back({q.Text(0), q.Text(1), q.Text(2), int32_t(q.Int(3)),
                       q.Text(4), q.Text(5), q.Int(6), q.Int(7), q.Int(8),
                       q.Int(9) != 0, q.Int(10), q.Int(11)});
        out.back().distill_version = q.Text(12);
        out.back().labels = absl::StrSplit(q.Text(13), '\n', absl::SkipEmpty());
        out.back().device_memory_bytes = q.Int(14);
        out.back().accelerator = q.Text(15);
        out.back().cpu_cores = int32_t(q.Int(16));
      });
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace distill
