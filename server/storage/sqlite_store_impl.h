// The SQLite implementation of Store, one class (SqliteStore) whose
// methods live by concern: sqlite_store.cc (opening, migrations,
// transactions, checkpoints, the WAL's fsync), sqlite_runs.cc (runs,
// sweeps, their fields, tags and provenance), sqlite_metrics.cc (metric
// points and their keys), sqlite_records.cc (workers, tokens, run files).
// Internal to server/: everything else sees Store.
#ifndef DISTILL_SERVER_STORAGE_SQLITE_STORE_IMPL_H_
#define DISTILL_SERVER_STORAGE_SQLITE_STORE_IMPL_H_

#include <sqlite3.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/storage/sqlite_statement.h"
#include "server/storage/store.h"

namespace distill {

// The partial indexes were made with numbers (migrations 006 and 007), and
// SQLite uses one only for a query with the same literal.
static_assert(v1::RUNNING == 3, "runs_by_worker indexes status = 3");
static_assert(v1::QUEUED == 2, "runs_queue indexes status = 2");

// A run status, or a tag's target, as SQL text ("3" for RUNNING): queries
// name them by their enums, as literals.
inline std::string Sql(v1::RunStatus status) {
  return absl::StrCat(int{status});
}
inline std::string Sql(TagTarget target) { return absl::StrCat(int(target)); }

// A key's points, as ReadPoints reads them; a condition and order follow.
inline constexpr char kPointQuery[] =
    "SELECT sequence, attempt, step, epoch, value, time_ms FROM metric_points "
    "WHERE run_id = ? AND key_id = ? ";

inline constexpr char kRunColumns[] =
    "id, sweep_id, member, spec, status, attempt, worker_id, lease_expires_ms, "
    "message, teacher_run_id, checkpoint_sha256, created_ms, started_ms, "
    "finished_ms, releases, priority, note";

class SqliteStore final : public Store {
 public:
  SqliteStore(sqlite3* db, std::string path, bool reader)
      : db_(db), path_(std::move(path)), reader_(reader), cache_(db) {}
  ~SqliteStore() override;

  absl::StatusOr<std::unique_ptr<Store>> OpenReader() override;

  absl::Status Checkpoint() override;

  int64_t UnsyncedCommits() override { return commits_; }

  absl::Status SyncWal(int64_t commits) override;

  static absl::StatusOr<std::unique_ptr<SqliteStore>> Open(
      const std::string& path, bool reader);

  absl::Status Migrate(const std::vector<Migration>& migrations);

  int SchemaVersion() override { return version_; }

  // run_fields for every run stored.
  absl::Status FillRunFields();

  absl::Status InsertRunFields(int64_t run_id, const v1::ExperimentSpec& spec);

  absl::Status InsertFieldRows(
      int64_t run_id,
      const std::vector<std::pair<std::string, std::string>>& fields);

  absl::Status InTransaction(const std::function<absl::Status()>& body,
                             Durability durability) override;

  absl::StatusOr<int64_t> InsertRun(const v1::Run& run) override;

  absl::Status UpdateRun(const v1::Run& run) override;

  absl::StatusOr<v1::Run> GetRun(int64_t id) override;

  absl::StatusOr<std::vector<v1::Run>> ListRuns(int64_t sweep_id,
                                                v1::RunStatus status) override;

  absl::StatusOr<std::vector<v1::Run>> FindRuns(const RunQuery& query) override;

  absl::Status SetProvenance(
      int64_t id, const std::map<std::string, std::string>& entries) override;

  absl::Status Annotate(TagTarget target, int64_t id,
                        const std::map<std::string, std::string>& set,
                        const std::vector<std::string>& remove,
                        const std::optional<std::string>& note) override;

  absl::StatusOr<std::optional<v1::Run>> RunHeldBy(
      const std::string& worker_id) override;

  absl::StatusOr<std::vector<v1::Run>> RunsWithTeacher(
      int64_t teacher_run_id) override;

  absl::StatusOr<std::optional<v1::Run>> NextQueuedRun(
      const std::function<bool(const std::string&)>& may_take) override;
  absl::StatusOr<std::vector<std::string>> RequirementKeys() override;
  absl::StatusOr<std::vector<QueueGroup>> QueueGroups() override;
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> QueuedOwners(
      int64_t limit) override;
  absl::StatusOr<std::vector<int64_t>> CappedSweeps() override;
  absl::StatusOr<std::optional<v1::Run>> QueueHead(
      const QueueGroup& group, const std::vector<int64_t>& capped) override;
  absl::StatusOr<std::vector<OwnerRecord>> Owners() override;
  absl::Status SetOwnerPolicy(const std::string& owner, double shares,
                              std::optional<int32_t> max_running) override;
  absl::Status AccrueUsage(double decay, int64_t elapsed_ms) override;
  absl::Status RecordPreemption(const PreemptionRecord& record) override;
  absl::StatusOr<std::vector<PreemptionRecord>> Preemptions(
      int64_t run_id) override;
  absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> QueueOrder(
      int64_t limit) override;

  absl::StatusOr<std::vector<v1::Run>> ExpiredLeases(int64_t now_ms) override;

  absl::StatusOr<int64_t> InsertSweep(const v1::Sweep& sweep) override;

  absl::Status SetSweepTeacher(int64_t sweep_id,
                               int64_t teacher_run_id) override;

  absl::StatusOr<v1::Sweep> GetSweep(int64_t id) override;

  absl::StatusOr<v1::Sweep> FindSweep(const std::string& name) override;
  absl::StatusOr<std::pair<int64_t, int64_t>> UnendedSweepNamed(
      const std::string& name) override;

  absl::StatusOr<std::vector<v1::Sweep>> ListSweeps(int64_t limit) override;

