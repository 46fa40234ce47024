// Why a QUEUED or WAITING run waits (Reads::ExplainWaiting) and what a
// run's history keeps of its preemptions: the part of the reads that looks
// at the queue, the workers and the owners together.
#include <algorithm>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/placement.h"
#include "common/time_text.h"
#include "server/scheduling/fair_share.h"
#include "server/scheduling/reads.h"

namespace distill {

namespace {

// The queued runs a reason counts ahead of one: read up to this many.
constexpr int64_t kQueueScan = 200'000;

}  // namespace

// What every queued run of a page shares, read once: the queue's order,
// the workers serving, the runs running, the disk guard.
struct QueueView {
  absl::flat_hash_map<int64_t, int64_t> place;   // Run -> runs ahead of it.
  absl::flat_hash_map<int64_t, int64_t> higher;  // ... of higher priority.
  absl::flat_hash_map<int64_t, int64_t> owners_ahead;  // ... of its owner.
  std::vector<std::pair<WorkerOffer, bool>> serving;   // Offer, busy.
  absl::flat_hash_map<int64_t, int64_t> running_in_sweep;
  std::string paused;
  absl::flat_hash_map<std::string, OwnerRecord> owners;  // By name.
};

absl::StatusOr<QueueView> Reads::ViewQueue(Store& store) {
  QueueView view;
  absl::StatusOr<std::vector<std::pair<int64_t, int32_t>>> order =
      store.QueueOrder(kQueueScan);
  if (!order.ok()) return order.status();
  int64_t first_of_priority = 0;
  for (size_t i = 0; i < order->size(); ++i) {
    if (i == 0 || (*order)[i].second != (*order)[i - 1].second)
      first_of_priority = int64_t(i);
    view.place[(*order)[i].first] = int64_t(i);
    view.higher[(*order)[i].first] = first_of_priority;
  }
  absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> owned =
      store.QueuedOwners(kQueueScan);
  if (!owned.ok()) return owned.status();
  absl::flat_hash_map<int64_t, const std::string*> owner_of;
  for (const auto& [id, owner] : *owned) owner_of[id] = &owner;
  absl::flat_hash_map<std::string, int64_t> seen;  // Per owner, in order.
  for (const auto& [id, priority] : *order) {
    auto it = owner_of.find(id);
    if (it != owner_of.end()) view.owners_ahead[id] = seen[*it->second]++;
  }
  absl::StatusOr<std::vector<WorkerRecord>> workers = store.ListWorkers();
  if (!workers.ok()) return workers.status();
  absl::StatusOr<std::vector<v1::Run>> running = store.ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  absl::flat_hash_set<std::string> busy;
  for (const v1::Run& r : *running) {
    busy.insert(r.worker_id());
    ++view.running_in_sweep[r.sweep_id()];
  }
  const int64_t now = core_.clock().NowMs();
  for (const WorkerRecord& w : *workers) {
    if (w.stopped_ms == 0 && !w.draining &&
        now - w.last_seen_ms < core_.options().lease_duration_ms)
      view.serving.emplace_back(OfferOf(w), busy.contains(w.id));
  }
  view.paused = core_.disk().LeasingPaused();
  absl::StatusOr<std::vector<OwnerRecord>> owners = OwnersWithQueue(store);
  if (!owners.ok()) return owners.status();
  for (OwnerRecord& o : *owners) view.owners[o.owner] = std::move(o);
  return view;
}

std::string Reads::OwnersTurn(const OwnerRecord& owner,
                              const QueueView& view) const {
  if (const std::optional<int> cap = CapOf(owner, core_.options());
      cap && owner.running >= *cap) {
    return absl::StrCat("its owner ", owner.owner, " runs ", owner.running,
                        " of its ", *cap, " (max running per owner)");
  }
  if (core_.options().queue_policy !=
      SchedulerOptions::QueuePolicy::kFairShare) {
    return "";
  }
  int64_t before = 0;  // Owners with runs queued who go before this one.
  for (const auto& [name, other] : view.owners) {
    if (name != owner.owner && other.queued > 0 &&
        std::pair(Standing(other, core_.options()), name) <
            std::pair(Standing(owner, core_.options()), owner.owner))
      ++before;
  }
  if (before == 0) return "";
  return absl::StrCat(before,
                      before == 1 ? " other owner is" : " other owners are",
                      " served first by fair share (", owner.owner, " used ",
                      absl::StrFormat("%.1f", owner.decayed_ms / 3.6e6),
                      " GPU-hours, decayed, on ", owner.shares,
                      owner.shares == 1 ? " share" : " shares", ")");
}

std::string Reads::WhyQueued(Store& store, const v1::Run& run,
                             QueueView& view) {
  std::vector<std::string> why;
  if (!view.paused.empty()) why.push_back(view.paused);
  if (run.sweep_id() != 0) {
    absl::StatusOr<v1::Sweep> sweep = store.GetSweep(run.sweep_id());
    const int cap = sweep.ok() ? sweep->spec().max_concurrent() : 0;
    if (cap > 0 && view.running_in_sweep[run.sweep_id()] >= cap) {
      why.push_back(absl::StrCat("its sweep runs ",
                                 view.running_in_sweep[run.sweep_id()],
                                 " at once, its max_concurrent"));
    }
  }
  if (auto it = view.place.find(run.id());
      it != view.place.end() && it->second > 0) {
    const int64_t above = view.higher[run.id()];
    if (core_.options().queue_policy == SchedulerOptions::QueuePolicy::kFifo) {
      why.push_back(absl::StrCat(
          it->second, it->second == 1 ? " run" : " runs",
          " ahead of it in the queue",
          above > 0 ? absl::StrCat(" (", above, " of higher priority)") : ""));
    } else {
      // Under fair share these are surely ahead: its owner's and those of
      // higher priority; the owners' turn (below) says the rest.
      const int64_t own = view.owners_ahead[run.id()];
      if (own > 0) {
        why.push_back(absl::StrCat(own, own == 1 ? " run" : " runs", " of ",
                                   run.owner(), " ahead of it"));
      }
      if (above > 0) {
        why.push_back(absl::StrCat(above, above == 1 ? " run" : " runs",
                                   " of higher priority ahead of it"));
      }
    }
  }
  if (auto owner = view.owners.find(run.owner()); owner != view.owners.end()) {
    why.push_back(OwnersTurn(owner->second, view));
    if (why.back().empty()) why.pop_back();
  }
  // The workers that may take it: those whose offer meets its needs.
  const v1::Requirements& needs = run.spec().requirements();
  int64_t fit = 0, fit_idle = 0;
  for (const auto& [offer, is_busy] : view.serving) {
    if (!Meets(offer, needs)) continue;
    ++fit;
    if (!is_busy) ++fit_idle;
  }
  const std::string described = DescribeRequirements(needs);
  if (view.serving.empty()) {
    why.push_back("no worker is registered and serving");
  } else if (fit == 0) {
    why.push_back(absl::StrCat("no registered worker meets its requirements (",
                               described, ")"));
  } else if (fit_idle == 0) {
    why.push_back(absl::StrCat(
        "every worker that meets ",
        described.empty() ? "it"
                          : absl::StrCat("its requirements (", described, ")"),
        " (", fit, ") is busy"));
  }
  return why.empty() ? "next in line: the next worker to ask leases it"
                     : absl::StrJoin(why, "; ");
}

absl::Status Reads::AddPreemptions(Store& store, v1::Run& run) {
  absl::StatusOr<std::vector<PreemptionRecord>> asked =
      store.Preemptions(run.id());
  if (!asked.ok()) return asked.status();
  for (const PreemptionRecord& p : *asked) {
    run.add_preemptions(absl::StrCat(
        TimeText(p.asked_ms), " attempt ", p.attempt, " on worker ",
        p.worker_id, " gave way to run ", p.for_run_id, ": ", p.reason));
  }
  return absl::OkStatus();
}

absl::Status Reads::ExplainWaiting(Store& store, std::vector<v1::Run>& runs) {
  const bool any = std::any_of(runs.begin(), runs.end(), [](const v1::Run& r) {
    return r.status() == v1::QUEUED || r.status() == v1::WAITING;
  });
  if (!any) return absl::OkStatus();
  std::optional<QueueView> view;
  for (v1::Run& run : runs) {
    if (run.status() == v1::WAITING) {
      absl::StatusOr<v1::Run> teacher = store.GetRun(run.teacher_run_id());
      run.set_waiting_reason(
          teacher.ok() ? absl::StrCat("its teacher (run ", teacher->id(),
                                      ") is ", StatusName(teacher->status()))
                       : "its teacher has not succeeded yet");
      continue;
    }
    if (run.status() != v1::QUEUED) continue;
    if (!view) {
      absl::StatusOr<QueueView> read = ViewQueue(store);
      if (!read.ok()) return read.status();
      view = *std::move(read);
    }
    run.set_waiting_reason(WhyQueued(store, run, *view));
  }
  return absl::OkStatus();
}

}  // namespace distill
