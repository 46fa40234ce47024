// Times what a run does after its last step, at the defaults (issue 32):
// the t-SNE map of 1,000 test embeddings (of the teacher's width, 192, and
// the student's, 512), k-means of the 10,000 test embeddings, the k-NN
// top-1 against a bank of 5,000, CKA and neighbourhood overlap. The
// t-SNE is timed side by side, alternating, with the reference: the same
// exact t-SNE as the engine had it before (a new n x n tensor for each
// step of each iteration), kept here verbatim. Prints the median of
// --repeats, the bytes each allocated, and how well each map keeps the
// input's neighbours (t-SNE is chaotic: an input moved by 1e-6 moves the
// map by its own size, so maps are compared by quality, not coordinates).
// The embeddings are 10 classes of clustered points, as a trained model's.
//
// With --run_data DIR (Fashion-MNIST's files) it times instead a whole
// DISTILL run's phase through the engine, at the defaults (1,000 t-SNE
// points, a k-NN bank of 5,000): a small ViT teacher trained 1 epoch, then
// a ResNet-18 (width 16) student 1 epoch on 5,000 images, 2,000 test; the
// phase is from the last training step's metric point to the run's end
// (built against an older engine too: it uses ExecuteRun alone).
//
//   evaluation_phase [--points 1000] [--repeats 3] [--threads 2]
//                    [--run_data /usr/share/datasets/fashion-mnist]
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "worker/engine/allocation_count.h"
#include "worker/engine/evaluation.h"
#include "worker/engine/trainer.h"

namespace {

using distill::engine::AllocationCount;

// The reference: the engine's t-SNE before issue 32, verbatim but for its
// name (its P is computed by the engine's function, unchanged).
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
    torch::Tensor sharpen = entropy > target;
    lo = torch::where(sharpen, beta, lo);
    hi = torch::where(sharpen, hi, beta);
    beta = torch::where(hi.isinf(), beta * 2, (lo + hi) / 2);
  }
  return p;
}

torch::Tensor ReferenceTsne(const torch::Tensor& points, double perplexity,
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
    torch::Tensor sq = y.pow(2).sum(1);
    torch::Tensor num =
        1 / (1 + (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * y.matmul(y.t()))
                     .clamp_min(0));
    num.fill_diagonal_(0);
    torch::Tensor q = (num / num.sum()).clamp_min(1e-12);
    torch::Tensor w = (exaggeration * p - q) * num;
    torch::Tensor grad = 4 * (w.sum(1, true) * y - w.matmul(y));
    torch::Tensor same_sign = (grad > 0).eq(velocity > 0);
    gains = torch::where(same_sign, gains * 0.8, gains + 0.2).clamp_min(0.01);
    velocity = momentum * velocity - learning_rate * gains * grad;
    y = y + velocity;
    y = y - y.mean(0);
  }
  return y.to(torch::kFloat32);
}

struct Timing {
  double seconds;
  int64_t bytes;
  torch::Tensor out;
};

Timing Time(const std::function<torch::Tensor()>& work) {
  AllocationCount count;
  const auto start = std::chrono::steady_clock::now();
  torch::Tensor out = work();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  return {seconds, count.bytes(), out};
}

