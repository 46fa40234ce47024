// What the scheduler's collaborators (leases, ingestion, sweeps, reads,
// uploads, annotations) share, owned in one place as leveldb's DBImpl owns
// its state: the store and run files, the clock, the watch hub, the one
// mutex that serialises every change, the write path, and the run
// transitions several of them make (finish, requeue, insert). A
// collaborator that writes takes `mu` through Locked and calls the methods
// below that REQUIRE it; a method named ...Locked requires the caller to
// hold `mu`: it takes the Locked as its witness, and the compiler (clang's
// -Wthread-safety, in the sanitizer build) checks every access. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_SCHEDULER_CORE_H_
#define DISTILL_SERVER_SCHEDULING_SCHEDULER_CORE_H_

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/placement.h"
#include "distill/v1/run.pb.h"
#include "server/base/clock.h"
#include "server/base/disk_guard.h"
#include "server/base/durable.h"
#include "server/base/event_queue.h"
#include "server/base/metrics.h"
#include "server/base/watch_hub.h"
#include "server/storage/run_file_store.h"
#include "server/storage/store.h"

namespace distill {

struct SchedulerOptions {
  // A leased run whose worker sends no heartbeat for this long is queued
  // again (or FAILED, reason LOST, past its max_restarts).
  int64_t lease_duration_ms = 60'000;
  int64_t heartbeat_interval_ms = 10'000;
  // The largest run file a worker may upload (a ResNet-50 checkpoint with
  // its optimizer state is ~300 MB).
  int64_t max_run_file_bytes = int64_t{8} << 30;
  // A worker stopped this long ago leaves `workers list` (its runs keep
  // their history); 0: kept for ever.
  int64_t forget_stopped_workers_after_ms = int64_t{7} * 24 * 3600 * 1000;
  // Below this many free bytes on the data directory's disk no new run is
  // leased (server/base/disk_guard.h); 0: leasing never pauses.
  int64_t min_free_disk_bytes = 0;
  // The data directory's free bytes (FreeDiskBytes); none: uploads are not
  // checked against the disk (an in-memory store's tests).
  std::function<absl::StatusOr<int64_t>()> free_disk_bytes;
  // The retention policy of a sweep that sets none
  // (server/scheduling/retention.h): keep the checkpoints of its best
  // `default_keep_best` students; -1: every one.
  int default_keep_best = -1;
  // Where leases, expiries and ingested points are counted; none when null.
  CoordinatorMetrics* metrics = nullptr;
  // Told the sweep id each time a run of a sweep ends (the notifier's
  // queue, server/operations/notifier.h); none when null.
  EventQueue* sweep_run_ended = nullptr;
  // The URLs a sweep's notify.url may start with (--notify_url and
  // --notify_allow); a sweep naming another is refused.
  std::vector<std::string> notify_allow;
  // The highest priority a researcher may give a sweep (--max_priority);
  // an admin may set any.
  int max_priority = 0;
  // Fair share (issue 31, server/scheduling/fair_share.h): GPU time an owner
  // used counts half after this long (--fair_share_half_life).
  int64_t fair_share_half_life_ms = int64_t{7} * 24 * 3600 * 1000;
  // Runs of one owner running at once, at most (0: no cap); an admin may
  // set an owner's own (--max_running_per_owner).
  int max_running_per_owner = 0;
  // How the queue is ordered: fair share (priority, then the owner furthest
  // below its share, then submission), or first in first out (priority,
  // then submission: before issue 31; the lab bench's reference).
  enum class QueuePolicy { kFairShare, kFifo };
  QueuePolicy queue_policy = QueuePolicy::kFairShare;
  // Preemption at a step (server/scheduling/preemption.h, --preemption): none;
  // for a waiting run of higher priority; or also for an owner below its share
  // by preempt_share_margin. A run is preempted only after it held its
  // worker preempt_after_ms, a worker at most once every
  // preempt_every_ms.
  enum class Preemption { kOff, kPriority, kFair };
  Preemption preemption = Preemption::kPriority;
  int64_t preempt_after_ms = 10 * 60'000;
  int64_t preempt_every_ms = 10 * 60'000;
  double preempt_share_margin = 2;
};

// What a registered worker offers for placement.
inline WorkerOffer OfferOf(const WorkerRecord& worker) {
  return {worker.device, worker.labels, worker.device_memory_bytes};
}

// What a run or sweep submitted without tokens is owned by.
inline constexpr char kAnonymousOwner[] = "anonymous";

// Who asks for a change (the services fill it from the caller's token):
// its name becomes the owner of what it submits; a researcher may change
// only their own runs and sweeps, an admin any, and without tokens anyone
// any (admin).
struct Requester {
  std::string name = kAnonymousOwner;
  bool admin = true;
};

// OK when `who` may change what `owner` owns; else PERMISSION_DENIED
// naming `what` ("run 12"), its owner and the rule.
absl::Status CheckMayChange(const Requester& who, const std::string& owner,
                            const std::string& what);

// `run` waits for a worker again: QUEUED with `message` saying why, off
// its worker and lease. Its next lease is a new attempt, which fences out
// the old one's worker.
void SetQueuedAgain(v1::Run& run, const std::string& message);

class SchedulerCore {
 public:
  // Long-polls subscribe to this: the queue changed, or a worker drained.
  static constexpr int64_t kQueueChanges = 0;  // No run has id 0.

