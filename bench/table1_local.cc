// A small Table 1 sweep in one process through the engine alone: the ViT
// teacher (row O), then rows A-H of examples/table1-fashion-mnist.yaml at
// the same sizes, each a RunConfig handed to ExecuteRun (what the worker and
// `distill-worker --run_local` hand it), with a teacher-output cache between
// them as the worker keeps one. For a machine that has LibTorch and nothing
// of the service (bench/gpu.sh); the service's own path is scripts/demo.sh.
//
//   table1_local --data_root DIR [--device cuda:0] [--precision auto]
//                [--work_dir DIR] [--threads N] [--train_limit 10000]
//                [--test_limit 2000] [--epochs 3] [--teacher_epochs 6]
//                [--rows A,B,...|none] [--teacher_checkpoint FILE]
//                [--cache_dir DIR]
//
// --rows runs those rows only (none: the teacher alone); with
// --teacher_checkpoint the rows distil from that file and no teacher is
// trained. Several such processes on one device, a teacher cache shared
// (--cache_dir), are what `distill-worker --slots` runs (bench/gpu.sh's
// slots table).
#include <torch/torch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "worker/engine/run_config.h"
#include "worker/engine/run_hooks.h"
#include "worker/engine/runtime.h"
#include "worker/engine/trainer.h"

namespace {

namespace fs = std::filesystem;
using distill::engine::LossWeights;
using distill::engine::RunConfig;

struct Row {
  const char* name;
  LossWeights losses;  // ce, mse, ikd, temperature, tau^2, rkd d, rkd a.
};

// examples/table1-fashion-mnist.yaml's members.
const Row kRows[] = {
    {"A", {0, 1, 0, 4, true, 1, 2}}, {"B", {0, 0, 1, 4, true, 1, 2}},
    {"C", {0, 1, 1, 4, true, 1, 2}}, {"D", {1, 0, 0, 4, true, 0, 0}},
    {"E", {1, 1, 1, 4, true, 0, 0}}, {"F", {1, 1, 0, 4, true, 1, 2}},
    {"G", {1, 0, 1, 4, true, 1, 2}}, {"H", {1, 1, 1, 4, true, 1, 2}},
};

std::string Digest(const std::string& text) {
  return std::to_string(std::hash<std::string>{}(text));
}

}  // namespace

int main(int argc, char** argv) {
  std::string data_root, device = "cpu", precision = "auto",
                         work_dir = "/tmp/distill-table1-local";
  int threads = 0;
  std::string rows = "", teacher_checkpoint, cache_dir;
  int64_t train_limit = 10000, test_limit = 2000, epochs = 3,
          teacher_epochs = 6;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--data_root")
      data_root = value;
    else if (flag == "--device")
      device = value;
    else if (flag == "--precision")
      precision = value;
    else if (flag == "--work_dir")
      work_dir = value;
    else if (flag == "--threads")
      threads = std::stoi(value);
    else if (flag == "--train_limit")
      train_limit = std::stoll(value);
    else if (flag == "--test_limit")
      test_limit = std::stoll(value);
    else if (flag == "--epochs")
      epochs = std::stoll(value);
    else if (flag == "--teacher_epochs")
      teacher_epochs = std::stoll(value);
    else if (flag == "--rows")
      rows = value;
    else if (flag == "--teacher_checkpoint")
      teacher_checkpoint = value;
    else if (flag == "--cache_dir")
      cache_dir = value;
    else {
      std::cerr << "table1_local: unknown flag " << flag << "\n";
      return 2;
    }
  }
  distill::engine::ConfigureRuntime(threads);
  if (cache_dir.empty()) cache_dir = work_dir + "/cache";
  fs::create_directories(work_dir);
  fs::create_directories(cache_dir);

  RunConfig base;
  base.dataset.root = data_root;
  base.dataset.train_limit = train_limit;
  base.dataset.test_limit = test_limit;
  base.student.width = 16;
  base.optimizer = {distill::engine::OptimizerKind::kSgd, 0.05, 0.9, 5e-4};
  base.epochs = epochs;
  base.batch_size = 128;
  base.seed = 1;
  base.metrics_every_steps = 10;
  base.tsne_points = 0;
  base.device = device;
  base.precision = precision;

  distill::engine::RunHooks hooks;
  hooks.teacher_cache.dir = cache_dir;
  hooks.teacher_cache.text_digest = Digest;
  hooks.teacher_cache.file_digest =
      [](const std::string& path) -> absl::StatusOr<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return absl::NotFoundError("cannot open " + path);
    std::stringstream content;
    content << in.rdbuf();
    return Digest(content.str());
  };

  struct Result {
    std::string name;
    double top1, images_per_sec, seconds;
  };
  std::vector<Result> results;
  auto run = [&](const std::string& name, const RunConfig& config,
                 distill::engine::RunHooks h) -> bool {
    const auto start = std::chrono::steady_clock::now();
    auto outcome = distill::engine::ExecuteRun(config, h);
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count();
    if (!outcome.ok()) {
      std::cerr << "row " << name << " failed: " << outcome.status() << "\n";
      return false;
    }
    const auto& r = outcome->results;
    auto get = [&](const char* key) {
      auto it = r.find(key);
      return it == r.end() ? 0.0 : it->second;
    };
    results.push_back(
        {name, get("eval/top1"), get("train/images_per_sec"), seconds});
    std::cout << "row " << name << " top-1 " << 100 * results.back().top1
              << " % in " << seconds << " s" << std::endl;
    return true;
  };

  const auto start = std::chrono::steady_clock::now();
  RunConfig teacher = base;
  teacher.kind = distill::engine::RunKind::kTrainTeacher;
  teacher.teacher.width = 96;
  teacher.optimizer = {distill::engine::OptimizerKind::kAdamW, 0.002, 0, 0.05};
  teacher.epochs = teacher_epochs;
  distill::engine::RunHooks teacher_hooks = hooks;
  if (teacher_checkpoint.empty()) {
    teacher_checkpoint = work_dir + "/teacher.pt";
    teacher_hooks.output_checkpoint = teacher_checkpoint;
    if (!run("O", teacher, teacher_hooks)) return 1;
  }
  int failed = 0;
  for (const Row& row : kRows) {
    if (rows == "none" ||
        (!rows.empty() &&
         ("," + rows + ",").find(std::string(",") + row.name + ",") ==
             std::string::npos)) {
      continue;
    }
    RunConfig member = base;
    member.kind = distill::engine::RunKind::kDistill;
    member.losses = row.losses;
    distill::engine::RunHooks member_hooks = hooks;
    member_hooks.teacher_checkpoint = teacher_checkpoint;
    member_hooks.output_checkpoint = work_dir + "/" + row.name + ".pt";
    if (!run(row.name, member, member_hooks)) ++failed;
  }
  const double total =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
          .count();
  std::cout << "\nTable 1 (engine alone, device " << device << ", precision "
            << precision << ", " << train_limit << "/" << test_limit
            << " images, " << epochs << " epochs)\n"
            << "row  top-1 %  train images/s  seconds\n";
  for (const Result& r : results) {
    std::cout << std::left << std::setw(5) << r.name << std::right << std::fixed
              << std::setprecision(1) << std::setw(7) << 100 * r.top1
              << std::setw(16) << r.images_per_sec << std::setw(9) << r.seconds
              << "\n";
  }
  std::cout << "total " << total << " s\n";
  return failed == 0 ? 0 : 1;
}
