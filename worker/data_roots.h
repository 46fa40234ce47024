// Where a worker may read: every path a spec makes it open (a data set, a
// TorchScript teacher, pretrained weights) must lie inside the roots its
// operator allows, so that a spec from the network cannot make it read
// /etc/shadow or a neighbour's files.
#ifndef DISTILL_WORKER_DATA_ROOTS_H_
#define DISTILL_WORKER_DATA_ROOTS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "distill/v1/spec.pb.h"

namespace distill {

// Debian's data sets (/usr/share/datasets): where a worker reads when its
// operator names no roots.
std::vector<std::string> DefaultDataRoots();

// OK when `path`, with symbolic links and ".." resolved, lies inside one of
// `roots` (resolved alike); PERMISSION_DENIED naming `field`, the path and
// the roots otherwise.
absl::Status CheckInsideRoots(const std::string& field, const std::string& path,
                              const std::vector<std::string>& roots);

// CheckInsideRoots for each path `spec` names: dataset.root (when set),
// teacher.torchscript and student.pretrained.
absl::Status CheckSpecPaths(const v1::ExperimentSpec& spec,
                            const std::vector<std::string>& roots);

}  // namespace distill

#endif  // DISTILL_WORKER_DATA_ROOTS_H_
