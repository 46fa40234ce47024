// The worker's scratch cache stays within its size, oldest use out first.
#include "worker/scratch.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"

namespace distill {
namespace {

namespace fs = std::filesystem;
using ::testing::UnorderedElementsAre;

class ScratchTest : public ::testing::Test {
 protected:
  void SetUp() override { fs::create_directories(dir_ / "teacher-cache"); }

  // A file of `bytes` bytes last used `age_s` seconds ago.
  std::string Write(const std::string& name, int bytes, int age_s) {
    const fs::path path = dir_ / name;
    std::ofstream(path) << std::string(bytes, 'x');
    fs::last_write_time(
        path, fs::file_time_type::clock::now() - std::chrono::seconds(age_s));
    return path.string();
  }
  std::vector<std::string> Dirs() const {
    return {dir_.string(), (dir_ / "teacher-cache").string()};
  }

  TempDir temp_{"distill_scratch_test"};
  const fs::path dir_ = temp_.path();
};

TEST_F(ScratchTest, RemovesTheLeastRecentlyUsedUntilItFits) {
  const std::string oldest = Write("a.pt", 100, 50);
  const std::string old = Write("teacher-cache/b.pt", 100, 40);
  Write("c.pt", 100, 30);
  const std::string used = Write("teacher-cache/d.pt", 100, 60);
  TouchCacheFile(used);           // Just used: now the newest.
  Write("e.pt.part", 1000, 100);  // Being downloaded: not counted.
  EXPECT_THAT(TrimCache(Dirs(), 250, {}), UnorderedElementsAre(oldest, old));
  EXPECT_TRUE(fs::exists(used));
  EXPECT_TRUE(fs::exists(dir_ / "e.pt.part"));
  EXPECT_TRUE(TrimCache(Dirs(), 250, {}).empty());
}

TEST_F(ScratchTest, KeepsWhatTheRunUsesEvenWhenOverTheLimit) {
  const std::string teacher = Write("t.pt", 300, 90);
  const std::string other = Write("u.pt", 10, 10);
  EXPECT_THAT(TrimCache(Dirs(), 100, {teacher}), UnorderedElementsAre(other));
  EXPECT_TRUE(fs::exists(teacher));
}

}  // namespace
}  // namespace distill
