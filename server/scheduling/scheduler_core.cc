#include "server/scheduling/scheduler_core.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/api.h"
#include "common/log.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/run_status.h"

namespace distill {

SchedulerCore::SchedulerCore(Store* store, RunFileStore* run_files,
                             Clock* clock, SchedulerOptions options)
    : store_(store),
      run_files_(run_files),
      clock_(clock),
      options_(options),
      disk_(options_.min_free_disk_bytes, options_.free_disk_bytes,
            options_.metrics) {}

namespace {

// The commits this thread made under the lock that no Durable synced yet:
// SyncWal's argument.
thread_local int64_t unsynced_upto = 0;
// The sweeps whose runs this thread ended under the lock, for the notifier
// once Durable synced them.
thread_local std::vector<int64_t> ended_sweeps;

}  // namespace

SchedulerCore::Locked::Locked(SchedulerCore* core) : core_(core) {
  core_->mu_.Lock();
}

SchedulerCore::Locked::~Locked() {
  std::vector<int64_t> changed;
  changed.swap(core_->changed_runs_);
  if (core_->queue_changed_) changed.push_back(kQueueChanges);
  core_->queue_changed_ = false;
  core_->mu_.Unlock();
  for (int64_t run_id : changed) core_->hub_.Notify(run_id);
}

absl::Status SchedulerCore::Write(const std::function<absl::Status()>& fn,
                                  Store::Durability durability) {
  orphaned_.clear();
  // Never an fsync here: a durable commit is synced by Durable, after the
  // lock is released.
  const bool durable = durability != Store::Durability::kInWal;
  absl::Status status = store_->InTransaction(
      fn, durable ? Store::Durability::kSyncAfter : durability);
  if (durable)
    unsynced_upto = std::max(unsynced_upto, store_->UnsyncedCommits());
  if (status.ok()) {
    for (const std::string& sha256 : orphaned_) {
      if (absl::Status s = run_files_->Remove(sha256); !s.ok())
        DISTILL_LOG(WARNING) << s.message();
    }
  }
  orphaned_.clear();
  return status;
}

absl::Status SchedulerCore::Durable(absl::Status result) {
  const int64_t upto = std::exchange(unsynced_upto, 0);
  const std::vector<int64_t> ended = std::exchange(ended_sweeps, {});
  // Told after the sync: what the notifier then reads is on disk.
  absl::Cleanup tell = [&] {
    for (int64_t sweep : ended) {
      if (!options_.sweep_run_ended->Push(sweep) && metrics() != nullptr)
        metrics()->Notified("dropped");
    }
  };
  if (upto == 0) return result;
  // The writer's store, outside the lock: SyncWal is safe from any thread.
  absl::Status synced = store_->SyncWal(upto);
  if (!synced.ok()) {
    DISTILL_LOG(ERROR) << "a commit could not be synced: " << synced.message();
    return result.ok() ? synced : result;
  }
  return result;
}

int64_t SchedulerCore::UnsyncedOnThisThread() { return unsynced_upto; }

std::unique_ptr<Store> SchedulerCore::TakeReader() {
  absl::MutexLock lock(&readers_mu_);
  if (!readers_.empty()) {
    std::unique_ptr<Store> reader = std::move(readers_.back());
    readers_.pop_back();
    return reader;
  }
  if (no_readers_) return nullptr;
  absl::StatusOr<std::unique_ptr<Store>> reader = store_->OpenReader();
  if (!reader.ok()) {
    // An in-memory database: reads share the writer.
    if (absl::IsFailedPrecondition(reader.status()))
      no_readers_ = true;
    else
      DISTILL_LOG(WARNING) << reader.status().message();
    return nullptr;
  }
  return *std::move(reader);
}

void SchedulerCore::ReturnReader(std::unique_ptr<Store> reader) {
  absl::MutexLock lock(&readers_mu_);
  readers_.push_back(std::move(reader));
}

absl::Status SchedulerCore::Read(
    const std::function<absl::Status(Store&)>& fn) {
  if (std::unique_ptr<Store> reader = TakeReader(); reader != nullptr) {
    absl::Status s = reader->InTransaction([&] { return fn(*reader); });
    ReturnReader(std::move(reader));
    return s;
  }
  Locked lock(this);
  return fn(store());
}

absl::Status SchedulerCore::FinishLocked(const Locked& lock, v1::Run& run,
                                         v1::RunStatus status,
                                         const std::string& message) {
  run.set_status(status);
  run.set_message(message);
  run.set_finished_ms(clock_->NowMs());
  run.set_lease_expires_ms(0);
  if (absl::Status s = store_->UpdateRun(run); !s.ok()) return s;
  // The notifier checks whether the sweep ended, once this call's commits
  // are synced (Durable).
  if (run.sweep_id() != 0 && options_.sweep_run_ended != nullptr)
    ended_sweeps.push_back(run.sweep_id());
  // A run that ended keeps no resume point; one that did not succeed keeps
  // no file at all (what it uploaded serves nobody, and must not pile up).
  absl::StatusOr<std::vector<std::string>> gone = store_->DeleteRunFiles(
      run.id(), status == v1::SUCCEEDED ? kResumeFile : "", "");
  if (!gone.ok()) return gone.status();
  OrphanLocked(lock, *gone);
  absl::StatusOr<std::vector<v1::Run>> dependents =
      store_->RunsWithTeacher(run.id());
  if (!dependents.ok()) return dependents.status();
  for (v1::Run& dependent : *dependents) {
    if (dependent.status() != v1::WAITING) continue;
    if (status == v1::SUCCEEDED) {
      dependent.set_status(v1::QUEUED);
      if (absl::Status s = store_->UpdateRun(dependent); !s.ok()) return s;
    } else {
      const std::string why = absl::StrCat("teacher run ", run.id(), " ended ",
                                           StatusName(status), ": ", message);
      if (absl::Status s = FinishLocked(lock, dependent, v1::FAILED, why);
          !s.ok())
        return s;
    }
    RunChangedLocked(lock, dependent.id());
  }
  QueueChangedLocked(lock);
  RunChangedLocked(lock, run.id());
  return absl::OkStatus();
}

absl::Status CheckMayChange(const Requester& who, const std::string& owner,
                            const std::string& what) {
  if (who.admin || who.name == owner) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      what, " belongs to ", owner, "; ", who.name,
      " may change only their own runs and sweeps (an admin may change any)"));
}

