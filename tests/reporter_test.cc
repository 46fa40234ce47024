// The worker's reporter against an in-process WorkerService on loopback:
// batches in order, retries, and the coordinator's word to stop.
#include "worker/reporter.h"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

// Records metric points; fails the first `unavailable` reports, then
// refuses the next `invalid` as INVALID_ARGUMENT; answers
// FAILED_PRECONDITION once `fenced`, and heartbeats with a cancel once
// `cancelled`.
class FakeWorkerService final : public v1::WorkerService::Service {
 public:
  grpc::Status ReportMetrics(grpc::ServerContext*,
                             const v1::ReportMetricsRequest* request,
                             v1::ReportMetricsResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (fenced) {
      return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                          "attempt 1 of run 7 is stale: attempt 2 holds it");
    }
    if (unavailable > 0) {
      --unavailable;
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "try again");
    }
    if (invalid > 0) {
      --invalid;
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          "provenance key \"x\" is not one a worker reports");
    }
    EXPECT_EQ(request->run_id(), 7);
    EXPECT_EQ(request->attempt(), 1);
    for (const v1::MetricPoint& p : request->points())
      steps.push_back(p.step());
    response->set_stop_reason(report_stop_reason);
    for (const auto& [key, value] : request->provenance())
      provenance.push_back(absl::StrCat(batches, ":", key, "=", value));
    ++batches;
    return grpc::Status::OK;
  }
  grpc::Status Heartbeat(grpc::ServerContext*,
                         const v1::HeartbeatRequest* request,
                         v1::HeartbeatResponse* response) override {
    absl::MutexLock lock(&mu_);
    EXPECT_EQ(request->worker_id(), "w1");
    ++heartbeats;
    response->set_cancel_requested(cancelled || !stop_reason.empty());
    response->set_stop_reason(stop_reason);
    return grpc::Status::OK;
  }

  absl::Mutex mu_;
  std::vector<int64_t> steps ABSL_GUARDED_BY(mu_);
  // "batch:key=value" for each provenance entry received.
  std::vector<std::string> provenance ABSL_GUARDED_BY(mu_);
  int batches ABSL_GUARDED_BY(mu_) = 0;
  int heartbeats ABSL_GUARDED_BY(mu_) = 0;
  int unavailable ABSL_GUARDED_BY(mu_) = 0;
  int invalid ABSL_GUARDED_BY(mu_) = 0;  // Reports refused as invalid.
  bool fenced ABSL_GUARDED_BY(mu_) = false;
  bool cancelled ABSL_GUARDED_BY(mu_) = false;
  std::string stop_reason ABSL_GUARDED_BY(mu_);
  // What each accepted report answers (early stopping pruned the run).
  std::string report_stop_reason ABSL_GUARDED_BY(mu_);
};

class ReporterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int port = 0;
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(port, 0);
    stub_ = v1::WorkerService::NewStub(
        grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                            grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(); }

  std::unique_ptr<Reporter> Make(absl::Duration flush = absl::Hours(1),
                                 absl::Duration heartbeat = absl::Hours(1)) {
    return std::make_unique<Reporter>(stub_.get(), "w1", 7, 1, flush,
                                      heartbeat);
  }
  static std::vector<engine::Metric> Points(int64_t first, int n) {
    std::vector<engine::Metric> m;
    for (int i = 0; i < n; ++i) m.push_back({first + i, 1, "train/loss", 1, 0});
    return m;
  }
  std::vector<int64_t> Steps() {
    absl::MutexLock lock(&service_.mu_);
    return service_.steps;
  }

  FakeWorkerService service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::WorkerService::Stub> stub_;
};

TEST_F(ReporterTest, PointsArriveOnceInTheOrderTheyWereAdded) {
  auto reporter = Make(absl::Milliseconds(5));
  std::vector<int64_t> expected;
  for (int batch = 0; batch < 20; ++batch) {
    reporter->Add(Points(batch * 10, 10));
    for (int i = 0; i < 10; ++i) expected.push_back(batch * 10 + i);
    if (batch % 7 == 0) reporter->Flush();
  }
  reporter->Stop();
  EXPECT_EQ(Steps(), expected);
  EXPECT_FALSE(reporter->ShouldStop());
}

