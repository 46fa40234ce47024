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
                     int64_t max_iterations, const ProgressFn& progress) {
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
    if (progress && !progress(double(it) / max_iterations))
      return torch::Tensor();
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
// log(perplexity), by bisection on each row's precision beta. With
// e_j = exp(-beta d_j) and Z = sum_j e_j, the entropy is
// log Z + beta sum_j e_j d_j / Z; each row's distances are shifted by its
// smallest (P is unchanged, and Z >= 1), a point's own distance is the
// largest double (e = 0, e d = 0). Three n x n buffers, nothing n x n per
// step.
torch::Tensor ConditionalP(const torch::Tensor& sq_distances,
                           double perplexity) {
  const int64_t n = sq_distances.size(0);
  const double target = std::log(perplexity);
  torch::Tensor beta = torch::ones({n, 1}, torch::kFloat64);
  torch::Tensor lo = torch::zeros({n, 1}, torch::kFloat64);
  torch::Tensor hi = torch::full(
      {n, 1}, std::numeric_limits<double>::infinity(), torch::kFloat64);
  torch::Tensor d = sq_distances.to(torch::kFloat64, /*non_blocking=*/false,
                                    /*copy=*/true);
  d.fill_diagonal_(std::numeric_limits<double>::infinity());
  d.sub_(d.amin(1, true));
  d.fill_diagonal_(std::numeric_limits<double>::max());
  torch::Tensor p = torch::empty_like(d);
  torch::Tensor weighted = torch::empty_like(d);
  torch::Tensor z = torch::empty({n, 1}, torch::kFloat64);
  torch::Tensor spread = torch::empty({n, 1}, torch::kFloat64);
  torch::Tensor entropy = torch::empty({n, 1}, torch::kFloat64);
  for (int step = 0; step < 64; ++step) {
    at::mul_out(p, d, beta);
    p.neg_().exp_();
    at::sum_out(z, p, {1}, /*keepdim=*/true);
    at::mul_out(weighted, p, d);
    at::sum_out(spread, weighted, {1}, /*keepdim=*/true);
    at::div_out(entropy, spread, z);
    entropy.mul_(beta).add_(z.log());
    // Too much entropy: sharpen (raise beta); too little: widen.
    const torch::Tensor sharpen = entropy > target;
    lo = torch::where(sharpen, beta, lo);
    hi = torch::where(sharpen, hi, beta);
    beta = torch::where(hi.isinf(), beta * 2, (lo + hi) / 2);
  }
  return p.div_(z);  // The last step's rows, normalised.
}

}  // namespace

torch::Tensor Tsne(const torch::Tensor& points, double perplexity,
                   int64_t iterations, int64_t seed,
                   const ProgressFn& progress) {
  torch::NoGradGuard no_grad;
  const torch::Tensor x = points.to(torch::kFloat64);
  const int64_t n = x.size(0);
  perplexity = std::min(perplexity, std::max(1.0, (n - 1) / 3.0));
  torch::Tensor p;
  {
    torch::Tensor d = torch::cdist(x, x).pow_(2);
    d.div_(d.max().clamp_min(1e-12));
    p = ConditionalP(d.mul_(double(n)), perplexity);
  }
  p = (p + p.t()).div_(2.0 * n).clamp_min_(1e-12).to(torch::kFloat32);
  torch::Generator generator = at::detail::createCPUGenerator(seed);
  torch::Tensor y = torch::randn({n, 2}, generator, torch::kFloat32) * 1e-4;
  // Every buffer of the iterations, allocated once: two n x n (the kernel
  // and the weights), the rest n x 2 or n.
  const auto f32 = torch::TensorOptions().dtype(torch::kFloat32);
  torch::Tensor num = torch::empty({n, n}, f32);
  torch::Tensor w = torch::empty({n, n}, f32);
  torch::Tensor sq = torch::empty({n}, f32);
  torch::Tensor row_sum = torch::empty({n, 1}, f32);
  torch::Tensor grad = torch::empty({n, 2}, f32);
  torch::Tensor wy = torch::empty({n, 2}, f32);
  torch::Tensor shrink = torch::empty({n, 2}, f32);
  torch::Tensor velocity = torch::zeros({n, 2}, f32);
  torch::Tensor gains = torch::ones({n, 2}, f32);
  torch::Tensor centre = torch::empty({1, 2}, f32);
  torch::Tensor grad_up = torch::empty({n, 2}, torch::kBool);
  torch::Tensor velocity_up = torch::empty({n, 2}, torch::kBool);
  const double learning_rate = std::max(50.0, n / 12.0);
  for (int64_t it = 0; it < iterations; ++it) {
    if (progress && it % 10 == 0 && !progress(double(it) / iterations))
      return torch::Tensor();
    const double exaggeration = it < 100 ? 12.0 : 1.0;
    const double momentum = it < 100 ? 0.5 : 0.8;
    // Student-t kernel 1 / (1 + |y_i - y_j|^2) from the squared norms and
    // the Gram matrix, in place.
    at::mul_out(shrink, y, y);
    at::sum_out(sq, shrink, {1});
    at::mm_out(num, y, y.t());
    num.mul_(-2).add_(sq.unsqueeze(1)).add_(sq.unsqueeze(0));
    num.clamp_min_(0).add_(1).reciprocal_();
    num.fill_diagonal_(0);
    const double sum = num.sum().item<double>();
    // w = (exaggeration P - Q) * num, Q = max(num / sum, 1e-12).
    w.copy_(num)
        .div_(sum)
        .clamp_min_(1e-12)
        .mul_(-1)
        .add_(p, exaggeration)
        .mul_(num);
    // dC/dy_i = 4 sum_j w_ij (y_i - y_j).
    at::sum_out(row_sum, w, {1}, /*keepdim=*/true);
    at::mm_out(wy, w, y);
    at::mul_out(grad, row_sum, y);
    grad.sub_(wy).mul_(4);
    // Delta-bar-delta gains, as in van der Maaten's reference
    // implementation: x 0.8 where the gradient keeps the velocity's sign,
    // + 0.2 where it turns.
    at::gt_out(grad_up, grad, 0);
    at::gt_out(velocity_up, velocity, 0);
    grad_up.ne_(velocity_up);  // Where the sign turns.
    shrink.copy_(gains).mul_(0.2).add_(0.2).masked_fill_(grad_up, 0);
    gains.add_(0.2).sub_(shrink).clamp_min_(0.01);
    velocity.mul_(momentum).addcmul_(gains, grad, -learning_rate);
    y.add_(velocity);
    at::mean_out(centre, y, {0}, /*keepdim=*/true);
    y.sub_(centre);
  }
  if (progress && !progress(1.0)) return torch::Tensor();
  return y;
}

}  // namespace distill::engine
