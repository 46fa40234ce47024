// Pretrained weights: a torchvision ResNet exported by tools/export_weights.py
// (run here with Debian's python3-torchvision) arrives bit-identical and
// computes what torchvision computes.
#include "worker/engine/weights.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/sha256.h"
#include "tests/temp_dir.h"
#include "worker/engine/models.h"

namespace distill::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path& Dir() {
  static const fs::path* const dir =
      new fs::path(fs::temp_directory_path() /
                   ("distill_weights_test_" + std::to_string(::getpid())));
  return *dir;
}

// Exports a random torchvision `arch` with 10 classes; false when Python's
// torchvision is not installed.
bool Export(const std::string& arch) {
  const fs::path out = Dir() / arch;
  if (fs::exists(out.string() + ".pt")) return true;
  fs::create_directories(Dir());
  const std::string command =
      TestPython() + " " DISTILL_SOURCE_DIR "/tools/export_weights.py --arch " +
      arch + " --num-classes 10 --seed 3 --out " + out.string() +
      ".pt --digests " + out.string() + ".sha256 --reference " + out.string() +
      ".reference.pt";
  return std::system(command.c_str()) == 0;
}

StudentConfig TorchvisionLike(const std::string& arch) {
  StudentConfig c;
  c.arch = arch;
  c.stem = Stem::kImageNet;
  c.in_channels = 3;
  c.num_classes = 10;
  c.width = 64;
  c.teacher_width = 16;  // The student's own projection: not in the file.
  return c;
}

class WeightsTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!HasTorchvision()) {
      GTEST_SKIP() << "python3-torchvision is not installed (scripts/setup.sh "
                      "installs it)";
    }
    ASSERT_TRUE(Export(GetParam())) << "tools/export_weights.py failed";
  }
  static void TearDownTestSuite() { fs::remove_all(Dir()); }
};

TEST_P(WeightsTest, EveryTensorArrivesBitIdenticalAndComputesLikeTorchvision) {
  const std::string base = (Dir() / GetParam()).string();
  ResNetStudent student(TorchvisionLike(GetParam()));
  ASSERT_TRUE(LoadWeightsByName(*student, base + ".pt", {"projection."}).ok());

  std::map<std::string, torch::Tensor> tensors;
  for (const auto& p : student->named_parameters())
    tensors[p.key()] = p.value();
  for (const auto& b : student->named_buffers()) tensors[b.key()] = b.value();
  std::ifstream digests(base + ".sha256");
  std::string name, digest;
  int checked = 0;
  while (digests >> name >> digest) {
    ASSERT_EQ(tensors.count(name), 1u)
        << name << " is not in the engine's model";
    const torch::Tensor t = tensors[name].contiguous();
    const std::string_view bytes(static_cast<const char*>(t.data_ptr()),
                                 t.nbytes());
    EXPECT_EQ(Sha256Hex(bytes), digest) << name;
    ++checked;
  }
  EXPECT_EQ(checked + 2,
            int(tensors.size()));  // All but projection.{weight,bias}.

  auto reference = *ReadStateDict(base + ".reference.pt");
  student->eval();
  torch::NoGradGuard no_grad;
  torch::Tensor logits = student->forward(reference.at("input")).first;
  EXPECT_TRUE(torch::allclose(logits, reference.at("logits"), 1e-4, 1e-4))
      << (logits - reference.at("logits")).abs().max();
}

INSTANTIATE_TEST_SUITE_P(Torchvision, WeightsTest,
                         ::testing::Values("resnet18", "resnet34", "resnet50"));

class WeightsErrorTest : public WeightsTest {};

TEST_P(WeightsErrorTest, NamesTheFirstMissingOrMisShapedParameter) {
  const std::string file = (Dir() / "resnet18.pt").string();
  StudentConfig narrow = TorchvisionLike("resnet18");
  narrow.width = 32;
  ResNetStudent student(narrow);
  const torch::Tensor before = student->conv1->weight.clone();
  absl::Status s = LoadWeightsByName(*student, file, {"projection."});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(s.message()),
      HasSubstr(
          "parameter conv1.weight has shape [64, 3, 7, 7] in weights file"));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("but [32, 3, 7, 7] in the model"));
  EXPECT_TRUE(torch::equal(before, student->conv1->weight))
      << "a failed load changed the model";

  ResNetStudent deeper(TorchvisionLike("resnet34"));
  s = LoadWeightsByName(*deeper, file, {"projection."});
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("has no parameter layer1.2.conv1.weight"));

  // A head for other classes: an error, unless the caller makes it optional.
  StudentConfig birds = TorchvisionLike("resnet18");
  birds.num_classes = 200;
  ResNetStudent cub(birds);
  s = LoadWeightsByName(*cub, file, {"projection."});
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("parameter fc.weight has shape [10, 512]"));
  const torch::Tensor head = cub->fc->weight.clone();
  EXPECT_TRUE(LoadWeightsByName(*cub, file, {"projection.", "fc."}).ok());
  EXPECT_TRUE(torch::equal(head, cub->fc->weight));

  std::ofstream(Dir() / "junk.pt") << "junk";
  s = LoadWeightsByName(*student, (Dir() / "junk.pt").string());
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("junk.pt"));
}

INSTANTIATE_TEST_SUITE_P(Torchvision, WeightsErrorTest,
                         ::testing::Values("resnet18"));

}  // namespace
}  // namespace distill::engine
