#include "worker/worker.h"

#include <torch/torch.h>
#include <torch/version.h>
#include <unistd.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/grpc_status.h"
#include "common/log.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "worker/engine/runtime.h"
#include "worker/engine/splits.h"
#include "worker/engine/trainer.h"
#include "worker/scratch.h"
#include "worker/spec_convert.h"

namespace distill {
namespace {

constexpr size_t kChunkBytes = 1 << 20;

std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
  return context;
}

// Streams metric batches and heartbeats for one run from its own thread,
// so training never waits on the network. Thread-safe.
class Reporter {
 public:
  Reporter(v1::WorkerService::Stub* stub, const std::string& worker_id,
           const v1::Run& run, absl::Duration flush, absl::Duration heartbeat)
      : stub_(stub),
        worker_id_(worker_id),
        run_id_(run.id()),
        attempt_(run.attempt()),
        flush_(flush),
        heartbeat_(heartbeat),
        thread_([this] { Loop(); }) {}

  ~Reporter() { Stop(); }

  void Add(std::vector<engine::Metric> metrics) {
    std::lock_guard lock(mu_);
    for (engine::Metric& m : metrics) {
      v1::MetricPoint* p = pending_.add_points();
      p->set_step(m.step);
      p->set_epoch(int32_t(m.epoch));
      p->set_key(std::move(m.key));
      p->set_value(m.value);
      p->set_time_ms(m.time_ms);
    }
  }

  // True once the coordinator said this attempt must end (cancelled, or the
  // lease went to another attempt).
  bool ShouldStop() const { return stop_training_.load(); }
  std::string why_stopped() const {
    std::lock_guard lock(mu_);
    return why_stopped_;
  }

  // Sends what is pending from the caller's thread; returns once it was
  // sent (or kept for a retry).
  void Flush() { SendPending(); }

  // Sends what is pending and ends the thread.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (done_) return;
      done_ = true;
    }
    wake_.notify_all();
    thread_.join();
    SendPending();
  }

 private:
  void Loop() {
    absl::Time next_heartbeat = absl::Now() + heartbeat_;
    std::unique_lock lock(mu_);
    while (!done_) {
      wake_.wait_for(lock, absl::ToChronoMilliseconds(flush_));
      if (done_) break;
      lock.unlock();
      SendPending();
      if (absl::Now() >= next_heartbeat) {
        SendHeartbeat();
        next_heartbeat = absl::Now() + heartbeat_;
      }
      lock.lock();
    }
  }

  void SendPending() {
    std::lock_guard sending(send_mu_);  // Batches arrive in order.
    v1::ReportMetricsRequest request;
    {
      std::lock_guard lock(mu_);
      if (pending_.points_size() == 0) return;
      request.Swap(&pending_);
    }
    request.set_run_id(run_id_);
    request.set_attempt(attempt_);
    v1::ReportMetricsResponse response;
    grpc::Status status = stub_->ReportMetrics(Context(absl::Seconds(30)).get(),
                                               request, &response);
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      StopTraining(status.error_message());
    } else if (!status.ok()) {
      DISTILL_LOG(WARNING) << "run " << run_id_
                           << ": metrics not sent, will retry: "
                           << status.error_message();
      std::lock_guard lock(mu_);
      request.mutable_points()->MergeFrom(pending_.points());
      pending_.Swap(&request);
    }
  }

  void SendHeartbeat() {
    v1::HeartbeatRequest request;
    request.set_worker_id(worker_id_);
    request.set_run_id(run_id_);
    request.set_attempt(attempt_);
    v1::HeartbeatResponse response;
    grpc::Status status =
        stub_->Heartbeat(Context(absl::Seconds(10)).get(), request, &response);
    if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
      StopTraining(status.error_message());
    } else if (status.ok() && response.cancel_requested()) {
      StopTraining("the run was cancelled");
    }
  }

  void StopTraining(const std::string& why) {
    {
      std::lock_guard lock(mu_);
      why_stopped_ = why;
    }
    stop_training_ = true;
  }

  v1::WorkerService::Stub* const stub_;
  const std::string worker_id_;
  const int64_t run_id_;
  const int32_t attempt_;
  const absl::Duration flush_, heartbeat_;
  std::mutex send_mu_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  v1::ReportMetricsRequest pending_;  // Guarded by mu_.
  bool done_ = false;                 // Guarded by mu_.
  std::string why_stopped_;           // Guarded by mu_.
  std::atomic<bool> stop_training_{false};
  std::thread thread_;
};

std::string Hostname() {
  char name[256] = {};
  gethostname(name, sizeof(name) - 1);
  return name;
}

}  // namespace