void SetQueuedAgain(v1::Run& run, const std::string& message) {
  run.set_status(v1::QUEUED);
  run.set_message(message);
  run.set_worker_id("");
  run.set_lease_expires_ms(0);
}

absl::Status SchedulerCore::RequeueLocked(const Locked& lock, v1::Run& run,
                                          const std::string& message,
                                          bool released) {
  SetQueuedAgain(run, message);
  if (released) run.set_releases(run.releases() + 1);
  if (absl::Status s = store_->UpdateRun(run); !s.ok()) return s;
  QueueChangedLocked(lock);
  RunChangedLocked(lock, run.id());
  return absl::OkStatus();
}

absl::StatusOr<v1::Run> SchedulerCore::InsertRunLocked(const Locked& lock,
                                                       v1::Run run) {
  run.set_created_ms(clock_->NowMs());
  absl::StatusOr<int64_t> id = store_->InsertRun(run);
  if (!id.ok()) return id.status();
  run.set_id(*id);
  return run;
}

absl::StatusOr<v1::RunStatus> SchedulerCore::StatusBehindTeacherLocked(
    const Locked& lock, int64_t teacher_run_id) {
  absl::StatusOr<v1::Run> teacher = store_->GetRun(teacher_run_id);
  if (!teacher.ok()) {
    return absl::NotFoundError(
        absl::StrCat("teacher.run_id ", teacher_run_id, ": no such run"));
  }
  if (teacher->spec().kind() != v1::TRAIN_TEACHER) {
    return absl::InvalidArgumentError(
        absl::StrCat("teacher.run_id ", teacher_run_id, " is a ",
                     v1::ExperimentKind_Name(teacher->spec().kind()),
                     " run, not TRAIN_TEACHER"));
  }
  switch (teacher->status()) {
    case v1::SUCCEEDED:
      if (absl::Status s =
              CheckpointKeptLocked(lock, *teacher, "teacher.run_id");
          !s.ok()) {
        return s;
      }
      return v1::QUEUED;
    case v1::FAILED:
    case v1::CANCELLED:
    case v1::PRUNED:
      return absl::FailedPreconditionError(absl::StrCat(
          "teacher run ", teacher_run_id, " ended ",
          StatusName(teacher->status()), ": ", teacher->message()));
    default:
      return v1::WAITING;
  }
}

