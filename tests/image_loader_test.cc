// The threaded image loader: order, errors naming the file, no hangs.
#include "worker/engine/image_loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/image_files.h"

namespace distill::engine {
namespace {

using ::testing::HasSubstr;

using ImageLoaderTest = ImagesTest;

TEST_F(ImageLoaderTest, ReturnsBatchesInOrderOnSeveralThreads) {
  ImageList list;
  for (int i = 0; i < 10; ++i) {
    const uint8_t v = uint8_t(20 * i);
    list.paths.push_back(Write("img" + std::to_string(i) + ".jpg",
                               Jpeg(16, 16, {v, v, v}, {v, v, v})));
    list.labels.push_back(i);
  }
  ImageBatchLoader loader(list, {16, false}, /*threads=*/2, /*prefetch=*/2,
                          /*seed=*/1);
  for (int epoch = 0; epoch < 2; ++epoch) {
    const torch::Tensor order =
        torch::tensor({9, 3, 0, 1, 2, 4, 5, 6, 7, 8}, torch::kInt64);
    loader.Start(order, 4);
    std::vector<int64_t> seen;
    std::vector<int64_t> sizes;
    while (true) {
      auto batch = loader.Next();
      ASSERT_TRUE(batch.ok()) << batch.status();
      if (!batch->has_value()) break;
      sizes.push_back((*batch)->images.size(0));
      for (int64_t i = 0; i < (*batch)->labels.size(0); ++i) {
        seen.push_back((*batch)->labels[i].item<int64_t>());
      }
    }
    EXPECT_EQ(sizes, (std::vector<int64_t>{4, 4, 2}));
    EXPECT_EQ(seen, (std::vector<int64_t>{9, 3, 0, 1, 2, 4, 5, 6, 7, 8}));
  }
}

TEST_F(ImageLoaderTest, NamesACorruptImage) {
  ImageList list;
  list.paths = {Write("good.jpg", Jpeg(16, 16, {1, 1, 1}, {1, 1, 1})),
                Write("bad.jpg", "not a jpeg at all")};
  list.labels = {0, 1};
  ImageBatchLoader loader(list, {16, false}, 2, 2, 1);
  loader.Start(torch::tensor({0, 1}, torch::kInt64), 1);
  ASSERT_TRUE(loader.Next().ok());
  auto bad = loader.Next();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("bad.jpg"));
}

TEST_F(ImageLoaderTest, NamesAnImageThatHangsInsteadOfHanging) {
  // Reading a FIFO blocks until a writer comes: a stand-in for a stuck mount.
  const std::string fifo = (dir_ / "stuck.jpg").string();
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  ImageList list;
  list.paths = {fifo};
  list.labels = {0};
  {
    ImageBatchLoader loader(list, {16, false}, 1, 1, 1,
                            absl::Milliseconds(300));
    loader.Start(torch::tensor({0}, torch::kInt64), 1);
    auto stuck = loader.Next();
    EXPECT_EQ(stuck.status().code(), absl::StatusCode::kDeadlineExceeded);
    EXPECT_THAT(std::string(stuck.status().message()), HasSubstr("stuck.jpg"));
    std::ofstream(fifo) << "x";  // Release the loader thread so it can stop.
  }
}

}  // namespace
}  // namespace distill::engine
