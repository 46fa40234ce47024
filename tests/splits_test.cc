// Splits: the files a data set is read from, batches in order, and the
// data set a config names.
#include "worker/engine/splits.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/engine_fixture.h"

namespace distill::engine {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

using SplitsTest = EngineTest;

TEST_F(SplitsTest, FashionMnistIsReadFromItsFourFiles) {
  DatasetConfig config;
  config.root = dir_.string();
  const std::string r = dir_.string() + "/";
  EXPECT_THAT(DatasetFiles(config),
              ElementsAre(r + "train-images-idx3-ubyte.gz",
                          r + "train-labels-idx1-ubyte.gz",
                          r + "t10k-images-idx3-ubyte.gz",
                          r + "t10k-labels-idx1-ubyte.gz"));
  config.root.clear();  // The standard place.
  EXPECT_THAT(DatasetFiles(config)[0],
              HasSubstr(StandardRoot("fashion-mnist")));
  config.name = "imagenet";
  EXPECT_TRUE(DatasetFiles(config).empty());
}

TEST_F(SplitsTest, TensorSplitServesEvaluationBatchesInOrder) {
  WriteFashionMnist(600);
  DatasetConfig config;
  config.root = dir_.string();
  absl::StatusOr<Data> data = OpenData(config, 0);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_EQ(data->num_classes, 10);
  EXPECT_TRUE(data->train->deterministic());
  EXPECT_EQ(data->train->image_shape(), (std::vector<int64_t>{1, 28, 28}));
  std::vector<int64_t> sizes;
  torch::Tensor last;
  ASSERT_TRUE(data->test
                  ->ForEachEvalBatch(0,
                                     [&](const torch::Tensor& images) {
                                       sizes.push_back(images.size(0));
                                       last = images;
                                       return absl::OkStatus();
                                     })
                  .ok());
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  EXPECT_EQ(total, 600);
  EXPECT_GT(sizes.size(), 1u);
  // The last image (label 9) is bright in rows 18 and 19 only.
  EXPECT_GT(last[last.size(0) - 1][0][18][0].item<float>(), 0);
  EXPECT_LT(last[last.size(0) - 1][0][0][0].item<float>(), 0);
}

TEST_F(SplitsTest, UnknownDatasetAndMissingRootAreInvalidArgument) {
  DatasetConfig config;
  config.name = "imagenet";
  EXPECT_EQ(OpenData(config, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  config.name = "cub-200-2011";
  absl::Status s = OpenData(config, 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("dataset.root must name the cub-200-2011 directory"));
}

// An engine built without libturbojpeg (DISTILL_WITH_TURBOJPEG=OFF, or a
// GPU machine that lacks it) keeps the in-memory data sets and refuses the
// JPEG ones up front, saying why.
TEST_F(SplitsTest, JpegDataSetsNeedLibTurboJpeg) {
#ifdef DISTILL_HAVE_TURBOJPEG
  GTEST_SKIP() << "built with libturbojpeg (images_test covers JPEG files)";
#else
  DatasetConfig config;
  config.name = "image-folder";
  config.root = dir_.string();
  absl::Status s = OpenData(config, 0).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("data set image-folder is JPEG files, and this engine "
                        "was built without libturbojpeg"));
  WriteFashionMnist(20);
  DatasetConfig fashion;
  fashion.root = dir_.string();
  EXPECT_TRUE(OpenData(fashion, 0).ok());
#endif
}

}  // namespace
}  // namespace distill::engine
