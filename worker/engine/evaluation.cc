#include "worker/engine/evaluation.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace distill::engine {
namespace F = torch::nn::functional;

double KnnTopOne(const torch::Tensor& bank, const torch::Tensor& bank_labels,
                 const torch::Tensor& queries,
                 const torch::Tensor& query_labels, int64_t num_classes,
                 int64_t k, double temperature) {
  torch::NoGradGuard no_grad;
  const torch::Tensor b =
      F::normalize(bank.to(torch::kFloat32), F::NormalizeFuncOptions().dim(1));
  const torch::Tensor q = F::normalize(queries.to(torch::kFloat32),
                                       F::NormalizeFuncOptions().dim(1));
  k = std::min(k, b.size(0));
  int64_t correct = 0;
  for (int64_t i = 0; i < q.size(0); i += 256) {
    torch::Tensor chunk = q.slice(0, i, std::min(i + 256, q.size(0)));
    auto [similarity, index] = torch::matmul(chunk, b.t()).topk(k, 1);
    torch::Tensor votes =
        torch::zeros({chunk.size(0), num_classes}, similarity.options());
    votes.scatter_add_(1,
                       bank_labels.to(index.device())
                           .index_select(0, index.reshape(-1))
                           .reshape(index.sizes()),
                       (similarity / temperature).exp());
    correct +=
        votes.argmax(1)
            .eq(query_labels.slice(0, i, i + chunk.size(0)).to(votes.device()))
            .sum()
            .item<int64_t>();
  }
  return double(correct) / double(std::max<int64_t>(1, q.size(0)));
}

torch::Tensor KMeans(const torch::Tensor& points, int64_t k, int64_t seed,
                     int64_t max_iterations) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = points.to(torch::kFloat64);
  const int64_t n = x.size(0);
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  // k-means++: each next centre drawn with probability ~ squared distance.
  std::vector<int64_t> chosen = {
      torch::randint(n, {1}, generator, torch::kInt64).item<int64_t>()};
  torch::Tensor nearest = (x - x[chosen[0]]).pow(2).sum(1);
  while (int64_t(chosen.size()) < std::min(k, n)) {
    const double total = nearest.sum().item<double>();
    const int64_t next =
        total > 0 ? torch::multinomial(nearest / total, 1, false, generator)
                        .item<int64_t>()
                  : int64_t(chosen.size());
    chosen.push_back(next);
    nearest = torch::minimum(nearest, (x - x[next]).pow(2).sum(1));
  }
  torch::Tensor centres =
      x.index_select(0, torch::tensor(chosen, torch::kInt64));
  torch::Tensor assignment = torch::full({n}, -1, torch::kInt64);
  for (int64_t it = 0; it < max_iterations; ++it) {
    torch::Tensor next = torch::cdist(x, centres).argmin(1);
    if (torch::equal(next, assignment)) break;
    assignment = next;
    for (int64_t c = 0; c < centres.size(0); ++c) {
      torch::Tensor members = assignment.eq(c);
      if (members.any().item<bool>()) centres[c] = x.index({members}).mean(0);
    }
  }
  return assignment;
}

namespace {

// Contingency table of two labelings, as float64.
torch::Tensor Contingency(const torch::Tensor& a, const torch::Tensor& b) {
  auto [ua, ia] = at::_unique(a, /*sorted=*/true, /*return_inverse=*/true);
  auto [ub, ib] = at::_unique(b, true, true);
  torch::Tensor table =
      torch::zeros({ua.size(0) * ub.size(0)}, torch::kFloat64);
  table.index_add_(0, ia * ub.size(0) + ib,
                   torch::ones({a.size(0)}, torch::kFloat64));
  return table.reshape({ua.size(0), ub.size(0)});
}

double Entropy(const torch::Tensor& counts, double n) {
  torch::Tensor p = counts.masked_select(counts > 0) / n;
  return -(p * p.log()).sum().item<double>();
}

double Choose2Sum(const torch::Tensor& counts) {
  return (counts * (counts - 1) / 2).sum().item<double>();
}

}  // namespace

