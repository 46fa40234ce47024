#include "worker/device_info.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/placement.h"

namespace distill {
namespace {

// The first line a command prints, or "" (no such command, or it failed).
std::string FirstLineOf(const std::string& command) {
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return "";
  char buffer[512] = "";
  const bool read = std::fgets(buffer, sizeof buffer, pipe) != nullptr;
  const int rc = ::pclose(pipe);
  if (!read || rc != 0) return "";
  return std::string(absl::StripAsciiWhitespace(buffer));
}

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (absl::StartsWith(line, "model name")) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos)
        return std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    }
  }
  return "";
}

}  // namespace

DeviceInfo ParseNvidiaSmi(const std::string& line) {
  DeviceInfo info;
  const std::vector<std::string> parts =
      absl::StrSplit(line, absl::MaxSplits(',', 1));
  int64_t mib = 0;
  if (parts.size() == 2 &&
      absl::SimpleAtoi(absl::StripAsciiWhitespace(parts[0]), &mib) && mib > 0) {
    info.memory_bytes = mib << 20;
    info.name = std::string(absl::StripAsciiWhitespace(parts[1]));
  }
  return info;
}

DeviceInfo DetectDevice(const std::string& device) {
  DeviceInfo info;
  if (DeviceKind(device) == "cuda") {
    const size_t colon = device.find(':');
    int index = 0;
    if (colon != std::string::npos) {
      (void)absl::SimpleAtoi(device.substr(colon + 1), &index);
    }
    info = ParseNvidiaSmi(FirstLineOf(absl::StrCat(
        "nvidia-smi --query-gpu=memory.total,name --format=csv,noheader,"
        "nounits -i ",
        index, " 2>/dev/null")));
  } else {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    const long page = ::sysconf(_SC_PAGESIZE);
    if (pages > 0 && page > 0) info.memory_bytes = int64_t(pages) * page;
    info.name = CpuModel();
  }
  info.cpu_cores = int(std::thread::hardware_concurrency());
  return info;
}

absl::StatusOr<std::vector<std::string>> ParseLabels(const std::string& flag) {
  std::vector<std::string> labels =
      absl::StrSplit(flag, ',', absl::SkipWhitespace());
  if (int(labels.size()) > kMaxWorkerLabels - 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("--labels takes at most ", kMaxWorkerLabels - 1,
                     " labels, got ", labels.size()));
  }
  for (std::string& label : labels) {
    label = std::string(absl::StripAsciiWhitespace(label));
    if (absl::Status s = CheckLabel(label, "--labels"); !s.ok()) return s;
    if (absl::StartsWith(label, "device_kind=")) {
      return absl::InvalidArgumentError(
          "--labels: device_kind is the worker's own (from --device)");
    }
  }
  return labels;
}

}  // namespace distill
