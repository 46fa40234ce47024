#ifndef DISTILL_COMMON_SPEC_RESOLUTION_H_
#define DISTILL_COMMON_SPEC_RESOLUTION_H_

#include "absl/status/statusor.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// The spec with every default written out (common/catalog.h's `defaults`)
// and its ViT preset expanded, for the fields its kind uses: what is
// stored, shown and run. Idempotent. Resolving fills values only; it
// judges nothing but the preset's name (ValidateSpec judges the rest), so
// an unknown data set or architecture stays as it was.
//
// INVALID_ARGUMENT naming the known presets for an unknown preset.
absl::StatusOr<v1::ExperimentSpec> ResolveSpec(const v1::ExperimentSpec& spec);

// The ViT with its preset's values in every field left at 0 and
// mlp_ratio's default.
absl::StatusOr<v1::VitSpec> ResolveVit(const v1::VitSpec& vit);

}  // namespace distill

#endif  // DISTILL_COMMON_SPEC_RESOLUTION_H_
