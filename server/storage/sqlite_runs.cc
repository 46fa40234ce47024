// SqliteStore: runs and sweeps, the spec fields they are found by, their
// tags, notes and provenance.
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
#include "common/placement.h"
#include "common/spec_fields.h"
#include "common/spec_resolution.h"
#include "server/base/no_throw.h"
#include "server/storage/heap_shm_vfs.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {

absl::Status SqliteStore::InsertRunFields(int64_t run_id,
                                          const v1::ExperimentSpec& spec) {
  return InsertFieldRows(run_id, SearchableFields(spec));
}

absl::Status SqliteStore::InsertFieldRows(
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

absl::StatusOr<int64_t> SqliteStore::InsertRun(const v1::Run& run) {
  // The fields first: nothing is written unless all of it can be.
  const std::vector<std::pair<std::string, std::string>> fields =
      SearchableFields(run.spec());
  int64_t id = 0;
  absl::Status s = Atomically([&]() -> absl::Status {
    // The previous release's schema has no owner column (its runs read
    // "unknown").
    const bool owners = std::string(OwnerColumn()) == "owner";
    Statement q(
        db_, cache_,
        absl::StrCat("INSERT INTO runs(sweep_id, member, kind, spec, "
                     "status, attempt, teacher_run_id, message, "
                     "created_ms, priority",
                     owners ? ", owner) VALUES(?, ?, ?, ?, ?, ?, ?, ?, "
                              "?, ?, ?)"
                            : ") VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"));
    std::vector<Value> values = {run.sweep_id(),
                                 run.member(),
                                 int64_t{run.spec().kind()},
                                 Blob{run.spec().SerializeAsString()},
                                 int64_t{run.status()},
                                 int64_t{run.attempt()},
                                 run.teacher_run_id(),
                                 run.message(),
                                 run.created_ms(),
                                 int64_t{run.priority()}};
    if (owners) values.push_back(run.owner());
    if (absl::Status s = q.Bind(values); !s.ok()) return s;
    if (absl::Status s = q.Run(); !s.ok()) return s;
    id = sqlite3_last_insert_rowid(db_);
    // Its requirements' key, and the key among those the queue is read by.
    if (const std::string key = RequirementsKey(run.spec().requirements());
        HasPlacement() && !key.empty()) {
      Statement k(db_, cache_,
                  "INSERT OR IGNORE INTO requirement_keys(key) VALUES(?)");
      if (absl::Status s = k.Bind({key}); !s.ok()) return s;
      if (absl::Status s = k.Run(); !s.ok()) return s;
      Statement r(db_, cache_, "UPDATE runs SET requires_key = ? WHERE id = ?");
      if (absl::Status s = r.Bind({key, id}); !s.ok()) return s;
      if (absl::Status s = r.Run(); !s.ok()) return s;
    }
    return InsertFieldRows(id, fields);
  });
  if (!s.ok()) return s;
  return id;
}

absl::Status SqliteStore::UpdateRun(const v1::Run& run) {
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

absl::StatusOr<v1::Run> SqliteStore::GetRun(int64_t id) {
  absl::StatusOr<std::vector<v1::Run>> runs = QueryRuns(
      absl::StrCat("SELECT ", RunColumns(), " FROM runs WHERE id = ?"), {id});
  if (!runs.ok()) return runs.status();
  if (runs->empty())
    return absl::NotFoundError(absl::StrCat("run ", id, " does not exist"));
  return std::move(runs->front());
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::ListRuns(
    int64_t sweep_id, v1::RunStatus status) {
  RunQuery query;
  query.sweep_id = sweep_id;
  query.status = status;
  return FindRuns(query);
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::FindRuns(
    const RunQuery& query) {
  std::string sql = absl::StrCat("SELECT ", RunColumns(), " FROM runs");
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
    absl::StrAppend(
        &sql, " AND id IN (SELECT target_id FROM tags WHERE kind = ",
        Sql(TagTarget::kRun), " AND key = ?", value ? " AND value = ?)" : ")");
    args.push_back(key);
    if (value) args.push_back(*value);
  }
  if (!query.note_contains.empty()) {
    where(
        "(instr(lower(note), lower(?)) > 0 OR sweep_id IN (SELECT id "
        "FROM sweeps WHERE instr(lower(sweeps.note), lower(?)) > 0))",
        query.note_contains);
    args.push_back(query.note_contains);
  }
  if (!query.owner.empty())
    where(absl::StrCat(OwnerColumn(), " = ?").c_str(), query.owner);
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

absl::Status SqliteStore::SetProvenance(
    int64_t id, const std::map<std::string, std::string>& entries) {
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

absl::Status SqliteStore::Annotate(
    TagTarget target, int64_t id, const std::map<std::string, std::string>& set,
    const std::vector<std::string>& remove,
    const std::optional<std::string>& note) {
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

absl::StatusOr<std::optional<v1::Run>> SqliteStore::RunHeldBy(
    const std::string& worker_id) {
  absl::StatusOr<std::vector<v1::Run>> runs =
      QueryRuns(absl::StrCat("SELECT ", RunColumns(),
                             " FROM runs WHERE worker_id = ? AND status = ",
                             Sql(v1::RUNNING), " ORDER BY id DESC LIMIT 1"),
                {worker_id});
  if (!runs.ok()) return runs.status();
  if (runs->empty()) return std::nullopt;
  return std::move(runs->front());
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::RunsWithTeacher(
    int64_t teacher_run_id) {
  return QueryRuns(
      absl::StrCat("SELECT ", RunColumns(),
                   " FROM runs WHERE teacher_run_id = ? ORDER BY id"),
      {teacher_run_id});
}

absl::StatusOr<std::optional<v1::Run>> SqliteStore::NextQueuedRun(
    const std::function<bool(const std::string&)>& may_take) {
  // The sweeps at their max_concurrent, from the few RUNNING runs; each
  // key's queue read from its partial index, which stops at the first run
  // it may lease (left to itself SQLite sorts every queued run: 2.5 ms
  // against 6 us with 10,000 queued).
  const std::string capped =
      absl::StrCat(NotOfACappedSweep(), " ORDER BY priority DESC, id LIMIT 1");
  if (!HasPlacement()) {  // The previous schema: one queue.
    if (!may_take("")) return std::nullopt;
    absl::StatusOr<std::vector<v1::Run>> runs = QueryRuns(
        absl::StrCat("SELECT ", RunColumns(),
                     " FROM runs INDEXED BY runs_queue WHERE status = ",
                     Sql(v1::QUEUED), capped),
        {});
    if (!runs.ok()) return runs.status();
    if (runs->empty()) return std::nullopt;
    return std::move(runs->front());
  }
  absl::StatusOr<std::vector<std::string>> keys = RequirementKeys();
  if (!keys.ok()) return keys.status();
  keys->push_back("");
  std::optional<v1::Run> best;
  for (const std::string& key : *keys) {
    if (!may_take(key)) continue;
    absl::StatusOr<std::vector<v1::Run>> head = QueryRuns(
        absl::StrCat("SELECT ", RunColumns(),
                     " FROM runs INDEXED BY runs_queue_by_requirement WHERE "
                     "requires_key = ? AND status = ",
                     Sql(v1::QUEUED), capped),
        {key});
    if (!head.ok()) return head.status();
    if (head->empty()) continue;
    v1::Run& run = head->front();
    if (!best || run.priority() > best->priority() ||
        (run.priority() == best->priority() && run.id() < best->id())) {
      best = std::move(run);
    }
  }
  return best;
}

absl::StatusOr<std::vector<std::string>> SqliteStore::RequirementKeys() {
  std::vector<std::string> keys;
  if (!HasPlacement()) return keys;
  Statement q(db_, cache_, "SELECT key FROM requirement_keys ORDER BY key");
  if (absl::Status s = q.Bind({}); !s.ok()) return s;
  if (absl::Status s = q.EachRow([&] { keys.push_back(q.Text(0)); }); !s.ok())
    return s;
  return keys;
}

bool SqliteStore::HasPlacement() {
  if (!placement_.has_value()) {
    Statement q(db_, cache_,
                "SELECT 1 FROM pragma_table_info('runs') WHERE name = "
                "'requires_key'");
    absl::StatusOr<bool> row = q.Step();
    placement_ = row.ok() && *row;
  }
  return *placement_;
}

absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>>
SqliteStore::QueueOrder(int64_t limit) {
  // From the partial index alone: ids and priorities, no row read.
  Statement q(
      db_, cache_,
      absl::StrCat("SELECT id, priority FROM runs INDEXED BY "
                   "runs_queue WHERE status = ",
                   Sql(v1::QUEUED), " ORDER BY priority DESC, id LIMIT ?"));
  if (absl::Status s = q.Bind({limit}); !s.ok()) return s;
  std::vector<std::pair<int64_t, int32_t>> order;
  if (absl::Status s =
          q.EachRow([&] { order.emplace_back(q.Int(0), int32_t(q.Int(1))); });
      !s.ok()) {
    return s;
  }
  return order;
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::ExpiredLeases(
    int64_t now_ms) {
  return QueryRuns(
      absl::StrCat("SELECT ", RunColumns(),
                   " FROM runs WHERE status = ? AND lease_expires_ms < ? "
                   "ORDER BY id"),
      {int64_t{v1::RUNNING}, now_ms});
}

absl::StatusOr<int64_t> SqliteStore::InsertSweep(const v1::Sweep& sweep) {
  const bool owners = std::string(OwnerColumn()) == "owner";
  Statement q(db_, cache_,
              absl::StrCat("INSERT INTO sweeps(name, spec, teacher_run_id, "
                           "created_ms, max_concurrent",
                           owners ? ", owner) VALUES(?, ?, ?, ?, ?, ?)"
                                  : ") VALUES(?, ?, ?, ?, ?)"));
  std::vector<Value> values = {sweep.name(),
                               Blob{sweep.spec().SerializeAsString()},
                               sweep.teacher_run_id(), sweep.created_ms(),
                               int64_t{sweep.spec().max_concurrent()}};
  if (owners) values.push_back(sweep.owner());
  if (absl::Status s = q.Bind(values); !s.ok()) return s;
  if (absl::Status s = q.Run(); !s.ok()) return s;
  return sqlite3_last_insert_rowid(db_);
}

absl::Status SqliteStore::SetSweepTeacher(int64_t sweep_id,
                                          int64_t teacher_run_id) {
  Statement q(db_, cache_, "UPDATE sweeps SET teacher_run_id = ? WHERE id = ?");
  if (absl::Status s = q.Bind({teacher_run_id, sweep_id}); !s.ok()) return s;
  return q.Run();
}

absl::StatusOr<v1::Sweep> SqliteStore::GetSweep(int64_t id) {
  return QuerySweep(
      absl::StrCat("SELECT id, name, spec, teacher_run_id, created_ms, note, ",
                   OwnerColumn(), " FROM sweeps WHERE id = ?"),
      {id}, absl::StrCat("sweep ", id, " does not exist"));
}

absl::StatusOr<v1::Sweep> SqliteStore::FindSweep(const std::string& name) {
  return QuerySweep(
      absl::StrCat("SELECT id, name, spec, teacher_run_id, created_ms, note, ",
                   OwnerColumn(),
                   " FROM sweeps WHERE name = ? ORDER BY id DESC LIMIT 1"),
      {name}, absl::StrCat("no sweep is named \"", name, "\""));
}

absl::StatusOr<std::vector<v1::Sweep>> SqliteStore::ListSweeps(int64_t limit) {
  std::vector<int64_t> ids;
  {
    Statement q(db_, cache_, "SELECT id FROM sweeps ORDER BY id DESC LIMIT ?");
    if (absl::Status s = q.Bind({limit}); !s.ok()) return s;
    if (absl::Status s = q.EachRow([&] { ids.push_back(q.Int(0)); }); !s.ok()) {
      return s;
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

absl::StatusOr<std::map<v1::RunStatus, int64_t>>
SqliteStore::CountRunsByStatus() {
  Statement q(db_, cache_, "SELECT status, COUNT(*) FROM runs GROUP BY status");
  if (absl::Status s = q.Bind({}); !s.ok()) return s;
  std::map<v1::RunStatus, int64_t> out;
  if (absl::Status s = q.EachRow(
          [&] { out[static_cast<v1::RunStatus>(q.Int(0))] = q.Int(1); });
      !s.ok()) {
    return s;
  }
  return out;
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::QueryRuns(
    const std::string& sql, std::initializer_list<Value> args) {
  return QueryRunsWith(sql, std::vector<Value>(args));
}

absl::StatusOr<std::vector<v1::Run>> SqliteStore::QueryRunsWith(
    const std::string& sql, const std::vector<Value>& args) {
  Statement q(db_, cache_, sql.c_str());
  if (absl::Status s = q.Bind(args); !s.ok()) return s;
  std::vector<v1::Run> runs;
  if (absl::Status s = q.EachRow([&]() -> absl::Status {
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
        if (absl::StatusOr<v1::ExperimentSpec> resolved =
                ResolveSpec(run.spec());
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
        run.set_owner(q.Text(17));
        runs.push_back(std::move(run));
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
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
    absl::StatusOr<std::map<std::string, std::string>> provenance = ReadTextMap(
        "SELECT key, value FROM run_provenance WHERE run_id = ?", {run.id()});
    if (!provenance.ok()) return provenance.status();
    run.mutable_provenance()->insert(provenance->begin(), provenance->end());
  }

  return runs;
}

absl::StatusOr<std::map<std::string, std::string>> SqliteStore::ReadTags(
    TagTarget target, int64_t id) {
  return ReadTextMap(
      "SELECT key, value FROM tags WHERE kind = ? AND target_id = ?",
      {int64_t(target), id});
}

// The (key, value) rows `sql` selects, as a map.
absl::StatusOr<std::map<std::string, std::string>> SqliteStore::ReadTextMap(
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

absl::StatusOr<v1::Sweep> SqliteStore::QuerySweep(
    const std::string& sql, std::initializer_list<Value> args,
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
  sweep.set_owner(q.Text(6));
  absl::StatusOr<std::map<std::string, std::string>> tags =
      ReadTags(TagTarget::kSweep, sweep.id());
  if (!tags.ok()) return tags.status();
  sweep.mutable_tags()->insert(tags->begin(), tags->end());
  return sweep;
}

const char* SqliteStore::OwnerColumn() {
  if (!owners_.has_value()) {
    bool found = false;
    Statement q(db_, cache_,
                "SELECT 1 FROM pragma_table_info('runs') "
                "WHERE name = 'owner'");
    absl::StatusOr<bool> row = q.Step();
    found = row.ok() && *row;
    owners_ = found;
  }
  return *owners_ ? "owner" : "'unknown'";
}

const std::string& SqliteStore::RunColumns() {
  if (run_columns_.empty())
    run_columns_ = absl::StrCat(kRunColumns, ", ", OwnerColumn());
  return run_columns_;
}

}  // namespace distill
