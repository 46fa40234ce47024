// Data reading, models and checkpoints of the engine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/fake_data.h"
#include "tests/temp_dir.h"
#include "worker/engine/datasets.h"
#include "worker/engine/models.h"
#include "worker/engine/teacher.h"
#include "worker/engine/trainer.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

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
    return config;
  }

  TempDir temp_{"distill_engine_test"};
  const fs::path dir_ = temp_.path();
};

TEST_F(EngineTest, ReadsGzipAndPlainIdx) {
  const std::string bytes = Idx({2, 3}, {1, 2, 3, 4, 5, 6});
  WriteGzip(dir_ / "a.gz", bytes);
  std::ofstream(dir_ / "a.idx", std::ios::binary) << bytes;
  for (const char* name : {"a.gz", "a.idx"}) {
    absl::StatusOr<torch::Tensor> t = ReadIdx((dir_ / name).string());
    ASSERT_TRUE(t.ok()) << t.status();
    EXPECT_EQ(t->sizes(), (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(t->index({1, 2}).item<int>(), 6);
  }
}

TEST_F(EngineTest, RejectsMalformedIdxNamingTheFile) {
  struct Case {
    const char* name;
    std::string bytes;
    const char* message;
  };
  const Case cases[] = {
      {"not_idx", "hello world", "is not an IDX file"},
      {"short", Idx({4}, {1, 2}), "header promises 4 bytes of data, found 2"},
      {"float", std::string{0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0},
       "element type 13"},
  };
  for (const Case& c : cases) {
    WriteGzip(dir_ / c.name, c.bytes);
    absl::StatusOr<torch::Tensor> t = ReadIdx((dir_ / c.name).string());
    ASSERT_FALSE(t.ok()) << c.name;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kDataLoss) << c.name;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.message));
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.name));
  }
  absl::StatusOr<torch::Tensor> missing = ReadIdx((dir_ / "nope.gz").string());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("nope.gz"));
}

TEST_F(EngineTest, LoadsFashionMnistLimitedNormalisedAndResized) {
  WriteFashionMnist(30);
  DatasetConfig config;
  config.root = dir_.string();
  config.train_limit = 20;
  config.test_limit = 10;
  absl::StatusOr<TrainTestData> data = LoadDataset(config);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.images.sizes(), (std::vector<int64_t>{20, 1, 28, 28}));
  EXPECT_EQ(data->test.size(), 10);
  EXPECT_EQ(data->train.labels[13].item<int64_t>(), 3);
  // Image 1 (label 1) is dark in row 0: 0 -> (0 - mean) / std.
  EXPECT_NEAR(data->train.images[1][0][0][0].item<float>(), -0.2860 / 0.3530,
              1e-5);
  EXPECT_NEAR(data->train.images[1][0][2][5].item<float>(),
              (1 - 0.2860) / 0.3530, 1e-5);
  config.image_size = 32;
  data = LoadDataset(config);
  ASSERT_TRUE(data.ok());
  EXPECT_EQ(data->train.images.size(3), 32);
}

// CIFAR-10's binary format: a label byte, then 1024 R, 1024 G, 1024 B bytes.
void WriteCifar(const fs::path& path, int n, int first_label) {
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < n; ++i) {
    out.put(char((first_label + i) % 10));
    for (int channel = 0; channel < 3; ++channel) {
      out << std::string(1024, char(channel == 0   ? 255
                                    : channel == 1 ? 0
                                                   : (i * 10) % 256));
    }
  }
}

