// The coordinator's data directory on a disk that fills up or turns
// read-only under it: writes are refused with RESOURCE_EXHAUSTED or
// UNAVAILABLE (never a crash), reads go on, and nothing acknowledged is
// lost. Needs root (a tmpfs, an ext4 loop device); skipped without.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "common/sha256.h"
#include "distill/v1/experiment_service.grpc.pb.h"
#include "distill/v1/worker_service.grpc.pb.h"
#include "server/coordinator.h"
#include "tests/temp_dir.h"
#include "tests/test_specs.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

// Runs a shell command; true when it exits 0.
bool Shell(const std::string& command) {
  return std::system(("{ " + command + "; } >/dev/null 2>&1").c_str()) == 0;
}

class DiskTest : public ::testing::Test {
 protected:
  void TearDown() override {
    coordinator_.reset();
    if (mounted_) ::umount2(mount_.c_str(), MNT_DETACH);
  }

  void Start(int64_t min_free_disk_bytes = 0) {
    CoordinatorOptions options;
    options.listen_address = "127.0.0.1:0";
    options.data_dir = (mount_ / "data").string();
    options.scheduler.min_free_disk_bytes = min_free_disk_bytes;
    auto coordinator = Coordinator::Start(options);
    ASSERT_TRUE(coordinator.ok()) << coordinator.status();
    coordinator_ = *std::move(coordinator);
    auto channel = grpc::CreateChannel(coordinator_->address(),
                                       grpc::InsecureChannelCredentials());
    experiments_ = v1::ExperimentService::NewStub(channel);
    workers_ = v1::WorkerService::NewStub(channel);
  }

  grpc::Status Submit(v1::Run* run) {
    v1::SubmitRunRequest request;
    *request.mutable_spec() = SmallSweep("disk").teacher().train();
    request.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
    grpc::ClientContext context;
    return experiments_->SubmitRun(&context, request, run);
  }

  int ListedRuns() {
    grpc::ClientContext context;
    v1::ListRunsResponse response;
    grpc::Status s =
        experiments_->ListRuns(&context, v1::ListRunsRequest(), &response);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return response.runs_size();
  }

  // Registers a worker; its id.
  std::string Register() {
    grpc::ClientContext context;
    v1::RegisterWorkerResponse worker;
    EXPECT_TRUE(
        workers_->RegisterWorker(&context, v1::RegisterWorkerRequest(), &worker)
            .ok());
    return worker.worker_id();
  }

  v1::LeaseRunResponse LeaseAs(const std::string& worker_id) {
    grpc::ClientContext context;
    v1::LeaseRunRequest request;
    request.set_worker_id(worker_id);
    v1::LeaseRunResponse response;
    EXPECT_TRUE(workers_->LeaseRun(&context, request, &response).ok());
    return response;
  }

  // Registers a worker and leases the oldest queued run.
  v1::Run Lease() { return LeaseAs(Register()).run(); }

  // Fills the disk with `bytes` of ballast.
  void Ballast(int64_t bytes) {
    std::ofstream out(mount_ / "ballast", std::ios::binary);
    const std::string block(64 << 10, 'b');
    for (int64_t at = 0; at < bytes; at += int64_t(block.size()))
      out.write(block.data(), std::streamsize(block.size()));
  }

  grpc::Status Upload(const v1::Run& run, const std::string& data) {
    grpc::ClientContext context;
    v1::UploadRunFileResponse response;
    auto writer = workers_->UploadRunFile(&context, &response);
    v1::RunFileChunk chunk;
    chunk.mutable_header()->set_run_id(run.id());
    chunk.mutable_header()->set_attempt(run.attempt());
    chunk.mutable_header()->set_sha256(Sha256Hex(data));
    chunk.mutable_header()->set_size(int64_t(data.size()));
    chunk.mutable_header()->set_name("resume.pt");
    writer->Write(chunk);
    chunk.clear_header();
    for (size_t at = 0; at < data.size(); at += 64 << 10) {
      chunk.set_data(data.substr(at, 64 << 10));
      if (!writer->Write(chunk)) break;
    }
    writer->WritesDone();
    return writer->Finish();
  }

