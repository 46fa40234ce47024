// What the engine's tests share: a temporary directory with a fake
// Fashion-MNIST in it, a tiny teacher run, and a teacher cache.
#ifndef DISTILL_TESTS_ENGINE_FIXTURE_H_
#define DISTILL_TESTS_ENGINE_FIXTURE_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "tests/fake_data.h"
#include "tests/temp_dir.h"
#include "tests/test_device.h"
#include "worker/engine/run_config.h"
#include "worker/engine/run_hooks.h"
#include "worker/engine/trainer.h"

namespace distill::engine {

// A teacher cache in `dir` whose digests are std::hash of the content:
// enough to tell contents apart in a test (the worker uses SHA-256).
inline TeacherCache TestTeacherCache(const std::string& dir) {
  TeacherCache cache;
  cache.dir = dir;
  cache.text_digest = [](const std::string& text) {
    return std::to_string(std::hash<std::string>{}(text));
  };
  cache.file_digest =
      [text = cache.text_digest](
          const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError("cannot open " + path);
    std::stringstream content;
    content << in.rdbuf();
    return text(content.str());
  };
  return cache;
}

class EngineTest : public ::testing::Test {
 protected:
  void WriteFashionMnist(int n) { WriteFakeFashionMnist(dir_, n); }

  // Training a tiny ViT teacher on the fake Fashion-MNIST in dir_, in
  // batches of 10.
  RunConfig TinyTeacherRun() const {
    RunConfig config;
    config.kind = RunKind::kTrainTeacher;
    config.dataset.root = dir_.string();
    config.teacher = {28, 1, 10, 7, 16, 1, 2, 2};
    config.optimizer = {OptimizerKind::kSgd, 0.1, 0.9, 5e-4};
    config.batch_size = 10;
    config.device = TestDevice();
    return config;
  }

  // Trains `config` (a teacher run) into dir_/teacher.pt, then turns it into
  // the run of a width-4 student of that teacher writing dir_/student.pt
  // (`hooks` set for it); its losses are the caller's to set.
  void TrainTeacherThenDistill(RunConfig& config, RunHooks& hooks) {
    hooks.output_checkpoint = (dir_ / "teacher.pt").string();
    ASSERT_TRUE(ExecuteRun(config, hooks).ok());
    config.kind = RunKind::kDistill;
    config.student.width = 4;
    hooks.teacher_checkpoint = hooks.output_checkpoint;
    hooks.output_checkpoint = (dir_ / "student.pt").string();
  }

  TempDir temp_{"distill_engine_test"};
  const std::filesystem::path dir_ = temp_.path();
};

}  // namespace distill::engine

#endif  // DISTILL_TESTS_ENGINE_FIXTURE_H_
