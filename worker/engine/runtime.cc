#include "worker/engine/runtime.h"

#include <fstream>

#include "absl/strings/match.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

namespace distill::engine {

void ConfigureRuntime(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
#ifdef __GLIBC__
  // No block is served by mmap (a fixed threshold also stops glibc from
  // moving it), and the heap's free top is never given back.
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_MMAP_MAX, 0);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}

void ClearGradients(torch::optim::Optimizer& optimizer) {
  for (auto& group : optimizer.param_groups()) {
    for (auto& parameter : group.params()) {
      if (parameter.mutable_grad().defined()) parameter.mutable_grad().reset();
    }
  }
}

std::string LoadedBlas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    for (const char* name : {"openblas", "libmkl", "blis", "libblas.so"}) {
      if (absl::StrContains(line, name))
        return line.substr(line.rfind(' ') + 1);
    }
  }
  return "unknown";
}

}  // namespace distill::engine
