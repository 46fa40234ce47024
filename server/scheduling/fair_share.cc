#include "server/scheduling/fair_share.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace distill {

double RunningChargeMs(const SchedulerOptions& options) {
  constexpr double kMinutesPerWeek = 7 * 24 * 60;
  return double(options.fair_share_half_life_ms) / kMinutesPerWeek;
}

double Standing(const OwnerRecord& owner, const SchedulerOptions& options) {
  const double shares = owner.shares > 0 ? owner.shares : 1;
  return (owner.decayed_ms + double(owner.running) * RunningChargeMs(options)) /
         shares;
}

std::vector<OwnerRecord> CountQueued(std::vector<OwnerRecord> owners,
                                     const std::vector<QueueGroup>& groups) {
  absl::flat_hash_map<std::string, size_t> at;
  for (size_t i = 0; i < owners.size(); ++i) at[owners[i].owner] = i;
  for (const QueueGroup& g : groups) {
    auto [it, fresh] = at.try_emplace(g.owner, owners.size());
    if (fresh) owners.push_back({.owner = g.owner});
    owners[it->second].queued += g.queued;
  }
  std::sort(owners.begin(), owners.end(),
            [](const OwnerRecord& a, const OwnerRecord& b) {
              return a.owner < b.owner;
            });
  return owners;
}

absl::StatusOr<std::vector<OwnerRecord>> OwnersWithQueue(Store& store) {
  absl::StatusOr<std::vector<OwnerRecord>> owners = store.Owners();
  if (!owners.ok()) return owners.status();
  absl::StatusOr<std::vector<QueueGroup>> groups = store.QueueGroups();
  if (!groups.ok()) return groups.status();
  return CountQueued(*std::move(owners), *groups);
}

std::optional<int> CapOf(const OwnerRecord& owner,
                         const SchedulerOptions& options) {
  const int cap =
      owner.max_running ? *owner.max_running : options.max_running_per_owner;
  if (cap <= 0) return std::nullopt;
  return cap;
}

double DecayOver(int64_t elapsed_ms, int64_t half_life_ms) {
  if (half_life_ms <= 0 || elapsed_ms <= 0) return 1;
  return std::exp2(-double(elapsed_ms) / double(half_life_ms));
}

absl::Status CheckQueueGroups(Store& store) {
  absl::StatusOr<std::vector<QueueGroup>> groups = store.QueueGroups();
  if (!groups.ok()) return groups.status();
  absl::StatusOr<std::vector<OwnerRecord>> owners = store.Owners();
  if (!owners.ok()) return owners.status();
  std::map<std::tuple<std::string, std::string, int32_t>, int64_t> kept,
      counted;
  std::map<std::string, int64_t> kept_running, counted_running;
  for (const QueueGroup& g : *groups)
    kept[{g.owner, g.requires_key, g.priority}] = g.queued;
  for (const OwnerRecord& o : *owners)
    if (o.running > 0) kept_running[o.owner] = o.running;
  for (v1::RunStatus status : {v1::QUEUED, v1::RUNNING}) {
    absl::StatusOr<std::vector<v1::Run>> runs = store.ListRuns(0, status);
    if (!runs.ok()) return runs.status();
    for (const v1::Run& r : *runs) {
      if (status == v1::RUNNING) {
        ++counted_running[r.owner()];
      } else {
        ++counted[{r.owner(), RequirementsKey(r.spec().requirements()),
                   r.priority()}];
      }
    }
  }
  if (kept != counted) {
    return absl::InternalError(absl::StrCat("the queue's groups (", kept.size(),
                                            ") differ from its runs (",
                                            counted.size(), " groups)"));
  }
  if (kept_running != counted_running) {
    return absl::InternalError(
        "the owners' running counts differ from the running runs");
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<v1::Run>> NextRunFor(
    Store& store, const SchedulerOptions& options, const WorkerOffer& offer) {
  absl::flat_hash_map<std::string, bool> meets;  // By requirement key.
  return NextRunFor(store, options, [&](const std::string& key) {
    auto [it, fresh] = meets.try_emplace(key, false);
    if (fresh) it->second = Meets(offer, RequirementsOfKey(key));
    return it->second;
  });
}

absl::StatusOr<std::optional<v1::Run>> NextRunFor(
    Store& store, const SchedulerOptions& options,
    const std::function<bool(const std::string& requires_key)>& may_take) {
  absl::StatusOr<std::vector<QueueGroup>> groups = store.QueueGroups();
  if (!groups.ok()) return groups.status();
  if (groups->empty()) {
    // The previous schema keeps no groups: one queue, by priority and id.
    return store.NextQueuedRun(may_take);
  }
  absl::StatusOr<std::vector<OwnerRecord>> owners = store.Owners();
  if (!owners.ok()) return owners.status();
  absl::flat_hash_map<std::string, const OwnerRecord*> by_name;
  bool any_capped = false;
  for (const OwnerRecord& o : *owners) {
    by_name[o.owner] = &o;
    const std::optional<int> cap = CapOf(o, options);
    any_capped |= cap && o.running >= *cap;
  }
  const bool fair =
      options.queue_policy == SchedulerOptions::QueuePolicy::kFairShare;
  if (!fair && !any_capped) {
    // First in first out: each requirement key's head, in one index.
    return store.NextQueuedRun(may_take);
  }
  absl::StatusOr<std::vector<int64_t>> capped = store.CappedSweeps();
  if (!capped.ok()) return capped.status();
  // The groups the worker may take, in the order they are served: a
  // block is one priority and (under fair share) one owner.
  struct Candidate {
    int32_t priority;
    double standing;
    const QueueGroup* group;
  };
  std::vector<Candidate> candidates;
  for (const QueueGroup& g : *groups) {
    if (!may_take(g.requires_key)) continue;
    const auto owner = by_name.find(g.owner);
    double standing = 0;
    if (owner != by_name.end()) {
      const std::optional<int> cap = CapOf(*owner->second, options);
      if (cap && owner->second->running >= *cap) continue;
      standing = Standing(*owner->second, options);
    }
    candidates.push_back({g.priority, fair ? standing : 0, &g});
  }
  auto block_of = [&](const Candidate& c) {
    return std::tuple(-c.priority, c.standing,
                      fair ? c.group->owner : std::string());
  };
  std::sort(candidates.begin(), candidates.end(),
            [&](const Candidate& a, const Candidate& b) {
              return block_of(a) < block_of(b);
            });
  for (size_t first = 0; first < candidates.size();) {
    size_t end = first;
    std::optional<v1::Run> best;
    while (end < candidates.size() &&
           block_of(candidates[end]) == block_of(candidates[first])) {
      absl::StatusOr<std::optional<v1::Run>> head =
          store.QueueHead(*candidates[end].group, *capped);
      if (!head.ok()) return head.status();
      if (head->has_value() && (!best || (*head)->id() < best->id()))
        best = std::move(*head);
      ++end;
    }
    if (best) return best;
    first = end;
  }
  return std::nullopt;
}

}  // namespace distill