absl::Status SchedulerCore::CheckpointKeptLocked(const Locked& lock,
                                                 const v1::Run& run,
                                                 const char* field) {
  absl::StatusOr<RunFileRecord> checkpoint =
      store_->FindRunFile(run.id(), kCheckpointFile);
  if (!absl::IsNotFound(checkpoint.status())) return checkpoint.status();
  auto dropped = run.provenance().find(provenance::kRetention);
  return absl::FailedPreconditionError(absl::StrCat(
      field, " ", run.id(), " has no checkpoint",
      dropped == run.provenance().end() ? ""
                                        : absl::StrCat(": ", dropped->second)));
}

namespace {

// The first field a continued fork must share with its parent that it does
// not, as "student.width (parent 16, here 32)"; empty when all agree.
std::string ForkMismatch(const v1::ExperimentSpec& parent,
                         const v1::ExperimentSpec& spec) {
  const v1::DatasetSpec& a = parent.dataset();
  const v1::DatasetSpec& b = spec.dataset();
  const v1::StudentSpec& p = parent.student();
  const v1::StudentSpec& q = spec.student();
  const std::pair<const char*, std::pair<std::string, std::string>> fields[] = {
      {"dataset.name", {a.name(), b.name()}},
      {"dataset.root", {a.root(), b.root()}},
      {"dataset.train_limit",
       {absl::StrCat(a.train_limit()), absl::StrCat(b.train_limit())}},
      {"dataset.image_size",
       {absl::StrCat(a.image_size()), absl::StrCat(b.image_size())}},
      {"batch_size",
       {absl::StrCat(parent.batch_size()), absl::StrCat(spec.batch_size())}},
      {"student.arch", {p.arch(), q.arch()}},
      {"student.width", {absl::StrCat(p.width()), absl::StrCat(q.width())}},
      {"student.embedding_dim",
       {absl::StrCat(p.embedding_dim()), absl::StrCat(q.embedding_dim())}},
      {"student.stem", {v1::Stem_Name(p.stem()), v1::Stem_Name(q.stem())}},
      {"optimizer.kind",
       {v1::OptimizerKind_Name(parent.optimizer().kind()),
        v1::OptimizerKind_Name(spec.optimizer().kind())}}};
  for (const auto& [field, values] : fields) {
    if (values.first != values.second) {
      return absl::StrCat(field, " (parent ", values.first, ", here ",
                          values.second, ")");
    }
  }
  return "";
}

}  // namespace

absl::Status SchedulerCore::CheckForkLocked(const Locked& lock,
                                            const v1::ExperimentSpec& spec) {
  const int64_t id = spec.fork().run_id();
  if (id == 0) return absl::OkStatus();
  absl::StatusOr<v1::Run> parent = store_->GetRun(id);
  if (!parent.ok()) {
    return absl::NotFoundError(
        absl::StrCat("fork.run_id ", id, ": no such run"));
  }
  if (parent->spec().kind() != v1::DISTILL ||
      parent->status() != v1::SUCCEEDED) {
    return absl::FailedPreconditionError(
        absl::StrCat("fork.run_id ", id, " is a ",
                     v1::ExperimentKind_Name(parent->spec().kind()),
                     " run that is ", StatusName(parent->status()),
                     "; a fork starts from a SUCCEEDED "
                     "DISTILL run"));
  }
  if (absl::Status s = CheckpointKeptLocked(lock, *parent, "fork.run_id");
      !s.ok()) {
    return s;
  }
  if (!spec.fork().continue_training()) return absl::OkStatus();
  if (const std::string differs = ForkMismatch(parent->spec(), spec);
      !differs.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a fork that continues run ", id, " trains what it trained; ", differs,
        " differs (fork without --continue to change it)"));
  }
  if (spec.epochs() <= parent->spec().epochs()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "epochs must be more than run ", id, "'s ", parent->spec().epochs(),
        " to continue it, got ", spec.epochs()));
  }
  absl::StatusOr<RunFileRecord> state = store_->FindRunFile(id, kStateFile);
  if (absl::IsNotFound(state.status())) {
    auto dropped = parent->provenance().find(provenance::kRetention);
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", id, " kept no training state to continue from",
        dropped != parent->provenance().end()
            ? absl::StrCat(": ", dropped->second)
            : " (it ended before this coordinator kept one); fork without "
              "--continue to start from its weights"));
  }
  return state.status();
}

