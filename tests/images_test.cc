// Image files: JPEG decoding, the CUB-200-2011 and class-per-folder layouts
// written here in their exact formats, the views, and the threaded loader.
#include "worker/engine/images.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#include <filesystem>
#include <fstream>

#include "tests/temp_dir.h"
#include "worker/engine/splits.h"
#include "worker/engine/trainer.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

// A JPEG of `height` x `width`: the left half `left`, the right half `right`.
std::string Jpeg(int height, int width, std::array<uint8_t, 3> left,
                 std::array<uint8_t, 3> right) {
  std::vector<uint8_t> rgb(size_t(height * width * 3));
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const auto& c = x < width / 2 ? left : right;
      std::copy(c.begin(), c.end(), rgb.begin() + (y * width + x) * 3);
    }
  }
  tjhandle handle = tjInitCompress();
  unsigned char* out = nullptr;
  unsigned long size = 0;
  EXPECT_EQ(tjCompress2(handle, rgb.data(), width, 0, height, TJPF_RGB, &out,
                        &size, TJSAMP_444, 95, 0),
            0);
  std::string bytes(reinterpret_cast<char*>(out), size);
  tjFree(out);
  tjDestroy(handle);
  return bytes;
}

class ImagesTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& relative, const std::string& bytes) {
    const fs::path path = dir_ / relative;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    return path.string();
  }

  TempDir temp_{"distill_images_test"};
  const fs::path dir_ = temp_.path();
};

TEST_F(ImagesTest, DecodesJpegs) {
  auto image = DecodeJpeg(Jpeg(30, 40, {200, 10, 10}, {10, 10, 200}), "a.jpg");
  ASSERT_TRUE(image.ok()) << image.status();
  EXPECT_EQ(image->sizes(), (std::vector<int64_t>{30, 40, 3}));
  EXPECT_NEAR(image->index({15, 5, 0}).item<int>(), 200, 8);
  EXPECT_NEAR(image->index({15, 35, 2}).item<int>(), 200, 8);
}