  // Does not take ownership; all three must outlive it.
  SchedulerCore(Store* store, RunFileStore* run_files, Clock* clock,
                SchedulerOptions options);

  // The writer's store: under the lock only (reads without it go through
  // Read's readers).
  Store& store() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return *store_; }
  RunFileStore& run_files() { return *run_files_; }
  Clock& clock() { return *clock_; }
  const SchedulerOptions& options() const { return options_; }
  WatchHub& hub() { return hub_; }
  DiskGuard& disk() { return disk_; }
  // Counted where the coordinator has /metrics.
  CoordinatorMetrics* metrics() const { return options_.metrics; }
  bool shutting_down() const { return shutting_down_; }
  void set_shutting_down() { shutting_down_ = true; }

  // The one mutex that serialises every change, for the annotations of the
  // collaborators' methods alone: it cannot be locked through this (const),
  // only by a Locked.
  const absl::Mutex& mutex() const ABSL_LOCK_RETURNED(mu_) { return mu_; }
  // Tells the analysis (and, in a debug build, checks) that this thread
  // holds the mutex: the first statement of a Write's body, which clang
  // analyses as a function of its own.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK(mu_) { mu_.AssertHeld(); }

  // The one way in: holds the mutex while it lives; on release, tells the
  // watchers of the runs that changed and, when the queue did, the
  // long-polls. A method named ...Locked takes it as its witness. No sync
  // may happen while it is held (server/base/durable.h NoSyncZone: a debug
  // build aborts; every build counts); the commits made under it are synced by
  // SchedulerCore::Durable after its release.
  class ABSL_SCOPED_LOCKABLE Locked {
   public:
    explicit Locked(SchedulerCore* core)
        ABSL_EXCLUSIVE_LOCK_FUNCTION(core->mu_);
    ~Locked() ABSL_UNLOCK_FUNCTION();
    Locked(const Locked&) = delete;
    Locked& operator=(const Locked&) = delete;

   private:
    SchedulerCore* const core_;
    NoSyncZone no_sync_;
  };

  // The one write path: `fn` inside a store transaction; the run files it
  // left without a record (Orphan) are removed once it committed. kOnDisk
  // commits without its fsync under the lock: the commit is made durable
  // by the Durable(...) around the call, once the lock is released (one
  // fsync for every commit before it). kInWal commits what is safe to lose
  // (a heartbeat, a lease's extension, an expiry a restart redoes).
  absl::Status Write(const std::function<absl::Status()>& fn,
                     Store::Durability durability = Store::Durability::kOnDisk)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // `result` once every commit this thread made under the lock is on disk
  // (one fsync of the WAL, outside the lock); the sync's error where
  // `result` was fine but the sync failed. Every call of the Scheduler
  // facade that may write returns through it. REQUIRES: not locked.
  absl::Status Durable(absl::Status result) ABSL_LOCKS_EXCLUDED(mu_);
  template <typename T>
  absl::StatusOr<T> Durable(absl::StatusOr<T> result) ABSL_LOCKS_EXCLUDED(mu_) {
    if (absl::Status s = Durable(result.status()); !s.ok()) return s;
    return result;
  }
  // Commits this thread made that no Durable synced yet (tests).
  static int64_t UnsyncedOnThisThread();

