// Placement (issue 31): what a run needs of a worker (spec.proto
// Requirements) and what a worker offers (its labels, device and memory),
// whether one meets the other, and the one key a run's requirements are
// stored and queued under, so that a worker asks for the first run of each
// key it meets instead of reading the runs it may not take.
#ifndef DISTILL_COMMON_PLACEMENT_H_
#define DISTILL_COMMON_PLACEMENT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// What a worker offers: its device ("cpu", "cuda:0"), its labels
// ("KEY=VALUE", given and detected), its device's memory in bytes.
struct WorkerOffer {
  std::string device;
  std::vector<std::string> labels;
  int64_t device_memory_bytes = 0;
};

// "cuda" for "cuda:N", else "cpu".
std::string DeviceKind(const std::string& device);

// Whether `offer` meets `needs`: its device kind, at least its device
// memory, and every label it names (device_kind=... counts as a label the
// worker carries).
bool Meets(const WorkerOffer& offer, const v1::Requirements& needs);

// The canonical key of `needs` ("" when it needs nothing): equal
// requirements, written in any order, give one key; RequirementsOfKey
// reads it back.
std::string RequirementsKey(const v1::Requirements& needs);
v1::Requirements RequirementsOfKey(const std::string& key);

// For a reason a run waits: "device_kind cuda, >= 40 GiB, pool=a100".
std::string DescribeRequirements(const v1::Requirements& needs);

// A label a worker carries or a run needs: KEY=VALUE, the key 1 to 64
// letters, digits and _.-/:, the value 1 to 128 printable bytes without a
// space, comma or '='. INVALID_ARGUMENT naming `field` and the label.
absl::Status CheckLabel(const std::string& label, const std::string& field);
// A run's requirements: at most 16 labels, each a label; the memory finite,
// 0 to 10^6 GiB; the device kind "", "cpu" or "cuda".
absl::Status CheckRequirements(const v1::Requirements& needs);

inline constexpr int kMaxRequiredLabels = 16;
inline constexpr int kMaxWorkerLabels = 32;

}  // namespace distill

#endif  // DISTILL_COMMON_PLACEMENT_H_
