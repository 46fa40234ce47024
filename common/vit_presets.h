#ifndef DISTILL_COMMON_VIT_PRESETS_H_
#define DISTILL_COMMON_VIT_PRESETS_H_

#include "absl/status/statusor.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// The ViT with its preset's values filled into every field left at 0;
// INVALID_ARGUMENT naming the known presets for an unknown one.
absl::StatusOr<v1::VitSpec> ResolveVitPreset(const v1::VitSpec& vit);

}  // namespace distill

#endif  // DISTILL_COMMON_VIT_PRESETS_H_
