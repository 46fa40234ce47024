// A spec's scalar fields as (path, text) pairs, so that runs can be found
// by any field of their spec in SQL (`distill runs list --where
// losses.ikd.temperature=4`).
#ifndef DISTILL_COMMON_SPEC_FIELDS_H_
#define DISTILL_COMMON_SPEC_FIELDS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// Every scalar field of `spec` (set or not, in nested messages too; lists
// left out) by its path, with its value as text: numbers in a canonical
// form (a double round-trips), enums by name, true/false. In field order.
std::vector<std::pair<std::string, std::string>> FlattenSpec(
    const v1::ExperimentSpec& spec);

// The stored text of the field at `path` holding `value` (as a user writes
// it: "4", "0.05", "adamw", "resnet50"), so that it compares equal to what
// FlattenSpec stored. INVALID_ARGUMENT naming the path or the value.
absl::StatusOr<std::string> CanonicalFieldValue(const std::string& path,
                                                const std::string& value);

}  // namespace distill

#endif  // DISTILL_COMMON_SPEC_FIELDS_H_
