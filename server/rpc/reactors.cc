#include "server/rpc/reactors.h"

#include "absl/strings/str_cat.h"

namespace distill {

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

namespace {

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

}  // namespace

grpc::ServerReadReactor<v1::RunFileChunk>* NewUploadReactor(
    Scheduler* scheduler, const absl::StatusOr<Principal>& caller,
    v1::UploadRunFileResponse* response) {
  return new UploadReactor(scheduler, caller, response);
}

grpc::ServerUnaryReactor* StartLeasePoll(Scheduler* scheduler, TaskPool* pool,
                                         std::string worker_id, int64_t caller,
                                         absl::Duration wait,
                                         v1::LeaseRunResponse* response,
                                         PeerLimiter::Slot slot) {
  return LeasePoll::Start(scheduler, pool, std::move(worker_id), caller, wait,
                          response, std::move(slot));
}

grpc::ServerWriteReactor<v1::RunEvent>* NewWatchReactor(
    Scheduler* scheduler, TaskPool* pool, int64_t run_id, WatchCursor cursor,
    PeerLimiter::Slot slot) {
  return new WatchReactor(scheduler, pool, run_id, cursor, std::move(slot));
}

}  // namespace distill
