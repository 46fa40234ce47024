#include "server/scheduling/retention.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/byte_sizes.h"
#include "common/log.h"
#include "common/metric_keys.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/time_text.h"

namespace distill {
namespace {

// The most dropped files one answer lists (files counts them all).
constexpr int kMaxListed = 10'000;
// Files dropped by one write of a pass.
constexpr size_t kBatch = 16;

bool Ended(v1::RunStatus status) {
  return status == v1::FAILED || status == v1::CANCELLED ||
         status == v1::PRUNED;
}

bool IsCheckpointFile(const std::string& name) {
  return name == kCheckpointFile || name == kResumeFile || name == kStateFile;
}

// Runs whose checkpoint a waiting, queued or running run starts from (its
// teacher, the student it judges, the run it forks).
absl::StatusOr<std::set<int64_t>> NeededNow(Store& store) {
  std::set<int64_t> needed;
  for (v1::RunStatus status : {v1::WAITING, v1::QUEUED, v1::RUNNING}) {
    absl::StatusOr<std::vector<v1::Run>> runs = store.ListRuns(0, status);
    if (!runs.ok()) return runs.status();
    for (const v1::Run& run : *runs) {
      needed.insert(run.teacher_run_id());
      needed.insert(run.spec().student_run_id());
      needed.insert(run.spec().fork().run_id());
    }
  }
  return needed;
}

// Whether `run` keeps its files whatever the policy says: it, or its
// sweep, is tagged `keep`, or a waiting, queued or running run starts
// from it. `sweeps` caches the sweeps read.
absl::StatusOr<bool> Kept(Store& store, const v1::Run& run,
                          const std::set<int64_t>& needed,
                          std::map<int64_t, v1::Sweep>& sweeps) {
  if (run.tags().contains(kKeepTag) || needed.contains(run.id())) return true;
  if (run.sweep_id() == 0) return false;
  auto it = sweeps.find(run.sweep_id());
  if (it == sweeps.end()) {
    absl::StatusOr<v1::Sweep> sweep = store.GetSweep(run.sweep_id());
    if (!sweep.ok()) return sweep.status();
    it = sweeps.emplace(run.sweep_id(), *std::move(sweep)).first;
  }
  return it->second.tags().contains(kKeepTag);
}

// The reason each of a sweep's succeeded students outside its best loses
// its checkpoint, by run id.
void RankSweep(const v1::Sweep& sweep, int default_keep_best,
               std::vector<const v1::Run*> students,
               std::map<int64_t, std::string>* drop) {
  const v1::Retention& policy = sweep.spec().retention();
  const int keep =
      policy.has_keep_best() ? policy.keep_best() : default_keep_best;
  if (keep < 0) return;
  const std::string by =
      policy.by().empty() ? metric_keys::kDefaultRanking : policy.by();
  const bool lower = policy.lower_is_better();
  auto value = [&](const v1::Run* run) -> std::optional<double> {
    auto it = run->results().find(by);
    if (it == run->results().end()) return std::nullopt;
    return it->second;
  };
  std::stable_sort(students.begin(), students.end(),
                   [&](const v1::Run* a, const v1::Run* b) {
                     const std::optional<double> x = value(a), y = value(b);
                     if (x.has_value() != y.has_value()) return x.has_value();
                     if (!x.has_value() || *x == *y) return a->id() < b->id();
                     return lower ? *x < *y : *x > *y;
                   });
  for (size_t i = size_t(keep); i < students.size(); ++i) {
    const std::optional<double> v = value(students[i]);
    (*drop)[students[i]->id()] = absl::StrFormat(
        "not among sweep %d's %d best by %s (%s)", sweep.id(), keep, by,
        v.has_value() ? absl::StrFormat("%.6g", *v) : "none reported");
  }
}

// Why each run of `runs` whose checkpoint a policy lets go loses it, by run
// id (before Kept's checks).
absl::StatusOr<std::map<int64_t, std::string>> DropReasons(
    Store& store, const std::vector<v1::Run>& runs, int default_keep_best) {
  std::map<int64_t, std::string> drop;  // Run id: why its checkpoint goes.
  std::map<int64_t, std::vector<const v1::Run*>> students;  // By sweep.
  std::map<int64_t, std::vector<const v1::Run*>> teachers;  // By sweep.
  for (const v1::Run& run : runs) {
    if (Ended(run.status())) {
      drop[run.id()] = absl::StrCat("the run ended ", StatusName(run.status()));
    } else if (run.status() == v1::SUCCEEDED &&
               run.spec().kind() == v1::TRAIN_TEACHER && run.sweep_id() != 0) {
      teachers[run.sweep_id()].push_back(&run);
    } else if (run.status() == v1::SUCCEEDED &&
               run.spec().kind() == v1::DISTILL && run.sweep_id() != 0) {
      students[run.sweep_id()].push_back(&run);
    }
  }
  for (auto& [sweep_id, members] : students) {
    absl::StatusOr<v1::Sweep> sweep = store.GetSweep(sweep_id);
    if (!sweep.ok()) return sweep.status();
    RankSweep(*sweep, default_keep_best, std::move(members), &drop);
  }
  for (const auto& [sweep_id, sweep_teachers] : teachers) {
    absl::StatusOr<v1::Sweep> sweep = store.GetSweep(sweep_id);
    if (!sweep.ok()) return sweep.status();
    if (!sweep->spec().retention().drop_teachers()) continue;
    for (const v1::Run* teacher : sweep_teachers) {
      drop[teacher->id()] = absl::StrCat(
          "a teacher of sweep ", sweep_id,
          " no waiting, queued or running run needs (drop_teachers)");
    }
  }

  return drop;
}

// The plan on `store`: what goes, and the bytes.
absl::StatusOr<v1::CollectGarbageResponse> PlanOn(Store& store,
                                                  const std::string& sweep_ref,
                                                  int default_keep_best) {
  int64_t only_sweep = 0;
  if (!sweep_ref.empty()) {
    absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(store, sweep_ref);
    if (!sweep.ok()) return sweep.status();
    only_sweep = sweep->id();
  }
  absl::StatusOr<std::vector<v1::Run>> runs =
      store.ListRuns(only_sweep, v1::RUN_STATUS_UNSPECIFIED);
  if (!runs.ok()) return runs.status();
  absl::StatusOr<std::set<int64_t>> needed = NeededNow(store);
  if (!needed.ok()) return needed.status();
  absl::StatusOr<std::vector<RunFileRecord>> records = store.ListRunFiles();
  if (!records.ok()) return records.status();

  std::map<int64_t, const v1::Run*> by_id;
  for (const v1::Run& run : *runs) by_id[run.id()] = &run;
  absl::StatusOr<std::map<int64_t, std::string>> drop =
      DropReasons(store, *runs, default_keep_best);
  if (!drop.ok()) return drop.status();

  v1::CollectGarbageResponse plan;
  std::map<std::string, int> records_of;  // Digest: how many records.
  std::map<std::string, int> dropped_of;  // Digest: how many of them go.
  std::map<std::string, int64_t> size_of;
  for (const RunFileRecord& record : *records) {
    ++records_of[record.sha256];
    size_of[record.sha256] = record.size;
  }
  std::map<int64_t, v1::Sweep> sweeps;
  for (const RunFileRecord& record : *records) {
    auto why = drop->find(record.run_id);
    if (why == drop->end() || !IsCheckpointFile(record.name)) continue;
    const v1::Run& run = *by_id.at(record.run_id);
    absl::StatusOr<bool> kept = Kept(store, run, *needed, sweeps);
    if (!kept.ok()) return kept.status();
    if (*kept) continue;
    ++dropped_of[record.sha256];
    plan.set_files(plan.files() + 1);
    if (plan.dropped_size() >= kMaxListed) continue;
    v1::DroppedRunFile* file = plan.add_dropped();
    file->set_run_id(run.id());
    file->set_sweep_id(run.sweep_id());
    file->set_member(run.member());
    file->set_name(record.name);
    file->set_sha256(record.sha256);
    file->set_size(record.size);
    file->set_reason(why->second);
  }
  int64_t held = 0, freed = 0;
  for (const auto& [sha256, count] : records_of) {
    held += size_of[sha256];
    if (dropped_of[sha256] == count) freed += size_of[sha256];
  }
  std::sort(plan.mutable_dropped()->begin(), plan.mutable_dropped()->end(),
            [](const v1::DroppedRunFile& a, const v1::DroppedRunFile& b) {
              return std::make_pair(a.run_id(), a.name()) <
                     std::make_pair(b.run_id(), b.name());
            });
  plan.set_bytes_freed(freed);
  plan.set_bytes_held(held - freed);
  plan.set_dry_run(true);
  return plan;
}

}  // namespace

absl::StatusOr<v1::CollectGarbageResponse> Retention::Plan(
    const std::string& sweep_ref) {
  absl::StatusOr<v1::CollectGarbageResponse> plan;
  absl::Status read = core_.Read([&](Store& store) {
    plan = PlanOn(store, sweep_ref, core_.options().default_keep_best);
    return plan.status();
  });
  if (!read.ok()) return read;
  if (core_.metrics() != nullptr && sweep_ref.empty()) {
    core_.metrics()->SetRunFileBytes(plan->bytes_held() + plan->bytes_freed(),
                                     plan->bytes_freed());
  }
  return plan;
}

absl::Status Retention::DropLocked(const Locked& lock,
                                   const std::vector<v1::DroppedRunFile>& items,
                                   v1::CollectGarbageResponse* batch) {
  Store& store = core_.store();
  absl::StatusOr<std::set<int64_t>> needed = NeededNow(store);
  if (!needed.ok()) return needed.status();
  std::map<int64_t, v1::Sweep> sweeps;
  for (const v1::DroppedRunFile& item : items) {
    // Checked again: tagged `keep` or needed since the plan, it stays.
    absl::StatusOr<v1::Run> run = store.GetRun(item.run_id());
    if (!run.ok()) return run.status();
    absl::StatusOr<bool> kept = Kept(store, *run, *needed, sweeps);
    if (!kept.ok()) return kept.status();
    if (*kept) continue;
    absl::StatusOr<std::vector<std::string>> gone =
        store.DeleteRunFiles(item.run_id(), item.name(), "");
    if (!gone.ok()) return gone.status();
    for (const std::string& sha256 : *gone) {
      if (sha256 == item.sha256())
        batch->set_bytes_freed(batch->bytes_freed() + item.size());
    }
    core_.OrphanLocked(lock, *gone);
    // The line a run shows names its checkpoint; its state goes with it.
    if (item.name() == kStateFile &&
        run->provenance().contains(provenance::kRetention)) {
      *batch->add_dropped() = item;
      continue;
    }
    if (absl::Status s = store.SetProvenance(
            item.run_id(),
            {{provenance::kRetention,
              absl::StrCat(item.name(), " (", HumanBytes(item.size()),
                           ") dropped at ", TimeText(core_.clock().NowMs()),
                           ": ", item.reason())}});
        !s.ok()) {
      return s;
    }
    *batch->add_dropped() = item;
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::CollectGarbageResponse> Retention::Collect(
    const std::string& sweep_ref, absl::Duration pause) {
  if (in_pass_.exchange(true)) {
    return absl::UnavailableError(
        "another collection of run files is in progress; try again later");
  }
  struct EndPass {
    std::atomic<bool>* in_pass;
    ~EndPass() { *in_pass = false; }
  } end_pass{&in_pass_};
  absl::StatusOr<v1::CollectGarbageResponse> plan = Plan(sweep_ref);
  if (!plan.ok()) return plan;
  v1::CollectGarbageResponse done;
  int64_t bytes_held = plan->bytes_held() + plan->bytes_freed();
  const auto& items = plan->dropped();
  for (int begin = 0; begin < items.size(); begin += int(kBatch)) {
    if (begin > 0) absl::SleepFor(pause);
    if (core_.shutting_down()) break;
    const int end = std::min(items.size(), begin + int(kBatch));
    SchedulerCore::Locked lock(&core_);
    v1::CollectGarbageResponse batch;
    absl::Status s = core_.Write([&] {
      core_.AssertHeld();
      return DropLocked(lock,
                        std::vector<v1::DroppedRunFile>(items.begin() + begin,
                                                        items.begin() + end),
                        &batch);
    });
    if (!s.ok()) return s;
    done.set_bytes_freed(done.bytes_freed() + batch.bytes_freed());
    for (v1::DroppedRunFile& item : *batch.mutable_dropped()) {
      core_.RunChangedLocked(lock, item.run_id());
      *done.add_dropped() = std::move(item);
    }
  }
  done.set_files(done.dropped_size());
  done.set_bytes_held(bytes_held - done.bytes_freed());
  if (core_.metrics() != nullptr) {
    core_.metrics()->RunFilesCollected(done.files(), done.bytes_freed());
    if (sweep_ref.empty()) {
      core_.metrics()->SetRunFileBytes(
          done.bytes_held(), plan->bytes_freed() - done.bytes_freed());
    }
  }
  if (done.files() > 0) {
    DISTILL_LOG(INFO) << "retention: dropped " << done.files()
                      << " run files, freed " << HumanBytes(done.bytes_freed());
  }
  return done;
}

}  // namespace distill
