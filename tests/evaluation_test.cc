// Evaluation metrics on inputs with known answers.
#include "worker/engine/evaluation.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

#include "worker/engine/allocation_count.h"

namespace distill::engine {
namespace {

// `per_class` points around each of `classes` far-apart centres in `dim`
// dimensions; returns (points, labels).
std::pair<torch::Tensor, torch::Tensor> Clusters(int64_t classes,
                                                 int64_t per_class, int64_t dim,
                                                 double spread, int seed) {
  torch::manual_seed(seed);
  torch::Tensor centres = torch::randn({classes, dim}) * 10;
  torch::Tensor labels = torch::arange(classes).repeat_interleave(per_class);
  torch::Tensor points = centres.index_select(0, labels) +
                         spread * torch::randn({labels.size(0), dim});
  return {points, labels};
}

TEST(EvaluationTest, KnnIsPerfectOnSeparatedClustersAndChanceOnNoise) {
  auto [bank, bank_labels] = Clusters(5, 40, 16, 0.5, 1);
  auto [queries, query_labels] = Clusters(5, 10, 16, 0.5, 1);  // Same centres.
  EXPECT_DOUBLE_EQ(KnnTopOne(bank, bank_labels, queries, query_labels, 5), 1.0);
  torch::manual_seed(2);
  torch::Tensor noise_labels = torch::randint(5, {200}, torch::kInt64);
  const double chance = KnnTopOne(torch::randn({1000, 16}),
                                  torch::randint(5, {1000}, torch::kInt64),
                                  torch::randn({200, 16}), noise_labels, 5);
  EXPECT_LT(chance, 0.4);
}

TEST(EvaluationTest, KnnWeightsVotesBySimilarity) {
  // Query (1, 0): two weak votes for class 1 at cosine 0, one strong vote for
  // class 0 at cosine 1. exp(1/0.07) outweighs 2 exp(0).
  torch::Tensor bank =
      torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {0.0f, -1.0f}});
  torch::Tensor labels = torch::tensor({0, 1, 1}, torch::kInt64);
  EXPECT_DOUBLE_EQ(KnnTopOne(bank, labels, torch::tensor({{1.0f, 0.0f}}),
                             torch::tensor({0}, torch::kInt64), 2, 3),
                   1.0);
}

TEST(EvaluationTest, NmiAndAriByHand) {
  // scikit-learn: adjusted_rand_score([0,0,1,1],[0,0,1,2]) = 4/7,
  // normalized_mutual_info_score(...) = ln2 / ((ln2 + 1.5 ln2) / 2) = 0.8.
  torch::Tensor truth = torch::tensor({0, 0, 1, 1}, torch::kInt64);
  torch::Tensor split = torch::tensor({0, 0, 1, 2}, torch::kInt64);
  EXPECT_NEAR(AdjustedRandIndex(truth, split), 4.0 / 7.0, 1e-12);
  EXPECT_NEAR(NormalizedMutualInformation(truth, split), 0.8, 1e-12);
  // Renamed clusters are the same partition.
  torch::Tensor renamed = torch::tensor({7, 7, 3, 3}, torch::kInt64);
  EXPECT_NEAR(AdjustedRandIndex(truth, renamed), 1.0, 1e-12);
  EXPECT_NEAR(NormalizedMutualInformation(truth, renamed), 1.0, 1e-12);
}

TEST(EvaluationTest, RandomLabelsScoreNearZero) {
  torch::manual_seed(3);
  torch::Tensor a = torch::randint(10, {5000}, torch::kInt64);
  torch::Tensor b = torch::randint(10, {5000}, torch::kInt64);
  EXPECT_NEAR(AdjustedRandIndex(a, b), 0.0, 0.01);
  EXPECT_LT(NormalizedMutualInformation(a, b), 0.02);
}

TEST(EvaluationTest, KMeansRecoversSeparatedClusters) {
  auto [points, labels] = Clusters(6, 50, 8, 0.3, 4);
  torch::Tensor clusters = KMeans(points, 6, /*seed=*/1);
  EXPECT_NEAR(NormalizedMutualInformation(labels, clusters), 1.0, 1e-9);
  EXPECT_NEAR(AdjustedRandIndex(labels, clusters), 1.0, 1e-9);
}

TEST(EvaluationTest, AgreementOfIdenticalAndOppositeClassifiers) {
  torch::Tensor logits = torch::randn({50, 4});
  EXPECT_DOUBLE_EQ(TopOneAgreement(logits, logits), 1.0);
  EXPECT_DOUBLE_EQ(TopOneAgreement(logits, -logits),
                   0.0);  // argmax becomes argmin.
}

TEST(EvaluationTest, CkaOfKnownCases) {
  torch::manual_seed(3);
  const torch::Tensor x = torch::randn({500, 16}, torch::kFloat64);
  EXPECT_NEAR(LinearCka(x, x), 1.0, 1e-12);
  // An orthogonal rotation, a scaling and a shift change nothing.
  const torch::Tensor q =
      std::get<0>(torch::linalg_qr(torch::randn({16, 16}, torch::kFloat64)));
  EXPECT_NEAR(LinearCka(x, 3 * torch::matmul(x, q) + 7), 1.0, 1e-12);
  // Widths may differ: x beside zeros.
  EXPECT_NEAR(
      LinearCka(x, torch::cat({x, torch::zeros({500, 8}, x.options())}, 1)),
      1.0, 1e-12);
  // Independent noise: near 0 (its expectation is about d / N here).
  EXPECT_LT(LinearCka(x, torch::randn({500, 16}, torch::kFloat64)), 0.06);
  // One dimension each: the squared Pearson correlation of (1, 2, 3) and
  // (1, 4, 9), 576 / 588.
  const torch::Tensor a = torch::tensor({1.0, 2.0, 3.0}).unsqueeze(1);
  EXPECT_NEAR(LinearCka(a, a * a), 576.0 / 588.0, 1e-12);
  EXPECT_EQ(LinearCka(a, torch::ones({3, 2})), 0.0);  // Constant: no structure.
}

