#include "server/scheduling/leases.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "common/api.h"
#include "common/catalog.h"
#include "common/log.h"
#include "common/placement.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "common/version.h"
#include "server/scheduling/fair_share.h"
#include "server/scheduling/ingest.h"

namespace distill {
namespace {

// What a registering worker offers for placement: bounded, each label
// KEY=VALUE; INVALID_ARGUMENT naming the field otherwise.
absl::Status CheckOffer(const v1::RegisterWorkerRequest& request) {
  if (request.labels_size() > kMaxWorkerLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat("labels holds at most ", kMaxWorkerLabels, " labels, got ",
                     request.labels_size()));
  }
  for (const std::string& label : request.labels()) {
    if (absl::Status s = CheckLabel(label, "labels"); !s.ok()) return s;
  }
  if (request.device_memory_bytes() < 0 || request.cpu_cores() < 0 ||
      request.cpu_cores() > 1'000'000) {
    return absl::InvalidArgumentError(absl::StrCat(
        "device_memory_bytes must be >= 0 and cpu_cores 0 to 1000000, got ",
        request.device_memory_bytes(), " and ", request.cpu_cores()));
  }
  if (request.accelerator().size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("accelerator must be at most ", limits::kNameBytes,
                     " bytes, got ", request.accelerator().size()));
  }
  return absl::OkStatus();
}

// Where and from what an attempt runs; what an earlier attempt's worker
// reported of itself goes (its keys land in `*stale`).
void SetProvenance(v1::Run& run, const WorkerRecord& worker,
                   std::map<std::string, std::string>* stale) {
  auto& p = *run.mutable_provenance();
  namespace k = provenance;
  p[k::kCoordinatorVersion] = DistillVersion();
  p[k::kWorkerVersion] = worker.distill_version;
  p[k::kWorker] = worker.id;
  p[k::kHost] = worker.hostname;
  p[k::kDevice] = worker.device;
  p[k::kThreads] = absl::StrCat(worker.threads);
  p[k::kLibTorch] = worker.libtorch_version;
  p[k::kBlas] = worker.blas;
  p[k::kSpecSha256] = Sha256Hex(run.spec().SerializeAsString());
  for (const char* key : k::kWorkerKeys) {
    if (p.erase(std::string(key)) > 0) stale->emplace(key, "");
  }
}

// A worker this coordinator can serve: FAILED_PRECONDITION naming both
// builds and what to upgrade otherwise.
absl::Status CheckProtocol(const v1::RegisterWorkerRequest& request) {
  const int protocol =
      request.protocol_version() == 0 ? 1 : request.protocol_version();
  if (protocol >= kMinWorkerProtocol && protocol <= kWorkerProtocol) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "version skew: worker ",
      request.distill_version().empty() ? "(no version)"
                                        : request.distill_version(),
      " speaks worker protocol ", protocol, "; this coordinator (",
      DistillVersion(), ") serves protocols ", kMinWorkerProtocol, " to ",
      kWorkerProtocol, ": upgrade the ",
      protocol > kWorkerProtocol ? "coordinator" : "worker"));
}

}  // namespace

