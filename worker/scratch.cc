#include "worker/scratch.h"

#include <algorithm>
#include <filesystem>
#include <set>

namespace distill {

namespace fs = std::filesystem;

void TouchCacheFile(const std::string& path) {
  std::error_code ignored;
  fs::last_write_time(path, fs::file_time_type::clock::now(), ignored);
}

std::vector<std::string> TrimCache(const std::vector<std::string>& dirs,
                                   int64_t max_bytes,
                                   const std::vector<std::string>& keep) {
  struct Entry {
    fs::file_time_type time;
    int64_t size;
    fs::path path;
  };
  std::set<fs::path> kept;
  for (const std::string& k : keep) kept.insert(fs::path(k).lexically_normal());
  std::vector<Entry> entries;
  int64_t total = 0;
  for (const std::string& dir : dirs) {
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir, ec)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file(ec) || name.ends_with(".part") ||
          name.find(".tmp") != std::string::npos) {
        continue;
      }
      const int64_t size = int64_t(e.file_size(ec));
      total += size;
      if (!kept.contains(e.path().lexically_normal()))
        entries.push_back({e.last_write_time(ec), size, e.path()});
    }
  }
  std::sort(entries.begin(), entries.end(),
            [](const Entry& a, const Entry& b) { return a.time < b.time; });
  std::vector<std::string> removed;
  for (const Entry& e : entries) {
    if (total <= max_bytes) break;
    std::error_code ec;
    if (fs::remove(e.path, ec)) {
      total -= e.size;
      removed.push_back(e.path.string());
    }
  }
  return removed;
}

}  // namespace distill