  absl::Status AppendMetrics(
      int64_t run_id, int32_t attempt,
      const std::vector<v1::MetricPoint>& points) override;

  absl::StatusOr<std::vector<StoredMetric>> Metrics(int64_t run_id,
                                                    int64_t after_sequence,
                                                    int64_t limit) override;

  absl::StatusOr<std::vector<StoredMetric>> SampledMetrics(
      int64_t run_id, int64_t per_key) override;

  absl::StatusOr<std::vector<MetricKeyStats>> MetricKeys(
      int64_t run_id) override;

  absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>> SweepMetric(
      int64_t sweep_id, const std::string& key) override;

  absl::Status UpsertWorker(const WorkerRecord& w) override;

  absl::StatusOr<WorkerRecord> GetWorker(const std::string& id) override;

  absl::StatusOr<std::map<v1::RunStatus, int64_t>> CountRunsByStatus() override;

  absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() override;

  absl::StatusOr<std::vector<WorkerRecord>> ListWorkersPage(
      int64_t before_row, int64_t limit) override;

  absl::StatusOr<int64_t> InsertToken(const TokenRecord& t) override;

  absl::StatusOr<std::vector<TokenRecord>> ListTokens() override;

  absl::StatusOr<TokenRecord> RevokeToken(int64_t id, int64_t now_ms) override;

  absl::Status InsertRunFile(const RunFileRecord& c) override;

  absl::StatusOr<RunFileRecord> FindRunFileByDigest(
      const std::string& sha256) override;

  absl::StatusOr<RunFileRecord> FindRunFile(int64_t run_id,
                                            const std::string& name) override;

  absl::StatusOr<std::vector<std::string>> DeleteRunFiles(
      int64_t run_id, const std::string& name,
      const std::string& keep) override;

  absl::StatusOr<int64_t> DeleteStoppedWorkers(int64_t before_ms) override;

  absl::StatusOr<std::vector<RunFileRecord>> ListRunFiles() override;

  absl::StatusOr<std::vector<RunFileRecord>> SnapshotTo(
      const std::string& path) override;

  absl::Status CheckIntegrity() override;

 private:
  absl::StatusOr<RunFileRecord> QueryFile(const char* sql,
                                          std::initializer_list<Value> args,
                                          const std::string& not_found);

  // `body`'s status, or INTERNAL for an exception it let through (after
  // which the caller rolls back as for any error).
  static absl::Status Guarded(const std::function<absl::Status()>& body);

  // Runs `body` as one unit: a savepoint within a transaction (undone
  // alone when it fails), its own transaction outside one. Every write of
  // several statements goes through it or InTransaction, so none is ever
  // left half done.
  absl::Status Atomically(const std::function<absl::Status()>& body);

  absl::Status Exec(const std::string& sql);

  static constexpr char kWorkerQuery[] =
      "SELECT id, hostname, device, threads, libtorch_version, blas, "
      "registered_ms, last_seen_ms, token_id, draining, stopped_ms, rowid, "
      "distill_version";
  // kWorkerQuery's columns, then the placement columns (or their defaults
  // on the previous schema), then FROM workers.
  std::string WorkerQuery();

  absl::StatusOr<std::vector<WorkerRecord>> QueryWorkers(
      const std::string& sql, std::initializer_list<Value> args);

  absl::StatusOr<std::vector<v1::Run>> QueryRuns(
      const std::string& sql, std::initializer_list<Value> args);

  absl::StatusOr<std::vector<v1::Run>> QueryRunsWith(
      const std::string& sql, const std::vector<Value>& args);

  absl::StatusOr<std::map<std::string, std::string>> ReadTags(TagTarget target,
                                                              int64_t id);

  // The (key, value) rows `sql` selects, as a map.
  absl::StatusOr<std::map<std::string, std::string>> ReadTextMap(
      const char* sql, std::initializer_list<Value> args);

  absl::StatusOr<v1::Sweep> QuerySweep(const std::string& sql,
                                       std::initializer_list<Value> args,
                                       const std::string& not_found);

  struct KeySummary {
    int64_t id = 0;
    std::string name;
    int64_t points = 0;
    int64_t first = 0;
    int64_t last = 0;
  };

  // The keys the run reported, with where their points are.
  absl::StatusOr<std::vector<KeySummary>> RunKeys(int64_t run_id);

  absl::StatusOr<std::string> KeyName(int64_t id);

  // The key's id, interned on first use.
  absl::StatusOr<int64_t> KeyId(const std::string& key);

  // The sequence the run's next point gets.
  absl::StatusOr<int64_t> NextSequence(int64_t run_id);

  // Appends the rows of `q` (sequence, attempt, step, epoch, value,
  // time_ms) as points of `key`.
  static absl::Status ReadPoints(Statement& q, const std::string& key,
                                 std::vector<StoredMetric>* out);

  static void SortBySequence(std::vector<StoredMetric>* points);

  sqlite3* db_;
  const std::string path_;
  // The run columns every run query reads, kRunColumns then the owner
  // ("'unknown'" on a database one schema version behind, the previous
  // release's: tests/e2e_upgrade_test.sh).
  const std::string& RunColumns();
  // " AND sweep_id NOT IN (...)": a queued run's condition that its sweep
  // is not at its max_concurrent.
  static std::string NotOfACappedSweep();
  // "owner", or "'unknown'" where the tables have no owner yet.
  const char* OwnerColumn();
  // Whether the tables have what migration 013 (placement) added: a
  // database one schema version behind (the previous release's) has not.
  bool HasPlacement();

  const bool reader_;
  StatementCache cache_;
  std::optional<bool> owners_;  // Whether runs and sweeps have an owner.
  std::optional<bool> placement_;
  std::string run_columns_;
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

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_SQLITE_STORE_IMPL_H_