TEST_F(EngineTest, ReadsCifar10BinaryBatches) {
  for (int i = 1; i <= 5; ++i) {
    WriteCifar(dir_ / ("data_batch_" + std::to_string(i) + ".bin"), 4, i);
  }
  WriteCifar(dir_ / "test_batch.bin", 3, 0);
  DatasetConfig config;
  config.name = "cifar-10";
  config.root = dir_.string();
  config.train_limit = 10;  // Spans batch 1, 2 and half of 3.
  absl::StatusOr<TrainTestData> data = LoadDataset(config);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.images.sizes(), (std::vector<int64_t>{10, 3, 32, 32}));
  EXPECT_EQ(data->test.size(), 3);
  EXPECT_EQ(data->train.labels[0].item<int64_t>(), 1);  // Batch 1, record 0.
  EXPECT_EQ(data->train.labels[4].item<int64_t>(), 2);  // Batch 2, record 0.
  EXPECT_EQ(data->train.labels[9].item<int64_t>(), 4);  // Batch 3, record 1.
  // Red plane 255, green 0: normalised with CIFAR-10's statistics.
  EXPECT_NEAR(data->train.images[0][0][5][5].item<float>(),
              (1 - 0.4914) / 0.2470, 1e-4);
  EXPECT_NEAR(data->train.images[0][1][5][5].item<float>(), -0.4822 / 0.2435,
              1e-4);
  EXPECT_NEAR(data->test.images[2][2][0][0].item<float>(),
              (20 / 255.0 - 0.4465) / 0.2616, 1e-4);

  std::ofstream(dir_ / "test_batch.bin", std::ios::binary)
      << std::string(3072, 'x');
  absl::StatusOr<TrainTestData> truncated = LoadDataset(config);
  EXPECT_EQ(truncated.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(truncated.status().message()),
              HasSubstr("test_batch.bin is not CIFAR-10 binary: 3072 bytes"));
  config.root.clear();
  EXPECT_THAT(
      std::string(LoadDataset(config).status().message()),
      HasSubstr("dataset.root must name the cifar-10-batches-bin directory"));
}

TEST_F(EngineTest, UnknownDatasetIsInvalidArgument) {
  DatasetConfig config;
  config.name = "imagenet";
  absl::StatusOr<TrainTestData> data = LoadDataset(config);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("\"imagenet\""));
}

TEST_F(EngineTest, RealFashionMnistIsWhereDebianPutsIt) {
  if (!fs::exists(StandardRoot("fashion-mnist") +
                  "/t10k-labels-idx1-ubyte.gz")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  DatasetConfig config;
  config.train_limit = 100;
  absl::StatusOr<TrainTestData> data = LoadDataset(config);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->train.size(), 100);
  EXPECT_EQ(data->test.size(), 10000);
  EXPECT_EQ(data->test.num_classes, 10);
}

TEST_F(EngineTest, ModelsReturnLogitsAndEmbedding) {
  VitConfig vit;
  vit.patch_size = 7;
  vit.width = 32;
  vit.depth = 2;
  vit.heads = 4;
  Vit teacher(vit);
  auto [t_logits, t_embedding] = teacher->forward(torch::randn({5, 1, 28, 28}));
  EXPECT_EQ(t_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(t_embedding.sizes(), (std::vector<int64_t>{5, 32}));

  StudentConfig sc;
  sc.width = 8;
  sc.teacher_width = 32;
  ResNetStudent student(sc);
  auto [s_logits, s_embedding] = student->forward(torch::randn({5, 1, 28, 28}));
  EXPECT_EQ(s_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(s_embedding.sizes(), (std::vector<int64_t>{5, 64}));  // 8 x width.
  EXPECT_EQ(student->Project(s_embedding).sizes(),
            (std::vector<int64_t>{5, 32}));
  sc.embedding_dim = 24;
  EXPECT_EQ(
      ResNetStudent(sc)->forward(torch::randn({2, 1, 28, 28})).second.size(1),
      24);
}

TEST_F(EngineTest, StudentHasTorchvisionParameterNames) {
  StudentConfig sc;
  sc.width = 8;
  ResNetStudent student(sc);
  auto params = student->named_parameters();
  for (const char* name :
       {"conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
        "layer2.0.downsample.0.weight", "layer4.1.bn2.bias", "fc.weight"}) {
    EXPECT_NE(params.find(name), nullptr) << name;
  }
}

TEST_F(EngineTest, TeacherCheckpointRoundTripsWithItsArchitecture) {
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

TEST_F(EngineTest, TrainingLearnsAndTheTeacherStaysFrozen) {
  WriteFashionMnist(200);
  RunConfig config;
  config.kind = RunKind::kTrainTeacher;
  config.dataset.root = dir_.string();
  config.teacher = {28, 1, 10, 7, 32, 1, 4, 2};
  config.optimizer = {OptimizerKind::kAdamW, 3e-3, 0, 0};
  config.epochs = 3;
  config.batch_size = 20;
  config.metrics_every_steps = 1;
  std::vector<double> losses;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  hooks.on_metrics = [&](std::vector<Metric> metrics) {
    for (const Metric& m : metrics) {
      if (m.key == "train/loss") losses.push_back(m.value);
    }
  };
  absl::StatusOr<RunOutcome> teacher = ExecuteRun(config, hooks);
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  ASSERT_GT(losses.size(), 10u);
  EXPECT_LT(losses.back(), losses.front());
  EXPECT_GT(teacher->results.at("eval/top1"),
            0.5);  // Trivially separable images.

  const auto before = *LoadVitTeacher(hooks.output_checkpoint, torch::kCPU);
  config.kind = RunKind::kDistill;
  config.student.width = 8;
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.losses.mse = 1;
  config.optimizer = {OptimizerKind::kSgd, 0.05, 0.9, 0};
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  absl::StatusOr<RunOutcome> student = ExecuteRun(config, hooks);
  ASSERT_TRUE(student.ok()) << student.status();
  EXPECT_TRUE(fs::exists(hooks.output_checkpoint));
  EXPECT_EQ(student->results.count("eval/teacher_agreement"), 1u);
  const auto after = *LoadVitTeacher(hooks.teacher_checkpoint, torch::kCPU);
  for (const auto& p : before->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), after->named_parameters()[p.key()]))
        << p.key();
  }
}

