#include "server/services.h"

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/grpc_status.h"
#include "common/run_files.h"
#include "common/token.h"
#include "server/no_throw.h"

namespace distill {
namespace {

// Longest a LeaseRun long-poll may hold a request.
constexpr absl::Duration kMaxLeaseWait = absl::Seconds(60);

// Copies a StatusOr's value into `*out`, or returns its status.
template <typename T, typename U>
grpc::Status Reply(absl::StatusOr<T> result, U* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

// Finishes a unary call of the callback API now, with `status`.
grpc::ServerUnaryReactor* Finished(grpc::CallbackServerContext* context,
                                   const grpc::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// Finishes a unary call with what `body` returns, run on `pool`: the
// handler's reads and writes wait there, not in a gRPC reaction (where a
// long listing would hold up every call behind it). `body` captures by
// value: the handler has returned when it runs. An exception `body` lets
// through fails the call (NoThrow), not the process.
grpc::ServerUnaryReactor* OnPool(grpc::CallbackServerContext* context,
                                 TaskPool* pool, const char* rpc,
                                 std::function<grpc::Status()> body) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  pool->Schedule([reactor, rpc, body = std::move(body)] {
    reactor->Finish(NoThrow(rpc, body));
  });
  return reactor;
}

// Whom the limits on open calls count against: the token, or the host
// where the coordinator runs without tokens.
absl::StatusOr<PeerLimiter::Slot> AcquireSlot(
    PeerLimiter& limiter, const Principal& caller,
    const grpc::ServerContextBase& c) {
  if (caller.token_id == 0) return limiter.Acquire(c.peer());
  return limiter.AcquireFor(
      absl::StrCat("token \"", caller.name, "\" (id ", caller.token_id, ")"));
}

// A server stream refused before it began.
template <typename Message>
class Refused final : public grpc::ServerWriteReactor<Message> {
 public:
  explicit Refused(const absl::Status& status) {
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override { delete this; }
};

// A run file in chunks (messages with `data`), one read after each write.
template <typename Chunk>
class FileReactor final : public grpc::ServerWriteReactor<Chunk> {
 public:
  explicit FileReactor(std::unique_ptr<RunFileReader> reader)
      : reader_(std::move(reader)) {
    Next();
  }
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status::OK);  // The client went away.
      return;
    }
    Next();
  }
  void OnDone() override { delete this; }

 private:
  void Next() {
    absl::StatusOr<std::string> data = NoThrow("a run file's download", [&] {
      return reader_->Read(kFileChunkBytes);
    });
    if (!data.ok()) {
      this->Finish(ToGrpcStatus(data.status()));
      return;
    }
    if (data->empty()) {
      this->Finish(grpc::Status::OK);
      return;
    }
    chunk_.set_data(*std::move(data));
    this->StartWrite(&chunk_);
  }

  std::unique_ptr<RunFileReader> reader_;
  Chunk chunk_;
};

// An upload: the header in the first chunk, then the bytes; the file
// counts once its digest and the lease were checked again at the end.
class UploadReactor final : public grpc::ServerReadReactor<v1::RunFileChunk> {
 public:
  UploadReactor(Scheduler* scheduler, const absl::StatusOr<Principal>& caller,
                v1::UploadRunFileResponse* response)
      : scheduler_(scheduler), response_(response) {
    if (!caller.ok()) {
      Finish(ToGrpcStatus(caller.status()));
      return;
    }
    caller_ = caller->token_id;
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {  // The stream ended: the file is whole, or it never began.
      if (writer_ == nullptr) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the first run-file chunk must carry the header"));
        return;
      }
      absl::Status s = NoThrow("UploadRunFile", [&] {
        return scheduler_->FinishUpload(header_, *writer_, caller_);
      });
      if (s.ok()) response_->set_sha256(header_.sha256());
      Finish(ToGrpcStatus(s));
      return;
    }
    if (writer_ == nullptr) {
      if (!chunk_.has_header()) {
        Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            "the first run-file chunk must carry the header"));
        return;
      }
      header_ = chunk_.header();
      absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
          NoThrow("UploadRunFile",
                  [&] { return scheduler_->BeginUpload(header_, caller_); });
      if (!writer.ok()) {
        Finish(ToGrpcStatus(writer.status()));
        return;
      }
      writer_ = *std::move(writer);
    }
    if (absl::Status s = NoThrow(
            "UploadRunFile", [&] { return writer_->Append(chunk_.data()); });
        !s.ok()) {
      Finish(ToGrpcStatus(s));
      return;
    }
    StartRead(&chunk_);
  }

  void OnDone() override { delete this; }

 private:
  Scheduler* const scheduler_;
  v1::UploadRunFileResponse* const response_;
  int64_t caller_ = 0;
  v1::RunFileChunk chunk_;
  v1::RunFileHeader header_;
  std::unique_ptr<RunFileWriter> writer_;
};

