#include "common/placement.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace distill {
namespace {

constexpr double kMaxMemoryGib = 1e6;
constexpr double kGib = 1024.0 * 1024.0 * 1024.0;

}  // namespace

std::string DeviceKind(const std::string& device) {
  return absl::StartsWith(device, "cuda") ? "cuda" : "cpu";
}

bool Meets(const WorkerOffer& offer, const v1::Requirements& needs) {
  const std::string kind = DeviceKind(offer.device);
  if (!needs.device_kind().empty() && needs.device_kind() != kind) return false;
  if (needs.min_device_memory_gib() > 0 &&
      double(offer.device_memory_bytes) < needs.min_device_memory_gib() * kGib)
    return false;
  for (const std::string& label : needs.labels()) {
    if (label == absl::StrCat("device_kind=", kind)) continue;
    if (std::find(offer.labels.begin(), offer.labels.end(), label) ==
        offer.labels.end())
      return false;
  }
  return true;
}

std::string RequirementsKey(const v1::Requirements& needs) {
  std::set<std::string> lines;
  if (!needs.device_kind().empty())
    lines.insert(absl::StrCat("kind=", needs.device_kind()));
  if (needs.min_device_memory_gib() > 0) {
    lines.insert(
        absl::StrFormat("memory_gib=%.17g", needs.min_device_memory_gib()));
  }
  for (const std::string& label : needs.labels())
    lines.insert(absl::StrCat("label=", label));
  return absl::StrJoin(lines, "\n");
}

v1::Requirements RequirementsOfKey(const std::string& key) {
  v1::Requirements needs;
  for (absl::string_view line : absl::StrSplit(key, '\n', absl::SkipEmpty())) {
    if (absl::ConsumePrefix(&line, "kind=")) {
      needs.set_device_kind(std::string(line));
    } else if (absl::ConsumePrefix(&line, "memory_gib=")) {
      double gib = 0;
      if (absl::SimpleAtod(line, &gib)) needs.set_min_device_memory_gib(gib);
    } else if (absl::ConsumePrefix(&line, "label=")) {
      needs.add_labels(std::string(line));
    }
  }
  return needs;
}

std::string DescribeRequirements(const v1::Requirements& needs) {
  std::vector<std::string> parts;
  if (!needs.device_kind().empty())
    parts.push_back(absl::StrCat("device_kind ", needs.device_kind()));
  if (needs.min_device_memory_gib() > 0) {
    parts.push_back(
        absl::StrFormat(">= %g GiB", needs.min_device_memory_gib()));
  }
  for (const std::string& label : needs.labels()) parts.push_back(label);
  return absl::StrJoin(parts, ", ");
}

absl::Status CheckLabel(const std::string& label, const std::string& field) {
  const size_t eq = label.find('=');
  const std::string key = label.substr(0, eq);
  const std::string value = eq == std::string::npos ? "" : label.substr(eq + 1);
  const bool key_ok = !key.empty() && key.size() <= 64 &&
                      std::all_of(key.begin(), key.end(), [](char c) {
                        return absl::ascii_isalnum(c) || c == '_' || c == '.' ||
                               c == '-' || c == '/' || c == ':';
                      });
  const bool value_ok = !value.empty() && value.size() <= 128 &&
                        std::all_of(value.begin(), value.end(), [](char c) {
                          return absl::ascii_isgraph(c) && c != ',' && c != '=';
                        });
  if (key_ok && value_ok) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      field,
      " must be KEY=VALUE (a key of 1 to 64 letters, digits and "
      "_.-/:; a value of 1 to 128 printable bytes, no space, comma or "
      "'='), got \"",
      label.substr(0, 200), "\""));
}

absl::Status CheckRequirements(const v1::Requirements& needs) {
  if (needs.labels_size() > kMaxRequiredLabels) {
    return absl::InvalidArgumentError(
        absl::StrCat("requirements.labels holds at most ", kMaxRequiredLabels,
                     " labels, got ", needs.labels_size()));
  }
  for (const std::string& label : needs.labels()) {
    if (absl::Status s = CheckLabel(label, "requirements.labels"); !s.ok())
      return s;
  }
  const double gib = needs.min_device_memory_gib();
  if (!std::isfinite(gib) || gib < 0 || gib > kMaxMemoryGib) {
    return absl::InvalidArgumentError(
        absl::StrCat("requirements.min_device_memory_gib must be 0 to ",
                     kMaxMemoryGib, ", got ", gib));
  }
  const std::string& kind = needs.device_kind();
  if (!kind.empty() && kind != "cpu" && kind != "cuda") {
    return absl::InvalidArgumentError(absl::StrCat(
        "requirements.device_kind must be cpu, cuda or empty, got \"",
        kind.substr(0, 64), "\""));
  }
  return absl::OkStatus();
}

}  // namespace distill
