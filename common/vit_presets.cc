#include "common/vit_presets.h"

#include <map>
#include <string>

#include "absl/strings/str_cat.h"

namespace distill {
namespace {

struct Preset {
  int patch_size, width, depth, heads;
};

const std::map<std::string, Preset>& Presets() {
  static const auto* const kPresets = new std::map<std::string, Preset>{
      {"tiny", {16, 192, 12, 3}},
      {"small", {16, 384, 12, 6}},
      {"base", {16, 768, 12, 12}},
      {"small-28", {7, 96, 4, 4}},
  };
  return *kPresets;
}

}  // namespace

absl::StatusOr<v1::VitSpec> ResolveVitPreset(const v1::VitSpec& vit) {
  if (vit.preset().empty()) return vit;
  auto it = Presets().find(vit.preset());
  if (it == Presets().end()) {
    return absl::InvalidArgumentError(
        absl::StrCat("teacher.vit.preset must be one of [base, small, "
                     "small-28, tiny], got \"",
                     vit.preset(), "\""));
  }
  v1::VitSpec out = vit;
  const Preset& p = it->second;
  if (out.patch_size() == 0) out.set_patch_size(p.patch_size);
  if (out.width() == 0) out.set_width(p.width);
  if (out.depth() == 0) out.set_depth(p.depth);
  if (out.heads() == 0) out.set_heads(p.heads);
  return out;
}

}  // namespace distill
