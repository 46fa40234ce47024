// The edge of every request: an exception that escapes the code behind it
// becomes a status of the call's type, never the end of the process.
#include "server/base/no_throw.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

#include "absl/status/statusor.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(NoThrowTest, ExceptionsBecomeStatusesOfTheCallsType) {
  const absl::Status internal = NoThrow("SubmitRun", []() -> absl::Status {
    std::string s;
    (void)s.substr(5);  // std::out_of_range.
    return absl::OkStatus();
  });
  EXPECT_EQ(internal.code(), absl::StatusCode::kInternal);
  EXPECT_THAT(std::string(internal.message()), HasSubstr("SubmitRun"));

  const absl::StatusOr<int> memory = NoThrow(
      "ListRuns", []() -> absl::StatusOr<int> { throw std::bad_alloc(); });
  EXPECT_EQ(memory.status().code(), absl::StatusCode::kResourceExhausted);

  const grpc::Status wire = NoThrow("Annotate", []() -> grpc::Status {
    throw 42;  // Not even a std::exception.
  });
  EXPECT_EQ(wire.error_code(), grpc::StatusCode::INTERNAL);

  // What does not throw passes through.
  EXPECT_EQ(*NoThrow("x", []() -> absl::StatusOr<int> { return 7; }), 7);
}

}  // namespace
}  // namespace distill
