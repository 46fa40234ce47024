// Data sets held in memory: IDX and CIFAR-10 binary files, limits,
// normalisation, resizing.
#include "worker/engine/datasets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/engine_fixture.h"
#include "tests/fake_data.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

using DatasetsTest = EngineTest;

TEST_F(DatasetsTest, ReadsGzipAndPlainIdx) {
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

TEST_F(DatasetsTest, RejectsMalformedIdxNamingTheFile) {
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

TEST_F(DatasetsTest, LoadsFashionMnistLimitedNormalisedAndResized) {
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

TEST_F(DatasetsTest, ReadsCifar10BinaryBatches) {
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

TEST_F(DatasetsTest, UnknownDatasetIsInvalidArgument) {
  DatasetConfig config;
  config.name = "imagenet";
  absl::StatusOr<TrainTestData> data = LoadDataset(config);
  EXPECT_EQ(data.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(data.status().message()), HasSubstr("\"imagenet\""));
}

TEST_F(DatasetsTest, RealFashionMnistIsWhereDebianPutsIt) {
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

}  // namespace
}  // namespace distill::engine