Worker::Worker(std::shared_ptr<grpc::Channel> channel, WorkerOptions options)
    : stub_(v1::WorkerService::NewStub(channel)), options_(std::move(options)) {
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
  grpc::Status status = stub_->RegisterWorker(Context(absl::Seconds(10)).get(),
                                              request, &response);
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
  grpc::Status status = stub_->LeaseRun(Context(wait + absl::Seconds(10)).get(),
                                        request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  if (!response.has_run()) return false;
  const v1::Run& run = response.run();
  DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                    << " (" << v1::ExperimentKind_Name(run.spec().kind())
                    << (run.member().empty() ? "" : ", member " + run.member())
                    << ") leased";
  absl::Status outcome = Execute(run, response.teacher_checkpoint_sha256(),
                                 response.student_checkpoint_sha256(),
                                 response.resume_checkpoint_sha256());
  for (const std::string& removed : TrimCache(
           {options_.scratch_dir, options_.scratch_dir + "/teacher-cache"},
           options_.scratch_max_bytes, {})) {
    DISTILL_LOG(INFO) << "scratch over its limit: removed " << removed;
  }
  if (!outcome.ok()) {
    DISTILL_LOG(WARNING) << "run " << run.id()
                         << " failed: " << outcome.message();
    v1::FailRunRequest fail;
    fail.set_run_id(run.id());
    fail.set_attempt(run.attempt());
    fail.set_message(std::string(outcome.message()));
    v1::FailRunResponse ignored;
    grpc::Status s =
        stub_->FailRun(Context(absl::Seconds(30)).get(), fail, &ignored);
    if (!s.ok())
      DISTILL_LOG(WARNING) << "run " << run.id()
                           << ": FailRun: " << s.error_message();
  }
  return true;
}

absl::Status Worker::Execute(const v1::Run& run,
                             const std::string& teacher_sha256,
                             const std::string& student_sha256,
                             const std::string& resume_sha256) {
  std::filesystem::create_directories(options_.scratch_dir);
  engine::RunHooks hooks;
  if (!student_sha256.empty()) {
    absl::StatusOr<std::string> student = FetchCheckpoint(student_sha256);
    if (!student.ok()) {
      return absl::Status(
          student.status().code(),
          absl::StrCat("student run ", run.spec().student_run_id(),
                       " checkpoint: ", student.status().message()));
    }
    hooks.student_checkpoint = *student;
  }
  if (run.teacher_run_id() != 0) {
    absl::StatusOr<std::string> teacher = FetchCheckpoint(teacher_sha256);
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
  std::filesystem::create_directories(attempt_dir);
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
        FetchCheckpoint(resume_sha256, attempt_dir);
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
    absl::StatusOr<std::string> cache = TeacherCachePath(run, teacher_sha256);
    if (!cache.ok()) return cache.status();
    hooks.teacher_cache_path = *cache;
  }
  hooks.artifact_dir = attempt_dir;
  Reporter reporter(stub_.get(), worker_id_, run, options_.metrics_flush,
                    heartbeat_interval_);
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
        UploadFile(run, hooks.resume_path, kResumeFile);
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
  for (const std::string& artifact : outcome->artifacts) {
    const std::string name = std::filesystem::path(artifact).filename();
    if (absl::StatusOr<std::string> s = UploadFile(run, artifact, name);
        !s.ok()) {
      return absl::Status(
          s.status().code(),
          absl::StrCat("uploading ", name, ": ", s.status().message()));
    }
  }
  absl::StatusOr<std::string> sha =
      std::string();  // EVALUATE writes no checkpoint.
  if (std::filesystem::exists(hooks.output_checkpoint)) {
    sha = UploadFile(run, hooks.output_checkpoint, kCheckpointFile);
    if (!sha.ok()) return sha.status();
  }
  v1::CompleteRunRequest complete;
  complete.set_run_id(run.id());
  complete.set_attempt(run.attempt());
  complete.set_checkpoint_sha256(*sha);
  for (const auto& [key, value] : outcome->results)
    (*complete.mutable_results())[key] = value;
  v1::CompleteRunResponse ignored;
  grpc::Status s =
      stub_->CompleteRun(Context(absl::Seconds(30)).get(), complete, &ignored);
  if (!s.ok()) return FromGrpcStatus(s);
  DISTILL_LOG(INFO) << "run " << run.id() << " succeeded";
  return absl::OkStatus();
}

absl::StatusOr<std::string> Worker::FileDigest(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  const auto time = std::filesystem::last_write_time(path, ec);
  if (ec) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  const std::string stamp =
      absl::StrCat(size, "@", time.time_since_epoch().count());
  auto it = digests_.find(path);
  if (it != digests_.end() && it->second.first == stamp)
    return it->second.second;
  absl::StatusOr<std::string> sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  digests_[path] = {stamp, *sha};
  return *sha;
}

absl::StatusOr<std::string> Worker::TeacherCachePath(
    const v1::Run& run, const std::string& teacher_sha256) {
  const v1::ExperimentSpec& spec = run.spec();
  std::string teacher = teacher_sha256;
  if (!spec.teacher().torchscript().empty()) {
    absl::StatusOr<std::string> sha = FileDigest(spec.teacher().torchscript());
    if (!sha.ok()) {
      return absl::Status(
          sha.status().code(),
          absl::StrCat("teacher.torchscript: ", sha.status().message()));
    }
    teacher = *sha;
  }
  if (teacher.empty()) return std::string();  // Trains its own teacher.
  std::string key =
      absl::StrCat("distill teacher outputs v1\nteacher ", teacher, "\n");
  const engine::RunConfig config = ToRunConfig(spec, options_.device);
  const std::vector<std::string> files = engine::DatasetFiles(config.dataset);
  if (files.empty())
    return std::string();  // The run reports the unreadable data.
  for (const std::string& file : files) {
    absl::StatusOr<std::string> sha = FileDigest(file);
    if (!sha.ok())
      return std::string();  // The run reports the unreadable data.
    absl::StrAppend(&key, "data ", *sha, "\n");
  }
  absl::StrAppend(&key, config.dataset.name, " ", config.dataset.train_limit,
                  " ", config.dataset.test_limit, " ",
                  config.dataset.image_size, " ", config.dataset.crop_to_boxes,
                  " ", options_.device, "\n");
  const std::string dir = options_.scratch_dir + "/teacher-cache";
  std::filesystem::create_directories(dir);
  const std::string entry = absl::StrCat(dir, "/", Sha256Hex(key), ".pt");
  TouchCacheFile(entry);  // In use: the last to go when scratch is full.
  return entry;
}

absl::StatusOr<std::string> Worker::FetchCheckpoint(const std::string& sha256,
                                                    const std::string& dir) {
  if (!IsSha256Hex(sha256)) {
    return absl::FailedPreconditionError(
        absl::StrCat("no checkpoint (sha256 \"", sha256, "\")"));
  }
  const std::string path = absl::StrCat(
      dir.empty() ? options_.scratch_dir : dir, "/", sha256, ".pt");
  if (absl::StatusOr<std::string> cached = Sha256File(path);
      cached.ok() && *cached == sha256) {
    TouchCacheFile(path);
    return path;
  }
  const std::string temp = absl::StrCat(path, ".part");
  std::ofstream out(temp, std::ios::binary | std::ios::trunc);
  v1::DownloadCheckpointRequest request;
  request.set_sha256(sha256);
  auto context = Context(absl::Minutes(10));
  auto reader = stub_->DownloadCheckpoint(context.get(), request);
  v1::CheckpointChunk chunk;
  Sha256 hash;
  while (reader->Read(&chunk)) {
    out.write(chunk.data().data(), std::streamsize(chunk.data().size()));
    hash.Update(chunk.data());
  }
  grpc::Status status = reader->Finish();
  out.close();
  if (!status.ok()) return FromGrpcStatus(status);
  const std::string actual = hash.HexDigest();
  if (actual != sha256 || !out) {
    std::filesystem::remove(temp);
    return absl::DataLossError(absl::StrCat("downloaded checkpoint hashes to ",
                                            actual, ", expected ", sha256));
  }
  std::filesystem::rename(temp, path);
  return path;
}

absl::StatusOr<std::string> Worker::UploadFile(const v1::Run& run,
                                               const std::string& path,
                                               const std::string& name) {
  absl::StatusOr<std::string> sha = Sha256File(path);
  if (!sha.ok()) return sha.status();
  std::ifstream in(path, std::ios::binary);
  v1::CheckpointChunk chunk;
  v1::CheckpointHeader* header = chunk.mutable_header();
  header->set_run_id(run.id());
  header->set_attempt(run.attempt());
  header->set_sha256(*sha);
  header->set_size(int64_t(std::filesystem::file_size(path)));
  header->set_name(name);
  v1::UploadCheckpointResponse response;
  auto context = Context(absl::Minutes(10));
  auto writer = stub_->UploadCheckpoint(context.get(), &response);
  std::string buffer(kChunkBytes, '\0');
  bool first = true;
  while (first || in) {
    in.read(buffer.data(), std::streamsize(buffer.size()));
    chunk.set_data(buffer.data(), size_t(in.gcount()));
    if (!writer->Write(chunk)) break;
    chunk.clear_header();
    first = false;
  }
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  return *sha;
}

}  // namespace distill
