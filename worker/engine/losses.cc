#include "worker/engine/losses.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

namespace distill::engine {
namespace F = torch::nn::functional;

torch::Tensor CrossEntropyLoss(const torch::Tensor& student_logits,
                               const torch::Tensor& labels) {
  return F::cross_entropy(student_logits, labels);
}

torch::Tensor EmbeddingMseLoss(const torch::Tensor& projected_student,
                               const torch::Tensor& teacher_embedding) {
  return F::mse_loss(projected_student, teacher_embedding.detach());
}

torch::Tensor InstanceKdLoss(const torch::Tensor& student_logits,
                             const torch::Tensor& teacher_logits,
                             double temperature, bool scale_by_tau_squared) {
  torch::Tensor log_p_student =
      torch::log_softmax(student_logits / temperature, 1);
  torch::Tensor log_p_teacher =
      torch::log_softmax(teacher_logits.detach() / temperature, 1);
  torch::Tensor kl = F::kl_div(
      log_p_student, log_p_teacher,
      F::KLDivFuncOptions().reduction(torch::kBatchMean).log_target(true));
  return scale_by_tau_squared ? kl * (temperature * temperature) : kl;
}

// From the Gram matrix of the centred rows: distances do not move with the
// origin, and without the common component (ViT features carry a large one)
// |e_i|^2 + |e_j|^2 - 2 <e_i, e_j> does not cancel in float32. (The
// reference forms it from the raw rows: at a common offset of 1,000 its
// float32 loss is 66% off the float64 value.)
torch::Tensor PairwiseDistances(const torch::Tensor& e) {
  const torch::Tensor c = e - e.mean(0, /*keepdim=*/true);
  torch::Tensor square = c.pow(2).sum(1);
  torch::Tensor product = torch::matmul(c, c.t());
  torch::Tensor d = (square.unsqueeze(1) + square.unsqueeze(0) - 2 * product)
                        .clamp_min(1e-12)
                        .sqrt();
  // Zero the diagonal without an in-place write on a tensor autograd needs.
  return d * (1 - torch::eye(e.size(0), d.options()));
}

namespace {

torch::Tensor NormalisedDistances(const torch::Tensor& e) {
  torch::Tensor d = PairwiseDistances(e);
  return d / d.masked_select(d > 0).mean();
}

// The angle term from the Gram matrix (issue: the reference materialises
// the N x N x d differences and multiplies N pairs of N x d matrices, N^3 d
// multiply-adds and, on the CPU, a loop of N small matrix products). With
// G = E E^T:
//   <e_j - e_i, e_k - e_i> = G_jk - G_ij - G_ik + G_ii =: h_ijk,
//   |e_j - e_i|^2 = G_jj - 2 G_ij + G_ii,
// so the cosine at vertex i is a_ijk = h_ijk v_ij v_ik with
// v_ij = 1 / max(|e_j - e_i|, 1e-12), and 0 where e_j = e_i exactly (the
// reference's F.normalize of a zero vector). The rows are centred first
// (angles do not move with the origin) so that G's entries, and the rounding
// of their sums, stay of the size of the differences.
struct AngleGram {
  torch::Tensor g;    // N x N
  torch::Tensor inv;  // N x N: v
};

AngleGram GramOf(const torch::Tensor& e) {
  const torch::Tensor c = e - e.mean(0, /*keepdim=*/true);
  torch::Tensor g = torch::matmul(c, c.t());
  const torch::Tensor sq = g.diagonal();
  const torch::Tensor d2 = sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * g;
  // Equal rows have an exactly zero difference, however G rounds: the
  // pairs whose d2 is near 0 (a row and itself, and rarely others) are
  // compared element by element. The clamp below keeps the square root's
  // gradient finite where the mask drops it.
  torch::Tensor same;
  {
    torch::NoGradGuard no_grad;
    const int64_t n = e.size(0);
    same = torch::eye(n, d2.options().dtype(torch::kBool));
    const torch::Tensor near =
        (d2 <= 1e-4 * (sq.unsqueeze(1) + sq.unsqueeze(0)) + 1e-30)
            .logical_and_(same.logical_not());
    const torch::Tensor pairs = near.nonzero();
    if (pairs.size(0) > 0) {
      const torch::Tensor a = pairs.select(1, 0), b = pairs.select(1, 1);
      same.index_put_({a, b},
                      (e.index_select(0, a) == e.index_select(0, b)).all(1));
    }
  }
  torch::Tensor inv =
      torch::where(same, torch::zeros_like(d2),
                   d2.clamp_min(1e-24).sqrt().clamp_min(1e-12).reciprocal());
  return {std::move(g), std::move(inv)};
}

// N x N x N cosines, flattened (the reference's layout).
torch::Tensor Angles(const torch::Tensor& e) {
  const auto [g, inv] = GramOf(e);
  const torch::Tensor sq = g.diagonal();
  // h[i][j][k] = G_jk - G_ij - G_ik + G_ii
  const torch::Tensor h = (g.unsqueeze(0) - g.unsqueeze(2)) -
                          (g.unsqueeze(1) - sq.view({-1, 1, 1}));
  return (h * inv.unsqueeze(2) * inv.unsqueeze(1)).view({-1});
}

// On the CPU the whole term runs as one pass over (i, j, k), nothing of
// size N^3 stored: mean smooth-L1 (beta 1) of a_s - a_t, and with it the
// gradients with respect to the student's G and v, which autograd carries
// back to the embeddings. With R = dL/da (symmetric in j, k) and
// Q = R v_ij v_ik:
//   dL/dG_jk += sum_i Q_ijk,  dL/dG_ij -= 2 sum_k Q_ijk,
//   dL/dG_ii += sum_jk Q_ijk, dL/dv_ij = 2 sum_k R_ijk h_ijk v_ik.
// One (i, j) row of the pass over k: its loss, the sum of its Q and of
// R h v_ik, and Q added into dL/dG's row j. Its own function with
// restrict-qualified rows, so that the compiler vectorises it.
template <typename T>
void AngleRow(int64_t n, const T* __restrict__ gj, const T* __restrict__ gi,
              const T* __restrict__ vi, const T* __restrict__ tgj,
              const T* __restrict__ tgi, const T* __restrict__ tvi,
              T* __restrict__ out, T gij, T gii, T vij, T tgij, T tgii, T tvij,
              T scale, T& loss, T& q_sum, T& v_sum) {
  T row_loss = 0, row_q = 0, row_v = 0;
#pragma omp simd reduction(+ : row_loss, row_q, row_v)
  for (int64_t k = 0; k < n; ++k) {
    const T h = gj[k] - gij - gi[k] + gii;
    const T a = h * vij * vi[k];
    const T at = (tgj[k] - tgij - tgi[k] + tgii) * tvij * tvi[k];
    const T d = a - at;
    const T ad = d < 0 ? -d : d;
    const T small = ad < 1 ? ad : T(1);
    row_loss += small * (ad - T(0.5) * small);  // smooth-L1, beta 1
    const T r = (d < -1 ? T(-1) : d > 1 ? T(1) : d) * scale;
    const T q = r * vij * vi[k];
    out[k] += q;
    row_q += q;
    row_v += r * h * vi[k];
  }
  loss = row_loss;
  q_sum = row_q;
  v_sum = row_v;
}

template <typename T>
double FusedAngle(const T* gs, const T* vs, const T* gt, const T* vt, int64_t n,
                  T* grad_g, T* grad_v) {
  const T scale = T(1) / (T(n) * T(n) * T(n));
  std::mutex merge;
  double total = 0;
  // Rows i in two halves on two threads (at::parallel_for runs serially
  // in code not compiled with OpenMP).
  auto anchors = [&](int64_t begin, int64_t end) {
    std::vector<T> local_g(n * n, T(0));
    double sum = 0;
    for (int64_t i = begin; i < end; ++i) {
      const T* gi = gs + i * n;
      const T* vi = vs + i * n;
      const T* tgi = gt + i * n;
      const T* tvi = vt + i * n;
      T all_q = 0;
      for (int64_t j = 0; j < n; ++j) {
        if (vi[j] == 0 && tvi[j] == 0) continue;  // Both a_ij. are 0.
        T loss, q, v;
        AngleRow<T>(n, gs + j * n, gi, vi, gt + j * n, tgi, tvi,
                    local_g.data() + j * n, gi[j], gi[i], vi[j], tgi[j], tgi[i],
                    tvi[j], scale, loss, q, v);
        sum += loss;
        local_g[i * n + j] -= 2 * q;
        all_q += q;
        grad_v[i * n + j] = 2 * v;  // Row i is this range's alone.
      }
      local_g[i * n + i] += all_q;
    }
    std::lock_guard<std::mutex> lock(merge);
    total += sum;
    for (size_t x = 0; x < local_g.size(); ++x) grad_g[x] += local_g[x];
  };
  const int threads = std::max(1, std::min<int>(at::get_num_threads(), 8));
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t)
    pool.emplace_back(anchors, n * t / threads, n * (t + 1) / threads);
  anchors(0, n / threads);
  for (auto& thread : pool) thread.join();
  return total * double(scale);
}

class FusedAngleLoss : public torch::autograd::Function<FusedAngleLoss> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx,
                               torch::Tensor gs, torch::Tensor vs,
                               torch::Tensor gt, torch::Tensor vt) {
    gs = gs.contiguous();
    vs = vs.contiguous();
    gt = gt.to(gs.scalar_type()).contiguous();
    vt = vt.to(gs.scalar_type()).contiguous();
    const int64_t n = gs.size(0);
    torch::Tensor grad_g = torch::zeros_like(gs);
    torch::Tensor grad_v = torch::zeros_like(vs);
    double loss = 0;
    AT_DISPATCH_FLOATING_TYPES(gs.scalar_type(), "FusedAngle", [&] {
      loss = FusedAngle<scalar_t>(
          gs.data_ptr<scalar_t>(), vs.data_ptr<scalar_t>(),
          gt.data_ptr<scalar_t>(), vt.data_ptr<scalar_t>(), n,
          grad_g.data_ptr<scalar_t>(), grad_v.data_ptr<scalar_t>());
    });
    ctx->save_for_backward({grad_g, grad_v});
    return torch::full({}, loss, gs.options());
  }

  static torch::autograd::tensor_list backward(
      torch::autograd::AutogradContext* ctx,
      torch::autograd::tensor_list grad_output) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& go = grad_output[0];
    return {saved[0] * go, saved[1] * go, torch::Tensor(), torch::Tensor()};
  }
};