  // Runs `fn` on a snapshot: a reader connection's, or the writer's under
  // mu when there are no readers (an in-memory database).
  absl::Status Read(const std::function<absl::Status(Store&)>& fn)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Within Write: ends `run`, drops its resume point (every file unless it
  // succeeded), and settles the runs waiting on it as a teacher.
  absl::Status FinishLocked(const Locked&, v1::Run& run, v1::RunStatus status,
                            const std::string& message)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within Write: `run` QUEUED again with `message`, off its worker; a
  // hand-back (`released`, the worker gave it up) does not count towards
  // max_restarts.
  absl::Status RequeueLocked(const Locked&, v1::Run& run,
                             const std::string& message, bool released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within Write: stores `run` as new, with its creation time; returns it
  // with its id.
  absl::StatusOr<v1::Run> InsertRunLocked(const Locked&, v1::Run run)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // WAITING or QUEUED for a run depending on teacher run `teacher_run_id`;
  // an error when the teacher cannot ever serve.
  absl::StatusOr<v1::RunStatus> StatusBehindTeacherLocked(
      const Locked&, int64_t teacher_run_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK when `run` holds its checkpoint; else FAILED_PRECONDITION naming
  // `field` and the run, and why it went (a retention policy dropped it).
  absl::Status CheckpointKeptLocked(const Locked&, const v1::Run& run,
                                    const char* field)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // OK for a spec without fork.run_id. Else its parent must be a SUCCEEDED
  // DISTILL run whose checkpoint is kept (NOT_FOUND, FAILED_PRECONDITION
  // naming why not); to continue it, its final state too, and the spec
  // must train the parent's data, batch size, student and optimizer kind
  // for more epochs than the parent (INVALID_ARGUMENT naming the field).
  absl::Status CheckForkLocked(const Locked&, const v1::ExperimentSpec& spec)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Within Write: these run files lose their last record; they go once the
  // transaction committed.
  void OrphanLocked(const Locked&, const std::vector<std::string>& sha256s)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The lease holder rule: PERMISSION_DENIED unless `caller` (a token id)
  // registered the worker `run` names.
  absl::Status CheckHolderLocked(const Locked&, const v1::Run& run,
                                 int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The run when `attempt` holds its lease and `caller` holds the worker.
  absl::StatusOr<v1::Run> CurrentLeaseLocked(const Locked&, int64_t run_id,
                                             int32_t attempt, int64_t caller)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A worker registered with token `caller`.
  void RememberWorkerLocked(const Locked&, const std::string& worker_id,
                            int64_t caller) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Wakes long-polling workers once mu is released.
  void QueueChangedLocked(const Locked&) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    queue_changed_ = true;
  }
  // Tells the run's watchers once mu is released (after the change
  // committed: watchers read on their own connections).
  void RunChangedLocked(const Locked&, int64_t run_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    changed_runs_.push_back(run_id);
  }

 private:
  std::unique_ptr<Store> TakeReader();
  void ReturnReader(std::unique_ptr<Store> reader);

  Store* const store_;
  RunFileStore* const run_files_;
  Clock* const clock_;
  const SchedulerOptions options_;
  WatchHub hub_;
  DiskGuard disk_;
  std::atomic<bool> shutting_down_{false};

  absl::Mutex mu_;
  std::vector<int64_t> changed_runs_ ABSL_GUARDED_BY(mu_);
  bool queue_changed_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> orphaned_ ABSL_GUARDED_BY(mu_);
  // Which token registered each worker (the lease holder rule), learned
  // from the store on first use.
  absl::flat_hash_map<std::string, int64_t> worker_tokens_ ABSL_GUARDED_BY(mu_);

  absl::Mutex readers_mu_;
  std::vector<std::unique_ptr<Store>> readers_ ABSL_GUARDED_BY(readers_mu_);
  bool no_readers_ ABSL_GUARDED_BY(readers_mu_) = false;
};

// The scheduler's lock, as every collaborator names its witness.
using Locked = SchedulerCore::Locked;

// Bytes of the run files `run` holds (those its record lists).
inline int64_t FileBytes(const v1::Run& run) {
  int64_t bytes = 0;
  for (const v1::RunFile& file : run.files()) bytes += file.size();
  return bytes;
}

// A run status's name ("SUCCEEDED").
std::string StatusName(v1::RunStatus status);

// A sweep by its id or its name (the newest of that name).
absl::StatusOr<v1::Sweep> FindSweepByRef(Store& store, const std::string& ref);

// The newest run of each member name among `runs` (id order) of `kind`,
// in first-seen order.
std::vector<const v1::Run*> NewestByMember(const std::vector<v1::Run>& runs,
                                           v1::ExperimentKind kind);

// A page size as a listing takes it: 0 for the default, at most
// kMaxPageSize; INVALID_ARGUMENT beyond.
absl::StatusOr<int> PageSize(int page_size);

// A page token that is a row's id (0 when empty); INVALID_ARGUMENT naming
// it otherwise.
absl::StatusOr<int64_t> RowToken(const std::string& token, const char* what);

// A tag key: 1 to kMaxTagKeyBytes letters, digits and _.-/:.
absl::Status CheckTagKey(const std::string& key);

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_SCHEDULER_CORE_H_
