// Judging a model: predictions in order, the keys a judgement reports, and
// the t-SNE run file.
#include "worker/engine/judge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "common/metric_keys.h"
#include "tests/engine_fixture.h"
#include "worker/engine/datasets.h"

namespace distill::engine {
namespace {

using ::testing::ElementsAre;

using JudgeTest = EngineTest;

// Two classes of 2-D points along the two axes (cosine-separated), the
// same for train and test.
Data SeparatedData(int n) {
  TensorDataset set;
  set.images = torch::zeros({n, 1, 1, 2});
  set.labels = torch::arange(n, torch::kInt64) % 2;
  for (int i = 0; i < n; ++i) {
    set.images[i][0][0][0] = float(1 - i % 2) + 1e-4f * float(i);
    set.images[i][0][0][1] = float(i % 2) + 1e-4f * float(i);
  }
  set.num_classes = 2;
  Data data;
  data.num_classes = 2;
  data.train = TensorSplit(set);
  data.test = TensorSplit(set);
  return data;
}

// A "model" whose embedding is the image and whose logits favour the class
// of the larger coordinate.
absl::StatusOr<LogitsAndEmbedding> Identity(const torch::Tensor& images) {
  torch::Tensor e = images.flatten(1);
  torch::Tensor d = (e.select(1, 0) - e.select(1, 1)).unsqueeze(1);
  return LogitsAndEmbedding{torch::cat({d, -d}, 1), e};
}

TEST_F(JudgeTest, PredictKeepsTheOrderAndTheLimit) {
  Data data = SeparatedData(1100);  // More than one evaluation batch.
  auto out = Predict(Identity, *data.test, 0, torch::kCPU);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->second.size(0), 1100);
  EXPECT_FLOAT_EQ(out->second[1099][1].item<float>(), 1 + 0.1099f);
  auto limited = Predict(Identity, *data.train, 7, torch::kCPU);
  EXPECT_EQ(limited->first.size(0), 7);
}

TEST_F(JudgeTest, JudgementHasTopOneAndEmbeddingMetricsUnderItsPrefix) {
  Data data = SeparatedData(40);
  RunConfig config;
  config.knn_bank = 20;
  config.device = TestDevice();
  auto j = JudgeModel(Identity, metric_keys::kStudent, true, data, config);
  ASSERT_TRUE(j.ok()) << j.status();
  std::vector<std::string> keys;
  for (const auto& [key, value] : j->metrics) keys.push_back(key);
  EXPECT_THAT(keys, ElementsAre("student/ari", "student/knn_top1",
                                "student/nmi", "student/top1"));
  EXPECT_DOUBLE_EQ(j->metrics.at("student/top1"), 1.0);
  EXPECT_DOUBLE_EQ(j->metrics.at("student/knn_top1"), 1.0);
  EXPECT_NEAR(j->metrics.at("student/nmi"), 1.0, 1e-9);
  auto top1_only =
      JudgeModel(Identity, metric_keys::kEval, false, data, config);
  ASSERT_TRUE(top1_only.ok());
  EXPECT_EQ(top1_only->metrics.size(), 1u);
  EXPECT_EQ(top1_only->metrics.count("eval/top1"), 1u);
  // No logits: embedding metrics alone.
  auto no_logits = Judge("teacher/", {torch::Tensor(), j->test.second},
                         j->test.second, data, config);
  EXPECT_EQ(no_logits->count("teacher/top1"), 0u);
  EXPECT_EQ(no_logits->count("teacher/knn_top1"), 1u);
}

TEST_F(JudgeTest, TsneFileHasAMapPerModel) {
  Data data = SeparatedData(30);
  RunConfig config;
  config.tsne_points = 12;
  const torch::Tensor e = torch::randn({30, 4});
  auto path = WriteTsne(dir_.string(), {{"teacher", e}, {"student", e}},
                        data.test->labels(), config);
  ASSERT_TRUE(path.ok()) << path.status();
  std::ifstream in(*path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "model,x,y,label");
  int teacher = 0, student = 0;
  while (std::getline(in, line)) {
    teacher += line.rfind("teacher,", 0) == 0;
    student += line.rfind("student,", 0) == 0;
  }
  EXPECT_EQ(teacher, 12);
  EXPECT_EQ(student, 12);
}

}  // namespace
}  // namespace distill::engine