TEST_F(ReporterTest, AFailedBatchIsSentAgainBeforeLaterPoints) {
  {
    absl::MutexLock lock(&service_.mu_);
    service_.unavailable = 2;
  }
  auto reporter = Make();
  reporter->Add(Points(0, 3));
  reporter->Flush();  // Unavailable: kept.
  reporter->Add(Points(3, 2));
  reporter->Flush();  // Unavailable again: kept, in order.
  reporter->Add(Points(5, 1));
  reporter->Stop();
  EXPECT_EQ(Steps(), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
}

TEST_F(ReporterTest, ProvenanceGoesOnceWithTheNextReportEvenWithoutPoints) {
  {
    absl::MutexLock lock(&service_.mu_);
    service_.unavailable = 1;
  }
  auto reporter = Make();
  reporter->AddProvenance({{"data_sha256", "aa"}, {"data_files", "4"}});
  reporter->Flush();                               // Unavailable: kept.
  reporter->AddProvenance({{"data_files", "5"}});  // The newer value wins.
  reporter->Flush();
  reporter->Add(Points(0, 2));
  reporter->Stop();
  absl::MutexLock lock(&service_.mu_);
  EXPECT_THAT(
      service_.provenance,  // A map: in no particular order.
      ::testing::UnorderedElementsAre("0:data_files=5", "0:data_sha256=aa"));
  EXPECT_EQ(service_.batches, 2);  // The entries alone, then the points.
  EXPECT_EQ(service_.steps, (std::vector<int64_t>{0, 1}));
}

TEST_F(ReporterTest, ABatchRefusedAsInvalidIsDroppedAndLaterPointsGoOn) {
  {
    absl::MutexLock lock(&service_.mu_);
    service_.invalid = 1;
  }
  auto reporter = Make();
  reporter->AddProvenance({{"x", "y"}});
  reporter->Add(Points(0, 2));
  reporter->Flush();  // Refused whole: dropped, not retried.
  reporter->Add(Points(2, 2));
  reporter->Stop();
  EXPECT_EQ(Steps(), (std::vector<int64_t>{2, 3}));
  EXPECT_FALSE(reporter->ShouldStop());
}

TEST_F(ReporterTest, AReportWhoseAnswerEndsTheAttemptStopsTraining) {
  auto reporter = Make();
  reporter->Add(Points(0, 2));
  reporter->Flush();
  EXPECT_FALSE(reporter->ShouldStop());
  {
    absl::MutexLock lock(&service_.mu_);
    service_.report_stop_reason = "pruned at epoch 2 by the median rule";
  }
  reporter->Add(Points(2, 1));
  reporter->Flush();  // No heartbeat in between (an hour apart).
  EXPECT_TRUE(reporter->ShouldStop());
  EXPECT_EQ(reporter->why_stopped(), "pruned at epoch 2 by the median rule");
  reporter->Stop();
  EXPECT_EQ(Steps(), (std::vector<int64_t>{0, 1, 2}));
}

TEST_F(ReporterTest, AStaleAttemptIsToldToStopWithTheReason) {
  {
    absl::MutexLock lock(&service_.mu_);
    service_.fenced = true;
  }
  auto reporter = Make();
  reporter->Add(Points(0, 1));
  reporter->Flush();
  EXPECT_TRUE(reporter->ShouldStop());
  EXPECT_THAT(reporter->why_stopped(), HasSubstr("attempt 2 holds it"));
}

TEST_F(ReporterTest, ACancelArrivesThroughTheHeartbeat) {
  {
    absl::MutexLock lock(&service_.mu_);
    service_.cancelled = true;
  }
  auto reporter = Make(absl::Milliseconds(5), absl::Milliseconds(5));
  for (int i = 0; i < 400 && !reporter->ShouldStop(); ++i)
    absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(reporter->ShouldStop());
  EXPECT_EQ(reporter->why_stopped(), "the run was cancelled");
  reporter->Stop();
  reporter->Stop();  // Idempotent.
}

TEST_F(ReporterTest, APruneArrivesThroughTheHeartbeatWithItsReason) {
  const std::string why =
      "pruned at epoch 2 by the median rule: 0.2 is lower than the median 0.5 "
      "of 2 completed members";
  {
    absl::MutexLock lock(&service_.mu_);
    service_.stop_reason = why;
  }
  auto reporter = Make(absl::Milliseconds(5), absl::Milliseconds(5));
  for (int i = 0; i < 400 && !reporter->ShouldStop(); ++i)
    absl::SleepFor(absl::Milliseconds(5));
  EXPECT_TRUE(reporter->ShouldStop());
  EXPECT_EQ(reporter->why_stopped(), why);
  reporter->Stop();
}

}  // namespace
}  // namespace distill
