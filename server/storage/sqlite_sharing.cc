// The store's side of fair share (issue 31): the queue by owner, each
// owner's load and GPU time, and the policy an admin set. Migration 013's
// triggers keep queue_groups and owner_load as runs change.
#include <sqlite3.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {

std::string SqliteStore::NotOfACappedSweep() {
  return absl::StrCat(
      " AND sweep_id NOT IN (SELECT r.sweep_id FROM runs r JOIN sweeps s ON "
      "s.id = r.sweep_id WHERE r.status = ",
      Sql(v1::RUNNING),
      " AND s.max_concurrent > 0 GROUP BY r.sweep_id HAVING COUNT(*) >= "
      "MAX(s.max_concurrent))");
}

absl::StatusOr<std::vector<QueueGroup>> SqliteStore::QueueGroups() {
  std::vector<QueueGroup> groups;
  if (!HasPlacement()) return groups;
  Statement q(db_, cache_,
              "SELECT owner, requires_key, priority, queued FROM queue_groups "
              "WHERE queued > 0");
  if (absl::Status s = q.Bind({}); !s.ok()) return s;
  if (absl::Status s = q.EachRow([&] {
        groups.push_back({q.Text(0), q.Text(1), int32_t(q.Int(2)), q.Int(3)});
      });
      !s.ok()) {
    return s;
  }
  return groups;
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
SqliteStore::QueuedOwners(int64_t limit) {
  std::vector<std::pair<int64_t, std::string>> owners;
  if (!HasPlacement()) return owners;
  Statement q(db_, cache_,
              absl::StrCat("SELECT id, owner FROM runs INDEXED BY "
                           "runs_queue_by_owner WHERE status = ",
                           Sql(v1::QUEUED), " LIMIT ?"));
  if (absl::Status s = q.Bind({limit}); !s.ok()) return s;
  if (absl::Status s =
          q.EachRow([&] { owners.emplace_back(q.Int(0), q.Text(1)); });
      !s.ok()) {
    return s;
  }
  return owners;
}

absl::StatusOr<std::vector<int64_t>> SqliteStore::CappedSweeps() {
  std::vector<int64_t> capped;
  Statement q(db_, cache_,
              absl::StrCat("SELECT r.sweep_id FROM runs r INDEXED BY "
                           "runs_by_worker JOIN sweeps s ON s.id = r.sweep_id "
                           "WHERE r.status = ",
                           Sql(v1::RUNNING),
                           " AND s.max_concurrent > 0 GROUP BY r.sweep_id "
                           "HAVING COUNT(*) >= MAX(s.max_concurrent)"));
  if (absl::Status s = q.Bind({}); !s.ok()) return s;
  if (absl::Status s = q.EachRow([&] { capped.push_back(q.Int(0)); });
      !s.ok()) {
    return s;
  }
  return capped;
}

absl::StatusOr<std::optional<v1::Run>> SqliteStore::QueueHead(
    const QueueGroup& group, const std::vector<int64_t>& capped) {
  // The capped sweeps as a JSON array ("[3,7]"): one statement whatever
  // their number.
  std::string skip = "[";
  for (size_t i = 0; i < capped.size(); ++i)
    absl::StrAppend(&skip, i ? "," : "", capped[i]);
  skip += "]";
  const std::string sql = absl::StrCat(
      "SELECT ", RunColumns(),
      " FROM runs INDEXED BY runs_queue_by_owner WHERE owner = ? AND "
      "requires_key = ? AND priority = ? AND status = ",
      Sql(v1::QUEUED),
      capped.empty() ? ""
                     : " AND sweep_id NOT IN (SELECT value FROM json_each(?))",
      " ORDER BY id LIMIT 1");
  absl::StatusOr<std::vector<v1::Run>> head =
      capped.empty() ? QueryRuns(sql, {group.owner, group.requires_key,
                                       int64_t{group.priority}})
                     : QueryRuns(sql, {group.owner, group.requires_key,
                                       int64_t{group.priority}, skip});
  if (!head.ok()) return head.status();
  if (head->empty()) return std::nullopt;
  return std::move(head->front());
}

absl::StatusOr<std::vector<OwnerRecord>> SqliteStore::Owners() {
  std::map<std::string, OwnerRecord> owners;
  if (!HasPlacement()) return std::vector<OwnerRecord>();
  auto named = [&](const std::string& name) -> OwnerRecord& {
    OwnerRecord& o = owners[name];
    o.owner = name;
    return o;
  };
  Statement policy(db_, cache_,
                   "SELECT owner, shares, max_running, max_running IS NULL "
                   "FROM owner_policy");
  if (absl::Status s = policy.Bind({}); !s.ok()) return s;
  if (absl::Status s = policy.EachRow([&] {
        OwnerRecord& o = named(policy.Text(0));
        o.shares = policy.Double(1);
        if (policy.Int(3) == 0) o.max_running = int32_t(policy.Int(2));
      });
      !s.ok()) {
    return s;
  }
  Statement usage(db_, cache_,
                  "SELECT owner, decayed_ms, total_ms FROM owner_usage");
  if (absl::Status s = usage.Bind({}); !s.ok()) return s;
  if (absl::Status s = usage.EachRow([&] {
        OwnerRecord& o = named(usage.Text(0));
        o.decayed_ms = usage.Double(1);
        o.total_ms = usage.Int(2);
      });
      !s.ok()) {
    return s;
  }
  Statement load(db_, cache_,
                 "SELECT owner, running FROM owner_load WHERE running > 0");
  if (absl::Status s = load.Bind({}); !s.ok()) return s;
  if (absl::Status s =
          load.EachRow([&] { named(load.Text(0)).running = load.Int(1); });
      !s.ok()) {
    return s;
  }
  std::vector<OwnerRecord> out;
  out.reserve(owners.size());
  for (auto& [name, record] : owners) out.push_back(std::move(record));
  return out;
}

absl::Status SqliteStore::SetOwnerPolicy(const std::string& owner,
                                         double shares,
                                         std::optional<int32_t> max_running) {
  if (!HasPlacement()) {
    return absl::FailedPreconditionError(
        "the database predates fair share (migration 013)");
  }
  Statement q(db_, cache_,
              max_running
                  ? "INSERT OR REPLACE INTO owner_policy(owner, shares, "
                    "max_running) VALUES(?, ?, ?)"
                  : "INSERT OR REPLACE INTO owner_policy(owner, shares, "
                    "max_running) VALUES(?, ?, NULL)");
  std::vector<Value> values = {owner, shares};
  if (max_running) values.push_back(int64_t{*max_running});
  if (absl::Status s = q.Bind(values); !s.ok()) return s;
  return q.Run();
}

absl::Status SqliteStore::AccrueUsage(double decay, int64_t elapsed_ms) {
  if (!HasPlacement()) return absl::OkStatus();
  return Atomically([&]() -> absl::Status {
    Statement d(db_, cache_,
                "UPDATE owner_usage SET decayed_ms = decayed_ms * ?");
    if (absl::Status s = d.Bind({decay}); !s.ok()) return s;
    if (absl::Status s = d.Run(); !s.ok()) return s;
    Statement add(db_, cache_,
                  "INSERT INTO owner_usage(owner, decayed_ms, total_ms) "
                  "SELECT owner, running * ?, running * ? FROM owner_load "
                  "WHERE running > 0 ON CONFLICT(owner) DO UPDATE SET "
                  "decayed_ms = decayed_ms + excluded.decayed_ms, "
                  "total_ms = total_ms + excluded.total_ms");
    if (absl::Status s = add.Bind({double(elapsed_ms), elapsed_ms}); !s.ok())
      return s;
    return add.Run();
  });
}

absl::Status SqliteStore::RecordPreemption(const PreemptionRecord& r) {
  if (!HasPlacement()) return absl::OkStatus();
  Statement q(db_, cache_,
              "INSERT OR REPLACE INTO preemptions(run_id, attempt, asked_ms, "
              "worker_id, for_run_id, reason) VALUES(?, ?, ?, ?, ?, ?)");
  if (absl::Status s = q.Bind({r.run_id, int64_t{r.attempt}, r.asked_ms,
                               r.worker_id, r.for_run_id, r.reason});
      !s.ok()) {
    return s;
  }
  return q.Run();
}

absl::StatusOr<std::vector<PreemptionRecord>> SqliteStore::Preemptions(
    int64_t run_id) {
  std::vector<PreemptionRecord> out;
  if (!HasPlacement()) return out;
  Statement q(db_, cache_,
              "SELECT attempt, asked_ms, worker_id, for_run_id, reason FROM "
              "preemptions WHERE run_id = ? ORDER BY attempt");
  if (absl::Status s = q.Bind({run_id}); !s.ok()) return s;
  if (absl::Status s = q.EachRow([&] {
        out.push_back({run_id, int32_t(q.Int(0)), q.Int(1), q.Text(2), q.Int(3),
                       q.Text(4)});
      });
      !s.ok()) {
    return s;
  }
  return out;
}

}  // namespace distill
