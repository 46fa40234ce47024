#include "worker/data_roots.h"

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/catalog.h"

namespace distill {
namespace {

namespace fs = std::filesystem;

// `path` made absolute with every symbolic link and ".." resolved, as far
// as it exists (weakly_canonical); empty when even that fails.
fs::path Resolved(const std::string& path) {
  std::error_code error;
  fs::path p = fs::weakly_canonical(fs::absolute(path, error), error);
  return error ? fs::path() : p;
}

bool IsInside(const fs::path& path, const fs::path& root) {
  auto p = path.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++p) {
    if (r->empty()) continue;  // A trailing separator.
    if (p == path.end() || *p != *r) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> DefaultDataRoots() {
  return {fs::path(FindDataset("fashion-mnist")->standard_root)
              .parent_path()
              .string()};
}

absl::Status CheckInsideRoots(const std::string& field, const std::string& path,
                              const std::vector<std::string>& roots) {
  const fs::path resolved = Resolved(path);
  if (!resolved.empty()) {
    for (const std::string& root : roots) {
      const fs::path r = Resolved(root);
      if (!r.empty() && IsInside(resolved, r)) return absl::OkStatus();
    }
  }
  return absl::PermissionDeniedError(absl::StrCat(
      field, " ", path, " is outside the data roots this worker allows [",
      absl::StrJoin(roots, ", "), "] (distill-worker --data_root)"));
}

absl::Status CheckSpecPaths(const v1::ExperimentSpec& spec,
                            const std::vector<std::string>& roots) {
  const std::pair<const char*, const std::string*> paths[] = {
      {"dataset.root", &spec.dataset().root()},
      {"teacher.torchscript", &spec.teacher().torchscript()},
      {"student.pretrained", &spec.student().pretrained()}};
  for (const auto& [field, path] : paths) {
    if (path->empty()) continue;  // dataset.root: the standard place.
    if (absl::Status s = CheckInsideRoots(field, *path, roots); !s.ok())
      return s;
  }
  return absl::OkStatus();
}

}  // namespace distill
