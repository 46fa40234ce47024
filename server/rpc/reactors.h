// The calls of the services that wait or stream, on gRPC's callback API
// (route_guide_callback_server.cc): none holds a thread while it waits.
// A unary call's work runs on a task pool (OnPool); a long-poll for a lease
// waits for the watch hub's word that the queue changed; a watch writes an
// event whenever its run changed; files go a chunk a write. An exception
// any of them lets through fails the call, not the process (NoThrow).
#ifndef DISTILL_SERVER_RPC_REACTORS_H_
#define DISTILL_SERVER_RPC_REACTORS_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/grpc_status.h"
#include "common/run_files.h"
#include "common/task_pool.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "server/base/no_throw.h"
#include "server/rpc/peer_limiter.h"
#include "server/scheduling/auth.h"
#include "server/scheduling/scheduler.h"

namespace distill {

// Copies a StatusOr's value into `*out`, or returns its status.
template <typename T, typename U>
grpc::Status Reply(absl::StatusOr<T> result, U* out) {
  if (!result.ok()) return ToGrpcStatus(result.status());
  *out = *std::move(result);
  return grpc::Status::OK;
}

// Finishes a unary call of the callback API now, with `status`.
grpc::ServerUnaryReactor* Finished(grpc::CallbackServerContext* context,
                                   const grpc::Status& status);

// Finishes a unary call with what `body` returns, run on `pool`: the
// handler's reads and writes wait there, not in a gRPC reaction (where a
// long listing would hold up every call behind it). `body` captures by
// value: the handler has returned when it runs. An exception `body` lets
// through fails the call (NoThrow, named `rpc`), not the process.
grpc::ServerUnaryReactor* OnPool(grpc::CallbackServerContext* context,
                                 TaskPool* pool, const char* rpc,
                                 std::function<grpc::Status()> body);

// Whom the limits on open calls count against: the token, or the host
// where the coordinator runs without tokens.
absl::StatusOr<PeerLimiter::Slot> AcquireSlot(PeerLimiter& limiter,
                                              const Principal& caller,
                                              const grpc::ServerContextBase& c);

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
grpc::ServerReadReactor<v1::RunFileChunk>* NewUploadReactor(
    Scheduler* scheduler, const absl::StatusOr<Principal>& caller,
    v1::UploadRunFileResponse* response);

// A LeaseRun that waits up to `wait` for a run, holding no thread.
grpc::ServerUnaryReactor* StartLeasePoll(Scheduler* scheduler, TaskPool* pool,
                                         std::string worker_id, int64_t caller,
                                         absl::Duration wait,
                                         v1::LeaseRunResponse* response,
                                         PeerLimiter::Slot slot);

// A watch of run `run_id` from `cursor`, read on `pool`.
grpc::ServerWriteReactor<v1::RunEvent>* NewWatchReactor(Scheduler* scheduler,
                                                        TaskPool* pool,
                                                        int64_t run_id,
                                                        WatchCursor cursor,
                                                        PeerLimiter::Slot slot);

}  // namespace distill

#endif  // DISTILL_SERVER_RPC_REACTORS_H_