TEST_F(EngineTest, MissingDataFailsNamingTheFile) {
  RunConfig config;
  config.kind = RunKind::kTrainTeacher;
  config.dataset.root = (dir_ / "missing").string();
  absl::StatusOr<RunOutcome> outcome = ExecuteRun(config, RunHooks{});
  EXPECT_EQ(outcome.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(outcome.status().message()),
              HasSubstr("missing/train-images-idx3-ubyte.gz"));
}

TEST_F(EngineTest, StopRequestEndsTheRunWithoutACheckpoint) {
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "never.pt").string();
  int polls = 0;
  hooks.should_stop = [&] { return ++polls > 3; };
  absl::StatusOr<RunOutcome> outcome = ExecuteRun(config, hooks);
  ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_TRUE(outcome->stopped);
  EXPECT_FALSE(fs::exists(hooks.output_checkpoint));
}

TEST_F(EngineTest, SameSpecAndSeedGiveTheSameMetrics) {
  torch::set_num_threads(2);  // As a worker on this machine runs.
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.epochs = 2;
  config.metrics_every_steps = 1;
  auto run = [&] {
    std::vector<double> values;
    RunHooks hooks;
    hooks.output_checkpoint = (dir_ / "t.pt").string();
    hooks.on_metrics = [&](std::vector<Metric> metrics) {
      for (const Metric& m : metrics) {
        if (m.key != "train/images_per_sec") values.push_back(m.value);
      }
    };
    EXPECT_TRUE(ExecuteRun(config, hooks).ok());
    return values;
  };
  const std::vector<double> first = run();
  EXPECT_GT(first.size(), 40u);
  EXPECT_EQ(first, run());
  config.seed = 1;
  EXPECT_NE(first, run());
}

TEST_F(EngineTest, CachedTeacherOutputsGiveTheSameStudent) {
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.tsne_points = 0;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  ASSERT_TRUE(ExecuteRun(config, hooks).ok());
  config.kind = RunKind::kDistill;
  config.student.width = 4;
  config.losses.ikd = 1;
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  hooks.teacher_cache_path = (dir_ / "cache.pt").string();
  auto miss = ExecuteRun(config, hooks);
  ASSERT_TRUE(miss.ok()) << miss.status();
  const auto first = *LoadStudent(hooks.output_checkpoint, torch::kCPU);
  auto hit = ExecuteRun(config, hooks);
  ASSERT_TRUE(hit.ok()) << hit.status();
  const auto second = *LoadStudent(hooks.output_checkpoint, torch::kCPU);
  EXPECT_EQ(miss->results.at("teacher/cache_hit"), 0);
  EXPECT_EQ(hit->results.at("teacher/cache_hit"), 1);
  for (const auto& p : first->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), second->named_parameters()[p.key()]))
        << p.key();
  }
}