double NormalizedMutualInformation(const torch::Tensor& a,
                                   const torch::Tensor& b) {
  const torch::Tensor table = Contingency(a, b);
  const double n = double(a.size(0));
  const torch::Tensor rows = table.sum(1), cols = table.sum(0);
  const double ha = Entropy(rows, n), hb = Entropy(cols, n);
  if (ha == 0 && hb == 0) return 1.0;  // Both a single cluster: identical.
  torch::Tensor nz = table > 0;
  torch::Tensor outer = rows.unsqueeze(1) * cols.unsqueeze(0);
  torch::Tensor pij = table.masked_select(nz) / n;
  const double mi = (pij * (pij * n * n / outer.masked_select(nz)).log())
                        .sum()
                        .item<double>();
  return std::max(0.0, mi / ((ha + hb) / 2));
}

double AdjustedRandIndex(const torch::Tensor& a, const torch::Tensor& b) {
  const torch::Tensor table = Contingency(a, b);
  const double n = double(a.size(0));
  const double index = Choose2Sum(table);
  const double sum_a = Choose2Sum(table.sum(1)),
               sum_b = Choose2Sum(table.sum(0));
  const double expected = sum_a * sum_b / (n * (n - 1) / 2);
  const double max_index = (sum_a + sum_b) / 2;
  if (max_index == expected)
    return 1.0;  // Degenerate: both trivial partitions.
  return (index - expected) / (max_index - expected);
}

double TopOneAgreement(const torch::Tensor& logits_a,
                       const torch::Tensor& logits_b) {
  return logits_a.argmax(1)
      .eq(logits_b.argmax(1))
      .to(torch::kFloat64)
      .mean()
      .item<double>();
}

double LinearCka(const torch::Tensor& x, const torch::Tensor& y) {
  torch::NoGradGuard no_grad;
  const torch::Tensor a = x.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor b = y.to(torch::kCPU, torch::kFloat64);
  const torch::Tensor ac = a - a.mean(0, /*keepdim=*/true);
  const torch::Tensor bc = b - b.mean(0, /*keepdim=*/true);
  // The d x d products, never the N x N Gram matrices.
  const double cross = torch::matmul(bc.t(), ac).pow(2).sum().item<double>();
  const double self_a =
      torch::matmul(ac.t(), ac).pow(2).sum().sqrt().item<double>();
  const double self_b =
      torch::matmul(bc.t(), bc).pow(2).sum().sqrt().item<double>();
  if (self_a == 0 || self_b == 0) return 0;
  return std::clamp(cross / (self_a * self_b), 0.0, 1.0);
}

namespace {

// Each row's k nearest other rows by cosine similarity (N x k), in blocks
// of rows so that no N x N matrix is held.
torch::Tensor NearestNeighbours(const torch::Tensor& points, int64_t k) {
  const torch::Tensor p = F::normalize(points.to(torch::kFloat32),
                                       F::NormalizeFuncOptions().dim(1));
  const int64_t n = p.size(0);
  std::vector<torch::Tensor> blocks;
  for (int64_t i = 0; i < n; i += 512) {
    const int64_t end = std::min(i + 512, n);
    torch::Tensor similarity = torch::matmul(p.slice(0, i, end), p.t());
    // Itself is no neighbour.
    similarity.diagonal(/*offset=*/i).fill_(-2);
    blocks.push_back(std::get<1>(similarity.topk(k, 1)));
  }
  return torch::cat(blocks);
}

}  // namespace

double NeighbourhoodOverlap(const torch::Tensor& x, const torch::Tensor& y,
                            int64_t k) {
  torch::NoGradGuard no_grad;
  const int64_t n = x.size(0);
  if (n < 2 || y.size(0) != n) return 0;
  k = std::min(k, n - 1);
  const torch::Tensor a = NearestNeighbours(x, k).unsqueeze(2);  // N x k x 1
  const torch::Tensor b =
      NearestNeighbours(y, k).to(a.device()).unsqueeze(1);  // N x 1 x k
  return a.eq(b).any(2).to(torch::kFloat64).sum().item<double>() /
         double(n * k);
}

