// The coordinator's last line against exceptions: nothing a client sends
// may throw (conversions go through absl / std::from_chars, std::filesystem
// takes an error_code, limits bound every allocation a request sizes), but
// LibTorch-free code still calls the standard library and protobuf, which
// throw on bugs and on memory. Every request handler and every reaction of
// a stream runs its work through NoThrow, so that such a bug fails one
// call with a status instead of the whole process.
#ifndef DISTILL_SERVER_BASE_NO_THROW_H_
#define DISTILL_SERVER_BASE_NO_THROW_H_

#include <grpcpp/support/status.h>

#include <exception>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "common/grpc_status.h"

namespace distill {

// The status of the exception `error`, which escaped `where`:
// RESOURCE_EXHAUSTED for std::bad_alloc (an allocation too large for this
// machine), INTERNAL with its what() otherwise. Logs it as an error: it is
// a bug to fix. Thread-safe.
absl::Status StatusOfException(std::exception_ptr error,
                               absl::string_view where);

// Whether StatusOfException aborts the process after logging, so that a
// fuzzer reports the bug it found instead of a status. Off by default.
void AbortOnCaughtException(bool abort);

// What `f()` returns (absl::Status, absl::StatusOr<T> or grpc::Status), or
// the status of an exception it lets through.
template <typename F>
auto NoThrow(absl::string_view where, F&& f) -> decltype(f()) {
  using Result = decltype(f());
  try {
    return f();
  } catch (...) {
    absl::Status status = StatusOfException(std::current_exception(), where);
    if constexpr (std::is_same_v<Result, grpc::Status>) {
      return ToGrpcStatus(status);
    } else {
      return Result(std::move(status));
    }
  }
}

}  // namespace distill

#endif  // DISTILL_SERVER_BASE_NO_THROW_H_