absl::StatusOr<v1::RegisterWorkerResponse> Leases::Register(
    const v1::RegisterWorkerRequest& request, int64_t caller) {
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string*>{"hostname",
                                                   &request.hostname()},
        {"device", &request.device()},
        {"libtorch_version", &request.libtorch_version()},
        {"blas", &request.blas()},
        {"distill_version", &request.distill_version()}}) {
    if (value->size() > limits::kNameBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be at most ", limits::kNameBytes,
                       " bytes, got ", value->size()));
    }
  }
  if (absl::Status s = CheckProtocol(request); !s.ok()) return s;
  if (absl::Status s = CheckOffer(request); !s.ok()) return s;
  Locked lock(&core_);
  const int64_t now = core_.clock().NowMs();
  WorkerRecord worker;
  worker.hostname = request.hostname().empty() ? "unknown" : request.hostname();
  worker.distill_version = request.distill_version();
  worker.id =
      absl::StrCat(worker.hostname, "-",
                   Sha256Hex(absl::StrCat(worker.hostname, now, registrations_,
                                          request.device()))
                       .substr(0, 8));
  worker.device = request.device();
  worker.threads = request.threads();
  worker.libtorch_version = request.libtorch_version();
  worker.blas = request.blas();
  worker.labels = {request.labels().begin(), request.labels().end()};
  std::sort(worker.labels.begin(), worker.labels.end());
  worker.device_memory_bytes = request.device_memory_bytes();
  worker.accelerator = request.accelerator();
  worker.cpu_cores = request.cpu_cores();
  worker.registered_ms = worker.last_seen_ms = now;
  worker.token_id = caller;
  if (absl::Status s = core_.Write([&] {
        core_.AssertHeld();
        return core_.store().UpsertWorker(worker);
      });
      !s.ok()) {
    return s;
  }
  core_.RememberWorkerLocked(lock, worker.id, caller);
  ++registrations_;
  v1::RegisterWorkerResponse response;
  response.set_worker_id(worker.id);
  response.set_heartbeat_interval_ms(core_.options().heartbeat_interval_ms);
  response.set_lease_duration_ms(core_.options().lease_duration_ms);
  response.set_coordinator_version(DistillVersion());
  response.set_protocol_version(kWorkerProtocol);
  return response;
}

absl::Status Leases::Expire() {
  Locked lock(&core_);
  if (absl::Status s = ExpireLocked(lock); !s.ok()) return s;
  // The periodic work of fair share and preemption: here, on the
  // coordinator's once-a-second tick, not on a lease's path.
  return AccrueLocked(lock);
}

absl::Status Leases::AccrueLocked(const Locked& lock) {
  const int64_t now = core_.clock().NowMs();
  if (now < last_accrual_ms_) last_accrual_ms_ = now;  // A clock set back.
  const int64_t elapsed = now - last_accrual_ms_;
  if (elapsed < kAccrualIntervalMs) return absl::OkStatus();
  last_accrual_ms_ = now;
  // Lost with a power cut before the WAL's next sync: a second of use.
  if (absl::Status s = core_.Write(
          [&] {
            core_.AssertHeld();
            return core_.store().AccrueUsage(
                DecayOver(elapsed, core_.options().fair_share_half_life_ms),
                elapsed);
          },
          Store::Durability::kInWal);
      !s.ok()) {
    return s;
  }
  preemption_.AssertHeld();
  return preemption_.PlanLocked(lock);
}

absl::Status Leases::ExpireLocked(const Locked& lock) {
  absl::StatusOr<std::vector<v1::Run>> expired =
      core_.store().ExpiredLeases(core_.clock().NowMs());
  if (!expired.ok()) return expired.status();
  if (expired->empty()) return absl::OkStatus();
  // One transaction for them all, and no fsync under the lock: a lost
  // expiry (a power cut before the WAL's next sync) is made again by the
  // next call, the lease being as expired then.
  return core_.Write(
      [&]() -> absl::Status {
        core_.AssertHeld();
        for (v1::Run& run : *expired) {
          if (core_.metrics() != nullptr) core_.metrics()->LeaseExpired();
          const int max_restarts = run.spec().max_restarts();  // Resolved.
          const std::string what =
              absl::StrCat("the lease of attempt ", run.attempt(),
                           " on worker ", run.worker_id(), " expired");
          absl::Status s =
              run.attempt() - run.releases() > max_restarts
                  ? core_.FinishLocked(
                        lock, run, v1::FAILED,
                        absl::StrCat("LOST: ", what, " and max_restarts (",
                                     max_restarts, ") is spent"))
                  : core_.RequeueLocked(lock, run,
                                        absl::StrCat(what, "; queued again"),
                                        /*released=*/false);
          if (!s.ok()) return s;
        }
        return absl::OkStatus();
      },
      Store::Durability::kInWal);
}