TEST(EvaluationTest, NeighbourhoodOverlapOfKnownCases) {
  torch::manual_seed(4);
  const torch::Tensor x = torch::randn({600, 8});
  EXPECT_DOUBLE_EQ(NeighbourhoodOverlap(x, x), 1.0);
  // Cosine neighbourhoods survive a rotation and a positive scaling.
  const torch::Tensor q = std::get<0>(torch::linalg_qr(torch::randn({8, 8})));
  EXPECT_NEAR(NeighbourhoodOverlap(x, 2 * torch::matmul(x, q)), 1.0, 1e-3);
  // Unrelated embeddings share about k / (N - 1) of their neighbours.
  const double chance = NeighbourhoodOverlap(x, torch::randn({600, 8}));
  EXPECT_LT(chance, 0.05);
  EXPECT_GT(chance, 0.0);
  // By hand: 1-NN of 5 points on the unit circle at angles 0, 0.1, 0.3,
  // 0.6, 1.0 (0->1, 1->0, 2->1, 3->2, 4->3), and with the last moved to
  // -0.05 (0->4, 1->0, 2->1, 3->2, 4->0): three of five agree.
  auto circle = [](torch::Tensor angles) {
    return torch::stack({angles.cos(), angles.sin()}, 1);
  };
  const torch::Tensor line = circle(torch::tensor({0.0, 0.1, 0.3, 0.6, 1.0}));
  const torch::Tensor moved =
      circle(torch::tensor({0.0, 0.1, 0.3, 0.6, -0.05}));
  EXPECT_DOUBLE_EQ(NeighbourhoodOverlap(line, line, 1), 1.0);
  EXPECT_DOUBLE_EQ(NeighbourhoodOverlap(line, moved, 1), 0.6);
}

// The t-SNE iterations allocate nothing beyond their fixed buffers (issue
// 32: several n x n tensors per iteration): 100 more iterations cost less
// than one n x n float32 more; the progress callback sees the fraction
// done and stops the map. (The version before allocated eight n x n
// float32 an iteration.)
TEST(EvaluationTest, TsneIterationsAllocateNoMatrices) {
  auto [points, labels] = Clusters(3, 100, 20, 0.5, 5);
  const int64_t n = points.size(0);
  auto bytes = [&](int64_t iterations) {
    AllocationCount count;
    Tsne(points, 30, iterations, 0);
    return count.bytes();
  };
  const int64_t few = bytes(20), many = bytes(120);
  EXPECT_GT(few, 0);  // The counter sees the fixed buffers.
  // Per iteration less than one n-vector of float32 (an n x n is n times
  // that).
  EXPECT_LT((many - few) / 100, n * 4)
      << "20 iterations: " << few << " bytes; 120: " << many;
  std::vector<double> seen;
  const torch::Tensor stopped = Tsne(points, 30, 100, 0, [&](double f) {
    seen.push_back(f);
    return f < 0.5;
  });
  EXPECT_FALSE(stopped.defined());
  EXPECT_THAT(seen, ::testing::ElementsAre(0.0, 0.1, 0.2, 0.3, 0.4, 0.5));
  EXPECT_FALSE(
      KMeans(points, 3, 0, 100, [](double) { return false; }).defined());
}

TEST(EvaluationTest, TsneKeepsClustersApart) {
  auto [points, labels] = Clusters(3, 40, 20, 0.5, 5);
  torch::Tensor map = Tsne(points, 15, 400, 0);
  ASSERT_EQ(map.sizes(), (std::vector<int64_t>{120, 2}));
  EXPECT_TRUE(map.isfinite().all().item<bool>());
  // Three islands in the plane, by distance: each point's nearest
  // neighbour is of its own class, and the nearest two points of different
  // classes lie further apart than the widest island is across (1.9 to 2.4
  // times on every kernel of tests/kernel_matrix.sh). Not by KnnTopOne's
  // cosine: the map is centred, so the middle island of three in a row can
  // sit on the origin, where directions say nothing (0.93 on AVX2 kernels).
  torch::Tensor distance = torch::cdist(map, map);
  const torch::Tensor same = labels.unsqueeze(0).eq(labels.unsqueeze(1));
  const torch::Tensor nearest =
      distance.clone()
          .fill_diagonal_(std::numeric_limits<double>::infinity())
          .argmin(1);
  EXPECT_TRUE(labels.index_select(0, nearest).eq(labels).all().item<bool>());
  const double widest = distance.masked_select(same).max().item<double>();
  const double gap =
      distance.masked_select(same.logical_not()).min().item<double>();
  EXPECT_GT(gap, 1.5 * widest) << "gap " << gap << ", widest island " << widest;
  // k-means finds the three islands (one k-means++ start may put two
  // centres on one island, as on OpenBLAS's Haswell and Zen kernels: the
  // best of five starts).
  double best = 0;
  for (int seed = 0; seed < 5; ++seed) {
    best = std::max(best,
                    NormalizedMutualInformation(labels, KMeans(map, 3, seed)));
  }
  EXPECT_NEAR(best, 1.0, 1e-9);
}

}  // namespace
}  // namespace distill::engine
