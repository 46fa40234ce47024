// The ViT teacher and the ResNet students: shapes and parameter names.
#include "worker/engine/models.h"

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

using ModelsTest = EngineTest;

TEST_F(ModelsTest, ModelsReturnLogitsAndEmbedding) {
  VitConfig vit;
  vit.patch_size = 7;
  vit.width = 32;
  vit.depth = 2;
  vit.heads = 4;
  const torch::Device device(TestDevice());
  Vit teacher(vit);
  teacher->to(device);
  auto [t_logits, t_embedding] =
      teacher->forward(torch::randn({5, 1, 28, 28}, device));
  EXPECT_EQ(t_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(t_embedding.sizes(), (std::vector<int64_t>{5, 32}));

  StudentConfig sc;
  sc.width = 8;
  sc.teacher_width = 32;
  ResNetStudent student(sc);
  student->to(device);
  auto [s_logits, s_embedding] =
      student->forward(torch::randn({5, 1, 28, 28}, device));
  EXPECT_EQ(s_logits.sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(s_embedding.sizes(), (std::vector<int64_t>{5, 64}));  // 8 x width.
  EXPECT_EQ(student->Project(s_embedding).sizes(),
            (std::vector<int64_t>{5, 32}));
  sc.embedding_dim = 24;
  EXPECT_EQ(
      ResNetStudent(sc)->forward(torch::randn({2, 1, 28, 28})).second.size(1),
      24);
}

TEST_F(ModelsTest, StudentHasTorchvisionParameterNames) {
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

}  // namespace
}  // namespace distill::engine
