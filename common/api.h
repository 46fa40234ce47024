// What the coordinator's API promises its clients, in one place: where it
// listens by default, and the bounds on what one request may ask for and
// one answer carries. The coordinator enforces them; the CLI and workers
// read them instead of repeating the numbers.
#ifndef DISTILL_COMMON_API_H_
#define DISTILL_COMMON_API_H_

#include <cstddef>
#include <cstdint>

namespace distill {

// The coordinator's gRPC address unless told otherwise.
inline constexpr char kDefaultCoordinator[] = "127.0.0.1:50051";

// What a sweep's notify.url reads as in every answer (a webhook's URL is
// its secret); a client copying a sweep's spec drops a URL that reads so.
inline constexpr char kRedactedNotifyUrl[] = "(set)";

// Bounds on what one answer carries.
inline constexpr int64_t kHistoryPointsPerKey = 1000;
inline constexpr int64_t kMaxHistoryPointsPerKey = 20'000;
// New points in one watch event; the rest come in the next ones.
inline constexpr int64_t kPointsPerEvent = 20'000;
// Entries in one page of a listing (runs, workers, tokens).
inline constexpr int kDefaultPageSize = 500;
inline constexpr int kMaxPageSize = 5'000;
// Metric points in one page of a run's full history (~40 bytes each).
inline constexpr int kDefaultMetricPageSize = 10'000;
inline constexpr int kMaxMetricPageSize = 50'000;
// Spec-field filters, and tag filters, in one listing.
inline constexpr int kMaxRunFilters = 16;
// Tags on one run or sweep; a key's and a value's bytes; a note's bytes.
inline constexpr int kMaxTags = 32;
inline constexpr size_t kMaxTagKeyBytes = 64;
inline constexpr size_t kMaxTagValueBytes = 256;
inline constexpr size_t kMaxNoteBytes = 4096;

// The worker protocol: what a worker and a coordinator must read alike
// (the WorkerService's messages and what they mean, run files' names).
// Raised by a change an older peer would misread; a coordinator serves
// workers of kMinWorkerProtocol to kWorkerProtocol and refuses others at
// registration, naming both builds (README "Upgrades and version skew").
// A worker that sends none was built before the field: protocol 1.
inline constexpr int kWorkerProtocol = 1;
inline constexpr int kMinWorkerProtocol = 1;

}  // namespace distill

#endif  // DISTILL_COMMON_API_H_
