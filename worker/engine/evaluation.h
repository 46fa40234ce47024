#ifndef DISTILL_WORKER_ENGINE_EVALUATION_H_
#define DISTILL_WORKER_ENGINE_EVALUATION_H_

#include <torch/torch.h>

#include <cstdint>
#include <functional>

namespace distill::engine {

// How an embedding space is judged beyond classifier accuracy. Inputs are
// CPU tensors: embeddings N x d float, labels N int64.

// DINO's weighted k-NN classifier: cosine similarity to the `bank`
// embeddings, the k most similar vote with weight exp(similarity /
// temperature); returns top-1 in [0, 1] on the queries.
double KnnTopOne(const torch::Tensor& bank, const torch::Tensor& bank_labels,
                 const torch::Tensor& queries,
                 const torch::Tensor& query_labels, int64_t num_classes,
                 int64_t k = 20, double temperature = 0.07);

// Called as long work goes on with the fraction done, in [0, 1]; false
// stops the work, which then returns an undefined tensor.
using ProgressFn = std::function<bool(double fraction)>;

// Lloyd's k-means with k-means++ seeding; the cluster of each row.
torch::Tensor KMeans(const torch::Tensor& points, int64_t k, int64_t seed = 0,
                     int64_t max_iterations = 100,
                     const ProgressFn& progress = nullptr);

// Normalised mutual information (arithmetic-mean normalisation, as
// scikit-learn's default) and the adjusted Rand index of two labelings.
double NormalizedMutualInformation(const torch::Tensor& a,
                                   const torch::Tensor& b);
double AdjustedRandIndex(const torch::Tensor& a, const torch::Tensor& b);

// Fraction of rows on which two classifiers' top-1 predictions agree.
double TopOneAgreement(const torch::Tensor& logits_a,
                       const torch::Tensor& logits_b);

// Structure transfer: how alike two models' embeddings of the same N
// inputs are, whatever their widths.
// Linear CKA (Kornblith et al. 2019): ||Y'X||_F^2 / (||X'X||_F ||Y'Y||_F)
// on column-centred X (N x d1) and Y (N x d2), in [0, 1]; invariant to
// orthogonal transforms and isotropic scaling. 0 when either is constant.
double LinearCka(const torch::Tensor& x, const torch::Tensor& y);

// k-NN neighbourhood overlap: the mean over the inputs of the fraction of
// an input's k nearest neighbours (cosine similarity, itself excluded)
// under `x` that are also among its k nearest under `y`. 1 for the same
// neighbourhoods, about k / (N - 1) for unrelated ones.
double NeighbourhoodOverlap(const torch::Tensor& x, const torch::Tensor& y,
                            int64_t k = 10);

// Exact t-SNE to 2-D (N x 2, float32), for N up to a few thousand points.
// Its iterations allocate nothing beyond fixed buffers (two N x N float32,
// 8 MB at N = 1,000, and a few N x 2); `progress` is asked every 10
// iterations.
torch::Tensor Tsne(const torch::Tensor& points, double perplexity = 30,
                   int64_t iterations = 500, int64_t seed = 0,
                   const ProgressFn& progress = nullptr);

}  // namespace distill::engine

#endif  // DISTILL_WORKER_ENGINE_EVALUATION_H_
