// Image files: JPEG decoding, the CUB-200-2011 and class-per-folder layouts
// written here in their exact formats, the views, and training on them.
#include "worker/engine/images.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/image_files.h"
#include "tests/temp_dir.h"
#include "worker/engine/splits.h"
#include "worker/engine/trainer.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

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

// Numbers std::stod / std::stof threw out_of_range on (a subnormal, past
// float's range) are DATA_LOSS naming the file and the value.
TEST_F(ImagesTest, CubNumbersOutOfRangeAreRefusedNotThrown) {
  Write("images.txt", "1 001.A/a.jpg\n");
  Write("train_test_split.txt", "1 1\n");
  Write("image_class_labels.txt", "1 1e-310\n");
  absl::Status s = ReadCub(dir_.string(), false).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(
      std::string(s.message()),
      HasSubstr("image_class_labels.txt: image 1 has class \"1e-310\""));
  Write("image_class_labels.txt", "1 1\n");
  Write("bounding_boxes.txt", "1 1e39 0 5 5\n");
  absl::Status b = ReadCub(dir_.string(), true).status();
  EXPECT_EQ(b.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(b.message()),
              HasSubstr("bounding_boxes.txt: image 1 has \"1e39\""));
  // A coordinate too small for a float is 0 (std::stof threw).
  Write("bounding_boxes.txt", "1 0 1e-310 5 5\n");
  auto tiny = ReadCub(dir_.string(), true);
  ASSERT_TRUE(tiny.ok()) << tiny.status();
  EXPECT_EQ(tiny->train.boxes[0], (Box{0, 0, 5, 5}));
}

TEST_F(ImagesTest, ACubListingCannotLeadOutOfItsImages) {
  Write("image_class_labels.txt", "1 1\n");
  Write("train_test_split.txt", "1 1\n");
  for (const char* listed :
       {"../../../etc/shadow", "/etc/shadow", "001.Black/../../x.jpg"}) {
    Write("images.txt", std::string("1 ") + listed + "\n");
    absl::Status s = ReadCub(dir_.string(), false).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << listed;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr(std::string("images.txt: image 1 is ") + listed))
        << listed;
  }
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