  TempDir temp_{"distill_disk_test"};
  const fs::path mount_ = temp_.path() / "disk";
  bool mounted_ = false;
  std::unique_ptr<Coordinator> coordinator_;
  std::unique_ptr<v1::ExperimentService::Stub> experiments_;
  std::unique_ptr<v1::WorkerService::Stub> workers_;
};

TEST_F(DiskTest, AFullDiskRefusesWritesKeepsReadingAndRecovers) {
  fs::create_directories(mount_);
  if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=3m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): "
                 << std::strerror(errno);
  }
  mounted_ = true;
  Start();
  v1::Run first;
  ASSERT_TRUE(Submit(&first).ok());
  const v1::Run leased = Lease();
  ASSERT_EQ(leased.id(), first.id());

  // Fill the disk to the last byte.
  {
    std::ofstream filler(mount_ / "filler", std::ios::binary);
    const std::string block(64 << 10, 'x');
    while (filler.write(block.data(), block.size())) {
    }
  }
  {
    std::ofstream filler(mount_ / "filler", std::ios::binary | std::ios::app);
    while (filler.put('x')) filler.flush();
  }
  // A run file cannot be written: RESOURCE_EXHAUSTED, and no partial file.
  grpc::Status upload = Upload(leased, std::string(512 << 10, 'r'));
  EXPECT_EQ(upload.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << upload.error_message();
  EXPECT_THAT(upload.error_message(), ::testing::HasSubstr("does not fit"));
  // The database's pages run out within a few submissions.
  int accepted = 1;
  grpc::Status refused;
  for (int i = 0; i < 500 && refused.ok(); ++i) {
    v1::Run run;
    refused = Submit(&run);
    if (refused.ok()) ++accepted;
  }
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << refused.error_message();
  // Reads go on, and show exactly what was acknowledged.
  EXPECT_EQ(ListedRuns(), accepted);

  // Room again: writes succeed without a restart.
  fs::remove(mount_ / "filler");
  v1::Run after;
  grpc::Status resumed = Submit(&after);
  EXPECT_TRUE(resumed.ok()) << resumed.error_message();
  EXPECT_TRUE(Upload(leased, std::string(512 << 10, 'r')).ok());
  EXPECT_EQ(ListedRuns(), accepted + 1);
  // Only committed run files are in the directory.
  for (const auto& entry : fs::directory_iterator(mount_ / "data/run-files")) {
    EXPECT_EQ(entry.path().filename().string().rfind(".upload-", 0),
              std::string::npos)
        << entry.path();
  }
}

// --min_free_disk on a real disk: a 16 MiB tmpfs with a floor of 8 MiB.
TEST_F(DiskTest, BelowTheFloorLeasingPausesAndUploadsThatCannotFitAreRefused) {
  fs::create_directories(mount_);
  if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=16m") != 0) {
    GTEST_SKIP() << "cannot mount a tmpfs (needs root): "
                 << std::strerror(errno);
  }
  mounted_ = true;
  Start(int64_t{8} << 20);
  v1::Run first, second;
  ASSERT_TRUE(Submit(&first).ok());
  ASSERT_TRUE(Submit(&second).ok());
  const std::string a = Register();
  const std::string b = Register();
  const v1::Run training = LeaseAs(a).run();
  ASSERT_EQ(training.id(), first.id());

  // About 6 MiB left: below the floor, above the half of it kept for the
  // database.
  Ballast(int64_t{10} << 20);
  const v1::LeaseRunResponse waiting = LeaseAs(b);
  EXPECT_FALSE(waiting.has_run());
  EXPECT_THAT(waiting.paused_reason(),
              ::testing::HasSubstr("below --min_free_disk 8.0 MiB"));
  {
    grpc::ClientContext context;
    v1::ListWorkersResponse listed;
    ASSERT_TRUE(
        experiments_->ListWorkers(&context, v1::ListWorkersRequest(), &listed)
            .ok());
    EXPECT_THAT(listed.leasing_paused(),
                ::testing::HasSubstr("below --min_free_disk"));
  }
  // An upload whose header declares more than is free is refused on its
  // header alone (no chunk sent), and leaves nothing on the disk.
  {
    grpc::ClientContext context;
    v1::UploadRunFileResponse response;
    auto writer = workers_->UploadRunFile(&context, &response);
    v1::RunFileChunk chunk;
    chunk.mutable_header()->set_run_id(training.id());
    chunk.mutable_header()->set_attempt(training.attempt());
    chunk.mutable_header()->set_sha256(Sha256Hex("x"));
    chunk.mutable_header()->set_size(int64_t{6} << 20);
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status refused = writer->Finish();
    EXPECT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(refused.error_message(),
                ::testing::HasSubstr("an upload of 6.0 MiB does not fit"));
  }
  EXPECT_TRUE(fs::is_empty(mount_ / "data/run-files"));
  // The run already training finishes: its file fits.
  EXPECT_TRUE(Upload(training, std::string(1 << 20, 'r')).ok());

  fs::remove(mount_ / "ballast");
  EXPECT_EQ(LeaseAs(b).run().id(), second.id());
}