// A LeaseRun: it asks the scheduler on the task pool at once; with nothing
// queued it waits holding no thread, and asks again each time the queue
// changes (the hub's kQueueChanges); at its deadline it answers no run.
// Its state is shared with the hub's callback and the pool's timer, which
// may outlive the call.
class LeasePoll final : public grpc::ServerUnaryReactor {
 public:
  static LeasePoll* Start(Scheduler* scheduler, TaskPool* pool,
                          std::string worker_id, int64_t caller,
                          absl::Duration wait, v1::LeaseRunResponse* response,
                          PeerLimiter::Slot slot) {
    auto* poll = new LeasePoll;
    auto state = std::make_shared<State>();
    state->scheduler = scheduler;
    state->pool = pool;
    state->worker_id = std::move(worker_id);
    state->caller = caller;
    state->response = response;
    state->reactor = poll;
    state->slot.emplace(std::move(slot));
    state->deadline = absl::Now() + wait;
    poll->state_ = state;
    if (wait > absl::ZeroDuration()) {
      state->subscription = scheduler->watch_hub().Subscribe(
          Scheduler::kQueueChanges, [state] { Poke(state); });
      pool->ScheduleAt(state->deadline, [state] { Poke(state); });
    }
    Poke(state);  // The first look.
    return poll;
  }

  void OnCancel() override {
    {
      absl::MutexLock lock(&state_->mu);
      state_->cancelled = true;
    }
    Poke(state_);
  }
  void OnDone() override { delete this; }

 private:
  struct State {
    Scheduler* scheduler;
    TaskPool* pool;
    std::string worker_id;
    int64_t caller;
    v1::LeaseRunResponse* response;  // Until finished.
    LeasePoll* reactor;              // Until finished.
    std::optional<PeerLimiter::Slot> slot;
    int64_t subscription = 0;  // 0: none.
    absl::Time deadline;
    absl::Mutex mu;
    bool busy ABSL_GUARDED_BY(mu) = false;
    bool dirty ABSL_GUARDED_BY(mu) = false;
    bool cancelled ABSL_GUARDED_BY(mu) = false;
    bool finished ABSL_GUARDED_BY(mu) = false;
  };

  LeasePoll() = default;

  // From the hub (under its lock), the timer or OnCancel: never blocks.
  static void Poke(const std::shared_ptr<State>& state) {
    absl::MutexLock lock(&state->mu);
    state->dirty = true;
    if (state->busy || state->finished) return;
    state->busy = true;
    state->pool->Schedule([state] { Attempt(state); });
  }

  // On the pool, busy: asks again until nothing changed meanwhile.
  static void Attempt(const std::shared_ptr<State>& state) {
    while (true) {
      bool cancelled;
      {
        absl::MutexLock lock(&state->mu);
        state->dirty = false;
        cancelled = state->cancelled;
      }
      const bool timed_out = absl::Now() >= state->deadline;
      if (cancelled) {
        End(state, grpc::Status(grpc::StatusCode::CANCELLED,
                                "the worker gave up on its LeaseRun"));
        return;
      }
      absl::StatusOr<v1::LeaseRunResponse> now = NoThrow("LeaseRun", [&] {
        return state->scheduler->LeaseRun(state->worker_id, state->caller);
      });
      if (!now.ok() || now->has_run() || now->drain_requested() || timed_out ||
          state->scheduler->shutting_down()) {
        End(state, Reply(std::move(now), state->response));
        return;
      }
      absl::MutexLock lock(&state->mu);
      if (!state->dirty) {
        state->busy = false;
        return;
      }
    }
  }

  // Once, from the busy attempt: no more pokes, then Finish.
  static void End(const std::shared_ptr<State>& state, grpc::Status status) {
    if (state->subscription != 0)
      state->scheduler->watch_hub().Unsubscribe(state->subscription);
    LeasePoll* reactor;
    {
      absl::MutexLock lock(&state->mu);
      state->finished = true;
      reactor = state->reactor;
      state->reactor = nullptr;
      state->response = nullptr;
      state->slot.reset();
    }
    reactor->Finish(std::move(status));
  }

