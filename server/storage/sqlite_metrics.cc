// SqliteStore: metric points, stored per run and key in sequence, and the
// keys' summaries that sample a history.
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
#include "server/base/no_throw.h"
#include "server/storage/heap_shm_vfs.h"
#include "server/storage/sqlite_store_impl.h"

namespace distill {

absl::Status SqliteStore::AppendMetrics(
    int64_t run_id, int32_t attempt,
    const std::vector<v1::MetricPoint>& points) {
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

absl::StatusOr<std::vector<StoredMetric>> SqliteStore::Metrics(
    int64_t run_id, int64_t after_sequence, int64_t limit) {
  absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
  if (!keys.ok()) return keys.status();
  std::vector<StoredMetric> out;
  for (const KeySummary& key : *keys) {
    if (key.last <= after_sequence) continue;
    Statement q(db_, cache_,
                absl::StrCat(kPointQuery,
                             "AND sequence > ? ORDER BY sequence LIMIT ?"));
    if (absl::Status s = q.Bind(
            {run_id, key.id, after_sequence, limit > 0 ? limit : int64_t{-1}});
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ReadPoints(q, key.name, &out); !s.ok()) return s;
  }
  SortBySequence(&out);
  if (limit > 0 && int64_t(out.size()) > limit) out.resize(limit);
  return out;
}

absl::StatusOr<std::vector<StoredMetric>> SqliteStore::SampledMetrics(
    int64_t run_id, int64_t per_key) {
  absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
  if (!keys.ok()) return keys.status();
  std::vector<StoredMetric> out;
  for (const KeySummary& key : *keys) {
    if (key.points <= per_key || per_key < 2) {
      Statement q(db_, cache_,
                  absl::StrCat(kPointQuery, "ORDER BY sequence LIMIT ?"));
      if (absl::Status s = q.Bind({run_id, key.id, per_key}); !s.ok()) return s;
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
      Statement q(db_, cache_,
                  absl::StrCat(kPointQuery,
                               "AND sequence >= ? ORDER BY sequence LIMIT 1"));
      if (absl::Status s = q.Bind({run_id, key.id, target}); !s.ok()) return s;
      const size_t before = out.size();
      if (absl::Status s = ReadPoints(q, key.name, &out); !s.ok()) return s;
      if (out.size() > before) taken = out.back().sequence;
    }
  }
  SortBySequence(&out);
  return out;
}

absl::StatusOr<std::vector<MetricKeyStats>> SqliteStore::MetricKeys(
    int64_t run_id) {
  absl::StatusOr<std::vector<KeySummary>> keys = RunKeys(run_id);
  if (!keys.ok()) return keys.status();
  std::vector<MetricKeyStats> out;
  for (const KeySummary& key : *keys)
    out.push_back({key.name, key.points, key.last});
  return out;
}

absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>>
SqliteStore::SweepMetric(int64_t sweep_id, const std::string& key) {
  Statement q(db_, cache_,
              "SELECT p.run_id, p.epoch, p.value FROM runs r "
              "JOIN metric_points p ON p.run_id = r.id AND p.key_id = "
              "(SELECT id FROM metric_keys WHERE key = ?) "
              "WHERE r.sweep_id = ? ORDER BY p.run_id, p.sequence");
  if (absl::Status s = q.Bind({key, sweep_id}); !s.ok()) return s;
  std::map<int64_t, std::vector<EpochValue>> out;
  if (absl::Status s = q.EachRow([&] {
        out[q.Int(0)].push_back({int32_t(q.Int(1)), q.Double(2)});
      });
      !s.ok()) {
    return s;
  }
  return out;
}

// The keys the run reported, with where their points are.
absl::StatusOr<std::vector<SqliteStore::KeySummary>> SqliteStore::RunKeys(
    int64_t run_id) {
  std::vector<KeySummary> keys;
  {
    Statement q(db_, cache_,
                "SELECT key_id, points, first_sequence, last_sequence "
                "FROM run_metric_keys WHERE run_id = ? ORDER BY key_id");
    if (absl::Status s = q.Bind({run_id}); !s.ok()) return s;
    if (absl::Status s = q.EachRow([&] {
          keys.push_back({q.Int(0), "", q.Int(1), q.Int(2), q.Int(3)});
        });
        !s.ok()) {
      return s;
    }
  }
  for (KeySummary& key : keys) {
    absl::StatusOr<std::string> name = KeyName(key.id);
    if (!name.ok()) return name.status();
    key.name = *std::move(name);
  }
  return keys;
}

absl::StatusOr<std::string> SqliteStore::KeyName(int64_t id) {
  if (auto it = key_names_.find(id); it != key_names_.end()) return it->second;
  Statement q(db_, cache_, "SELECT key FROM metric_keys WHERE id = ?");
  if (absl::Status s = q.Bind({id}); !s.ok()) return s;
  absl::StatusOr<bool> row = q.Step();
  if (!row.ok()) return row.status();
  if (!*row)
    return absl::DataLossError(absl::StrCat("metric key ", id, " is gone"));
  return key_names_[id] = q.Text(0);
}

// The key's id, interned on first use.
absl::StatusOr<int64_t> SqliteStore::KeyId(const std::string& key) {
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
absl::StatusOr<int64_t> SqliteStore::NextSequence(int64_t run_id) {
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
absl::Status SqliteStore::ReadPoints(Statement& q, const std::string& key,
                                     std::vector<StoredMetric>* out) {
  return q.EachRow([&] {
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
  });
}

void SqliteStore::SortBySequence(std::vector<StoredMetric>* points) {
  std::sort(points->begin(), points->end(),
            [](const StoredMetric& a, const StoredMetric& b) {
              return a.sequence < b.sequence;
            });
}

}  // namespace distill