absl::StatusOr<v1::LeaseRunResponse> Leases::Lease(const std::string& worker_id,
                                                   int64_t caller) {
  // A granted lease is on disk before the worker hears of it; the fsync
  // outside the lock, shared with every commit before it.
  return core_.Durable(Grant(worker_id, caller));
}

absl::StatusOr<WorkerRecord> Leases::SeenLocked(const Locked& lock,
                                                const std::string& worker_id,
                                                int64_t caller) {
  absl::StatusOr<WorkerRecord> worker = core_.store().GetWorker(worker_id);
  if (!worker.ok()) return worker.status();
  if (worker->token_id != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker ", worker_id, " registered with another token"));
  }
  if (worker->stopped_ms != 0) {
    return absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " deregistered"));
  }
  // Seen now; written when it was last written a second ago or more (a
  // worker leasing in a loop is not one write per call), or with its lease.
  const int64_t now = core_.clock().NowMs();
  if (now - worker->last_seen_ms >= 1000) {
    worker->last_seen_ms = now;
    if (absl::Status s = core_.Write(
            [&] {
              core_.AssertHeld();
              return core_.store().UpsertWorker(*worker);
            },
            Store::Durability::kInWal);
        !s.ok()) {
      return s;
    }
  }
  return worker;
}

absl::StatusOr<v1::LeaseRunResponse> Leases::Grant(const std::string& worker_id,
                                                   int64_t caller) {
  Locked lock(&core_);
  absl::StatusOr<WorkerRecord> worker = SeenLocked(lock, worker_id, caller);
  if (!worker.ok()) return worker.status();
  // A worker runs one run at a time: one that asks for a run while the
  // store says it holds one never got the answer that leased it (the
  // coordinator went down, the call timed out). It gets that run again, at
  // the same attempt, instead of the run waiting for its lease to expire.
  if (absl::Status s = ExpireLocked(lock); !s.ok()) return s;
  absl::StatusOr<std::optional<v1::Run>> next =
      core_.store().RunHeldBy(worker_id);
  if (!next.ok()) return next.status();
  const bool again = next->has_value();
  v1::LeaseRunResponse response;
  if (core_.shutting_down()) return response;
  if (worker->draining) {
    response.set_drain_requested(true);
    return response;
  }
  if (!again) {
    // A run already training goes on; a new one waits for disk space.
    if (std::string paused = core_.disk().LeasingPaused(); !paused.empty()) {
      response.set_paused_reason(paused);
      return response;
    }
    // The first run in the queue's order (server/scheduling/fair_share.h) whose
    // requirements it meets.
    next = NextRunFor(core_.store(), core_.options(), OfferOf(*worker));
    if (!next.ok()) return next.status();
  }
  if (!next->has_value()) return response;
  if (absl::Status s = GrantLocked(lock, **next, *worker, again, &response);
      !s.ok()) {
    return s;
  }
  return response;
}

