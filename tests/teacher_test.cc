// TorchScript teachers: a small randomly initialised torchvision
// VisionTransformer exported by tools/export_teacher.py (Debian's
// python3-torchvision), distilled from as it is, and with a linear head
// fitted on its frozen embedding.
#include "worker/engine/teacher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"
#include "tests/temp_dir.h"
#include "worker/engine/objective.h"
#include "worker/engine/teacher_outputs.h"
#include "worker/engine/trainer.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class TeacherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!HasTorchvision()) {
      GTEST_SKIP() << "python3-torchvision is not installed (scripts/setup.sh "
                      "installs it)";
    }
    script_ = (dir_ / "vit.pt").string();
    const std::string command =
        TestPython() +
        " " DISTILL_SOURCE_DIR
        "/tools/export_teacher.py --random-vit --image-size 28 --in-channels 1 "
        "--patch-size 7 --layers 1 --heads 2 --hidden 32 --num-classes 10 "
        "--out " +
        script_ + " >/dev/null";
    ASSERT_EQ(std::system(command.c_str()), 0)
        << "tools/export_teacher.py failed";
    WriteFakeFashionMnist(dir_, 200);
  }

  RunConfig Config(RunKind kind) const {
    RunConfig c;
    c.kind = kind;
    c.dataset.root = dir_.string();
    c.teacher_torchscript = script_;
    c.student.width = 8;
    c.optimizer = {OptimizerKind::kSgd, 0.1, 0.9, 5e-4};
    c.epochs = 3;
    c.batch_size = 20;
    c.device = TestDevice();
    return c;
  }

  TempDir temp_{"distill_teacher_test"};
  const fs::path dir_ = temp_.path();
  std::string script_;
};

TEST_F(TeacherTest, LoadsAndReturnsLogitsAndEmbedding) {
  auto teacher = LoadTorchScriptTeacher(script_, torch::kCPU);
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  auto out = (*teacher)->Forward(torch::randn({4, 1, 28, 28}));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->first.sizes(), (std::vector<int64_t>{4, 10}));
  EXPECT_EQ(out->second.sizes(), (std::vector<int64_t>{4, 32}));
  EXPECT_FALSE(out->first.requires_grad());
}

TEST_F(TeacherTest, WrongImagesAndFilesAreClearErrors) {
  auto teacher = *LoadTorchScriptTeacher(script_, torch::kCPU);
  auto wrong = teacher->Forward(torch::randn({4, 3, 32, 32}));
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("takes N x 1 x 28 x 28 images"));
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("got [4, 3, 32, 32]"));
  std::ofstream(dir_ / "junk.pt") << "junk";
  auto junk = LoadTorchScriptTeacher((dir_ / "junk.pt").string(), torch::kCPU);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("junk.pt"));
}

// The teacher in memory stays frozen while a student learns from it with
// every distillation loss: its outputs carry no gradient, and on the same
// images it answers as before, native ViT and TorchScript alike.
TEST_F(TeacherTest, AStudentLearnsFromATeacherThatDoesNotMove) {
  torch::manual_seed(3);
  std::vector<std::unique_ptr<Teacher>> teachers;
  teachers.push_back(NativeTeacher(Vit(VitConfig{28, 1, 10, 7, 32, 1, 2, 2})));
  teachers.push_back(*LoadTorchScriptTeacher(script_, torch::kCPU));
  const torch::Tensor probe = torch::randn({8, 1, 28, 28});
  for (const std::unique_ptr<Teacher>& teacher : teachers) {
    SCOPED_TRACE(teacher->Describe());
    const LogitsAndEmbedding before = *teacher->Forward(probe);
    StudentConfig sc;
    sc.width = 8;
    sc.teacher_width = before.second.size(1);
    ResNetStudent student(sc);
    const torch::Tensor start = student->parameters()[0].clone();
    torch::optim::SGD optimizer(student->parameters(),
                                torch::optim::SGDOptions(0.1));
    const LossWeights all{1, 1, 1, 4, true, 1, 1};
    for (int step = 0; step < 3; ++step) {
      const torch::Tensor images = torch::randn({8, 1, 28, 28});
      const LogitsAndEmbedding t = *teacher->Forward(images);
      EXPECT_FALSE(t.first.requires_grad());
      EXPECT_FALSE(t.second.requires_grad());
      auto [logits, embedding] = student->forward(images);
      optimizer.zero_grad();
      DistillationObjective(all, {.student_logits = logits,
                                  .student_embedding = embedding,
                                  .projected = student->Project(embedding),
                                  .teacher_logits = t.first,
                                  .teacher_embedding = t.second,
                                  .labels = torch::randint(10, {8})})
          .total.backward();
      optimizer.step();
    }
    EXPECT_FALSE(torch::equal(student->parameters()[0], start));
    const LogitsAndEmbedding after = *teacher->Forward(probe);
    EXPECT_TRUE(torch::equal(before.first, after.first));
    EXPECT_TRUE(torch::equal(before.second, after.second));
  }
}

