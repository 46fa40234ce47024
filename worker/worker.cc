#include "worker/worker.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "common/api.h"
#include "common/backoff.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/metric_keys.h"
#include "common/placement.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "common/version.h"
#include "worker/device_info.h"
#include "worker/engine/datasets.h"
#include "worker/engine/runtime.h"
#include "worker/engine/splits.h"
#include "worker/engine/trainer.h"
#include "worker/reporter.h"
#include "worker/scratch.h"
#include "worker/spec_convert.h"

namespace distill {
namespace {

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

// What only this worker knows of a run's inputs (common/provenance.h): the
// data files it reads, as the digest of a manifest of their paths under the
// data set's root and their own digests (cached by size and time), and a
// TorchScript teacher's file. What cannot be read is left out: the engine
// reports that itself when it opens it.
std::map<std::string, std::string> WorkerProvenance(
    const engine::RunConfig& config, FileTransfer& files) {
  std::map<std::string, std::string> out;
  const std::vector<std::string> data = engine::DatasetFiles(config.dataset);
  const std::filesystem::path root =
      config.dataset.root.empty() ? engine::StandardRoot(config.dataset.name)
                                  : config.dataset.root;
  std::vector<std::string> lines;
  for (const std::string& file : data) {
    absl::StatusOr<std::string> sha = files.Digest(file);
    if (!sha.ok()) {
      lines.clear();
      break;
    }
    std::string name = std::filesystem::path(file).lexically_relative(root);
    if (name.empty() || absl::StartsWith(name, "..")) name = file;
    lines.push_back(absl::StrCat(name, " ", *sha, "\n"));
  }
  if (!lines.empty()) {
    std::sort(lines.begin(), lines.end());
    out[provenance::kDataSha256] = Sha256Hex(absl::StrJoin(lines, ""));
    out[provenance::kDataFiles] = absl::StrCat(lines.size());
  }
  if (!config.teacher_torchscript.empty()) {
    absl::StatusOr<std::string> sha = files.Digest(config.teacher_torchscript);
    if (sha.ok()) out[provenance::kTeacherTorchScriptSha256] = *sha;
  }
  return out;
}

}  // namespace

Worker::Worker(std::shared_ptr<grpc::Channel> channel, WorkerOptions options)
    : stub_(v1::WorkerService::NewStub(channel)),
      options_(std::move(options)),
      files_(stub_.get(), options_.scratch_dir) {
  if (options_.hostname.empty()) options_.hostname = Hostname();
  engine::ConfigureRuntime(options_.threads);
}

std::string Worker::Describe() const {
  return absl::StrCat(
      "LibTorch ", TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".",
      TORCH_VERSION_PATCH, ", device ", options_.device, ", ",
      torch::get_num_threads(), " threads, BLAS ", engine::LoadedBlas());
}

absl::Status Worker::Register() {
  v1::RegisterWorkerRequest request;
  request.set_hostname(options_.hostname);
  request.set_device(options_.device);
  request.set_threads(torch::get_num_threads());
  request.set_libtorch_version(absl::StrCat(
      TORCH_VERSION_MAJOR, ".", TORCH_VERSION_MINOR, ".", TORCH_VERSION_PATCH));
  request.set_blas(engine::LoadedBlas());
  request.set_distill_version(DistillVersion());
  request.set_protocol_version(kWorkerProtocol);
  // What it offers for placement: its labels, device_kind among them.
  const DeviceInfo device = DetectDevice(options_.device);
  request.add_labels(absl::StrCat("device_kind=", DeviceKind(options_.device)));
  for (const std::string& label : options_.labels) request.add_labels(label);
  request.set_device_memory_bytes(device.memory_bytes);
  request.set_accelerator(device.name);
  request.set_cpu_cores(device.cpu_cores);
  v1::RegisterWorkerResponse response;
  grpc::Status status = stub_->RegisterWorker(
      ContextWithTimeout(absl::Seconds(10)).get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  worker_id_ = response.worker_id();
  DISTILL_LOG(INFO) << "registered as " << worker_id_ << " with coordinator "
                    << response.coordinator_version() << " (worker protocol "
                    << response.protocol_version() << ")";
  heartbeat_interval_ = absl::Milliseconds(response.heartbeat_interval_ms());
  if (response.lease_duration_ms() > 0)
    lease_duration_ = absl::Milliseconds(response.lease_duration_ms());
  return absl::OkStatus();
}

bool Worker::DrainAsked() const {
  return (drain_signal_ != nullptr && drain_signal_->load()) ||
         drain_from_coordinator_.load();
}

bool Worker::DrainDue() {
  if (!DrainAsked()) return false;
  const absl::Time now = absl::Now();
  if (!drain_since_.has_value()) drain_since_ = now;
  return now >= *drain_since_ + options_.drain_grace;
}

absl::Duration Worker::PollWait(absl::Time busy) const {
  if (options_.exit_after_idle <= absl::ZeroDuration()) {
    return options_.lease_wait;
  }
  // A long-poll ends when the idle time does (a cluster job gives its
  // allocation back then, not up to a poll later); a short one at least.
  const absl::Duration left = busy + options_.exit_after_idle - absl::Now();
  return std::min(std::max(left, absl::Milliseconds(100)), options_.lease_wait);
}

absl::Status Worker::Serve(const std::atomic<bool>& drain) {
  drain_signal_ = &drain;
  // Cancels an idle long-poll as soon as a drain is asked for.
  std::atomic<bool> served{false};
  std::thread canceller([&] {
    while (!served) {
      if (DrainAsked()) {
        absl::MutexLock lock(&poll_mu_);
        if (poll_ != nullptr) poll_->TryCancel();
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  Backoff backoff(absl::Milliseconds(250), absl::Seconds(10));
  absl::Status refused;
  absl::Time busy = absl::Now();  // When the last run ended (or Serve began).
  while (!DrainAsked()) {
    if (options_.metrics != nullptr) options_.metrics->SetDraining(false);
    if (options_.exit_after_idle > absl::ZeroDuration() &&
        absl::Now() - busy > options_.exit_after_idle) {
      DISTILL_LOG(INFO) << "idle for " << options_.exit_after_idle
                        << ": stopping";
      break;
    }
    absl::StatusOr<bool> served_one = true;
    absl::Status status = absl::OkStatus();
    if (worker_id_.empty()) {
      status = Register();
    } else {
      served_one = ServeOne(PollWait(busy));
      status = served_one.status();
    }
    if (status.ok()) {
      backoff.Reset();
      if (*served_one) busy = absl::Now();
      continue;
    }
    if (DrainAsked()) break;  // The long-poll was cancelled for the drain.
    if (worker_id_.empty() &&
        status.code() == absl::StatusCode::kFailedPrecondition) {
      refused = status;  // Version skew: retrying cannot help.
      break;
    }
    if (status.code() == absl::StatusCode::kNotFound)
      worker_id_.clear();  // Re-register.
    const absl::Duration wait = backoff.Next();
    DISTILL_LOG(WARNING) << "coordinator: " << status.message()
                         << "; retrying in " << wait;
    absl::SleepFor(wait);
  }
  served = true;
  canceller.join();
  if (!worker_id_.empty()) {
    v1::DeregisterRequest request;
    request.set_worker_id(worker_id_);
    v1::DeregisterResponse ignored;
    grpc::Status s = stub_->Deregister(
        ContextWithTimeout(absl::Seconds(2)).get(), request, &ignored);
    DISTILL_LOG(INFO) << "worker " << worker_id_ << " stopped"
                      << (s.ok() ? ""
                                 : " (not deregistered: " + s.error_message() +
                                       ")");
  }
  drain_signal_ = nullptr;
  if (!refused.ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the coordinator refused this worker: ", refused.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Worker::ServeOne(absl::Duration wait) {
  v1::LeaseRunRequest request;
  request.set_worker_id(worker_id_);
  request.set_wait_ms(absl::ToInt64Milliseconds(wait));
  v1::LeaseRunResponse response;
  auto context = ContextWithTimeout(wait + absl::Seconds(10));
  {
    absl::MutexLock lock(&poll_mu_);
    if (DrainAsked()) return false;
    poll_ = context.get();
  }
  grpc::Status status = stub_->LeaseRun(context.get(), request, &response);
  {
    absl::MutexLock lock(&poll_mu_);
    poll_ = nullptr;
  }
  if (!status.ok()) return FromGrpcStatus(status);
  if (response.drain_requested()) {
    DISTILL_LOG(INFO) << "the coordinator asks this worker to drain";
    drain_from_coordinator_ = true;
  }
  if (response.paused_reason() != paused_reason_) {
    paused_reason_ = response.paused_reason();
    if (!paused_reason_.empty()) {
      DISTILL_LOG(WARNING) << "the coordinator says " << paused_reason_
                           << "; this worker waits";
    }
  }
  if (!response.has_run()) return false;
  const v1::Run& run = response.run();
  DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                    << " (" << v1::ExperimentKind_Name(run.spec().kind())
                    << (run.member().empty() ? "" : ", member " + run.member())
                    << ") leased";
  if (options_.metrics != nullptr) options_.metrics->SetRun(run.id());
  absl::Status outcome = Execute(run, response.teacher_checkpoint_sha256(),
                                 response.student_checkpoint_sha256(),
                                 response.resume_point_sha256());
  if (options_.metrics != nullptr) {
    options_.metrics->SetRun(0);
    if (!outcome.ok()) options_.metrics->RunEnded("failed");
  }
  for (const std::string& removed :
       TrimCache({options_.scratch_dir, TeacherCacheDir()},
                 options_.scratch_max_bytes, {})) {
    DISTILL_LOG(INFO) << "scratch over its limit: removed " << removed;
  }
  if (!outcome.ok()) Fail(run, outcome);
  return true;
}

void Worker::Fail(const v1::Run& run, const absl::Status& outcome) {
  DISTILL_LOG(WARNING) << "run " << run.id()
                       << " failed: " << outcome.message();
  v1::FailRunRequest fail;
  fail.set_run_id(run.id());
  fail.set_attempt(run.attempt());
  fail.set_message(std::string(outcome.message()));
  BeforeStage("fail");
  absl::Status s = RetryTransient(
      lease_duration_, absl::StrCat("run ", run.id(), ": FailRun"), [&] {
        v1::FailRunResponse ignored;
        return FromGrpcStatus(stub_->FailRun(
            ContextWithTimeout(absl::Seconds(30), true).get(), fail, &ignored));
      });
  if (!s.ok()) {
    DISTILL_LOG(WARNING) << "run " << run.id() << ": FailRun: " << s.message();
  }
}

absl::Status Worker::CheckScratchAndPaths(const v1::Run& run) {
  std::error_code error;
  std::filesystem::create_directories(options_.scratch_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the scratch directory ",
                     options_.scratch_dir, ": ", error.message()));
  }
  return CheckSpecPaths(run.spec(), options_.data_roots);
}

absl::StatusOr<std::string> Worker::FetchFile(const v1::Run& run,
                                              const std::string& sha256,
                                              const std::string& dir) {
  // A file already here is no call, and no stage.
  if (options_.stage_hook != nullptr && !files_.Cached(sha256, dir))
    BeforeStage("fetch");
  absl::StatusOr<std::string> path;
  absl::Status s = RetryTransient(
      lease_duration_, absl::StrCat("run ", run.id(), ": fetching ", sha256),
      [&] {
        path = files_.Fetch(sha256, dir);
        return path.status();
      });
  return s.ok() ? path : absl::StatusOr<std::string>(s);
}

absl::Status Worker::FetchCheckpoints(const v1::Run& run,
                                      const std::string& teacher_sha256,
                                      const std::string& student_sha256,
                                      engine::RunHooks* hooks) {
  if (!student_sha256.empty()) {
    absl::StatusOr<std::string> student = FetchFile(run, student_sha256, "");
    if (!student.ok()) {
      return absl::Status(
          student.status().code(),
          absl::StrCat(
              run.spec().fork().run_id() != 0 ? "forked run " : "student run ",
              run.spec().fork().run_id() != 0 ? run.spec().fork().run_id()
                                              : run.spec().student_run_id(),
              " checkpoint: ", student.status().message()));
    }
    hooks->student_checkpoint = *student;
  }
  if (run.teacher_run_id() != 0) {
    absl::StatusOr<std::string> teacher = FetchFile(run, teacher_sha256, "");
    if (!teacher.ok()) {
      return absl::Status(
          teacher.status().code(),
          absl::StrCat("teacher run ", run.teacher_run_id(),
                       " checkpoint: ", teacher.status().message()));
    }
    hooks->teacher_checkpoint = *teacher;
  }
  return absl::OkStatus();
}

void Worker::FetchResumePoint(const v1::Run& run, const std::string& sha256,
                              const std::string& dir, engine::RunHooks* hooks) {
  if (sha256.empty()) return;
  // Fetched into this attempt's folder: no other run needs it.
  absl::StatusOr<std::string> point = FetchFile(run, sha256, dir);
  if (point.ok()) {
    hooks->resume_from = *point;
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " goes on from resume point " << sha256;
  } else {
    DISTILL_LOG(WARNING) << "run " << run.id() << ": cannot fetch resume point "
                         << sha256 << " (" << point.status().message()
                         << "); starting from the beginning";
  }
}

void Worker::UseTeacherCache(engine::RunHooks* hooks) {
  if (!options_.teacher_cache) return;
  hooks->teacher_cache.dir = TeacherCacheDir();
  hooks->teacher_cache.file_digest = [this](const std::string& path) {
    return files_.Digest(path);
  };
  hooks->teacher_cache.text_digest = [](const std::string& text) {
    return Sha256Hex(text);
  };
  // In use: the last to go when scratch is full.
  hooks->teacher_cache.on_use = TouchCacheFile;
}

absl::StatusOr<std::string> Worker::UploadFile(const v1::Run& run,
                                               const std::string& path,
                                               const std::string& name) {
  BeforeStage(name == kResumeFile ? "resume_upload" : "upload");
  absl::StatusOr<std::string> sha;
  absl::Status s =
      RetryTransient(lease_duration_,
                     absl::StrCat("run ", run.id(), ": uploading ", name), [&] {
                       sha = files_.Upload(run.id(), run.attempt(), path, name);
                       return sha.status();
                     });
  return s.ok() ? sha : absl::StatusOr<std::string>(s);
}

void Worker::ConnectReporter(const v1::Run& run, Reporter& reporter,
                             engine::RunHooks* hooks) {
  drain_since_.reset();
  hooks->on_metrics = [this, &reporter](std::vector<engine::Metric> m) {
    if (options_.metrics != nullptr) {
      for (const engine::Metric& point : m) {
        if (point.key == metric_keys::kImagesPerSec)
          options_.metrics->SetProgress(point.step, point.value);
      }
    }
    reporter.Add(std::move(m));
  };
  hooks->should_stop = [&reporter] { return reporter.ShouldStop(); };
  hooks->should_drain = [this, &reporter] {
    if (reporter.DrainRequested()) drain_from_coordinator_ = true;
    const bool due = DrainDue();
    if (options_.metrics != nullptr)
      options_.metrics->SetDraining(DrainAsked());
    // A preemption hands this run back at once and the worker goes on.
    return due || !reporter.YieldReason().empty();
  };
  hooks->on_resume_point = [this, &run, &reporter, hooks](int64_t epoch) {
    // The metrics up to the point go first: a new attempt measures only
    // what comes after it. A resume point that does not arrive costs only
    // the epochs since the one before: the run goes on.
    reporter.Flush();
    // The epoch just reported may have ended the run (early stopping): then
    // no attempt will go on from this point.
    if (reporter.ShouldStop()) return;
    absl::StatusOr<std::string> sha =
        UploadFile(run, hooks->resume_path, kResumeFile);
    if (!sha.ok()) {
      DISTILL_LOG(WARNING) << "run " << run.id()
                           << ": the resume point after epoch " << epoch
                           << " was not uploaded: " << sha.status().message();
    }
  };
}

void Worker::HandBack(const v1::Run& run, Reporter& reporter) {
  // The resume point of this step is uploaded: the run goes back to the
  // queue now, not when the lease would expire.
  v1::ReleaseRunRequest release;
  release.set_run_id(run.id());
  release.set_attempt(run.attempt());
  const std::string yielded = reporter.YieldReason();
  release.set_reason(!yielded.empty() ? absl::StrCat("preempted ", yielded)
                     : drain_from_coordinator_ ? "distill workers drain"
                                               : "the worker was stopped");
  absl::Status s = RetryTransient(
      lease_duration_, absl::StrCat("run ", run.id(), ": ReleaseRun"), [&] {
        v1::ReleaseRunResponse ignored;
        return FromGrpcStatus(
            stub_->ReleaseRun(ContextWithTimeout(absl::Seconds(30), true).get(),
                              release, &ignored));
      });
  if (!s.ok()) {
    DISTILL_LOG(WARNING) << "run " << run.id()
                         << " not handed back (its lease will expire): "
                         << s.message();
    return;
  }
  DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                    << " handed back with a resume point";
  if (options_.metrics != nullptr) options_.metrics->RunEnded("handed_back");
}

absl::Status Worker::Complete(const v1::Run& run,
                              const engine::RunOutcome& outcome,
                              const engine::RunHooks& hooks) {
  const std::string& checkpoint_path = hooks.output_checkpoint;
  for (const std::string& file : outcome.run_files) {
    const std::string name = std::filesystem::path(file).filename();
    if (absl::StatusOr<std::string> s = UploadFile(run, file, name); !s.ok()) {
      return absl::Status(
          s.status().code(),
          absl::StrCat("uploading ", name, ": ", s.status().message()));
    }
  }
  std::string checkpoint_sha256;  // EVALUATE writes no checkpoint.
  std::error_code error;
  // A student's training state at its end: what a fork goes on from.
  if (run.spec().kind() == v1::DISTILL &&
      std::filesystem::exists(hooks.resume_path, error)) {
    if (absl::StatusOr<std::string> s =
            UploadFile(run, hooks.resume_path, kStateFile);
        !s.ok()) {
      return s.status();
    }
  }
  if (std::filesystem::exists(checkpoint_path, error)) {
    absl::StatusOr<std::string> sha =
        UploadFile(run, checkpoint_path, kCheckpointFile);
    if (!sha.ok()) return sha.status();
    checkpoint_sha256 = *sha;
  }
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(checkpoint_sha256);
  for (const auto& [key, value] : outcome.results)
    (*complete.mutable_results())[key] = value;
  BeforeStage("complete");
  absl::Status s = RetryTransient(
      lease_duration_, absl::StrCat("run ", run.id(), ": CompleteRun"), [&] {
        v1::CompleteRunResponse ignored;
        return FromGrpcStatus(stub_->CompleteRun(
            ContextWithTimeout(absl::Seconds(30), true).get(), complete,
            &ignored));
      });
  if (!s.ok()) return s;
  DISTILL_LOG(INFO) << "run " << run.id() << " succeeded";
  if (options_.metrics != nullptr) options_.metrics->RunEnded("succeeded");
  return absl::OkStatus();
}

absl::Status Worker::Execute(const v1::Run& run,
                             const std::string& teacher_sha256,
                             const std::string& student_sha256,
                             const std::string& resume_sha256) {
  if (absl::Status s = CheckScratchAndPaths(run); !s.ok()) return s;
  engine::RunHooks hooks;
  if (absl::Status s =
          FetchCheckpoints(run, teacher_sha256, student_sha256, &hooks);
      !s.ok()) {
    return s;
  }
  // Everything this attempt writes lives in one folder, removed at the end.
  const std::string attempt_dir = absl::StrCat(
      options_.scratch_dir, "/run-", run.id(), "-attempt-", run.attempt());
  std::error_code error;
  std::filesystem::create_directories(attempt_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", attempt_dir, ": ", error.message()));
  }
  struct RemoveDir {
    std::string dir;
    ~RemoveDir() {
      std::error_code ignored;
      std::filesystem::remove_all(dir, ignored);
    }
  } remove_attempt_dir{attempt_dir};
  hooks.output_checkpoint = attempt_dir + "/checkpoint.pt";
  hooks.run_file_dir = attempt_dir;
  hooks.resume_path = attempt_dir + "/" + kResumeFile;
  FetchResumePoint(run, resume_sha256, attempt_dir, &hooks);
  UseTeacherCache(&hooks);
  Reporter reporter(stub_.get(), worker_id_, run.id(), run.attempt(),
                    options_.metrics_flush, heartbeat_interval_,
                    lease_duration_);
  ConnectReporter(run, reporter, &hooks);
  const engine::RunConfig config = ToRunConfig(run.spec(), options_.device);
  reporter.AddProvenance(WorkerProvenance(config, files_));
  absl::StatusOr<engine::RunOutcome> outcome =
      engine::ExecuteRun(config, hooks);
  reporter.Stop();
  if (!outcome.ok()) return outcome.status();
  if (outcome->drained && !reporter.ShouldStop()) {
    HandBack(run, reporter);
    return absl::OkStatus();
  }
  if (outcome->stopped || reporter.ShouldStop()) {
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " stopped: " << reporter.why_stopped();
    if (options_.metrics != nullptr) options_.metrics->RunEnded("stopped");
    return absl::OkStatus();
  }
  return Complete(run, *outcome, hooks);
}

}  // namespace distill