absl::Status Leases::GrantLocked(const Locked& lock, v1::Run& run,
                                 WorkerRecord& worker, bool again,
                                 v1::LeaseRunResponse* response) {
  Store& store = core_.store();
  const int64_t now = core_.clock().NowMs();
  std::map<std::string, std::string> stale;  // Keys to remove.
  if (again) {
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " leased again to worker " << worker.id
                      << ", which asked for a run while holding it";
  } else {
    run.set_status(v1::RUNNING);
    run.set_attempt(run.attempt() + 1);
    run.set_worker_id(worker.id);
    preemption_.AssertHeld();
    preemption_.LeasedLocked(lock, run.id());
    SetProvenance(run, worker, &stale);
  }
  run.set_lease_expires_ms(now + core_.options().lease_duration_ms);
  if (run.started_ms() == 0) run.set_started_ms(now);
  // The checkpoints it starts from: its teacher's, its student's.
  for (const auto& [source, key] :
       {std::pair{run.teacher_run_id(), provenance::kTeacherCheckpointSha256},
        std::pair{run.spec().student_run_id(),
                  provenance::kStudentCheckpointSha256}}) {
    if (source == 0) continue;
    absl::StatusOr<v1::Run> from = store.GetRun(source);
    if (!from.ok()) return from.status();
    if (source == run.teacher_run_id()) {
      response->set_teacher_checkpoint_sha256(from->checkpoint_sha256());
    } else {
      response->set_student_checkpoint_sha256(from->checkpoint_sha256());
    }
    (*run.mutable_provenance())[key] = from->checkpoint_sha256();
  }
  absl::StatusOr<RunFileRecord> resume =
      store.FindRunFile(run.id(), kResumeFile);
  if (resume.ok()) {
    response->set_resume_point_sha256(resume->sha256);
  } else if (!absl::IsNotFound(resume.status())) {
    return resume.status();
  } else if (absl::Status s = ForkStartLocked(lock, run, response); !s.ok()) {
    return s;
  }
  worker.last_seen_ms = now;
  if (absl::Status s = core_.Write(
          [&]() -> absl::Status {
            core_.AssertHeld();
            if (absl::Status s = store.UpsertWorker(worker); !s.ok()) return s;
            if (absl::Status s = store.SetProvenance(run.id(), stale); !s.ok())
              return s;
            return store.UpdateRun(run);
          },
          Store::Durability::kOnDisk);
      !s.ok()) {
    return s;
  }
  core_.RunChangedLocked(lock, run.id());
  if (core_.metrics() != nullptr && !again) {
    core_.metrics()->LeaseGranted(
        run.attempt() == 1 ? double(now - run.created_ms()) / 1000 : -1);
  }
  *response->mutable_run() = std::move(run);
  return absl::OkStatus();
}

absl::StatusOr<v1::HeartbeatResponse> Leases::Heartbeat(
    const v1::HeartbeatRequest& request, int64_t caller) {
  Locked lock(&core_);
  Store& store = core_.store();
  v1::HeartbeatResponse response;
  absl::StatusOr<v1::Run> run = store.GetRun(request.run_id());
  if (!run.ok()) return run.status();
  if ((run->status() == v1::CANCELLED || run->status() == v1::PRUNED) &&
      run->attempt() == request.attempt()) {
    if (absl::Status s = core_.CheckHolderLocked(lock, *run, caller); !s.ok())
      return s;
    response.set_cancel_requested(true);
    response.set_stop_reason(run->message());
    return response;
  }
  run = core_.CurrentLeaseLocked(lock, request.run_id(), request.attempt(),
                                 caller);
  if (!run.ok()) return run.status();
  const int64_t now = core_.clock().NowMs();
  run->set_lease_expires_ms(now + core_.options().lease_duration_ms);
  response.set_lease_expires_ms(run->lease_expires_ms());
  preemption_.AssertHeld();
  if (std::optional<std::string> why =
          preemption_.AskedLocked(lock, run->id(), run->attempt())) {
    response.set_yield_requested(true);
    response.set_yield_reason(*why);
  }
  // An extension lost to a power cut makes the lease expire sooner: safe.
  absl::Status s = core_.Write(
      [&]() -> absl::Status {
        core_.AssertHeld();
        if (absl::Status s = store.UpdateRun(*run); !s.ok()) return s;
        absl::StatusOr<WorkerRecord> worker = store.GetWorker(run->worker_id());
        if (!worker.ok()) return absl::OkStatus();
        worker->last_seen_ms = now;
        response.set_drain_requested(worker->draining);
        return store.UpsertWorker(*worker);
      },
      Store::Durability::kInWal);
  if (!s.ok()) return s;
  return response;
}

