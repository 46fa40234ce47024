// Fair share (issue 31): which queued run a worker leases next.
//
// The queue's order, in this sequence:
//  1. a sweep's priority (a run outside a sweep has 0): higher first;
//  2. among the owners with runs at that priority, the one furthest below
//     its share first: the least GPU time used per share, that time decayed
//     by half every --fair_share_half_life, each of its running runs
//     counting a minute more per week of half-life (so that workers asking
//     in the same second spread over owners of equal use);
//  3. within an owner, submission order.
// Skipped: runs the worker does not meet (common/placement.h), runs of a
// sweep at its max_concurrent, and every run of an owner at its cap on
// running runs. The queue is read by its groups (owner, requirement key,
// priority; a handful of rows) and their heads, never run by run.
#ifndef DISTILL_SERVER_SCHEDULING_FAIR_SHARE_H_
#define DISTILL_SERVER_SCHEDULING_FAIR_SHARE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/placement.h"
#include "distill/v1/run.pb.h"
#include "server/scheduling/scheduler_core.h"
#include "server/storage/store.h"

namespace distill {

// What a running run adds to its owner's standing, in GPU milliseconds: a
// minute for each week of the half-life (a minute at the default).
double RunningChargeMs(const SchedulerOptions& options);

// GPU milliseconds used per share, each running run counting
// RunningChargeMs more (lower is further below its share).
double Standing(const OwnerRecord& owner, const SchedulerOptions& options);

// Every owner of `owners` and of `groups`, with its runs queued counted
// from `groups` (an owner with queued runs alone gets a record of its own).
std::vector<OwnerRecord> CountQueued(std::vector<OwnerRecord> owners,
                                     const std::vector<QueueGroup>& groups);

// The owners with their queued runs: Store::Owners and CountQueued.
absl::StatusOr<std::vector<OwnerRecord>> OwnersWithQueue(Store& store);

// The cap on the owner's running runs, or none.
std::optional<int> CapOf(const OwnerRecord& owner,
                         const SchedulerOptions& options);

// The next run for a worker offering `offer` under `options`' policy.
absl::StatusOr<std::optional<v1::Run>> NextRunFor(
    Store& store, const SchedulerOptions& options, const WorkerOffer& offer);
// The same for a worker that takes what `may_take` accepts (a requirement
// key; "" for none); always true: the run the queue serves first.
absl::StatusOr<std::optional<v1::Run>> NextRunFor(
    Store& store, const SchedulerOptions& options,
    const std::function<bool(const std::string& requires_key)>& may_take);

// Recounts the queue's groups and each owner's running runs from the runs
// themselves (reading every queued and running run) and compares them with
// what the store keeps: INTERNAL naming the first difference. For tests
// and the fuzzers: the triggers that keep them must never drift.
absl::Status CheckQueueGroups(Store& store);

// The decay over `elapsed_ms` with that half-life: 2^(-elapsed/half_life).
double DecayOver(int64_t elapsed_ms, int64_t half_life_ms);

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_FAIR_SHARE_H_