// A run that stops after a resume point (its worker lost) and goes on from
// it ends exactly where the uninterrupted run ends: weights, optimizer
// state, data order and random numbers all carried over.
TEST_F(EngineTest, ResumedRunEndsAsTheUninterruptedRun) {
  torch::set_num_threads(2);
  WriteFashionMnist(100);
  RunConfig config = TinyTeacherRun();
  config.optimizer = {OptimizerKind::kAdamW, 3e-3, 0, 0};
  config.epochs = 3;
  config.tsne_points = 0;
  // Uninterrupted, then stopped after the resume point of epoch `stop_after`
  // and resumed from it; the first run's checkpoint is kept beside the last.
  auto twice = [&](RunHooks hooks, int64_t stop_after) {
    const std::string output = hooks.output_checkpoint;
    EXPECT_TRUE(ExecuteRun(config, hooks).ok());
    fs::rename(output, output + ".uninterrupted");
    hooks.resume_path = (dir_ / "resume.pt").string();
    std::vector<int64_t> points;
    hooks.on_resume_point = [&](int64_t epoch) { points.push_back(epoch); };
    hooks.should_stop = [&] {
      return !points.empty() && points.back() == stop_after;
    };
    absl::StatusOr<RunOutcome> stopped = ExecuteRun(config, hooks);
    EXPECT_TRUE(stopped.ok() && stopped->stopped);
    EXPECT_FALSE(fs::exists(output));
    hooks.should_stop = nullptr;
    hooks.resume_from = (dir_ / "resumed-from.pt").string();
    fs::rename(hooks.resume_path, hooks.resume_from);
    absl::StatusOr<RunOutcome> resumed = ExecuteRun(config, hooks);
    EXPECT_TRUE(resumed.ok()) << resumed.status();
    EXPECT_EQ(resumed->results.at("train/resumed_from_epoch"), stop_after);
    // Written after every epoch but the last, by one attempt or the other.
    EXPECT_EQ(points, (std::vector<int64_t>{1, 2}));
  };

  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  twice(hooks, 2);
  const fs::path teacher_point = dir_ / "teacher-point.pt";
  fs::copy_file(dir_ / "resumed-from.pt", teacher_point);
  const Vit a =
      *LoadVitTeacher(hooks.output_checkpoint + ".uninterrupted", torch::kCPU);
  const Vit b = *LoadVitTeacher(hooks.output_checkpoint, torch::kCPU);
  for (const auto& p : a->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), b->named_parameters()[p.key()]))
        << p.key();
  }

  config.kind = RunKind::kDistill;
  config.student.width = 4;
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.optimizer = {OptimizerKind::kSgd, 0.05, 0.9, 5e-4};
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  twice(hooks, 1);
  const auto first =
      *LoadStudent(hooks.output_checkpoint + ".uninterrupted", torch::kCPU);
  const auto second = *LoadStudent(hooks.output_checkpoint, torch::kCPU);
  for (const auto& p : first->named_parameters()) {
    EXPECT_TRUE(torch::equal(p.value(), second->named_parameters()[p.key()]))
        << p.key();
  }

  // The teacher's resume point does not fit the student's run; a file that
  // is no resume point is DATA_LOSS; each names the file.
  hooks.resume_from = teacher_point.string();
  absl::StatusOr<RunOutcome> wrong = ExecuteRun(config, hooks);
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("teacher-point.pt does not fit this run's model"));
  std::ofstream(dir_ / "junk.pt") << "not an archive";
  hooks.resume_from = (dir_ / "junk.pt").string();
  absl::StatusOr<RunOutcome> junk = ExecuteRun(config, hooks);
  EXPECT_EQ(junk.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(junk.status().message()), HasSubstr("junk.pt"));
}

}  // namespace
}  // namespace distill::engine