absl::Status Leases::Complete(const v1::CompleteRunRequest& request,
                              int64_t caller) {
  if (request.results_size() > limits::kResults) {
    return absl::InvalidArgumentError(
        absl::StrCat("a run reports at most ", limits::kResults,
                     " results, got ", request.results_size()));
  }
  for (const auto& [key, value] : request.results()) {
    if (absl::Status s = CheckMetric("results", key, value); !s.ok()) return s;
  }
  Locked lock(&core_);
  absl::StatusOr<v1::Run> run = core_.CurrentLeaseLocked(
      lock, request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // Every kind but EVALUATE ends with a checkpoint of the run.
  const bool needs_checkpoint = run->spec().kind() != v1::EVALUATE;
  // Looked up by run, not by digest: a deterministic run can write the very
  // bytes another run already uploaded.
  absl::StatusOr<RunFileRecord> checkpoint =
      core_.store().FindRunFile(request.run_id(), kCheckpointFile);
  if (needs_checkpoint &&
      (!checkpoint.ok() || checkpoint->sha256 != request.checkpoint_sha256() ||
       checkpoint->attempt != request.attempt())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", request.run_id(), " cannot complete: checkpoint \"",
        request.checkpoint_sha256(), "\" was not uploaded for it"));
  }
  run->set_checkpoint_sha256(request.checkpoint_sha256());
  for (const auto& [key, value] : request.results())
    (*run->mutable_results())[key] = value;
  return core_.Write([&] {
    core_.AssertHeld();
    return core_.FinishLocked(lock, *run, v1::SUCCEEDED, "");
  });
}

absl::Status Leases::Fail(const v1::FailRunRequest& request, int64_t caller) {
  Locked lock(&core_);
  absl::StatusOr<v1::Run> run = core_.CurrentLeaseLocked(
      lock, request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // A worker's message is kept whole up to a bound, so that no listing of
  // runs grows past what one answer may carry.
  std::string message = request.message().substr(0, limits::kMessageBytes);
  if (message.size() < request.message().size()) message += " [...]";
  return core_.Write([&] {
    core_.AssertHeld();
    return core_.FinishLocked(lock, *run, v1::FAILED, message);
  });
}

absl::Status Leases::Release(const v1::ReleaseRunRequest& request,
                             int64_t caller) {
  Locked lock(&core_);
  absl::StatusOr<v1::Run> run = core_.CurrentLeaseLocked(
      lock, request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // Queued again at once, with its resume point; the next lease is the next
  // attempt, and a release is no restart (nothing was lost).
  const std::string reason =
      request.reason().substr(0, limits::kMessageBytes / 4);
  const std::string message =
      absl::StrCat("attempt ", run->attempt(), " on worker ", run->worker_id(),
                   " handed back", reason.empty() ? "" : ": ", reason);
  // A hand-back lost to a power cut leaves the lease to expire: safe.
  if (absl::Status s = core_.Write(
          [&] {
            core_.AssertHeld();
            return core_.RequeueLocked(lock, *run, message, /*released=*/true);
          },
          Store::Durability::kInWal);
      !s.ok()) {
    return s;
  }
  if (core_.metrics() != nullptr) core_.metrics()->RunReleased();
  return absl::OkStatus();
}

absl::StatusOr<int64_t> Leases::ForgetStopped() {
  const int64_t after = core_.options().forget_stopped_workers_after_ms;
  if (after <= 0) return 0;
  Locked lock(&core_);
  int64_t forgotten = 0;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    absl::StatusOr<int64_t> n =
        core_.store().DeleteStoppedWorkers(core_.clock().NowMs() - after);
    if (!n.ok()) return n.status();
    forgotten = *n;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (forgotten > 0) {
    DISTILL_LOG(INFO) << "forgot " << forgotten << " worker(s) stopped over "
                      << absl::Milliseconds(after) << " ago";
  }
  return forgotten;
}

absl::Status Leases::Deregister(const std::string& worker_id, int64_t caller) {
  Locked lock(&core_);
  Store& store = core_.store();
  absl::StatusOr<WorkerRecord> worker = store.GetWorker(worker_id);
  if (!worker.ok()) return worker.status();
  if (worker->token_id != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker ", worker_id, " registered with another token"));
  }
  worker->stopped_ms = worker->last_seen_ms = core_.clock().NowMs();
  // A run the store says it holds (a lease answer it never got) is queued
  // again now: a stopped worker runs nothing.
  absl::StatusOr<std::optional<v1::Run>> held = store.RunHeldBy(worker_id);
  if (!held.ok()) return held.status();
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    if (absl::Status s = store.UpsertWorker(*worker); !s.ok()) return s;
    if (!held->has_value()) return absl::OkStatus();
    v1::Run& run = **held;
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " queued again: its worker " << worker_id
                      << " stopped without it";
    return core_.RequeueLocked(
        lock, run,
        absl::StrCat("attempt ", run.attempt(), " on worker ", worker_id,
                     " handed back: the worker stopped"),
        /*released=*/true);
  });
  if (!s.ok()) return s;
  core_.QueueChangedLocked(lock);
  return absl::OkStatus();
}