namespace {

// Row-wise conditional probabilities p(j|i) whose entropy matches
// log(perplexity), by bisection on each row's precision.
torch::Tensor ConditionalP(const torch::Tensor& sq_distances,
                           double perplexity) {
  const int64_t n = sq_distances.size(0);
  const double target = std::log(perplexity);
  torch::Tensor beta = torch::ones({n, 1}, torch::kFloat64);
  torch::Tensor lo = torch::zeros({n, 1}, torch::kFloat64);
  torch::Tensor hi = torch::full(
      {n, 1}, std::numeric_limits<double>::infinity(), torch::kFloat64);
  torch::Tensor mask = 1 - torch::eye(n, torch::kFloat64);
  torch::Tensor p;
  for (int step = 0; step < 64; ++step) {
    torch::Tensor logits = -sq_distances * beta;
    logits = logits - (logits + (1 - mask) * -1e300).amax(1, true);
    p = logits.exp() * mask;
    torch::Tensor sum = p.sum(1, true).clamp_min(1e-300);
    p = p / sum;
    torch::Tensor entropy = -(p * p.clamp_min(1e-300).log()).sum(1, true);
    // Too much entropy: sharpen (raise beta); too little: widen.
    torch::Tensor sharpen = entropy > target;
    lo = torch::where(sharpen, beta, lo);
    hi = torch::where(sharpen, hi, beta);
    beta = torch::where(hi.isinf(), beta * 2, (lo + hi) / 2);
  }
  return p;
}

}  // namespace

torch::Tensor Tsne(const torch::Tensor& points, double perplexity,
                   int64_t iterations, int64_t seed) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = points.to(torch::kFloat64);
  const int64_t n = x.size(0);
  perplexity = std::min(perplexity, std::max(1.0, (n - 1) / 3.0));
  torch::Tensor d = torch::cdist(x, x).pow(2);
  d = d / d.max().clamp_min(1e-12);
  torch::Tensor p = ConditionalP(d * n, perplexity);
  p = (p + p.t()) / (2.0 * n);
  p = p.clamp_min(1e-12).to(torch::kFloat32);
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  torch::Tensor y = torch::randn({n, 2}, generator, torch::kFloat32) * 1e-4;
  torch::Tensor velocity = torch::zeros_like(y);
  torch::Tensor gains = torch::ones_like(y);
  const double learning_rate = std::max(50.0, n / 12.0);
  for (int64_t it = 0; it < iterations; ++it) {
    const double exaggeration = it < 100 ? 12.0 : 1.0;
    const double momentum = it < 100 ? 0.5 : 0.8;
    // Student-t kernel from squared distances, without an n x n x 2 tensor.
    torch::Tensor sq = y.pow(2).sum(1);
    torch::Tensor num =
        1 / (1 + (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * y.matmul(y.t()))
                     .clamp_min(0));
    num.fill_diagonal_(0);
    torch::Tensor q = (num / num.sum()).clamp_min(1e-12);
    // dC/dy_i = 4 sum_j w_ij (y_i - y_j), w = (exaggeration P - Q) * num.
    torch::Tensor w = (exaggeration * p - q) * num;
    torch::Tensor grad = 4 * (w.sum(1, true) * y - w.matmul(y));
    // Delta-bar-delta gains, as in van der Maaten's reference implementation.
    torch::Tensor same_sign = (grad > 0).eq(velocity > 0);
    gains = torch::where(same_sign, gains * 0.8, gains + 0.2).clamp_min(0.01);
    velocity = momentum * velocity - learning_rate * gains * grad;
    y = y + velocity;
    y = y - y.mean(0);
  }
  return y.to(torch::kFloat32);
}

}  // namespace distill::engine