void SchedulerCore::OrphanLocked(const Locked& lock,
                                 const std::vector<std::string>& sha256s) {
  orphaned_.insert(orphaned_.end(), sha256s.begin(), sha256s.end());
}

void SchedulerCore::RememberWorkerLocked(const Locked& lock,
                                         const std::string& worker_id,
                                         int64_t caller) {
  worker_tokens_[worker_id] = caller;
}

absl::Status SchedulerCore::CheckHolderLocked(const Locked& lock,
                                              const v1::Run& run,
                                              int64_t caller) {
  auto it = worker_tokens_.find(run.worker_id());
  if (it == worker_tokens_.end()) {
    absl::StatusOr<WorkerRecord> worker = store_->GetWorker(run.worker_id());
    if (!worker.ok() && !absl::IsNotFound(worker.status()))
      return worker.status();
    // A run leased to no known worker belongs to no token.
    it = worker_tokens_
             .emplace(run.worker_id(), worker.ok() ? worker->token_id : -1)
             .first;
  }
  if (it->second != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("run ", run.id(), " is leased to worker ", run.worker_id(),
                     ", which registered with another token"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Run> SchedulerCore::CurrentLeaseLocked(const Locked& lock,
                                                          int64_t run_id,
                                                          int32_t attempt,
                                                          int64_t caller) {
  absl::StatusOr<v1::Run> run = store_->GetRun(run_id);
  if (!run.ok()) return run.status();
  if (run->status() != v1::RUNNING || run->attempt() != attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_id, " attempt ", attempt, " holds no lease: the run is ",
        StatusName(run->status()), " at attempt ", run->attempt()));
  }
  if (absl::Status s = CheckHolderLocked(lock, *run, caller); !s.ok()) return s;
  return run;
}

std::string StatusName(v1::RunStatus status) {
  return v1::RunStatus_Name(status);
}

absl::StatusOr<v1::Sweep> FindSweepByRef(Store& store, const std::string& ref) {
  int64_t id;
  return absl::SimpleAtoi(ref, &id) ? store.GetSweep(id) : store.FindSweep(ref);
}

std::vector<const v1::Run*> NewestByMember(const std::vector<v1::Run>& runs,
                                           v1::ExperimentKind kind) {
  absl::flat_hash_map<std::string, size_t> slot;
  std::vector<const v1::Run*> newest;
  for (const v1::Run& run : runs) {
    if (run.spec().kind() != kind) continue;
    auto [it, added] = slot.try_emplace(run.member(), newest.size());
    if (added) {
      newest.push_back(&run);
    } else {
      newest[it->second] = &run;
    }
  }
  return newest;
}

absl::StatusOr<int> PageSize(int page_size) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 0 (the default, ", kDefaultPageSize,
                     ") to ", kMaxPageSize, ", got ", page_size));
  }
  return page_size == 0 ? kDefaultPageSize : page_size;
}

absl::StatusOr<int64_t> RowToken(const std::string& token, const char* what) {
  int64_t row = 0;
  if (!token.empty() && (!absl::SimpleAtoi(token, &row) || row <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", token.substr(0, 64), "\" is not one a ",
                     what, " listing answered"));
  }
  return row;
}

absl::Status CheckTagKey(const std::string& key) {
  const bool ok =
      !key.empty() && key.size() <= kMaxTagKeyBytes &&
      std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isalnum(c) ||
               std::string_view("_.-/:").find(c) != std::string_view::npos;
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("tag key \"", key.substr(0, 64), "\" must be 1 to ",
                   kMaxTagKeyBytes, " letters, digits and _.-/:"));
}

}  // namespace distill