TEST_F(ImagesTest, CorruptAndForeignFilesAreErrorsNamingThem) {
  const std::string jpeg = Jpeg(30, 40, {1, 2, 3}, {4, 5, 6});
  const std::string truncated =
      Write("truncated.jpg", jpeg.substr(0, jpeg.size() / 2));
  const std::string png = Write("photo.png", "\x89PNG\r\n\x1a\n0000");
  for (const std::string& path : {truncated, png}) {
    auto image = ReadJpeg(path);
    EXPECT_EQ(image.status().code(), absl::StatusCode::kDataLoss) << path;
    EXPECT_THAT(std::string(image.status().message()), HasSubstr(path));
  }
  EXPECT_EQ(ReadJpeg((dir_ / "none.jpg").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ImagesTest, ReadsCubsOfficialFiles) {
  // Six images of three classes; ids 2 and 5 are test images.
  Write(
      "images.txt",
      "1 001.Black_footed_Albatross/a.jpg\n2 001.Black_footed_Albatross/b.jpg\n"
      "3 002.Laysan_Albatross/c.jpg\n4 002.Laysan_Albatross/d.jpg\n"
      "5 003.Sooty_Albatross/e.jpg\n6 003.Sooty_Albatross/f.jpg\n");
  Write("image_class_labels.txt", "1 1\n2 1\n3 2\n4 2\n5 3\n6 3\n");
  Write("train_test_split.txt", "1 1\n2 0\n3 1\n4 1\n5 0\n6 1\n");
  Write("bounding_boxes.txt",
        "1 1.0 2.0 10.0 20.0\n2 0 0 5 5\n3 0 0 5 5\n4 0 0 5 5\n"
        "5 3.5 4.5 6.0 7.0\n6 0 0 5 5\n");
  auto cub = ReadCub(dir_.string(), /*crop_to_boxes=*/true);
  ASSERT_TRUE(cub.ok()) << cub.status();
  EXPECT_EQ(cub->train.size(), 4);
  EXPECT_EQ(cub->test.size(), 2);
  EXPECT_EQ(cub->train.paths[0],
            (dir_ / "images/001.Black_footed_Albatross/a.jpg").string());
  EXPECT_EQ(cub->train.labels, (std::vector<int64_t>{0, 1, 1, 2}));
  EXPECT_EQ(cub->test.labels, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(cub->test.boxes[1], (Box{3.5f, 4.5f, 6.0f, 7.0f}));
  EXPECT_EQ(cub->train.class_names.size(), 3u);
  EXPECT_TRUE(ReadCub(dir_.string(), false)->train.boxes.empty());

  Write("train_test_split.txt", "1 1\n2 0\n3 1\n4 1\n5 0\n");
  auto missing = ReadCub(dir_.string(), false);
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(missing.status().message()),
      HasSubstr("image 6 of images.txt has no train_test_split.txt entry"));
  Write("image_class_labels.txt", "1 1\n2 one\n");
  EXPECT_THAT(std::string(ReadCub(dir_.string(), false).status().message()),
              HasSubstr("image_class_labels.txt:2: expected an id and 1 "
                        "value(s), got \"2 one\""));
}

TEST_F(ImagesTest, ReadsAClassPerFolderTree) {
  const std::string jpeg = Jpeg(8, 8, {0, 0, 0}, {0, 0, 0});
  Write("train/cat/1.jpg", jpeg);
  Write("train/cat/2.jpg", jpeg);
  Write("train/ant/1.jpg", jpeg);
  Write("val/ant/9.jpg", jpeg);
  auto tree = ReadImageFolder(dir_.string());
  ASSERT_TRUE(tree.ok()) << tree.status();
  EXPECT_EQ(tree->train.class_names, (std::vector<std::string>{"ant", "cat"}));
  EXPECT_EQ(tree->train.labels, (std::vector<int64_t>{0, 1, 1}));
  EXPECT_EQ(tree->test.size(), 1);
  Write("val/dog/1.jpg", jpeg);
  EXPECT_THAT(std::string(ReadImageFolder(dir_.string()).status().message()),
              HasSubstr("dog is a class the training folder does not have"));
  EXPECT_EQ(ReadImageFolder((dir_ / "nothing").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ImagesTest, EvaluationViewResizesCentreCropsAndNormalises) {
  // 60 x 120: left half black, right half white. The centre crop of the
  // resized image keeps both halves; the crop's left column is black.
  torch::Tensor hwc =
      *DecodeJpeg(Jpeg(60, 120, {0, 0, 0}, {255, 255, 255}), "x.jpg");
  std::mt19937_64 rng(1);
  torch::Tensor x = TransformImage(hwc, {32, false}, rng);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, 32, 32}));
  EXPECT_NEAR(x[0][16][0].item<float>(), -0.485 / 0.229, 0.1);
  EXPECT_NEAR(x[0][16][31].item<float>(), (1 - 0.485) / 0.229, 0.1);
  // A box around the right half only: all white.
  const Box box = {60, 0, 60, 60};
  torch::Tensor boxed = TransformImage(hwc, {32, false}, rng, &box);
  EXPECT_GT(boxed.min().item<float>(), (0.9 - 0.485) / 0.229);
}

TEST_F(ImagesTest, TrainingViewIsRandomButSeeded) {
  torch::Tensor hwc =
      *DecodeJpeg(Jpeg(64, 64, {0, 0, 0}, {255, 255, 255}), "x.jpg");
  std::mt19937_64 a(7), b(7);
  std::vector<torch::Tensor> first, second;
  for (int i = 0; i < 8; ++i) {
    first.push_back(TransformImage(hwc, {24, true}, a));
    second.push_back(TransformImage(hwc, {24, true}, b));
  }
  bool differ = false;
  for (int i = 0; i < 8; ++i) {
    EXPECT_TRUE(torch::equal(first[i], second[i]));
    EXPECT_EQ(first[i].sizes(), (std::vector<int64_t>{3, 24, 24}));
    differ = differ || !torch::equal(first[i], first[0]);
  }
  EXPECT_TRUE(differ) << "eight random views were all the same";
}

TEST_F(ImagesTest, LoaderReturnsBatchesInOrderOnSeveralThreads) {
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

TEST_F(ImagesTest, LoaderNamesACorruptImage) {
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

TEST_F(ImagesTest, LoaderNamesAnImageThatHangsInsteadOfHanging) {
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

TEST_F(ImagesTest,
       TrainsAndDistilsOnCubFilesWithTheTeacherOnlineWhenAugmenting) {
  // A two-class CUB: red birds and blue birds, 16 training and 8 test images.
  std::string images, labels, split;
  for (int id = 1; id <= 24; ++id) {
    const int label = id % 2;
    const std::string name =
        "c" + std::to_string(label) + "/" + std::to_string(id) + ".jpg";
    const std::array<uint8_t, 3> colour =
        label == 0 ? std::array<uint8_t, 3>{220, 20, 20}
                   : std::array<uint8_t, 3>{20, 20, 220};
    Write("images/" + name, Jpeg(40, 48, colour, colour));
    images += std::to_string(id) + " " + name + "\n";
    labels += std::to_string(id) + " " + std::to_string(label + 1) + "\n";
    split += std::to_string(id) + (id <= 16 ? " 1\n" : " 0\n");
  }
  Write("images.txt", images);
  Write("image_class_labels.txt", labels);
  Write("train_test_split.txt", split);

  RunConfig config;
  config.kind = RunKind::kTrainTeacher;
  config.dataset.name = "cub-200-2011";
  config.dataset.root = dir_.string();
  config.dataset.image_size = 32;
  config.teacher = {32, 3, 2, 8, 16, 1, 2, 2};
  config.optimizer = {OptimizerKind::kAdamW, 3e-3, 0, 0};
  config.epochs = 4;
  config.batch_size = 4;
  config.tsne_points = 0;
  RunHooks hooks;
  hooks.output_checkpoint = (dir_ / "teacher.pt").string();
  auto teacher = ExecuteRun(config, hooks);
  ASSERT_TRUE(teacher.ok()) << teacher.status();
  EXPECT_GT(teacher->results.at("eval/top1"), 0.9) << "red and blue are easy";

  config.kind = RunKind::kDistill;
  config.student.in_channels = 3;
  config.student.width = 4;
  config.losses.ce = 1;
  config.losses.ikd = 1;
  config.losses.rkd_distance = 1;
  config.optimizer = {OptimizerKind::kSgd, 0.05, 0.9, 0};
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = (dir_ / "student.pt").string();
  auto online = ExecuteRun(config, hooks);
  ASSERT_TRUE(online.ok()) << online.status();
  EXPECT_EQ(online->results.at("teacher/online"), 1);
  config.dataset.augment = false;
  auto offline = ExecuteRun(config, hooks);
  ASSERT_TRUE(offline.ok()) << offline.status();
  EXPECT_EQ(offline->results.at("teacher/online"), 0);
  EXPECT_EQ(DatasetFiles(config.dataset).size(), 3u + 24u);

  // A corrupt image fails the run naming it.
  Write("images/c0/2.jpg", "broken");
  auto broken = ExecuteRun(config, hooks);
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(broken.status().message()), HasSubstr("c0/2.jpg"));
}

}  // namespace
}  // namespace distill::engine
