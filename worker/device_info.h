// What a worker offers for placement (common/placement.h), found on its
// host: its device's memory and name (a GPU's through nvidia-smi, which
// every NVIDIA host has; the host's memory and CPU model for the CPU) and
// the host's cores. Nothing is fetched; what cannot be read is 0 or "".
#ifndef DISTILL_WORKER_DEVICE_INFO_H_
#define DISTILL_WORKER_DEVICE_INFO_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace distill {

struct DeviceInfo {
  int64_t memory_bytes = 0;
  std::string name;
  int cpu_cores = 0;
};

// `device` is a LibTorch device ("cpu", "cuda:1").
DeviceInfo DetectDevice(const std::string& device);

// A CSV line of nvidia-smi --query-gpu=memory.total,name
// --format=csv,noheader,nounits ("81559, NVIDIA H100 80GB HBM3"): memory in
// MiB and the name.
DeviceInfo ParseNvidiaSmi(const std::string& line);

// "pool=a100,site=b" -> the labels, each checked (common/placement.h);
// INVALID_ARGUMENT naming --labels and the bad one.
absl::StatusOr<std::vector<std::string>> ParseLabels(const std::string& flag);

}  // namespace distill

#endif  // DISTILL_WORKER_DEVICE_INFO_H_