TEST_F(TeacherTest, DistilsFromATorchScriptTeacher) {
  RunConfig config = Config(RunKind::kDistill);
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.losses.mse = 1;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  auto outcome = ExecuteRun(config, hooks);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(fs::exists(hooks.output_checkpoint));
  EXPECT_EQ(outcome->results.count("teacher/top1"), 1u);
}

TEST_F(TeacherTest, CachedTeacherOutputsAreReusedAndADamagedEntryIsReplaced) {
  RunConfig config = Config(RunKind::kDistill);
  config.epochs = 1;
  config.losses.ikd = 1;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  hooks.teacher_cache = TestTeacherCache((dir_ / "cache").string());
  auto first = ExecuteRun(config, hooks);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->results.at("teacher/cache_hit"), 0);
  const absl::StatusOr<std::string> entry =
      TeacherCacheEntry(config, script_, hooks.teacher_cache);
  ASSERT_TRUE(entry.ok()) << entry.status();
  ASSERT_TRUE(fs::exists(*entry)) << *entry;
  auto second = ExecuteRun(config, hooks);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->results.at("teacher/cache_hit"), 1);
  // Same teacher outputs, same seed: the same student.
  EXPECT_EQ(first->results.at("eval/top1"), second->results.at("eval/top1"));
  EXPECT_EQ(first->results.at("teacher/top1"),
            second->results.at("teacher/top1"));
  std::ofstream(*entry) << "damaged";
  auto third = ExecuteRun(config, hooks);
  ASSERT_TRUE(third.ok()) << third.status();
  EXPECT_EQ(third->results.at("teacher/cache_hit"), 0);
}

TEST_F(TeacherTest,
       FitsALinearHeadOnTheFrozenBackboneAndTheCheckpointStandsAlone) {
  RunConfig config = Config(RunKind::kTrainTeacher);
  config.optimizer = {OptimizerKind::kAdamW, 0.01, 0, 0};
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  auto outcome = ExecuteRun(config, hooks);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  const double top1 = outcome->results.at("eval/top1");
  EXPECT_GT(top1, 0.5) << "the head did not learn separable classes";

  fs::remove(script_);  // The checkpoint carries the backbone itself.
  auto teacher = LoadTeacherCheckpoint(hooks.output_checkpoint, torch::kCPU);
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  EXPECT_THAT((*teacher)->Describe(), HasSubstr("fitted linear head"));

  RunConfig distill = Config(RunKind::kDistill);
  distill.teacher_torchscript.clear();
  distill.losses.ce = 1;
  distill.losses.ikd = 1;
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  auto student = ExecuteRun(distill, hooks);
  ASSERT_TRUE(student.ok()) << student.status();
  // The distilling run sees the fitted head's accuracy as the teacher's.
  EXPECT_NEAR(student->results.at("teacher/top1"), top1, 1e-9);
}

using TeacherCheckpointTest = EngineTest;

TEST_F(TeacherCheckpointTest, TeacherCheckpointRoundTripsWithItsArchitecture) {
  VitConfig vit;
  vit.patch_size = 4;
  vit.width = 16;
  vit.depth = 1;
  vit.heads = 2;
  Vit teacher(vit);
  teacher->eval();
  const std::string path = (dir_ / "teacher.pt").string();
  ASSERT_TRUE(SaveVitTeacher(teacher, path).ok());
  absl::StatusOr<Vit> loaded = LoadVitTeacher(path, torch::kCPU);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ((*loaded)->config.patch_size, 4);
  EXPECT_EQ((*loaded)->config.width, 16);
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({3, 1, 28, 28});
  EXPECT_TRUE(
      torch::equal(teacher->forward(x).first, (*loaded)->forward(x).first));

  std::ofstream(dir_ / "junk.pt") << "not a checkpoint";
  absl::StatusOr<Vit> junk =
      LoadVitTeacher((dir_ / "junk.pt").string(), torch::kCPU);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("junk.pt"));
}

}  // namespace
}  // namespace distill::engine