// smooth-L1 between a relation of the student's embeddings and the same
// relation of the teacher's, which carries no gradient.
torch::Tensor RelationLoss(const torch::Tensor& student,
                           const torch::Tensor& teacher,
                           torch::Tensor (*relation)(const torch::Tensor&)) {
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = relation(teacher.detach());
  }
  return F::smooth_l1_loss(relation(student), target);
}

}  // namespace

torch::Tensor RkdDistanceLoss(const torch::Tensor& student,
                              const torch::Tensor& teacher) {
  return RelationLoss(student, teacher, NormalisedDistances);
}

torch::Tensor RkdAngleLoss(const torch::Tensor& student,
                           const torch::Tensor& teacher) {
  if (!student.is_cpu()) return RelationLoss(student, teacher, Angles);
  AngleGram t;
  {
    torch::NoGradGuard no_grad;
    t = GramOf(teacher.detach());
  }
  const AngleGram s = GramOf(student);
  return FusedAngleLoss::apply(s.g, s.inv, t.g, t.inv);
}

namespace {

// Each side's relation of the rows, the teacher's without gradient.
std::pair<torch::Tensor, torch::Tensor> BothSides(
    const torch::Tensor& student, const torch::Tensor& teacher,
    torch::Tensor (*relation)(const torch::Tensor&)) {
  torch::Tensor target;
  {
    torch::NoGradGuard no_grad;
    target = relation(teacher.detach());
  }
  return {relation(student), target};
}

torch::Tensor NormalisedGram(const torch::Tensor& e) {
  return F::normalize(torch::matmul(e, e.t()),
                      F::NormalizeFuncOptions().p(2).dim(1));
}

constexpr double kPktEps = 1e-7;

torch::Tensor CosineDistribution(const torch::Tensor& e) {
  // norm(), not sqrt(sum of squares): its gradient at a zero row is 0.
  const torch::Tensor u = e / (e.norm(2, 1, /*keepdim=*/true) + kPktEps);
  const torch::Tensor similarity = (torch::matmul(u, u.t()) + 1) / 2;
  return similarity / similarity.sum(1, /*keepdim=*/true);
}

torch::Tensor CentredGram(const torch::Tensor& e) {
  // Less the first row, then the mean: the same centring, but a common
  // offset cancels exactly first (float32 keeps the spread), and equal
  // rows centre to exactly 0 (the mean of equal values rounds).
  const torch::Tensor d = e - e.narrow(0, 0, 1);
  const torch::Tensor c = d - d.mean(0, /*keepdim=*/true);
  return torch::matmul(c, c.t());
}

}  // namespace