  std::shared_ptr<State> state_;
};

// A watch: its first event at once, then one whenever the run changed
// (the watch hub pokes it), each read on the task pool; it ends with the
// run. At most one read or write is under way at a time (`busy_`); a poke
// meanwhile marks it `dirty_` and is served when that ends.
class WatchReactor final : public grpc::ServerWriteReactor<v1::RunEvent> {
 public:
  WatchReactor(Scheduler* scheduler, TaskPool* pool, int64_t run_id,
               WatchCursor cursor, PeerLimiter::Slot slot)
      : scheduler_(scheduler),
        pool_(pool),
        run_id_(run_id),
        cursor_(cursor),
        slot_(std::move(slot)) {
    subscription_ =
        scheduler_->watch_hub().Subscribe(run_id_, [this] { Poke(); });
    Poke();
  }

  void OnWriteDone(bool ok) override {
    if (!ok || last_) {
      End(grpc::Status::OK);  // The client went away, or the run ended.
      return;
    }
    absl::MutexLock lock(&mu_);
    busy_ = false;
    if (dirty_ || cancelled_) ScheduleLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (!busy_ && !ended_) ScheduleLocked();
  }

  void OnDone() override { delete this; }

 private:
  // From the hub (under its lock): never blocks, never calls the hub.
  void Poke() {
    absl::MutexLock lock(&mu_);
    dirty_ = true;
    if (!busy_ && !ended_) ScheduleLocked();
  }

  void ScheduleLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    busy_ = true;
    pool_->Schedule([this] { Produce(); });
  }

  // On the pool, with busy_ set: reads until there is an event to write.
  void Produce() {
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (cancelled_) break;
        dirty_ = false;
      }
      absl::StatusOr<std::optional<v1::RunEvent>> event =
          NoThrow("WatchRun",
                  [&] { return scheduler_->PollRunEvent(run_id_, &cursor_); });
      if (!event.ok()) {
        End(ToGrpcStatus(event.status()));
        return;
      }
      if (event->has_value()) {
        event_ = **std::move(event);
        last_ = IsTerminal(event_.run().status()) &&
                event_.metrics_size() < kPointsPerEvent;
        StartWrite(&event_);  // busy_ until OnWriteDone.
        return;
      }
      if (scheduler_->shutting_down()) {
        End(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                         "the coordinator is shutting down"));
        return;
      }
      absl::MutexLock lock(&mu_);
      if (!dirty_ && !cancelled_) {
        busy_ = false;
        return;
      }
    }
    End(grpc::Status(grpc::StatusCode::CANCELLED, "the watch was cancelled"));
  }

  // Once, from whoever is busy: no more pokes, then Finish (after which
  // OnDone may delete this at any moment).
  void End(grpc::Status status) {
    scheduler_->watch_hub().Unsubscribe(subscription_);
    {
      absl::MutexLock lock(&mu_);
      ended_ = true;
    }
    Finish(std::move(status));
  }

  Scheduler* const scheduler_;
  TaskPool* const pool_;
  const int64_t run_id_;
  WatchCursor cursor_;  // Touched only by whoever is busy.
  PeerLimiter::Slot slot_;
  int64_t subscription_ = 0;
  v1::RunEvent event_;
  bool last_ = false;

  absl::Mutex mu_;
  bool busy_ ABSL_GUARDED_BY(mu_) = false;
  bool dirty_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

v1::Token ToProto(const TokenRecord& record) {
  v1::Token token;
  token.set_id(record.id);
  token.set_name(record.name);
  token.set_role(static_cast<v1::Role>(record.role));
  token.set_created_ms(record.created_ms);
  token.set_revoked_ms(record.revoked_ms);
  return token;
}

}  // namespace

// Returns from the handler unless the caller may do `permission`; else
// `caller` names them.
#define DISTILL_AUTHORIZE(caller, permission)                                \
  absl::StatusOr<Principal> caller = auth_->Authorize(*context, permission); \
  if (!caller.ok()) return ToGrpcStatus(caller.status())

