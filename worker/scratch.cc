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
    // Every call takes an error_code: a vanished or unreadable directory
    // trims less, it never throws out of the worker's serving loop.
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end;
         it.increment(ec)) {
      const fs::directory_entry& e = *it;
      const std::string name = e.path().filename().string();
      std::error_code file_ec;  // A file that vanished is skipped.
      if (!e.is_regular_file(file_ec) ||
          name.find(".part") != std::string::npos ||
          name.find(".tmp") != std::string::npos) {
        continue;
      }
      const int64_t size = int64_t(e.file_size(file_ec));
      if (file_ec) continue;
      total += size;
      if (!kept.contains(e.path().lexically_normal()))
        entries.push_back({e.last_write_time(file_ec), size, e.path()});
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
