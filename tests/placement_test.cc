// Placement (issue 31): a worker leases only the runs whose requirements
// it meets, each key's queue read by its head; a run no worker meets waits
// and says so.
#include "common/placement.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST(PlacementTest, MeetsAndItsKey) {
  v1::Requirements needs;
  needs.set_device_kind("cuda");
  needs.set_min_device_memory_gib(40);
  needs.add_labels("pool=large");
  const WorkerOffer big{
      "cuda:0", {"device_kind=cuda", "pool=large"}, int64_t{80} << 30};
  const WorkerOffer small{
      "cuda:1", {"device_kind=cuda", "pool=large"}, int64_t{16} << 30};
  const WorkerOffer cpu{
      "cpu", {"device_kind=cpu", "pool=large"}, int64_t{256} << 30};
  EXPECT_TRUE(Meets(big, needs));
  EXPECT_FALSE(Meets(small, needs));  // 16 GiB < 40.
  EXPECT_FALSE(Meets(cpu, needs));    // Not CUDA.
  EXPECT_TRUE(Meets(cpu, v1::Requirements()));
  // One key however written; read back whole.
  v1::Requirements same;
  same.add_labels("pool=large");
  same.set_min_device_memory_gib(40);
  same.set_device_kind("cuda");
  EXPECT_EQ(RequirementsKey(needs), RequirementsKey(same));
  EXPECT_EQ(RequirementsKey(v1::Requirements()), "");
  const v1::Requirements back = RequirementsOfKey(RequirementsKey(needs));
  EXPECT_EQ(back.device_kind(), "cuda");
  EXPECT_EQ(back.min_device_memory_gib(), 40);
  EXPECT_THAT(back.labels(), ::testing::ElementsAre("pool=large"));
  EXPECT_EQ(DescribeRequirements(needs),
            "device_kind cuda, >= 40 GiB, pool=large");
  // Bounds, each naming the field.
  v1::Requirements bad;
  bad.add_labels("pool large");
  EXPECT_THAT(std::string(CheckRequirements(bad).message()),
              HasSubstr("requirements.labels must be KEY=VALUE"));
  bad.Clear();
  bad.set_device_kind("tpu");
  EXPECT_THAT(std::string(CheckRequirements(bad).message()),
              HasSubstr("requirements.device_kind must be cpu, cuda"));
  bad.Clear();
  bad.set_min_device_memory_gib(-1);
  EXPECT_EQ(CheckRequirements(bad).code(), absl::StatusCode::kInvalidArgument);
  bad.Clear();
  for (int i = 0; i < 17; ++i) bad.add_labels(absl::StrCat("k", i, "=v"));
  EXPECT_EQ(CheckRequirements(bad).code(), absl::StatusCode::kInvalidArgument);
}

class PlacementSchedulerTest : public FileSchedulerTest {
 protected:
  std::string Register(const std::string& host, const std::string& device,
                       std::vector<std::string> labels, int64_t gib) {
    v1::RegisterWorkerRequest request;
    request.set_hostname(host);
    request.set_device(device);
    request.add_labels(absl::StrCat("device_kind=", DeviceKind(device)));
    for (const std::string& l : labels) request.add_labels(l);
    request.set_device_memory_bytes(gib << 30);
    return scheduler_->RegisterWorker(request)->worker_id();
  }
  int64_t Submit(const std::string& kind, double gib,
                 std::vector<std::string> labels) {
    v1::ExperimentSpec spec = LoneTeacher();
    spec.mutable_requirements()->set_device_kind(kind);
    spec.mutable_requirements()->set_min_device_memory_gib(gib);
    for (const std::string& l : labels)
      spec.mutable_requirements()->add_labels(l);
    absl::StatusOr<v1::Run> run = scheduler_->SubmitRun(spec);
    EXPECT_TRUE(run.ok()) << run.status();
    return run.ok() ? run->id() : 0;
  }
};

// A lab's three pools: a CPU worker never leases a run that needs CUDA, a
// small GPU none that needs more memory than it has; each takes the first
// run in the queue's order that it can.
TEST_F(PlacementSchedulerTest, AWorkerLeasesOnlyWhatItMeets) {
  const std::string cpu = Register("laptop", "cpu", {"pool=cpu"}, 16);
  const std::string small = Register("small", "cuda:0", {"pool=small"}, 16);
  const std::string large = Register("large", "cuda:0", {"pool=large"}, 80);
  const int64_t needs_40g = Submit("cuda", 40, {});
  const int64_t needs_cuda = Submit("cuda", 0, {});
  const int64_t needs_large_pool = Submit("", 0, {"pool=large"});
  const int64_t needs_200g = Submit("cuda", 200, {});
  const int64_t anything = Submit("", 0, {});
  EXPECT_EQ(LeaseAs(cpu).id(), anything);      // Skips every CUDA run.
  EXPECT_EQ(LeaseAs(small).id(), needs_cuda);  // Not the 40 GiB one.
  EXPECT_EQ(LeaseAs(large).id(), needs_40g);
  const std::string large2 = Register("large2", "cuda:0", {"pool=large"}, 80);
  EXPECT_EQ(LeaseAs(large2).id(), needs_large_pool);
  const std::string cpu2 = Register("laptop2", "cpu", {}, 16);
  EXPECT_EQ(LeaseAs(cpu2).id(), 0);  // Nothing it meets is left.
  EXPECT_EQ(StatusOf(needs_200g), v1::QUEUED);
  EXPECT_THAT(scheduler_->GetRun(needs_200g)->waiting_reason(),
              HasSubstr("no registered worker meets its requirements "
                        "(device_kind cuda, >= 200 GiB)"));
  // Listed with what it offers.
  bool found = false;
  const std::vector<v1::Worker> workers = *scheduler_->ListWorkers();
  for (const v1::Worker& w : workers) {
    if (w.id() != large) continue;
    found = true;
    EXPECT_EQ(w.device_memory_bytes(), int64_t{80} << 30);
    EXPECT_THAT(w.labels(), ::testing::Contains("pool=large"));
  }
  EXPECT_TRUE(found);
}

// The queue's order holds across keys: priority, then submission.
TEST_F(PlacementSchedulerTest, PriorityAndOrderHoldAcrossRequirements) {
  const int64_t first = Submit("cuda", 0, {});
  const int64_t second = Submit("", 0, {});
  const int64_t third = Submit("cuda", 8, {});
  const std::string gpu = Register("gpu", "cuda:0", {}, 80);
  EXPECT_EQ(LeaseAs(gpu).id(), first);
  const std::string gpu2 = Register("gpu2", "cuda:0", {}, 80);
  EXPECT_EQ(LeaseAs(gpu2).id(), second);
  const std::string gpu3 = Register("gpu3", "cuda:0", {}, 80);
  EXPECT_EQ(LeaseAs(gpu3).id(), third);
}

TEST_F(PlacementSchedulerTest, AWorkersOfferIsBounded) {
  v1::RegisterWorkerRequest request;
  request.set_hostname("h");
  request.add_labels("not a label");
  absl::StatusOr<v1::RegisterWorkerResponse> refused =
      scheduler_->RegisterWorker(request);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("labels must"));
  request.clear_labels();
  for (int i = 0; i < 33; ++i) request.add_labels(absl::StrCat("k", i, "=v"));
  EXPECT_EQ(scheduler_->RegisterWorker(request).status().code(),
            absl::StatusCode::kInvalidArgument);
  request.clear_labels();
  request.set_device_memory_bytes(-1);
  EXPECT_EQ(scheduler_->RegisterWorker(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace distill
