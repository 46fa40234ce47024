// The frozen teacher's outputs and the host's cache of them.
#include "worker/engine/teacher_outputs.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"
#include "worker/engine/trainer.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using TeacherOutputsTest = EngineTest;

TEST_F(TeacherOutputsTest, CachedTeacherOutputsGiveTheSameStudent) {
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.tsne_points = 0;
  RunHooks hooks;
  ASSERT_NO_FATAL_FAILURE(TrainTeacherThenDistill(config, hooks));
  config.losses.ikd = 1;
  hooks.teacher_cache = TestTeacherCache((dir_ / "cache").string());
  auto miss = ExecuteRun(config, hooks);
  ASSERT_TRUE(miss.ok()) << miss.status();
  const auto first = *LoadStudent(hooks.output_checkpoint, torch::kCPU, 28);
  auto hit = ExecuteRun(config, hooks);
  ASSERT_TRUE(hit.ok()) << hit.status();
  const auto second = *LoadStudent(hooks.output_checkpoint, torch::kCPU, 28);
  EXPECT_EQ(miss->results.at("teacher/cache_hit"), 0);
  EXPECT_EQ(hit->results.at("teacher/cache_hit"), 1);
  for (const auto& p : first->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), second->named_parameters()[p.key()]))
        << p.key();
  }
}

// A distillation run's config for the key tests, with the fake data and a
// teacher file in dir.
class TeacherCacheKeyTest : public EngineTest {
 protected:
  void SetUp() override {
    WriteFashionMnist(20);
    std::ofstream(teacher_) << "teacher weights";
    base_.kind = RunKind::kDistill;
    base_.dataset.root = dir_.string();
    base_.losses.ikd = 1;
  }
  std::string Key(const RunConfig& config) {
    absl::StatusOr<std::string> key = TeacherCacheKey(config, teacher_, cache_);
    EXPECT_TRUE(key.ok()) << key.status();
    EXPECT_FALSE(key->empty());
    return *key;
  }

  const std::string teacher_ = (dir_ / "teacher.pt").string();
  const TeacherCache cache_ = TestTeacherCache((dir_ / "cache").string());
  RunConfig base_;
};

TEST_F(TeacherCacheKeyTest, WhatChangesTheTeachersOutputsChangesTheKey) {
  const std::string base = Key(base_);
  const std::pair<const char*, std::function<void(RunConfig&)>> changes[] = {
      {"image_size", [](RunConfig& c) { c.dataset.image_size = 32; }},
      {"train_limit", [](RunConfig& c) { c.dataset.train_limit = 10; }},
      {"test_limit", [](RunConfig& c) { c.dataset.test_limit = 10; }},
      {"crop_to_boxes", [](RunConfig& c) { c.dataset.crop_to_boxes = true; }},
      {"device", [](RunConfig& c) { c.device = "cuda:0"; }},
  };
  for (const auto& [name, change] : changes) {
    RunConfig c = base_;
    change(c);
    EXPECT_NE(Key(c), base) << name;
  }
  // The content of a data file, and of the teacher.
  WriteFakeFashionMnist(dir_, 21);
  const std::string more_data = Key(base_);
  EXPECT_NE(more_data, base);
  std::ofstream(teacher_) << "other teacher weights";
  EXPECT_NE(Key(base_), more_data);
}

TEST_F(TeacherCacheKeyTest, WhatDoesNotChangeThemKeepsTheKey) {
  const std::string base = Key(base_);
  const std::pair<const char*, std::function<void(RunConfig&)>> changes[] = {
      {"student.width", [](RunConfig& c) { c.student.width = 16; }},
      {"student.arch", [](RunConfig& c) { c.student.arch = "resnet50"; }},
      {"losses",
       [](RunConfig& c) {
         c.losses.ce = 1;
         c.losses.rkd_angle = 2;
         c.losses.temperature = 8;
       }},
      {"optimizer", [](RunConfig& c) { c.optimizer.lr = 0.5; }},
      {"epochs", [](RunConfig& c) { c.epochs = 9; }},
      {"batch_size", [](RunConfig& c) { c.batch_size = 7; }},
      {"seed", [](RunConfig& c) { c.seed = 3; }},
      {"augment", [](RunConfig& c) { c.dataset.augment = false; }},
      {"loader_threads", [](RunConfig& c) { c.dataset.loader_threads = 8; }},
      {"tsne_points", [](RunConfig& c) { c.tsne_points = 5; }},
  };
  for (const auto& [name, change] : changes) {
    RunConfig c = base_;
    change(c);
    EXPECT_EQ(Key(c), base) << name;
  }
}

TEST_F(TeacherCacheKeyTest, NothingToKeyMeansNoEntry) {
  // A run that trains its own teacher has no teacher file.
  EXPECT_EQ(*TeacherCacheEntry(base_, "", cache_), "");
  // Data that cannot be read: the run reports it, the cache stays out.
  RunConfig missing = base_;
  missing.dataset.root = (dir_ / "nowhere").string();
  EXPECT_EQ(*TeacherCacheEntry(missing, teacher_, cache_), "");
  // No cache directory: no entry.
  EXPECT_EQ(*TeacherCacheEntry(base_, teacher_, TeacherCache{}), "");
  // A teacher file that cannot be read is an error naming it.
  absl::StatusOr<std::string> gone =
      TeacherCacheEntry(base_, (dir_ / "gone.pt").string(), cache_);
  EXPECT_EQ(gone.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.status().message()), HasSubstr("gone.pt"));
  // An entry lives in the cache directory and is reported as used.
  std::vector<std::string> used;
  TeacherCache cache = cache_;
  cache.on_use = [&](const std::string& entry) { used.push_back(entry); };
  absl::StatusOr<std::string> entry = TeacherCacheEntry(base_, teacher_, cache);
  ASSERT_TRUE(entry.ok());
  EXPECT_THAT(*entry, HasSubstr((dir_ / "cache").string() + "/"));
  EXPECT_EQ(used, std::vector<std::string>{*entry});
}

}  // namespace
}  // namespace distill::engine
