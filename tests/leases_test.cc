// The scheduler's leases (server/scheduling/leases.h): fencing, heartbeats,
// expiry, the lease holder rule, hand-backs, drains, the queue's order.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/api.h"
#include "common/sha256.h"
#include "common/version.h"
#include "server/base/durable.h"
#include "tests/scheduler_fixture.h"

namespace distill {
namespace {

using ::testing::HasSubstr;

TEST_F(SchedulerTest, StaleAttemptsAreFenced) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run first = Lease();
  clock_.AdvanceMs(61'000);  // The lease expires; the run is queued again.
  v1::Run second = Lease();
  EXPECT_EQ(second.id(), first.id());
  EXPECT_EQ(second.attempt(), 2);
  v1::ReportMetricsRequest metrics;
  metrics.set_run_id(first.id());
  metrics.set_attempt(first.attempt());
  metrics.add_points()->set_key("train/loss");
  absl::Status stale = scheduler_->ReportMetrics(metrics);
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(stale.message()), HasSubstr("at attempt 2"));
  v1::CompleteRunRequest complete;
  complete.set_run_id(first.id());
  complete.set_attempt(1);
  EXPECT_EQ(scheduler_->CompleteRun(complete).code(),
            absl::StatusCode::kFailedPrecondition);
  v1::RunFileHeader header;
  header.set_run_id(first.id());
  header.set_attempt(1);
  header.set_sha256(Sha256Hex("x"));
  EXPECT_EQ(scheduler_->BeginUpload(header).status().code(),
            absl::StatusCode::kFailedPrecondition);
  metrics.set_attempt(2);
  EXPECT_TRUE(scheduler_->ReportMetrics(metrics).ok());
}

TEST_F(SchedulerTest, HeartbeatsKeepTheLeaseAndRepeatedExpiryIsLost) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(run.id());
  beat.set_attempt(run.attempt());
  clock_.AdvanceMs(50'000);
  ASSERT_TRUE(scheduler_->Heartbeat(beat).ok());
  clock_.AdvanceMs(50'000);  // 100 s after the lease, 50 s after the heartbeat.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
  // Default max_restarts is 2: attempts 1..3 may expire, the third is LOST.
  for (int attempt = 1; attempt <= 3; ++attempt) {
    clock_.AdvanceMs(61'000);
    ASSERT_TRUE(scheduler_->ExpireLeases().ok());
    if (attempt < 3) {
      EXPECT_EQ(StatusOf(run.id()), v1::QUEUED);
      EXPECT_EQ(Lease().attempt(), attempt + 1);
    }
  }
  v1::Run lost = *scheduler_->GetRun(run.id());
  EXPECT_EQ(lost.status(), v1::FAILED);
  EXPECT_THAT(lost.message(), HasSubstr("LOST"));
  EXPECT_EQ(StatusOf(sweep.runs(1).id()), v1::FAILED);
}

TEST_F(SchedulerTest, MaxRestartsZeroMeansTheFirstLostLeaseFailsTheRun) {
  v1::SweepSpec spec = SmallSweep("table1");
  spec.mutable_teacher()->mutable_train()->set_max_restarts(0);
  auto sweep = *scheduler_->SubmitSweep(spec);
  v1::Run run = Lease();
  clock_.AdvanceMs(61'000);
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  v1::Run lost = *scheduler_->GetRun(run.id());
  EXPECT_EQ(lost.status(), v1::FAILED);
  EXPECT_THAT(lost.message(), HasSubstr("max_restarts (0) is spent"));
}

TEST_F(SchedulerTest, AFailureMessageIsKeptUpToItsBound) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  Fail(run, std::string(10 << 20, 'e'));
  const std::string message = scheduler_->GetRun(run.id())->message();
  EXPECT_LE(message.size(), 4096u + 10);
  EXPECT_THAT(message, HasSubstr("[...]"));
}

TEST_F(SchedulerTest, ALostAttemptsSuccessorGetsItsLatestResumePoint) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  Upload(run, "after epoch 1", "resume.pt");
  Upload(run, "after epoch 2", "resume.pt");
  // Each resume point replaces the one before, its file included.
  EXPECT_EQ(run_files_->Open(Sha256Hex("after epoch 1")).status().code(),
            absl::StatusCode::kNotFound);
  v1::Run listed = *scheduler_->GetRun(run.id());
  ASSERT_EQ(listed.files_size(), 1);
  EXPECT_EQ(listed.files(0).name(), "resume.pt");

  clock_.AdvanceMs(61'000);  // The worker is lost.
  auto again = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(again.ok() && again->has_run());
  EXPECT_EQ(again->run().attempt(), 2);
  EXPECT_EQ(again->resume_point_sha256(), Sha256Hex("after epoch 2"));

  // The finished run keeps no resume point.
  Succeed(again->run(), "teacher", 0.8);
  EXPECT_EQ(scheduler_->OpenRunFile(run.id(), "resume.pt").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(run_files_->Open(Sha256Hex("after epoch 2")).status().code(),
            absl::StatusCode::kNotFound);
  // A run that never wrote one starts from the beginning.
  auto student = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(student.ok() && student->has_run());
  EXPECT_EQ(student->resume_point_sha256(), "");
}

TEST_F(SchedulerTest, CancelReachesTheWorkerThroughItsHeartbeat) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  auto cancelled = scheduler_->CancelRun(run.id());
  ASSERT_TRUE(cancelled.ok());
  EXPECT_EQ(cancelled->status(), v1::CANCELLED);
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(run.id());
  beat.set_attempt(run.attempt());
  EXPECT_TRUE(scheduler_->Heartbeat(beat)->cancel_requested());
  EXPECT_EQ(scheduler_->CancelRun(run.id()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(StatusOf(sweep.runs(2).id()), v1::FAILED);
}

TEST_F(SchedulerTest, UnknownWorkerCannotLease) {
  EXPECT_EQ(scheduler_->LeaseRun("ghost").status().code(),
            absl::StatusCode::kNotFound);
}

// With tokens, a worker belongs to the token it registered with: another
// token that names the right run and attempt still may not act for it.
TEST_F(SchedulerTest, OnlyTheLeaseHoldersTokenMayActForTheRun) {
  constexpr int64_t kHolder = 7, kStranger = 8;
  v1::RegisterWorkerRequest request;
  request.set_hostname("gpu7");
  const std::string mine =
      scheduler_->RegisterWorker(request, kHolder)->worker_id();
  auto submitted = *scheduler_->SubmitSweep(SmallSweep("holder"));
  // Another token cannot lease in the holder's worker's name.
  absl::Status named = scheduler_->LeaseRun(mine, kStranger).status();
  EXPECT_EQ(named.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(named.message()),
              HasSubstr("registered with another token"));
  auto leased = scheduler_->LeaseRun(mine, kHolder);
  ASSERT_TRUE(leased.ok() && leased->has_run());
  const v1::Run run = leased->run();

  v1::HeartbeatRequest heartbeat;
  heartbeat.set_worker_id(mine);
  heartbeat.set_run_id(run.id());
  heartbeat.set_attempt(run.attempt());
  v1::ReportMetricsRequest metrics;
  metrics.set_run_id(run.id());
  metrics.set_attempt(run.attempt());
  metrics.add_points()->set_key("train/loss");
  v1::FailRunRequest fail;
  fail.set_run_id(run.id());
  fail.set_attempt(run.attempt());
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  for (int64_t caller : {kStranger, int64_t{0}}) {
    SCOPED_TRACE(caller);
    EXPECT_EQ(scheduler_->Heartbeat(heartbeat, caller).status().code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->ReportMetrics(metrics, caller).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(
        scheduler_->BeginUpload(HeaderFor(run, "x"), caller).status().code(),
        absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->CompleteRun(complete, caller).code(),
              absl::StatusCode::kPermissionDenied);
    EXPECT_EQ(scheduler_->FailRun(fail, caller).code(),
              absl::StatusCode::kPermissionDenied);
  }
  // An upload that began under the holder is checked again at its end.
  auto writer = scheduler_->BeginUpload(HeaderFor(run, "x"), kHolder);
  ASSERT_TRUE(writer.ok());
  ASSERT_TRUE((*writer)->Append("x").ok());
  EXPECT_EQ(
      scheduler_->FinishUpload(HeaderFor(run, "x"), **writer, kStranger).code(),
      absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
  // Files by digest: only what a run the caller holds needs.
  const v1::RunFileHeader resume = HeaderFor(run, "resume", "resume.pt");
  auto resume_writer = scheduler_->BeginUpload(resume, kHolder);
  ASSERT_TRUE(resume_writer.ok());
  ASSERT_TRUE((*resume_writer)->Append("resume").ok());
  ASSERT_TRUE(scheduler_->FinishUpload(resume, **resume_writer, kHolder).ok());
  EXPECT_TRUE(scheduler_->OpenRunFileByDigest(resume.sha256(), kHolder).ok());
  EXPECT_EQ(scheduler_->OpenRunFileByDigest(resume.sha256(), kStranger)
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(scheduler_->ReportMetrics(metrics, kHolder).ok());
  EXPECT_TRUE(scheduler_->FailRun(fail, kHolder).ok());
  EXPECT_EQ(StatusOf(run.id()), v1::FAILED);
}

TEST_F(SchedulerTest, EachLeaseRecordsWhereAndFromWhatTheRunRan) {
  v1::RegisterWorkerRequest reg;
  reg.set_hostname("gpu7");
  reg.set_device("cuda:0 (NVIDIA H100)");
  reg.set_threads(16);
  reg.set_libtorch_version("2.11.0");
  reg.set_blas("OpenBLAS 0.3.21");
  reg.set_distill_version("0.12.0+abc");
  const std::string worker = scheduler_->RegisterWorker(reg)->worker_id();
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("provenance"));
  const v1::Run teacher = scheduler_->LeaseRun(worker)->run();
  const auto& p = teacher.provenance();
  EXPECT_EQ(p.at("host"), "gpu7");
  EXPECT_EQ(p.at("worker"), worker);
  EXPECT_EQ(p.at("device"), "cuda:0 (NVIDIA H100)");
  EXPECT_EQ(p.at("threads"), "16");
  EXPECT_EQ(p.at("libtorch"), "2.11.0");
  EXPECT_EQ(p.at("blas"), "OpenBLAS 0.3.21");
  EXPECT_EQ(p.at("worker_version"), "0.12.0+abc");
  EXPECT_FALSE(p.at("coordinator_version").empty());
  EXPECT_EQ(p.at("spec_sha256"), Sha256Hex(teacher.spec().SerializeAsString()));
  EXPECT_EQ(p.count("teacher_checkpoint_sha256"), 0u);
  // Stored: a reader sees it; a student records its teacher's checkpoint.
  EXPECT_EQ(scheduler_->GetRun(teacher.id())->provenance().at("host"), "gpu7");
  Succeed(teacher, "the teacher", 0.8);
  const v1::Run student = scheduler_->LeaseRun(worker)->run();
  EXPECT_EQ(student.provenance().at("teacher_checkpoint_sha256"),
            Sha256Hex("the teacher"));
  // The worker adds what only it knows, with its first report: the data
  // files' digest, a TorchScript teacher's; no other key, nothing
  // malformed, and nothing of an earlier attempt on the next.
  v1::ReportMetricsRequest report;
  report.set_run_id(student.id());
  report.set_attempt(student.attempt());
  (*report.mutable_provenance())["data_sha256"] = Sha256Hex("manifest");
  (*report.mutable_provenance())["data_files"] = "4";
  ASSERT_TRUE(scheduler_->ReportMetrics(report).ok());
  const auto stored = scheduler_->GetRun(student.id())->provenance();
  EXPECT_EQ(stored.at("data_sha256"), Sha256Hex("manifest"));
  EXPECT_EQ(stored.at("data_files"), "4");
  EXPECT_EQ(stored.at("host"), "gpu7");  // The lease's entries stay.
  for (const auto& [key, value, why] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"host", "elsewhere", "\"host\" is not one a worker reports"},
           {"data_sha256", "abc", "\"abc\" is not a SHA-256 hex digest"},
           {"data_files", "-1", "\"-1\" is not a file count"},
           {"teacher_torchscript_sha256", std::string(65, 'a'),
            "is not a SHA-256 hex digest"}}) {
    v1::ReportMetricsRequest bad;
    bad.set_run_id(student.id());
    bad.set_attempt(student.attempt());
    (*bad.mutable_provenance())[key] = value;
    absl::Status s = scheduler_->ReportMetrics(bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << key;
    EXPECT_THAT(std::string(s.message()), HasSubstr(why));
  }
  EXPECT_EQ(scheduler_->GetRun(student.id())->provenance().at("host"), "gpu7");
  clock_.AdvanceMs(61'000);  // Lost: the next attempt starts clean.
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  const v1::Run again = scheduler_->LeaseRun(worker)->run();
  ASSERT_EQ(again.id(), student.id());
  EXPECT_EQ(again.attempt(), 2);
  EXPECT_EQ(again.provenance().count("data_sha256"), 0u);
  EXPECT_EQ(scheduler_->GetRun(student.id())->provenance().count("data_files"),
            0u);
  // What a worker says of itself is bounded.
  reg.set_hostname(std::string(300, 'h'));
  auto refused = scheduler_->RegisterWorker(reg);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("hostname must be at most 256 bytes, got 300"));
}

TEST_F(SchedulerTest, AWorkerOfAnotherProtocolIsRefusedNamingBothBuilds) {
  v1::RegisterWorkerRequest request;
  request.set_hostname("gpu-9");
  request.set_distill_version("9.0.0+future");
  // This coordinator's protocols, and a worker from before the field.
  for (int protocol : {0, kMinWorkerProtocol, kWorkerProtocol}) {
    request.set_protocol_version(protocol);
    auto registered = scheduler_->RegisterWorker(request);
    ASSERT_TRUE(registered.ok()) << protocol << ": " << registered.status();
    EXPECT_EQ(registered->protocol_version(), kWorkerProtocol);
    EXPECT_EQ(registered->coordinator_version(), DistillVersion());
  }
  request.set_protocol_version(kWorkerProtocol + 1);
  auto newer = scheduler_->RegisterWorker(request);
  ASSERT_EQ(newer.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(
      std::string(newer.status().message()),
      HasSubstr(absl::StrCat("worker 9.0.0+future speaks worker protocol ",
                             kWorkerProtocol + 1, "; this coordinator (",
                             DistillVersion(), ") serves protocols")));
  EXPECT_THAT(std::string(newer.status().message()),
              HasSubstr("upgrade the coordinator"));
  request.set_protocol_version(-1);
  auto older = scheduler_->RegisterWorker(request);
  EXPECT_THAT(std::string(older.status().message()),
              HasSubstr("upgrade the worker"));
}

TEST_F(SchedulerTest, AStoppedWorkerIsForgottenAfterAWeekItsRunsKeepIt) {
  ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  const v1::Run run = Lease();
  Succeed(run, "weights", 0.5);
  v1::RegisterWorkerRequest request;
  request.set_hostname("gpu2");
  const std::string serving = scheduler_->RegisterWorker(request)->worker_id();
  ASSERT_TRUE(scheduler_->Deregister(worker_).ok());
  clock_.AdvanceMs(int64_t{7} * 24 * 3600 * 1000 - 1);
  EXPECT_EQ(*scheduler_->ForgetStoppedWorkers(), 0);
  EXPECT_EQ(scheduler_->ListWorkers()->size(), 2u);
  clock_.AdvanceMs(2);
  EXPECT_EQ(*scheduler_->ForgetStoppedWorkers(), 1);
  const std::vector<v1::Worker> left = *scheduler_->ListWorkers();
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].id(), serving);  // Serving workers stay, however old.
  EXPECT_EQ(scheduler_->GetRun(run.id())->worker_id(), worker_);
}

TEST_F(SchedulerTest, AStoppedWorkerHandsBackARunItNeverHeardOf) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("lost")).ok());
  const v1::Run run = Lease();  // The answer, say, never arrived.
  ASSERT_TRUE(scheduler_->Deregister(worker_).ok());
  const v1::Run after = *scheduler_->GetRun(run.id());
  EXPECT_EQ(after.status(), v1::QUEUED);
  EXPECT_EQ(after.releases(), 1);
  EXPECT_THAT(after.message(), HasSubstr("the worker stopped"));
  // And a lease it asks for after takes nothing.
  EXPECT_EQ(scheduler_->LeaseRun(worker_).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, ALongPollHearsWhenARunArrives) {
  EXPECT_FALSE(scheduler_->LeaseRun(worker_)->has_run());
  std::atomic<int> heard{0};
  const int64_t id = scheduler_->watch_hub().Subscribe(Scheduler::kQueueChanges,
                                                       [&] { ++heard; });
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("table1")).ok());
  scheduler_->watch_hub().Unsubscribe(id);
  EXPECT_EQ(heard.load(), 1);
  auto response = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(response.ok());
  EXPECT_TRUE(response->has_run());
}

TEST_F(SchedulerTest, TheQueueGoesByPriorityThenOrderWithinEachSweepsLimit) {
  ASSERT_TRUE(scheduler_->SubmitSweep(SmallSweep("low")).ok());
  v1::SweepSpec spec = SmallSweep("high");
  spec.set_priority(5);
  spec.set_max_concurrent(1);
  auto high = *scheduler_->SubmitSweep(spec);
  v1::SweepSpec below = SmallSweep("below");
  below.set_priority(-1);
  ASSERT_TRUE(scheduler_->SubmitSweep(below).ok());
  auto alone = scheduler_->SubmitRun(LoneTeacher());
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(high.runs(1).priority(), 5);

  // Submitted second, leased first.
  v1::Run first = Lease();
  EXPECT_EQ(first.sweep_id(), high.sweep().id());
  Succeed(first, "t", 0.8);
  // High's two members are queued but it runs one at a time.
  const std::string w2 = AddWorker("gpu2"), w3 = AddWorker("gpu3"),
                    w4 = AddWorker("gpu4"), w5 = AddWorker("gpu5");
  v1::Run member = LeaseAs(w2);
  EXPECT_EQ(member.id(), high.runs(1).id());
  // Then priority 0 in submission order (low's teacher, the run alone),
  // then the sweep of priority -1.
  EXPECT_EQ(LeaseAs(w3).member(), "teacher");
  EXPECT_EQ(LeaseAs(w4).id(), alone->id());
  v1::Run last = LeaseAs(w5);
  EXPECT_EQ(scheduler_->GetRun(last.id())->priority(), -1);
  EXPECT_EQ(LeaseAs(AddWorker("gpu6")).id(), 0);  // High is at its limit.
  Succeed(member, "m", 0.5);
  EXPECT_EQ(LeaseAs(w2).id(), high.runs(2).id());
}

TEST_F(SchedulerTest, AHandedBackRunIsQueuedAtOnceAndIsNoRestart) {
  v1::SweepSpec spec = SmallSweep("table1");
  spec.mutable_teacher()->mutable_train()->set_max_restarts(1);
  auto sweep = *scheduler_->SubmitSweep(spec);
  v1::Run run = Lease();
  Upload(run, "after epoch 1", "resume.pt");
  v1::ReleaseRunRequest release;
  release.set_run_id(run.id());
  release.set_attempt(run.attempt());
  release.set_reason("SIGTERM");
  ASSERT_TRUE(scheduler_->ReleaseRun(release).ok());
  v1::Run queued = *scheduler_->GetRun(run.id());
  EXPECT_EQ(queued.status(), v1::QUEUED);
  EXPECT_THAT(queued.message(), HasSubstr("handed back: SIGTERM"));
  auto again = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(again.ok() && again->has_run());
  EXPECT_EQ(again->run().attempt(), 2);
  EXPECT_EQ(again->resume_point_sha256(), Sha256Hex("after epoch 1"));
  // The attempt handed back is fenced like any stale one.
  EXPECT_EQ(scheduler_->ReleaseRun(release).code(),
            absl::StatusCode::kFailedPrecondition);
  // max_restarts 1: attempt 2 is the first one lost, so it may restart;
  // the one after is the second, and the run is LOST.
  clock_.AdvanceMs(61'000);
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(StatusOf(run.id()), v1::QUEUED);
  EXPECT_EQ(Lease().attempt(), 3);
  clock_.AdvanceMs(61'000);
  ASSERT_TRUE(scheduler_->ExpireLeases().ok());
  EXPECT_EQ(StatusOf(run.id()), v1::FAILED);
}

TEST_F(SchedulerTest, OnlyTheHoldersTokenMayHandARunBack) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::RegisterWorkerRequest request;
  request.set_hostname("gpu7");
  const std::string mine = scheduler_->RegisterWorker(request, 7)->worker_id();
  auto lease = scheduler_->LeaseRun(mine, 7);
  ASSERT_TRUE(lease.ok() && lease->has_run());
  const v1::Run run = lease->run();
  v1::ReleaseRunRequest release;
  release.set_run_id(run.id());
  release.set_attempt(run.attempt());
  EXPECT_EQ(scheduler_->ReleaseRun(release, 8).code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(StatusOf(run.id()), v1::RUNNING);
  EXPECT_TRUE(scheduler_->ReleaseRun(release, 7).ok());
  EXPECT_EQ(StatusOf(run.id()), v1::QUEUED);
}

TEST_F(SchedulerTest, ADrainedWorkerLeasesNothingAndHearsItInItsHeartbeat) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run run = Lease();
  auto drained = scheduler_->DrainWorker(worker_);
  ASSERT_TRUE(drained.ok()) << drained.status();
  EXPECT_EQ(drained->status(), v1::WORKER_DRAINING);
  v1::HeartbeatRequest beat;
  beat.set_worker_id(worker_);
  beat.set_run_id(run.id());
  beat.set_attempt(run.attempt());
  EXPECT_TRUE(scheduler_->Heartbeat(beat)->drain_requested());
  v1::ReleaseRunRequest release;
  release.set_run_id(run.id());
  release.set_attempt(run.attempt());
  ASSERT_TRUE(scheduler_->ReleaseRun(release).ok());
  auto lease = scheduler_->LeaseRun(worker_);
  ASSERT_TRUE(lease.ok());
  EXPECT_FALSE(lease->has_run());
  EXPECT_TRUE(lease->drain_requested());
  // Another worker takes the run handed back.
  EXPECT_EQ(LeaseAs(AddWorker("gpu2")).id(), run.id());
  EXPECT_EQ(scheduler_->DrainWorker("ghost").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SchedulerTest, AnEndedClusterJobsLeasesExpireAndNoOthers) {
  auto sweep = *scheduler_->SubmitSweep(SmallSweep("table1"));
  v1::Run teacher = Lease();
  Succeed(teacher, "teacher", 0.8);
  v1::Run here = Lease();  // On gpu1.
  const std::string job_worker = AddWorker("slurm-42-node3");
  v1::Run there = LeaseAs(job_worker);
  ASSERT_NE(there.id(), 0);
  const std::string other_job = AddWorker("slurm-420-node3");  // Idle.
  auto expired = scheduler_->ExpireLeasesOfHosts("slurm-42-");
  ASSERT_TRUE(expired.ok()) << expired.status();
  EXPECT_EQ(*expired, 1);
  EXPECT_EQ(StatusOf(here.id()), v1::RUNNING);
  v1::Run requeued = *scheduler_->GetRun(there.id());
  EXPECT_EQ(requeued.status(), v1::QUEUED);
  EXPECT_EQ(*scheduler_->ExpireLeasesOfHosts("slurm-43-"), 0);
  // The ended job's worker is stopped, not idle (a launcher counting idle
  // workers waited a lease period before it replaced the job); another
  // job's is untouched.
  std::map<std::string, v1::WorkerStatus> status;
  auto workers = scheduler_->ListWorkers();
  ASSERT_TRUE(workers.ok()) << workers.status();
  for (const v1::Worker& w : *workers) status[w.id()] = w.status();
  EXPECT_EQ(status[job_worker], v1::WORKER_STOPPED);
  EXPECT_EQ(status[other_job], v1::WORKER_IDLE);
}

}  // namespace
}  // namespace distill

namespace distill {
namespace {

// Issue 31: nothing is synced with the scheduler's lock held (every lease,
// heartbeat and report waits for it). Before, ExpireLocked committed each
// expired run with its own fsync under the lock, on the path of every
// LeaseRun; every other write synced its commit there too. Now commits
// under the lock are synced once it is released (SchedulerCore::Durable),
// and a sync inside the lock is counted (a debug build aborts: the
// sanitizer build runs these tests so). What is still synced under it is
// SQLite's new WAL header after a complete checkpoint, counted apart.
TEST_F(FileSchedulerTest, NothingIsSyncedWithTheLockHeld) {
  const int64_t before = SyncsInNoSyncZones();
  for (int i = 0; i < 4; ++i)
    ASSERT_TRUE(scheduler_->SubmitRun(LoneTeacher()).ok());
  std::vector<v1::Run> leased;
  for (int i = 0; i < 3; ++i)
    leased.push_back(LeaseAs(AddWorker(absl::StrCat("gpu", i))));
  // Their workers go silent: the next lease expires all three, requeues
  // them and grants one, in one call.
  clock_.AdvanceMs(61'000);
  const v1::Run next = LeaseAs(AddWorker("late"));
  EXPECT_NE(next.id(), 0);
  for (const v1::Run& run : leased) {
    const v1::RunStatus status = StatusOf(run.id());
    EXPECT_TRUE(status == v1::QUEUED || run.id() == next.id()) << run.id();
  }
  // Every kind of write, each returned through Durable.
  Upload(next, "weights");
  ASSERT_TRUE(ReportEpoch(next, 1, 0.5).ok());
  ASSERT_TRUE(scheduler_->CancelRun(leased[0].id()).ok());
  TokenRecord token;
  token.name = "alice";
  token.role = v1::ROLE_RESEARCHER;
  token.sha256 = std::string(64, 'a');
  ASSERT_TRUE(scheduler_->InsertToken(token).ok());
  EXPECT_EQ(SyncsInNoSyncZones(), before);
  EXPECT_EQ(SchedulerCore::UnsyncedOnThisThread(), 0)
      << "a write returned without its commit synced";
}

}  // namespace
}  // namespace distill