absl::Status Leases::ForkStartLocked(const Locked& lock, v1::Run& run,
                                     v1::LeaseRunResponse* response) {
  const v1::ForkSpec& fork = run.spec().fork();
  if (fork.run_id() == 0) return absl::OkStatus();
  Store& store = core_.store();
  const char* name = fork.continue_training() ? kStateFile : kCheckpointFile;
  absl::StatusOr<RunFileRecord> file = store.FindRunFile(fork.run_id(), name);
  if (!file.ok()) {
    // Dropped since the fork was accepted: its first attempt cannot start.
    return absl::FailedPreconditionError(
        absl::StrCat("run ", run.id(), " forks run ", fork.run_id(), ", whose ",
                     name, " is gone: ", file.status().message()));
  }
  if (fork.continue_training()) {
    response->set_resume_point_sha256(file->sha256);
  } else {
    response->set_student_checkpoint_sha256(file->sha256);
  }
  (*run.mutable_provenance())[provenance::kForkSha256] = file->sha256;
  return absl::OkStatus();
}

absl::StatusOr<v1::Worker> Leases::Drain(const std::string& worker_id) {
  Locked lock(&core_);
  Store& store = core_.store();
  absl::StatusOr<WorkerRecord> worker = store.GetWorker(worker_id);
  if (!worker.ok()) return worker.status();
  worker->draining = true;
  if (absl::Status s = core_.Write([&] {
        core_.AssertHeld();
        return store.UpsertWorker(*worker);
      });
      !s.ok()) {
    return s;
  }
  core_.QueueChangedLocked(lock);  // Wakes its long-poll.
  absl::StatusOr<std::optional<v1::Run>> held = store.RunHeldBy(worker_id);
  if (!held.ok()) return held.status();
  return reads_.WorkerInfo(*worker, held->has_value() ? (*held)->id() : 0);
}

absl::StatusOr<int> Leases::ExpireHosts(const std::string& prefix) {
  Locked lock(&core_);
  Store& store = core_.store();
  absl::StatusOr<std::vector<v1::Run>> running = store.ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  absl::StatusOr<std::vector<WorkerRecord>> workers = store.ListWorkers();
  if (!workers.ok()) return workers.status();
  int expired = 0;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    const int64_t now = core_.clock().NowMs();
    std::set<std::string> ended;  // The job's workers.
    for (WorkerRecord& worker : *workers) {
      if (worker.hostname.rfind(prefix, 0) != 0) continue;
      ended.insert(worker.id);
      if (worker.stopped_ms != 0) continue;
      worker.stopped_ms = now;
      if (absl::Status s = store.UpsertWorker(worker); !s.ok()) return s;
    }
    for (v1::Run& run : *running) {
      if (ended.count(run.worker_id()) == 0) continue;
      run.set_lease_expires_ms(now - 1);
      if (absl::Status s = store.UpdateRun(run); !s.ok()) return s;
      ++expired;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (expired > 0) {
    if (absl::Status s = ExpireLocked(lock); !s.ok()) return s;
  }
  return expired;
}

}  // namespace distill
