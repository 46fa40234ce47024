#ifndef DISTILL_SERVER_STORAGE_STORE_H_
#define DISTILL_SERVER_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "distill/v1/run.pb.h"
#include "server/storage/migrations.h"

namespace distill {

// A metric point with its position in the run's history (a cursor for
// watchers: points after `sequence` are new).
struct StoredMetric {
  int64_t sequence = 0;
  int32_t attempt = 0;
  v1::MetricPoint point;
};

// A key a run reported: how many points, and the sequence of its newest.
struct MetricKeyStats {
  std::string key;
  int64_t points = 0;
  int64_t last_sequence = 0;
};

// One point of a run's per-epoch metric.
struct EpochValue {
  int32_t epoch = 0;
  double value = 0;
};

// What `distill runs list` asks for: runs that pass every filter set
// (0 / empty / unspecified: off), by id or by a result.
struct RunQuery {
  int64_t sweep_id = 0;
  v1::RunStatus status = v1::RUN_STATUS_UNSPECIFIED;
  v1::ExperimentKind kind = v1::EXPERIMENT_KIND_UNSPECIFIED;
  int64_t teacher_run_id = 0;
  // A member name, or a glob of one (SQLite's GLOB: *, ?, [...]).
  std::string member;
  int64_t created_after_ms = 0;   // created_ms >= it
  int64_t created_before_ms = 0;  // created_ms < it
  // Spec fields equal to their canonical text (common/spec_fields.h).
  std::vector<std::pair<std::string, std::string>> fields;
  // Tags the run has: (key, value), or (key, nullopt) for any value.
  std::vector<std::pair<std::string, std::optional<std::string>>> tags;
  // Text the run's note contains, case-insensitively (ASCII).
  std::string note_contains;
  // Runs of this owner; empty: anyone's.
  std::string owner;
  // Empty: in id order, after `after_id`. Else by that result ("eval/top1";
  // runs without it last), then id, skipping `offset`.
  std::string sort_key;
  bool descending = false;
  // With no sort_key: newest first (ids below `after_id` when it is set).
  bool newest_first = false;
  int64_t after_id = 0;
  int64_t offset = 0;
  int64_t limit = 0;  // 0: every one.
};

// What a tag or a note is on.
enum class TagTarget { kRun = 1, kSweep = 2 };

struct WorkerRecord {
  std::string id;
  std::string hostname;
  std::string device;
  int32_t threads = 0;
  std::string libtorch_version;
  std::string blas;
  int64_t registered_ms = 0;
  int64_t last_seen_ms = 0;
  // The token the worker registered with (0: the coordinator ran without
  // tokens); only it may act for the worker's leases.
  int64_t token_id = 0;
  // `distill workers drain`: stop leasing, hand the run back.
  bool draining = false;
  // When the worker deregistered (it stopped after a drain); 0 while it
  // serves.
  int64_t stopped_ms = 0;
  // Its place in registration order (SQLite's rowid): pages go by it.
  int64_t row = 0;
  // The worker's build.
  std::string distill_version;
  // What it offers for placement (common/placement.h): its labels
  // ("KEY=VALUE", sorted), its device's memory, its device's name, the
  // host's cores.
  std::vector<std::string> labels;
  int64_t device_memory_bytes = 0;
  std::string accelerator;
  int32_t cpu_cores = 0;
};

// A token (distill.v1.Token) as stored: the SHA-256 of its secret, never
// the secret.
struct TokenRecord {
  int64_t id = 0;
  std::string name;
  int32_t role = 0;  // distill.v1.Role
  std::string sha256;
  int64_t created_ms = 0;
  int64_t revoked_ms = 0;  // 0 while valid.
};

// A file a run uploaded (a run file): its checkpoint, a resume point, or
// another file such as tsne.csv.
struct RunFileRecord {
  std::string sha256;
  int64_t run_id = 0;
  int32_t attempt = 0;
  int64_t size = 0;
  std::string path;
  std::string name = "checkpoint";
};

// Durable state of the coordinator: runs, sweeps, workers, metrics and
// checkpoint records. Not thread-safe: the scheduler serialises calls to
// the one that writes, and gives each reader (OpenReader) to one thread at
// a time.
// A run asked to give its worker way to another (a preemption at a step).
struct PreemptionRecord {
  int64_t run_id = 0;
  int32_t attempt = 0;
  int64_t asked_ms = 0;
  std::string worker_id;
  int64_t for_run_id = 0;
  std::string reason;
};

// A part of the queue (issue 31): the queued runs of one owner, one
// requirement key (common/placement.h) and one priority.
struct QueueGroup {
  std::string owner;
  std::string requires_key;
  int32_t priority = 0;
  int64_t queued = 0;
};

// What is known of an owner for fair share: the policy an admin set, the
// GPU time (worker time) its runs used, decayed and in all, and its runs
// running and queued now.
struct OwnerRecord {
  std::string owner;
  double shares = 1;
  std::optional<int32_t> max_running;  // Unset: the coordinator's default.
  double decayed_ms = 0;
  int64_t total_ms = 0;
  int64_t running = 0;
  int64_t queued =
      0;  // Filled by CountQueued (server/scheduling/fair_share.h).
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (creating if needed) the SQLite database at `path` (":memory:" for
  // tests) in WAL mode and brings its schema to the newest version in
  // `migrations`, all in one transaction. FAILED_PRECONDITION when the
  // database is newer than this binary.
  static absl::StatusOr<std::unique_ptr<Store>> OpenSqlite(
      const std::string& path,
      const std::vector<Migration>& migrations = Migrations());

  virtual int SchemaVersion() = 0;

  // Another connection to the same database that only reads: it reads
  // while this one writes, and sees what was committed when its read
  // began. FAILED_PRECONDITION for ":memory:".
  virtual absl::StatusOr<std::unique_ptr<Store>> OpenReader() = 0;

  // Copies what the WAL holds into the database file (a PASSIVE
  // checkpoint) on a connection of its own, so that the writer's commits
  // never wait for one. May be called from one other thread while this
  // store is used; a no-op for ":memory:".
  virtual absl::Status Checkpoint() = 0;

  // How durable a committed transaction is at once.
  enum class Durability {
    // On disk when the commit returns (the WAL fsynced).
    kOnDisk,
    // In the WAL: on disk with the next kOnDisk commit or checkpoint (a
    // fraction of a second); a power cut before may lose it, a crash of the
    // process may not. For what is safe to lose: a lease's extension, a
    // worker's last heartbeat, a run handed back (its lease then expires).
    kInWal,
    // On disk once SyncWal(UnsyncedCommits()) read after the commit
    // returns: the caller fsyncs after releasing its own lock, before it
    // acknowledges the write, so that no lock is held across an fsync and
    // one fsync serves every commit before it.
    kSyncAfter,
  };

  // How many kSyncAfter commits were made; SyncWal(n) returns once the
  // first n are on disk. SyncWal may be called from any thread, also while
  // this store commits on another.
  virtual int64_t UnsyncedCommits() = 0;
  virtual absl::Status SyncWal(int64_t commits) = 0;

  // Runs `body` inside one transaction; rolls back when it fails (an
  // exception it lets through becomes INTERNAL, after the rollback). Each
  // write method below that writes several rows is atomic by itself too:
  // a savepoint inside a transaction, its own transaction outside one.
  virtual absl::Status InTransaction(
      const std::function<absl::Status()>& body,
      Durability durability = Durability::kOnDisk) = 0;

  // Assigns and returns the id; `run.id` is ignored.
  virtual absl::StatusOr<int64_t> InsertRun(const v1::Run& run) = 0;
  // Writes every mutable column of an existing run, results included.
  virtual absl::Status UpdateRun(const v1::Run& run) = 0;
  virtual absl::StatusOr<v1::Run> GetRun(int64_t id) = 0;
  // Filters are off when 0 / RUN_STATUS_UNSPECIFIED. In id order.
  virtual absl::StatusOr<std::vector<v1::Run>> ListRuns(
      int64_t sweep_id, v1::RunStatus status) = 0;
  // The runs `query` asks for, each with its results.
  virtual absl::StatusOr<std::vector<v1::Run>> FindRuns(
      const RunQuery& query) = 0;
  // Sets each provenance entry of run `id`; an empty value removes its key.
  virtual absl::Status SetProvenance(
      int64_t id, const std::map<std::string, std::string>& entries) = 0;
  // Sets the tags of `set`, removes those of `remove` and, when `note` has
  // a value, replaces the note, of run or sweep `id` (which must exist).
  virtual absl::Status Annotate(TagTarget target, int64_t id,
                                const std::map<std::string, std::string>& set,
                                const std::vector<std::string>& remove,
                                const std::optional<std::string>& note) = 0;
  // The RUNNING run leased to the worker, if any.
  virtual absl::StatusOr<std::optional<v1::Run>> RunHeldBy(
      const std::string& worker_id) = 0;
  // How many runs there are of each status.
  virtual absl::StatusOr<std::map<v1::RunStatus, int64_t>>
  CountRunsByStatus() = 0;
  virtual absl::StatusOr<std::vector<v1::Run>> RunsWithTeacher(
      int64_t teacher_run_id) = 0;
  // The queued run submitted first, if any.
  // The first queued run in lease order (priority, then id) whose
  // requirements' key `may_take` accepts (common/placement.h; "" for a run
  // that requires nothing), not of a sweep at its max_concurrent: the head
  // of each key's queue is read, no other run.
  virtual absl::StatusOr<std::optional<v1::Run>> NextQueuedRun(
      const std::function<bool(const std::string& requires_key)>& may_take) = 0;
  // The first queued run whatever it requires.
  absl::StatusOr<std::optional<v1::Run>> NextQueuedRun() {
    return NextQueuedRun([](const std::string&) { return true; });
  }
  // The requirement keys of every run ever stored ("" not among them).
  virtual absl::StatusOr<std::vector<std::string>> RequirementKeys() = 0;
  // The queue by owner (issue 31): each (owner, requirement key,
  // priority) that has queued runs, with how many, kept by the store as
  // runs change (no queue is read); empty on the previous schema.
  virtual absl::StatusOr<std::vector<QueueGroup>> QueueGroups() = 0;
  // The sweeps at their max_concurrent (from the running runs alone).
  virtual absl::StatusOr<std::vector<int64_t>> CappedSweeps() = 0;
  // The first queued run (by id) of `group` not of a sweep in `capped`:
  // the head of its index, no other run read but those of capped sweeps.
  virtual absl::StatusOr<std::optional<v1::Run>> QueueHead(
      const QueueGroup& group, const std::vector<int64_t>& capped) = 0;
  // Every owner with runs running, GPU time used or a policy set, by name;
  // `queued` left 0 (CountQueued adds it from QueueGroups, which a lease
  // has read already).
  virtual absl::StatusOr<std::vector<OwnerRecord>> Owners() = 0;
  // Sets `owner`'s shares and cap on running runs (nullopt: the
  // coordinator's default; 0: none).
  virtual absl::Status SetOwnerPolicy(const std::string& owner, double shares,
                                      std::optional<int32_t> max_running) = 0;
  // Preemptions: recorded when asked for; a run's, oldest first (none on
  // the previous schema).
  virtual absl::Status RecordPreemption(const PreemptionRecord& record) = 0;
  virtual absl::StatusOr<std::vector<PreemptionRecord>> Preemptions(
      int64_t run_id) = 0;
  // Every owner's decayed GPU time times `decay`, then `elapsed_ms` more
  // for each run it has running (decayed and total alike).
  virtual absl::Status AccrueUsage(double decay, int64_t elapsed_ms) = 0;
  // The queued runs' owners by id, at most `limit` of them (empty on the
  // previous schema): from an index, no row read.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, std::string>>>
  QueuedOwners(int64_t limit) = 0;
  // The queued runs' ids and priorities in the order they are leased
  // (priority, then id), at most `limit` of them.
  virtual absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> QueueOrder(
      int64_t limit) = 0;
  // RUNNING runs whose lease expired before `now_ms`.
  virtual absl::StatusOr<std::vector<v1::Run>> ExpiredLeases(
      int64_t now_ms) = 0;

  virtual absl::StatusOr<int64_t> InsertSweep(const v1::Sweep& sweep) = 0;
  virtual absl::Status SetSweepTeacher(int64_t sweep_id,
                                       int64_t teacher_run_id) = 0;
  virtual absl::StatusOr<v1::Sweep> GetSweep(int64_t id) = 0;
  // The newest sweep of that name.
  virtual absl::StatusOr<v1::Sweep> FindSweep(const std::string& name) = 0;
  // The newest sweep of that name with a run that has not ended (id 0
  // when none has), and how many of its runs have not.
  virtual absl::StatusOr<std::pair<int64_t, int64_t>> UnendedSweepNamed(
      const std::string& name) = 0;
  // At most `limit` sweeps, newest first.
  virtual absl::StatusOr<std::vector<v1::Sweep>> ListSweeps(int64_t limit) = 0;

  virtual absl::Status AppendMetrics(
      int64_t run_id, int32_t attempt,
      const std::vector<v1::MetricPoint>& points) = 0;
  // Points of the run stored after `after_sequence`, oldest first; at most
  // `limit` (0: all).
  virtual absl::StatusOr<std::vector<StoredMetric>> Metrics(
      int64_t run_id, int64_t after_sequence, int64_t limit = 0) = 0;
  // The run's history for display: every point of a key with at most
  // `per_key` points, else `per_key` of them spread evenly over its
  // history (its first and newest included); oldest first.
  virtual absl::StatusOr<std::vector<StoredMetric>> SampledMetrics(
      int64_t run_id, int64_t per_key) = 0;
  // The keys the run reported.
  virtual absl::StatusOr<std::vector<MetricKeyStats>> MetricKeys(
      int64_t run_id) = 0;
  // Every point of `key` each run of the sweep reported, by run id, oldest
  // first (for early stopping).
  virtual absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>>
  SweepMetric(int64_t sweep_id, const std::string& key) = 0;

  virtual absl::Status UpsertWorker(const WorkerRecord& worker) = 0;
  virtual absl::StatusOr<WorkerRecord> GetWorker(const std::string& id) = 0;
  // Newest registered first.
  virtual absl::StatusOr<std::vector<WorkerRecord>> ListWorkers() = 0;
  // At most `limit` of them registered before the one at `before_row`
  // (0: from the newest).
  virtual absl::StatusOr<std::vector<WorkerRecord>> ListWorkersPage(
      int64_t before_row, int64_t limit) = 0;

  // Assigns and returns the id; `token.id` is ignored.
  virtual absl::StatusOr<int64_t> InsertToken(const TokenRecord& token) = 0;
  // Every token, revoked ones too, in id order.
  virtual absl::StatusOr<std::vector<TokenRecord>> ListTokens() = 0;
  // Sets revoked_ms (kept when already revoked); NOT_FOUND for an unknown
  // id. Returns the token.
  virtual absl::StatusOr<TokenRecord> RevokeToken(int64_t id,
                                                  int64_t now_ms) = 0;

  virtual absl::Status InsertRunFile(const RunFileRecord& record) = 0;
  // The newest file of that name the run uploaded.
  virtual absl::StatusOr<RunFileRecord> FindRunFile(
      int64_t run_id, const std::string& name) = 0;
  virtual absl::StatusOr<RunFileRecord> FindRunFileByDigest(
      const std::string& sha256) = 0;
  // Forgets the run's files of that name (every name when empty) but the
  // one of digest `keep` (none when empty). Returns the digests no file record
  // refers to any more: their files can go.
  virtual absl::StatusOr<std::vector<std::string>> DeleteRunFiles(
      int64_t run_id, const std::string& name, const std::string& keep) = 0;
  // Forgets the workers that stopped before `before_ms`; how many.
  virtual absl::StatusOr<int64_t> DeleteStoppedWorkers(int64_t before_ms) = 0;
  // Every run file record, by digest.
  virtual absl::StatusOr<std::vector<RunFileRecord>> ListRunFiles() = 0;

  // Writes the database as of one moment to the new file `path` (on disk
  // before it returns; removed if the copy fails) and returns the run files
  // that copy names. On a reader (OpenReader) it is one read transaction:
  // the writer goes on committing meanwhile. ALREADY_EXISTS when `path`
  // exists.
  virtual absl::StatusOr<std::vector<RunFileRecord>> SnapshotTo(
      const std::string& path) = 0;
  // PRAGMA integrity_check: OK, or DATA_LOSS with what SQLite found.
  virtual absl::Status CheckIntegrity() = 0;
};

}  // namespace distill

#endif  // DISTILL_SERVER_STORAGE_STORE_H_
