#include "server/scheduling/preemption.h"

#include <tuple>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/log.h"
#include "common/placement.h"
#include "server/scheduling/fair_share.h"

namespace distill {

void Preemption::LeasedLocked(const SchedulerCore::Locked& lock,
                              int64_t run_id) {
  (void)lock;
  leased_at_[run_id] = core_.clock().NowMs();
  asked_.erase(run_id);
}

std::optional<std::string> Preemption::AskedLocked(
    const SchedulerCore::Locked& lock, int64_t run_id, int32_t attempt) const {
  (void)lock;
  auto it = asked_.find(run_id);
  if (it == asked_.end() || it->second.attempt != attempt) return std::nullopt;
  return absl::StrCat("for run ", it->second.for_run_id, ": ",
                      it->second.reason);
}

void Preemption::ForgetEndedLocked(const std::vector<v1::Run>& running) {
  absl::flat_hash_map<int64_t, int32_t> attempt_of;
  for (const v1::Run& r : running) attempt_of[r.id()] = r.attempt();
  absl::erase_if(asked_, [&](const auto& entry) {
    auto it = attempt_of.find(entry.first);
    return it == attempt_of.end() || it->second != entry.second.attempt;
  });
  absl::erase_if(leased_at_, [&](const auto& entry) {
    return !attempt_of.contains(entry.first);
  });
}

std::string Preemption::WhyGiveWayLocked(
    const v1::Run& r, const v1::Run& waiting,
    absl::flat_hash_map<std::string, double>& standing) {
  const SchedulerOptions& o = core_.options();
  if (r.priority() < waiting.priority()) {
    return absl::StrCat("priority ", waiting.priority(), " above ",
                        r.priority());
  }
  const double mine = standing[r.owner()], theirs = standing[waiting.owner()];
  if (o.preemption == SchedulerOptions::Preemption::kFair &&
      r.priority() == waiting.priority() && r.owner() != waiting.owner() &&
      mine > o.preempt_share_margin * theirs + RunningChargeMs(o)) {
    return absl::StrFormat(
        "owner %s is below its share (%.1f GPU-hours per share against "
        "%s's %.1f)",
        waiting.owner(), theirs / 3.6e6, r.owner(), mine / 3.6e6);
  }
  return "";
}

const v1::Run* Preemption::ChooseLocked(
    const v1::Run& waiting, const std::vector<v1::Run>& running,
    const absl::flat_hash_set<std::string>& fitting,
    absl::flat_hash_map<std::string, double>& standing, std::string* why) {
  const SchedulerOptions& o = core_.options();
  const int64_t now = core_.clock().NowMs();
  // The lowest priority first, then the owner furthest above its share,
  // then the run leased last.
  const v1::Run* victim = nullptr;
  auto rank = [&](const v1::Run& r) {
    AssertHeld();  // A lambda is analysed as a function of its own.
    return std::tuple(r.priority(), -standing[r.owner()], -leased_at_[r.id()]);
  };
  for (const v1::Run& r : running) {
    if (!fitting.contains(r.worker_id()) || asked_.contains(r.id())) continue;
    auto held = leased_at_.find(r.id());
    if (held == leased_at_.end()) {
      // Leased before this coordinator started: its hold starts now.
      leased_at_[r.id()] = now;
      continue;
    }
    if (now - held->second < o.preempt_after_ms) continue;
    if (auto last = last_asked_on_.find(r.worker_id());
        last != last_asked_on_.end() && now - last->second < o.preempt_every_ms)
      continue;
    std::string reason = WhyGiveWayLocked(r, waiting, standing);
    if (reason.empty()) continue;
    if (victim == nullptr || rank(r) < rank(*victim)) {
      victim = &r;
      *why = std::move(reason);
    }
  }
  return victim;
}

absl::Status Preemption::PlanLocked(const SchedulerCore::Locked& lock) {
  const SchedulerOptions& o = core_.options();
  if (o.preemption == SchedulerOptions::Preemption::kOff)
    return absl::OkStatus();
  Store& store = core_.store();
  const int64_t now = core_.clock().NowMs();
  absl::StatusOr<std::vector<v1::Run>> running = store.ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  ForgetEndedLocked(*running);
  // The run the queue serves first, whatever worker asks.
  absl::StatusOr<std::optional<v1::Run>> next =
      NextRunFor(store, o, [](const std::string&) { return true; });
  if (!next.ok()) return next.status();
  if (!next->has_value()) return absl::OkStatus();
  const v1::Run& waiting = **next;
  for (const auto& [id, ask] : asked_)
    if (ask.for_run_id == waiting.id()) return absl::OkStatus();
  absl::flat_hash_set<std::string> busy, fitting;
  for (const v1::Run& r : *running) busy.insert(r.worker_id());
  absl::StatusOr<std::vector<WorkerRecord>> workers = store.ListWorkers();
  if (!workers.ok()) return workers.status();
  for (const WorkerRecord& w : *workers) {
    const bool serving = w.stopped_ms == 0 && !w.draining &&
                         now - w.last_seen_ms < o.lease_duration_ms;
    if (!serving || !Meets(OfferOf(w), waiting.spec().requirements())) continue;
    // A free worker that meets it leases it at its next ask.
    if (!busy.contains(w.id)) return absl::OkStatus();
    fitting.insert(w.id);
  }
  absl::StatusOr<std::vector<OwnerRecord>> owners = store.Owners();
  if (!owners.ok()) return owners.status();
  absl::flat_hash_map<std::string, double> standing;
  for (const OwnerRecord& r : *owners) standing[r.owner] = Standing(r, o);
  std::string why;
  const v1::Run* victim =
      ChooseLocked(waiting, *running, fitting, standing, &why);
  if (victim == nullptr) return absl::OkStatus();
  asked_[victim->id()] = {victim->attempt(), waiting.id(), why};
  last_asked_on_[victim->worker_id()] = now;
  DISTILL_LOG(INFO) << "run " << victim->id() << " attempt "
                    << victim->attempt() << " on worker " << victim->worker_id()
                    << " is asked to give way to run " << waiting.id() << ": "
                    << why;
  // A record lost to a power cut loses a line of history, nothing else.
  return core_.Write(
      [&] {
        core_.AssertHeld();
        return store.RecordPreemption({victim->id(), victim->attempt(), now,
                                       victim->worker_id(), waiting.id(), why});
      },
      Store::Durability::kInWal);
}

}  // namespace distill