TEST_F(DiskTest, AReadOnlyDiskRefusesWritesAndLosesNothing) {
  const fs::path image = temp_.path() / "disk.img";
  fs::create_directories(mount_);
  if (!Shell("truncate -s 16M " + image.string()) ||
      !Shell("mkfs.ext4 -q -F " + image.string()) ||
      !Shell("mount -o loop,errors=remount-ro " + image.string() + " " +
             mount_.string())) {
    GTEST_SKIP() << "cannot mount an ext4 loop device (needs root and "
                    "/dev/loop-control)";
  }
  mounted_ = true;
  // The kernel's own way to a read-only disk: an ext4 error with
  // errors=remount-ro (a bind remount is refused while files are open).
  std::string device;
  {
    FILE* out =
        ::popen(("findmnt -n -o SOURCE " + mount_.string()).c_str(), "r");
    char line[256] = {};
    if (out != nullptr && std::fgets(line, sizeof(line), out) != nullptr)
      device = fs::path(std::string(absl::StripTrailingAsciiWhitespace(line)))
                   .filename()
                   .string();
    if (out != nullptr) ::pclose(out);
  }
  const std::string trigger = "/sys/fs/ext4/" + device + "/trigger_fs_error";
  if (device.empty() || !fs::exists(trigger)) {
    GTEST_SKIP() << "no " << trigger;
  }
  Start();
  v1::Run first;
  ASSERT_TRUE(Submit(&first).ok());
  const v1::Run leased = Lease();
  ASSERT_TRUE(Shell("echo distill_disk_test > " + trigger));
  // The kernel turns the file system read-only from a work queue: wait
  // until a new file cannot be made.
  bool read_only = false;
  for (int i = 0; i < 100 && !read_only; ++i) {
    read_only = !Shell("touch " + (mount_ / "probe").string());
    if (!read_only) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(read_only) << "the disk did not turn read-only";

  v1::Run refused_run;
  grpc::Status refused = Submit(&refused_run);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE)
      << refused.error_message();
  grpc::Status upload = Upload(leased, "resume point");
  EXPECT_EQ(upload.error_code(), grpc::StatusCode::UNAVAILABLE)
      << upload.error_message();
  v1::HeartbeatRequest heartbeat;
  heartbeat.set_run_id(leased.id());
  heartbeat.set_attempt(leased.attempt());
  v1::HeartbeatResponse beat;
  grpc::ClientContext context;
  EXPECT_EQ(workers_->Heartbeat(&context, heartbeat, &beat).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(ListedRuns(), 1);  // Reads go on.
  coordinator_.reset();        // And it shuts down cleanly.

  // The operator repairs the disk; a coordinator on it has every
  // acknowledged run, and nothing half-written.
  ASSERT_EQ(::umount2(mount_.c_str(), 0), 0) << std::strerror(errno);
  mounted_ = false;
  Shell("e2fsck -fy " + image.string());
  ASSERT_TRUE(Shell("mount -o loop " + image.string() + " " + mount_.string()));
  mounted_ = true;
  Start();
  EXPECT_EQ(ListedRuns(), 1);
  v1::Run after;
  EXPECT_TRUE(Submit(&after).ok());
}

}  // namespace
}  // namespace distill