grpc::ServerUnaryReactor* ExperimentServiceImpl::SubmitRun(
    grpc::CallbackServerContext* context, const v1::SubmitRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "SubmitRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->SubmitRun(request->spec()), response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::SubmitSweep(
    grpc::CallbackServerContext* context, const v1::SubmitSweepRequest* request,
    v1::SubmitSweepResponse* response) {
  return OnPool(
      context, &work_pool_, "SubmitSweep", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kChange);
        return Reply(scheduler_->SubmitSweep(request->spec()), response);
      });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::CancelSweep(
    grpc::CallbackServerContext* context, const v1::SweepRequest* request,
    v1::SweepActionResponse* response) {
  return OnPool(
      context, &work_pool_, "CancelSweep", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kChange);
        return Reply(scheduler_->CancelSweep(request->sweep()), response);
      });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::RetrySweep(
    grpc::CallbackServerContext* context, const v1::SweepRequest* request,
    v1::SweepActionResponse* response) {
  return OnPool(
      context, &work_pool_, "RetrySweep", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kChange);
        return Reply(scheduler_->RetrySweep(request->sweep()), response);
      });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::Annotate(
    grpc::CallbackServerContext* context, const v1::AnnotateRequest* request,
    v1::AnnotateResponse* response) {
  return OnPool(context, &work_pool_, "Annotate", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->Annotate(*request), response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetRun(
    grpc::CallbackServerContext* context, const v1::GetRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "GetRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kRead);
    return Reply(scheduler_->GetRun(request->id()), response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::ListRuns(
    grpc::CallbackServerContext* context, const v1::ListRunsRequest* request,
    v1::ListRunsResponse* response) {
  return OnPool(context, &bulk_pool_, "ListRuns", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kRead);
    absl::StatusOr<RunPage> page = scheduler_->FindRuns(*request);
    if (!page.ok()) return ToGrpcStatus(page.status());
    for (v1::Run& run : page->runs) *response->add_runs() = std::move(run);
    response->set_next_page_token(page->next_page_token);
    return grpc::Status::OK;
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetRunMetrics(
    grpc::CallbackServerContext* context,
    const v1::GetRunMetricsRequest* request,
    v1::GetRunMetricsResponse* response) {
  return OnPool(
      context, &bulk_pool_, "GetRunMetrics", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kRead);
        absl::StatusOr<MetricPage> page = scheduler_->MetricHistory(
            request->run_id(), request->page_token(), request->page_size());
        if (!page.ok()) return ToGrpcStatus(page.status());
        for (v1::MetricPoint& point : page->points)
          *response->add_points() = std::move(point);
        response->set_next_page_token(page->next_page_token);
        return grpc::Status::OK;
      });
}

grpc::ServerWriteReactor<v1::RunEvent>* ExperimentServiceImpl::WatchRun(
    grpc::CallbackServerContext* context, const v1::WatchRunRequest* request) {
  absl::StatusOr<Principal> caller =
      auth_->Authorize(*context, Permission::kRead);
  if (!caller.ok()) return new Refused<v1::RunEvent>(caller.status());
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(watches_, *caller, *context);
  if (!slot.ok()) return new Refused<v1::RunEvent>(slot.status());
  WatchCursor cursor;
  cursor.include_history = request->include_history();
  cursor.history_points_per_key = request->history_points_per_key();
  return new WatchReactor(scheduler_, &watch_pool_, request->id(), cursor,
                          *std::move(slot));
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::CancelRun(
    grpc::CallbackServerContext* context, const v1::CancelRunRequest* request,
    v1::Run* response) {
  return OnPool(context, &work_pool_, "CancelRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kChange);
    return Reply(scheduler_->CancelRun(request->id()), response);
  });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::GetSweepResults(
    grpc::CallbackServerContext* context,
    const v1::GetSweepResultsRequest* request, v1::SweepResults* response) {
  return OnPool(
      context, &bulk_pool_, "GetSweepResults", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kRead);
        return Reply(scheduler_->SweepResults(request->sweep()), response);
      });
}

grpc::ServerWriteReactor<v1::FileChunk>* ExperimentServiceImpl::DownloadRunFile(
    grpc::CallbackServerContext* context,
    const v1::DownloadRunFileRequest* request) {
  absl::StatusOr<Principal> caller =
      auth_->Authorize(*context, Permission::kRead);
  if (!caller.ok()) return new Refused<v1::FileChunk>(caller.status());
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      NoThrow("DownloadRunFile", [&] {
        return scheduler_->OpenRunFile(request->run_id(), request->name());
      });
  if (!reader.ok()) return new Refused<v1::FileChunk>(reader.status());
  return new FileReactor<v1::FileChunk>(*std::move(reader));
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::ListWorkers(
    grpc::CallbackServerContext* context, const v1::ListWorkersRequest* request,
    v1::ListWorkersResponse* response) {
  return OnPool(context, &bulk_pool_, "ListWorkers",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kRead);
                  absl::StatusOr<WorkerPage> page = scheduler_->ListWorkersPage(
                      request->page_token(), request->page_size());
                  if (!page.ok()) return ToGrpcStatus(page.status());
                  for (v1::Worker& worker : page->workers)
                    *response->add_workers() = std::move(worker);
                  response->set_next_page_token(page->next_page_token);
                  return grpc::Status::OK;
                });
}

grpc::ServerUnaryReactor* ExperimentServiceImpl::DrainWorker(
    grpc::CallbackServerContext* context, const v1::DrainWorkerRequest* request,
    v1::Worker* response) {
  return OnPool(
      context, &work_pool_, "DrainWorker", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kChange);
        return Reply(scheduler_->DrainWorker(request->id()), response);
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::RegisterWorker(
    grpc::CallbackServerContext* context,
    const v1::RegisterWorkerRequest* request,
    v1::RegisterWorkerResponse* response) {
  return OnPool(
      context, &work_pool_, "RegisterWorker", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return Reply(scheduler_->RegisterWorker(*request, caller->token_id),
                     response);
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::LeaseRun(
    grpc::CallbackServerContext* context, const v1::LeaseRunRequest* request,
    v1::LeaseRunResponse* response) {
  absl::StatusOr<Principal> caller =
      auth_->Authorize(*context, Permission::kWork);
  if (!caller.ok()) return Finished(context, ToGrpcStatus(caller.status()));
  absl::Duration wait =
      std::min(absl::Milliseconds(std::max<int64_t>(0, request->wait_ms())),
               kMaxLeaseWait);
  // Never hold the call past the client's own deadline.
  const absl::Duration until_deadline = absl::FromChrono(context->deadline()) -
                                        absl::Now() - absl::Milliseconds(200);
  wait = std::max(absl::ZeroDuration(), std::min(wait, until_deadline));
  absl::StatusOr<PeerLimiter::Slot> slot =
      AcquireSlot(long_polls_, *caller, *context);
  if (!slot.ok()) return Finished(context, ToGrpcStatus(slot.status()));
  return LeasePoll::Start(scheduler_, &poll_pool_, request->worker_id(),
                          caller->token_id, wait, response, *std::move(slot));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Heartbeat(
    grpc::CallbackServerContext* context, const v1::HeartbeatRequest* request,
    v1::HeartbeatResponse* response) {
  return OnPool(context, &work_pool_, "Heartbeat", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kWork);
    return Reply(scheduler_->Heartbeat(*request, caller->token_id), response);
  });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReportMetrics(
    grpc::CallbackServerContext* context,
    const v1::ReportMetricsRequest* request,
    v1::ReportMetricsResponse* response) {
  return OnPool(
      context, &work_pool_, "ReportMetrics", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(
            scheduler_->ReportMetrics(*request, caller->token_id, response));
      });
}

grpc::ServerReadReactor<v1::RunFileChunk>* WorkerServiceImpl::UploadRunFile(
    grpc::CallbackServerContext* context, v1::UploadRunFileResponse* response) {
  absl::StatusOr<Principal> caller =
      auth_->Authorize(*context, Permission::kWork);
  return new UploadReactor(scheduler_, caller, response);
}

grpc::ServerWriteReactor<v1::RunFileChunk>* WorkerServiceImpl::FetchRunFile(
    grpc::CallbackServerContext* context,
    const v1::FetchRunFileRequest* request) {
  absl::StatusOr<Principal> caller =
      auth_->Authorize(*context, Permission::kWork);
  if (!caller.ok()) return new Refused<v1::RunFileChunk>(caller.status());
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      NoThrow("FetchRunFile", [&] {
        return scheduler_->OpenRunFileByDigest(request->sha256(),
                                               caller->token_id);
      });
  if (!reader.ok()) return new Refused<v1::RunFileChunk>(reader.status());
  return new FileReactor<v1::RunFileChunk>(*std::move(reader));
}

grpc::ServerUnaryReactor* WorkerServiceImpl::CompleteRun(
    grpc::CallbackServerContext* context, const v1::CompleteRunRequest* request,
    v1::CompleteRunResponse*) {
  return OnPool(context, &work_pool_, "CompleteRun",
                [=, this]() -> grpc::Status {
                  DISTILL_AUTHORIZE(caller, Permission::kWork);
                  return ToGrpcStatus(
                      scheduler_->CompleteRun(*request, caller->token_id));
                });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::FailRun(
    grpc::CallbackServerContext* context, const v1::FailRunRequest* request,
    v1::FailRunResponse*) {
  return OnPool(context, &work_pool_, "FailRun", [=, this]() -> grpc::Status {
    DISTILL_AUTHORIZE(caller, Permission::kWork);
    return ToGrpcStatus(scheduler_->FailRun(*request, caller->token_id));
  });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::ReleaseRun(
    grpc::CallbackServerContext* context, const v1::ReleaseRunRequest* request,
    v1::ReleaseRunResponse*) {
  return OnPool(
      context, &work_pool_, "ReleaseRun", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(scheduler_->ReleaseRun(*request, caller->token_id));
      });
}

grpc::ServerUnaryReactor* WorkerServiceImpl::Deregister(
    grpc::CallbackServerContext* context, const v1::DeregisterRequest* request,
    v1::DeregisterResponse*) {
  return OnPool(
      context, &work_pool_, "Deregister", [=, this]() -> grpc::Status {
        DISTILL_AUTHORIZE(caller, Permission::kWork);
        return ToGrpcStatus(
            scheduler_->Deregister(request->worker_id(), caller->token_id));
      });
}

absl::StatusOr<std::pair<TokenRecord, std::string>> IssueToken(
    Scheduler& scheduler, Authenticator& auth, const std::string& name,
    v1::Role role) {
  if (name.empty() || name.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a token's name must be 1 to ", limits::kNameBytes,
                     " bytes, got ", name.size()));
  }
  if (role == v1::ROLE_UNSPECIFIED || !v1::Role_IsValid(role)) {
    return absl::InvalidArgumentError(
        absl::StrCat("role must be viewer, researcher, worker or admin, got ",
                     static_cast<int>(role)));
  }
  absl::StatusOr<std::string> secret = NewTokenSecret();
  if (!secret.ok()) return secret.status();
  TokenRecord record;
  record.name = name;
  record.role = role;
  record.sha256 = TokenDigest(*secret);
  absl::StatusOr<TokenRecord> stored = scheduler.InsertToken(record);
  if (!stored.ok()) return stored.status();
  auth.Add(*stored);
  return std::make_pair(*stored, *secret);
}

grpc::Status AdminServiceImpl::CreateToken(
    grpc::ServerContext* context, const v1::CreateTokenRequest* request,
    v1::CreateTokenResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  if (!auth_->enabled()) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                        "this coordinator runs without tokens (--auth=none)");
  }
  absl::StatusOr<std::pair<TokenRecord, std::string>> issued =
      NoThrow("CreateToken", [&] {
        return IssueToken(*scheduler_, *auth_, request->name(),
                          request->role());
      });
  if (!issued.ok()) return ToGrpcStatus(issued.status());
  *response->mutable_token() = ToProto(issued->first);
  response->set_secret(issued->second);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::ListTokens(grpc::ServerContext* context,
                                          const v1::ListTokensRequest* request,
                                          v1::ListTokensResponse* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  absl::StatusOr<TokenPage> page = NoThrow("ListTokens", [&] {
    return scheduler_->ListTokensPage(request->page_token(),
                                      request->page_size());
  });
  if (!page.ok()) return ToGrpcStatus(page.status());
  for (const TokenRecord& token : page->tokens)
    *response->add_tokens() = ToProto(token);
  response->set_next_page_token(page->next_page_token);
  return grpc::Status::OK;
}

grpc::Status AdminServiceImpl::RevokeToken(
    grpc::ServerContext* context, const v1::RevokeTokenRequest* request,
    v1::Token* response) {
  DISTILL_AUTHORIZE(caller, Permission::kAdminister);
  absl::StatusOr<TokenRecord> revoked = NoThrow(
      "RevokeToken", [&] { return scheduler_->RevokeToken(request->id()); });
  if (!revoked.ok()) return ToGrpcStatus(revoked.status());
  auth_->Remove(*revoked);
  *response = ToProto(*revoked);
  return grpc::Status::OK;
}

#undef DISTILL_AUTHORIZE

}  // namespace distill
