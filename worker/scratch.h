// The worker's scratch directory: downloaded checkpoints and the teacher
// cache, kept for later runs, within a size limit.
#ifndef DISTILL_WORKER_SCRATCH_H_
#define DISTILL_WORKER_SCRATCH_H_

#include <cstdint>
#include <string>
#include <vector>

namespace distill {

// Marks a cached file as just used (its modification time), so that
// TrimCache keeps it longest.
void TouchCacheFile(const std::string& path);

// Removes the least recently used regular files directly in `dirs` (by
// modification time, oldest first) until they hold at most `max_bytes`
// together; files named in `keep` stay whatever their age. Files being
// written (names ending ".part" or containing ".tmp") are neither counted
// nor removed. Returns the removed paths.
std::vector<std::string> TrimCache(const std::vector<std::string>& dirs,
                                   int64_t max_bytes,
                                   const std::vector<std::string>& keep);

}  // namespace distill

#endif  // DISTILL_WORKER_SCRATCH_H_
