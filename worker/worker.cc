#include "worker/worker.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <filesystem>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "worker/engine/runtime.h"
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
  v1::RegisterWorkerResponse response;
  grpc::Status status = stub_->RegisterWorker(
      ContextWithTimeout(absl::Seconds(10)).get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  worker_id_ = response.worker_id();
  heartbeat_interval_ = absl::Milliseconds(response.heartbeat_interval_ms());
  return absl::OkStatus();
}

absl::Status Worker::Serve(const std::atomic<bool>& stop) {
  absl::Duration backoff = absl::Milliseconds(250);
  while (!stop) {
    absl::Status status = worker_id_.empty()
                              ? Register()
                              : ServeOne(options_.lease_wait).status();
    if (status.ok()) {
      backoff = absl::Milliseconds(250);
      continue;
    }
    if (status.code() == absl::StatusCode::kNotFound)
      worker_id_.clear();  // Re-register.
    DISTILL_LOG(WARNING) << "coordinator: " << status.message()
                         << "; retrying in " << backoff;
    absl::SleepFor(backoff);
    backoff = std::min(backoff * 2, absl::Seconds(10));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Worker::ServeOne(absl::Duration wait) {
  v1::LeaseRunRequest request;
  request.set_worker_id(worker_id_);
  request.set_wait_ms(absl::ToInt64Milliseconds(wait));
  v1::LeaseRunResponse response;
  grpc::Status status = stub_->LeaseRun(
      ContextWithTimeout(wait + absl::Seconds(10)).get(), request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  if (!response.has_run()) return false;
  const v1::Run& run = response.run();
  DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                    << " (" << v1::ExperimentKind_Name(run.spec().kind())
                    << (run.member().empty() ? "" : ", member " + run.member())
                    << ") leased";
  absl::Status outcome = Execute(run, response.teacher_checkpoint_sha256(),
                                 response.student_checkpoint_sha256(),
                                 response.resume_point_sha256());
  for (const std::string& removed : TrimCache(
           {options_.scratch_dir, options_.scratch_dir + "/teacher-cache"},
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
  v1::FailRunResponse ignored;
  grpc::Status s = stub_->FailRun(ContextWithTimeout(absl::Seconds(30)).get(),
                                  fail, &ignored);
  if (!s.ok()) {
    DISTILL_LOG(WARNING) << "run " << run.id()
                         << ": FailRun: " << s.error_message();
  }
}

absl::Status Worker::Execute(const v1::Run& run,
                             const std::string& teacher_sha256,
                             const std::string& student_sha256,
                             const std::string& resume_sha256) {
  std::error_code error;
  std::filesystem::create_directories(options_.scratch_dir, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot create the scratch directory ",
                     options_.scratch_dir, ": ", error.message()));
  }
  if (absl::Status s = CheckSpecPaths(run.spec(), options_.data_roots);
      !s.ok()) {
    return s;
  }
  engine::RunHooks hooks;
  if (!student_sha256.empty()) {
    absl::StatusOr<std::string> student = files_.Fetch(student_sha256);
    if (!student.ok()) {
      return absl::Status(
          student.status().code(),
          absl::StrCat("student run ", run.spec().student_run_id(),
                       " checkpoint: ", student.status().message()));
    }
    hooks.student_checkpoint = *student;
  }
  if (run.teacher_run_id() != 0) {
    absl::StatusOr<std::string> teacher = files_.Fetch(teacher_sha256);
    if (!teacher.ok()) {
      return absl::Status(
          teacher.status().code(),
          absl::StrCat("teacher run ", run.teacher_run_id(),
                       " checkpoint: ", teacher.status().message()));
    }
    hooks.teacher_checkpoint = *teacher;
  }
  // Everything this attempt writes lives in one folder, removed at the end.
  const std::string attempt_dir = absl::StrCat(
      options_.scratch_dir, "/run-", run.id(), "-attempt-", run.attempt());
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
  if (!resume_sha256.empty()) {
    // Fetched into this attempt's folder: no other run needs it.
    absl::StatusOr<std::string> point =
        files_.Fetch(resume_sha256, attempt_dir);
    if (point.ok()) {
      hooks.resume_from = *point;
      DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                        << " goes on from resume point " << resume_sha256;
    } else {
      DISTILL_LOG(WARNING) << "run " << run.id()
                           << ": cannot fetch resume point " << resume_sha256
                           << " (" << point.status().message()
                           << "); starting from the beginning";
    }
  }
  if (options_.teacher_cache) {
    hooks.teacher_cache.dir = options_.scratch_dir + "/teacher-cache";
    hooks.teacher_cache.file_digest = [this](const std::string& path) {
      return files_.Digest(path);
    };
    hooks.teacher_cache.text_digest = [](const std::string& text) {
      return Sha256Hex(text);
    };
    // In use: the last to go when scratch is full.
    hooks.teacher_cache.on_use = TouchCacheFile;
  }
  hooks.run_file_dir = attempt_dir;
  Reporter reporter(stub_.get(), worker_id_, run.id(), run.attempt(),
                    options_.metrics_flush, heartbeat_interval_);
  hooks.on_metrics = [&](std::vector<engine::Metric> m) {
    reporter.Add(std::move(m));
  };
  hooks.should_stop = [&] { return reporter.ShouldStop(); };
  hooks.resume_path = attempt_dir + "/" + kResumeFile;
  hooks.on_resume_point = [&](int64_t epoch) {
    // The metrics up to the point go first: a new attempt measures only
    // what comes after it. A resume point that does not arrive costs only
    // the epochs since the one before: the run goes on.
    reporter.Flush();
    absl::StatusOr<std::string> sha =
        files_.Upload(run.id(), run.attempt(), hooks.resume_path, kResumeFile);
    if (!sha.ok()) {
      DISTILL_LOG(WARNING) << "run " << run.id()
                           << ": the resume point after epoch " << epoch
                           << " was not uploaded: " << sha.status().message();
    }
  };

  absl::StatusOr<engine::RunOutcome> outcome =
      engine::ExecuteRun(ToRunConfig(run.spec(), options_.device), hooks);
  reporter.Stop();
  if (!outcome.ok()) return outcome.status();
  if (outcome->stopped || reporter.ShouldStop()) {
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " stopped: " << reporter.why_stopped();
    return absl::OkStatus();
  }
  for (const std::string& file : outcome->run_files) {
    const std::string name = std::filesystem::path(file).filename();
    if (absl::StatusOr<std::string> s =
            files_.Upload(run.id(), run.attempt(), file, name);
        !s.ok()) {
      return absl::Status(
          s.status().code(),
          absl::StrCat("uploading ", name, ": ", s.status().message()));
    }
  }
  std::string checkpoint_sha256;  // EVALUATE writes no checkpoint.
  if (std::filesystem::exists(hooks.output_checkpoint, error)) {
    absl::StatusOr<std::string> sha = files_.Upload(
        run.id(), run.attempt(), hooks.output_checkpoint, kCheckpointFile);
    if (!sha.ok()) return sha.status();
    checkpoint_sha256 = *sha;
  }
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(checkpoint_sha256);
  for (const auto& [key, value] : outcome->results)
    (*complete.mutable_results())[key] = value;
  v1::CompleteRunResponse ignored;
  grpc::Status s = stub_->CompleteRun(
      ContextWithTimeout(absl::Seconds(30)).get(), complete, &ignored);
  if (!s.ok()) return FromGrpcStatus(s);
  DISTILL_LOG(INFO) << "run " << run.id() << " succeeded";
  return absl::OkStatus();
}

}  // namespace distill