torch::Tensor SimilarityPreservingLoss(const torch::Tensor& student,
                                       const torch::Tensor& teacher) {
  const auto [s, t] = BothSides(student, teacher, NormalisedGram);
  return (s - t).pow(2).mean();
}

torch::Tensor ProbabilisticTransferLoss(const torch::Tensor& student,
                                        const torch::Tensor& teacher) {
  const auto [s, t] = BothSides(student, teacher, CosineDistribution);
  return (t * torch::log((t + kPktEps) / (s + kPktEps))).mean();
}

torch::Tensor DecoupledKdLoss(const torch::Tensor& student_logits,
                              const torch::Tensor& teacher_logits,
                              const torch::Tensor& labels, double alpha,
                              double beta, double temperature) {
  const int64_t n = student_logits.size(0);
  const torch::Tensor target =
      F::one_hot(labels, student_logits.size(1)).to(torch::kBool);
  const torch::Tensor zs = student_logits / temperature;
  const torch::Tensor zt = teacher_logits.detach() / temperature;
  // log p(target) and log p(the rest) on each side, from log-sum-exps
  // (the reference's log(1 - p) cancels as p nears 1).
  auto binary = [&](const torch::Tensor& z) {
    const torch::Tensor all = z.logsumexp(1, /*keepdim=*/true);
    const torch::Tensor rest =
        z.masked_fill(target, -std::numeric_limits<double>::infinity())
            .logsumexp(1, /*keepdim=*/true);
    return torch::cat({z.masked_select(target).view({n, 1}) - all, rest - all},
                      1);
  };
  const torch::Tensor bs = binary(zs), bt = binary(zt);
  const double t2 = temperature * temperature;
  const torch::Tensor tckd = (bt.exp() * (bt - bs)).sum() * t2 / double(n);
  // The non-target classes alone: the target pushed down by 1000 as the
  // reference does (its probability is then 0 in float32 and float64).
  const torch::Tensor ns = torch::log_softmax(zs - 1000.0 * target, 1);
  const torch::Tensor nt = torch::log_softmax(zt - 1000.0 * target, 1);
  const torch::Tensor nckd = (nt.exp() * (nt - ns)).sum() * t2 / double(n);
  return alpha * tckd + beta * nckd;
}

torch::Tensor CkaLoss(const torch::Tensor& student,
                      const torch::Tensor& teacher) {
  const auto [k, l] = BothSides(student, teacher, CentredGram);
  // No variance on a side: its Gram matrix is 0, and so is the CKA.
  const torch::Tensor cka =
      (k * l).sum() /
      (k.norm() * l.norm()).clamp_min(std::numeric_limits<float>::min());
  return 1 - cka;
}

}  // namespace distill::engine
