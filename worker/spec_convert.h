#ifndef DISTILL_WORKER_SPEC_CONVERT_H_
#define DISTILL_WORKER_SPEC_CONVERT_H_

#include <string>

#include "distill/v1/spec.pb.h"
#include "worker/engine/run_config.h"

namespace distill {

// The engine's config for a wire spec, field by field.
// REQUIRES: `spec` is resolved and valid (ResolveAndValidate): every
// default is already written in it.
engine::RunConfig ToRunConfig(const v1::ExperimentSpec& spec,
                              const std::string& device);

}  // namespace distill

#endif  // DISTILL_WORKER_SPEC_CONVERT_H_