// The mean fraction of each point's 10 nearest neighbours (Euclidean) in
// `x` that are among its 10 nearest in `map`.
double NeighboursKept(const torch::Tensor& x, const torch::Tensor& map) {
  auto nearest = [](const torch::Tensor& t) {
    torch::Tensor d = torch::cdist(t, t);
    d.fill_diagonal_(std::numeric_limits<float>::infinity());
    return std::get<1>(d.topk(10, 1, /*largest=*/false));
  };
  const torch::Tensor a = nearest(x).unsqueeze(2),
                      b = nearest(map).unsqueeze(1);
  return a.eq(b).any(2).to(torch::kFloat64).mean().item<double>();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// A DISTILL run's evaluation phase, as described above; -1 when a run
// failed.
int TimeRunPhase(const std::string& data, const std::string& dir) {
  namespace e = distill::engine;
  e::RunConfig teacher;
  teacher.kind = e::RunKind::kTrainTeacher;
  teacher.dataset.root = data;
  teacher.dataset.train_limit = 5000;
  teacher.dataset.test_limit = 2000;
  teacher.teacher.patch_size = 7;
  teacher.teacher.width = 96;
  teacher.teacher.depth = 4;
  teacher.teacher.heads = 4;
  teacher.optimizer = {e::OptimizerKind::kAdamW, 2e-3, 0, 0.05};
  teacher.tsne_points = 0;
  e::RunHooks hooks;
  hooks.output_checkpoint = dir + "/teacher.pt";
  if (absl::StatusOr<e::RunOutcome> t = e::ExecuteRun(teacher, hooks);
      !t.ok()) {
    std::fprintf(stderr, "teacher: %s\n", t.status().ToString().c_str());
    return -1;
  }
  e::RunConfig student = teacher;
  student.kind = e::RunKind::kDistill;
  student.student.width = 16;
  student.losses.ce = 1;
  student.losses.ikd = 1;
  student.optimizer = {e::OptimizerKind::kSgd, 0.05, 0.9, 5e-4};
  student.tsne_points = 1000;
  hooks.teacher_checkpoint = hooks.output_checkpoint;
  hooks.output_checkpoint = dir + "/student.pt";
  hooks.run_file_dir = dir;
  using Clock = std::chrono::steady_clock;
  Clock::time_point last_step;
  std::vector<std::pair<std::string, Clock::time_point>> stages;
  hooks.on_metrics = [&](std::vector<e::Metric> points) {
    for (const e::Metric& m : points) {
      if (m.key == "train/loss") last_step = Clock::now();
      if (m.key.rfind("evaluating/", 0) == 0 && m.epoch > 0 &&
          (stages.empty() || stages.back().first != m.key))
        stages.emplace_back(m.key, Clock::now());
    }
  };
  absl::StatusOr<e::RunOutcome> run = e::ExecuteRun(student, hooks);
  const Clock::time_point end = Clock::now();
  if (!run.ok()) {
    std::fprintf(stderr, "student: %s\n", run.status().ToString().c_str());
    return -1;
  }
  std::printf("a DISTILL run's evaluation phase (last step to end): %.1f s\n",
              std::chrono::duration<double>(end - last_step).count());
  for (size_t i = 0; i < stages.size(); ++i) {
    const Clock::time_point until =
        i + 1 < stages.size() ? stages[i + 1].second : end;
    std::printf(
        "  %-24s %5.1f s\n", stages[i].first.c_str(),
        std::chrono::duration<double>(until - stages[i].second).count());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  int points = 1000, repeats = 3, threads = 2;
  std::string run_data;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--run_data")) run_data = argv[i + 1];
    if (!std::strcmp(argv[i], "--points")) points = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--repeats")) repeats = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--threads")) threads = std::atoi(argv[i + 1]);
  }
  torch::set_num_threads(threads);
  torch::manual_seed(0);
  if (!run_data.empty()) {
    char dir[] = "/tmp/evaluation_phase.XXXXXX";
    if (mkdtemp(dir) == nullptr) return 1;
    const int status = TimeRunPhase(run_data, dir);
    std::filesystem::remove_all(dir);
    return status == 0 ? 0 : 1;
  }
  namespace e = distill::engine;
  std::printf("t-SNE of %d points, 500 iterations, %d threads, median of %d:\n",
              points, threads, repeats);
  std::printf("%-6s %-22s %10s %14s %16s\n", "width", "implementation",
              "seconds", "allocated", "10-NN kept");
  for (int width : {192, 512}) {
    const torch::Tensor centres = torch::randn({10, width}) * 2;
    const torch::Tensor x =
        centres.index_select(0, torch::randint(10, {points}, torch::kInt64)) +
        torch::randn({points, width});
    std::vector<double> before, after;
    Timing a{}, b{};
    for (int r = 0; r < repeats; ++r) {
      a = Time([&] { return ReferenceTsne(x, 30, 500, 0); });
      b = Time([&] { return e::Tsne(x, 30, 500, 0); });
      before.push_back(a.seconds);
      after.push_back(b.seconds);
    }
    std::printf("%-6d %-22s %10.2f %11.0f MB %16.3f\n", width,
                "reference (before)", Median(before), a.bytes / 1e6,
                NeighboursKept(x, a.out));
    std::printf("%-6d %-22s %10.2f %11.0f MB %16.3f\n", width,
                "engine (fixed buffers)", Median(after), b.bytes / 1e6,
                NeighboursKept(x, b.out));
  }
  // The rest of the phase at the defaults, once each (the engine's only).
  const torch::Tensor test = torch::randn({10000, 512});
  const torch::Tensor teacher = torch::randn({10000, 192});
  const torch::Tensor bank = torch::randn({5000, 512});
  const torch::Tensor labels = torch::randint(10, {10000}, torch::kInt64);
  const torch::Tensor bank_labels = torch::randint(10, {5000}, torch::kInt64);
  std::printf("the rest of the phase (10,000 test embeddings):\n");
  auto once = [](const char* what, const std::function<void()>& work) {
    const auto start = std::chrono::steady_clock::now();
    work();
    std::printf(
        "  %-40s %6.2f s\n", what,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count());
  };
  once("k-means (k = 10, 512-d)", [&] { e::KMeans(test, 10, 0); });
  once("k-NN top-1 (bank 5,000)",
       [&] { e::KnnTopOne(bank, bank_labels, test, labels, 10); });
  once("linear CKA (512-d vs 192-d)", [&] { e::LinearCka(teacher, test); });
  once("neighbourhood overlap (k = 10)",
       [&] { e::NeighbourhoodOverlap(teacher, test, 10); });
  return 0;
}
