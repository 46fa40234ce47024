#include "server/base/no_throw.h"

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>

#include "absl/strings/str_cat.h"
#include "common/log.h"

namespace distill {
namespace {

std::atomic<bool> abort_on_caught{false};

}  // namespace

void AbortOnCaughtException(bool abort) { abort_on_caught = abort; }

absl::Status StatusOfException(std::exception_ptr error,
                               absl::string_view where) {
  absl::Status status;
  try {
    std::rethrow_exception(error);
  } catch (const std::bad_alloc&) {
    status = absl::ResourceExhaustedError(
        absl::StrCat(where,
                     ": out of memory (the request asked for more than "
                     "this coordinator can hold)"));
  } catch (const std::exception& e) {
    status = absl::InternalError(
        absl::StrCat(where, ": unexpected exception: ", e.what()));
  } catch (...) {
    status = absl::InternalError(
        absl::StrCat(where, ": unexpected exception of an unknown type"));
  }
  DISTILL_LOG(ERROR) << "a bug, caught at the edge of a request: "
                     << status.message();
  if (abort_on_caught.load()) std::abort();
  return status;
}

}  // namespace distill
