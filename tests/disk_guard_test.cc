// The disk guard (server/base/disk_guard.h): below --min_free_disk no new run
// is leased while runs already training go on, an upload that cannot fit is
// refused before its first chunk, and the reason reaches the worker, the
// operator's listing and /metrics.
#include "server/base/disk_guard.h"

#include <prometheus/text_serializer.h>

#include <atomic>
#include <sstream>

#include "server/base/metrics.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(ParseBytesTest, TakesBinaryAndDecimalUnitsAndNamesWhatItCannotRead) {
  EXPECT_EQ(*ParseBytes("0"), 0);
  EXPECT_EQ(*ParseBytes("4096"), 4096);
  EXPECT_EQ(*ParseBytes("512MiB"), int64_t{512} << 20);
  EXPECT_EQ(*ParseBytes(" 2 GiB "), int64_t{2} << 30);
  EXPECT_EQ(*ParseBytes("10GB"), int64_t{10'000'000'000});
  EXPECT_EQ(*ParseBytes("7B"), 7);
  for (const char* bad :
       {"", "GiB", "-1GiB", "1.5GiB", "2 gigs", "9999999TiB"}) {
    absl::StatusOr<int64_t> parsed = ParseBytes(bad);
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument)
        << bad;
    EXPECT_THAT(std::string(parsed.status().message()),
                HasSubstr(absl::StrCat("\"", bad, "\"")));
  }
  EXPECT_EQ(HumanBytes(512), "512 B");
  EXPECT_EQ(HumanBytes(int64_t{3} << 29), "1.5 GiB");
}

TEST(DiskGuardTest, UploadsInProgressHoldWhatTheyDeclared) {
  DiskGuard guard(
      0, [] { return absl::StatusOr<int64_t>(1000); }, nullptr);
  EXPECT_EQ(guard.LeasingPaused(), "");  // No floor: never paused.
  absl::StatusOr<DiskGuard::Reservation> first = guard.Reserve(600);
  ASSERT_TRUE(first.ok());
  absl::StatusOr<DiskGuard::Reservation> second = guard.Reserve(600);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("600 B of it promised to uploads in progress"));
  first->reset();  // The first upload ended.
  EXPECT_TRUE(guard.Reserve(600).ok());
  EXPECT_TRUE(guard.Reserve(1000).ok());
  EXPECT_FALSE(guard.Reserve(1001).ok());
}

// Issue 30: an accepted upload could take the last bytes SQLite needs.
// Below the floor uploads of runs still training go on (their runs must
// end), but never into the half of the floor kept for the database.
TEST(DiskGuardTest, UploadsLeaveHalfTheFloorToTheDatabase) {
  DiskGuard guard(
      400, [] { return absl::StatusOr<int64_t>(1000); }, nullptr);
  EXPECT_EQ(guard.KeptForTheDatabase(), 200);
  EXPECT_TRUE(guard.Reserve(800).ok());  // Down to 200 free: below the floor.
  absl::StatusOr<DiskGuard::Reservation> last = guard.Reserve(801);
  EXPECT_EQ(last.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(last.status().message()),
              HasSubstr("200 B kept for the database"));
}

class DiskGuardSchedulerTest : public SchedulerTest {
 protected:
  void SetUp() override {
    SchedulerOptions options{60'000, 10'000};
    options.min_free_disk_bytes = int64_t{5} << 20;
    options.free_disk_bytes = [this] {
      return absl::StatusOr<int64_t>(free_.load());
    };
    options.metrics = &metrics_;
    Start(":memory:", dir_, options);
  }

  std::string Metrics() {
    std::ostringstream out;
    prometheus::TextSerializer().Serialize(out, registry_.Collect());
    return out.str();
  }

  std::atomic<int64_t> free_{int64_t{10} << 20};
  prometheus::Registry registry_;
  CoordinatorMetrics metrics_{registry_};
};

TEST_F(DiskGuardSchedulerTest, BelowTheFloorNoNewRunIsLeasedButRunsGoOn) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("disk"));
  const v1::Run training = Lease();
  const std::string other = AddWorker("gpu2");
  // A student waits on the teacher; queue a second lone run to lease.
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());

  // Below the floor, above the half of it kept for the database.
  free_ = int64_t{3} << 20;
  absl::StatusOr<v1::LeaseRunResponse> refused = scheduler_->LeaseRun(other);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_FALSE(refused->has_run());
  EXPECT_THAT(refused->paused_reason(),
              HasSubstr("3.0 MiB free, below --min_free_disk 5.0 MiB"));
  EXPECT_THAT(scheduler_->LeasingPaused(), HasSubstr("no run is leased"));
  EXPECT_THAT(Metrics(), HasSubstr("distill_leasing_paused 1"));
  EXPECT_THAT(Metrics(), HasSubstr("distill_disk_free_bytes 3145728"));

  // The run already training is its worker's again when it asks, and its
  // files go up while they fit.
  EXPECT_EQ(Lease().id(), training.id());
  Upload(training, std::string(512 << 10, 'c'));
  absl::StatusOr<std::unique_ptr<RunFileWriter>> big =
      scheduler_->BeginUpload(HeaderFor(training, std::string(2 << 20, 'c')));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(big.status().message()),
              HasSubstr("an upload of 2.0 MiB does not fit"));
  EXPECT_THAT(Metrics(),
              HasSubstr("distill_uploads_refused_total{reason=\"disk\"} 1"));

  // Room again: the next lease goes through.
  free_ = int64_t{10} << 20;
  EXPECT_EQ(scheduler_->LeasingPaused(), "");
  EXPECT_NE(LeaseAs(other).id(), 0);
  EXPECT_THAT(Metrics(), HasSubstr("distill_leasing_paused 0"));
  (void)sweep;
}

}  // namespace
}  // namespace distill
