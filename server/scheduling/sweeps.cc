#include "server/scheduling/sweeps.h"

#include <algorithm>
#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/early_stopping.h"
#include "common/log.h"
#include "common/metric_keys.h"
#include "common/run_status.h"
#include "common/sweep_expansion.h"

namespace distill {
namespace {

bool Retryable(v1::RunStatus s) {
  return s == v1::FAILED || s == v1::CANCELLED;
}

// The run's per-epoch curve from its points: the last value reported for
// each epoch (a resumed attempt measures an epoch again), epochs 1, 2, ...
// up to the first missing one.
Curve CurveOf(const std::vector<EpochValue>& points) {
  std::map<int32_t, double> by_epoch;
  for (const EpochValue& p : points) {
    if (p.epoch > 0) by_epoch[p.epoch] = p.value;
  }
  Curve curve;
  for (const auto& [epoch, value] : by_epoch) {
    if (epoch != int32_t(curve.values.size()) + 1) break;
    curve.values.push_back(value);
  }
  return curve;
}

// The epoch `points` judge by `metric` (0: none).
int JudgedEpoch(const std::vector<v1::MetricPoint>& points,
                const std::string& metric) {
  int epoch = 0;
  for (const v1::MetricPoint& p : points) {
    if (p.key() == metric) epoch = std::max(epoch, int(p.epoch()));
  }
  return epoch;
}

// What the sweep's rule says of `member` at `epoch` against `others`.
StopDecision Decide(const v1::EarlyStopping& rule, int max_epochs,
                    const Curve& member, int epoch,
                    const std::vector<Curve>& others) {
  if (rule.rule() == v1::MEDIAN) {
    MedianRule median;
    if (rule.has_warmup_epochs()) median.warmup_epochs = rule.warmup_epochs();
    if (rule.min_completed() > 0) median.min_completed = rule.min_completed();
    return MedianDecision(median, Goal::kMaximize, member, epoch, others);
  }
  AshaRule asha;
  if (rule.grace_period() > 0) asha.grace_period = rule.grace_period();
  if (rule.reduction_factor() > 0)
    asha.reduction_factor = rule.reduction_factor();
  asha.max_epochs = max_epochs;
  std::vector<double> recorded;
  for (const Curve& other : others) {
    if (int(other.values.size()) >= epoch)
      recorded.push_back(other.values[epoch - 1]);
  }
  return AshaDecision(asha, Goal::kMaximize, epoch, member.values[epoch - 1],
                      recorded);
}

// A new run of sweep `sweep_id` as it is stored: every field a sweep's run
// starts with, in one place; with `teacher_id` (0: none) it learns from that
// teacher run.
v1::Run NewSweepRun(int64_t sweep_id, const std::string& member,
                    v1::ExperimentSpec spec, v1::RunStatus status,
                    int32_t priority, const std::string& owner,
                    int64_t teacher_id = 0) {
  v1::Run run;
  run.set_sweep_id(sweep_id);
  run.set_member(member);
  if (teacher_id != 0) {
    spec.mutable_teacher()->set_run_id(teacher_id);
    run.set_teacher_run_id(teacher_id);
  }
  *run.mutable_spec() = std::move(spec);
  run.set_status(status);
  run.set_priority(priority);
  run.set_owner(owner);
  return run;
}

// INVALID_ARGUMENT unless `url` is empty or starts with one of `allowed`
// (the coordinator posts to what its operator allows, not to any address
// a client names: the port is open on a lab network).
absl::Status CheckNotifyUrl(const std::string& url,
                            const std::vector<std::string>& allowed) {
  if (url.empty()) return absl::OkStatus();
  if (url.size() > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("notify.url is at most 1024 bytes, got ", url.size()));
  }
  for (const std::string& prefix : allowed) {
    if (!prefix.empty() && absl::StartsWith(url, prefix))
      return absl::OkStatus();
  }
  // The allowed prefixes are not shown: a webhook's URL is its secret.
  return absl::InvalidArgumentError(absl::StrCat(
      "notify.url \"", url.substr(0, 64),
      "...\" is not one this coordinator posts to (its operator names the "
      "URLs it may post to: distill-coordinator --notify_allow)"));
}

// ALREADY_EXISTS when a sweep named `name` has a run that has not ended: a
// name means one sweep while it runs (commands take sweeps by name).
absl::Status CheckNameFree(Store& store, const std::string& name) {
  absl::StatusOr<std::pair<int64_t, int64_t>> live =
      store.UnendedSweepNamed(name);
  if (!live.ok()) return live.status();
  if (live->first == 0) return absl::OkStatus();
  return absl::AlreadyExistsError(absl::StrCat(
      "sweep ", live->first, " is named \"", name, "\" and ", live->second,
      live->second == 1 ? " of its runs has" : " of its runs have",
      " not ended; name this one otherwise, or cancel that one first"));
}

// A sweep's member curves as the results table shows them: `run`'s
// member (its seeds as one, on their mean curve, so that no seed of it
// survives on luck alone) and every other member's.
struct Field {
  Curve member;
  int averaged = 0;  // Seeds in the member's value at the epoch.
  std::vector<Curve> others;
  std::vector<const v1::Run*> seeds;  // The member's other runs.
};

Field FieldOf(const v1::Run& run, const std::vector<v1::Run>& runs,
              std::map<int64_t, std::vector<EpochValue>>& history, int epoch) {
  Field field;
  const std::string cell = WithoutSeed(run.member());
  std::map<std::string, std::vector<Curve>> replicates;
  for (const v1::Run* other : NewestByMember(runs, v1::DISTILL)) {
    if (other->id() == run.id()) continue;
    Curve curve = CurveOf(history[other->id()]);
    curve.completed = other->status() == v1::SUCCEEDED;
    const std::string other_cell = WithoutSeed(other->member());
    replicates[other_cell].push_back(std::move(curve));
    if (other_cell == cell) field.seeds.push_back(other);
  }
  std::vector<Curve>& mine = replicates[cell];
  mine.push_back(CurveOf(history[run.id()]));
  for (const Curve& c : mine) field.averaged += int(c.values.size()) >= epoch;
  field.member = MeanCurve(mine);
  for (const auto& [name, curves] : replicates) {
    if (name != cell) field.others.push_back(MeanCurve(curves));
  }
  return field;
}

void AddTeacher(const v1::Run& run, const std::string& name,
                v1::SweepResults* results) {
  v1::TeacherResult* t = results->add_teachers();
  t->set_name(name);
  t->set_run_id(run.id());
  t->set_status(run.status());
  if (auto it = run.results().find(metric_keys::kEvalTop1);
      it != run.results().end()) {
    t->set_top1(it->second);
  }
  *t->mutable_results() = run.results();
  t->set_file_bytes(FileBytes(run));
}

void AddMember(const v1::Run& run,
               const absl::flat_hash_map<int64_t, std::string>& teacher_name,
               v1::SweepResults* results) {
  v1::MemberResult* row = results->add_members();
  row->set_name(run.member());
  row->set_teacher_run_id(run.teacher_run_id());
  auto it = teacher_name.find(run.teacher_run_id());
  row->set_teacher(it != teacher_name.end() ? it->second : "teacher");
  *row->mutable_losses() = run.spec().losses();
  *row->mutable_fork() = run.spec().fork();
  row->set_run_id(run.id());
  row->set_status(run.status());
  row->set_message(run.message());
  if (auto top1 = run.results().find(metric_keys::kEvalTop1);
      top1 != run.results().end()) {
    row->set_top1(top1->second);
  }
  *row->mutable_results() = run.results();
  row->set_file_bytes(FileBytes(run));
}

}  // namespace

absl::StatusOr<v1::SubmitSweepResponse> Sweeps::Submit(
    const v1::SweepSpec& spec, const Requester& who) {
  const int bound = core_.options().max_priority;
  if (!who.admin && spec.priority() > bound) {
    return absl::InvalidArgumentError(absl::StrCat(
        "priority ", spec.priority(), " is above ", bound,
        ", the highest a researcher may give a sweep on this coordinator "
        "(--max_priority); an admin may set any"));
  }
  if (absl::Status s =
          CheckNotifyUrl(spec.notify().url(), core_.options().notify_allow);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<ExpandedSweep> expanded = ExpandSweep(spec);
  if (!expanded.ok()) return expanded.status();
  Locked lock(&core_);
  Store& store = core_.store();
  v1::SubmitSweepResponse response;
  absl::Status status = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    if (absl::Status s = CheckNameFree(store, spec.name()); !s.ok()) return s;
    v1::Sweep* sweep = response.mutable_sweep();
    sweep->set_name(spec.name());
    *sweep->mutable_spec() = spec;
    sweep->set_created_ms(core_.clock().NowMs());
    sweep->set_owner(who.name);
    absl::StatusOr<int64_t> sweep_id = store.InsertSweep(*sweep);
    if (!sweep_id.ok()) return sweep_id.status();
    sweep->set_id(*sweep_id);
    // The teachers first (each member waits for its own), then the members.
    std::vector<int64_t> teacher_ids;
    for (SweepTeacherSpec& teacher_spec : expanded->teachers) {
      absl::StatusOr<v1::Run> inserted = core_.InsertRunLocked(
          lock, NewSweepRun(*sweep_id, teacher_spec.name,
                            std::move(teacher_spec.spec), v1::QUEUED,
                            spec.priority(), who.name));
      if (!inserted.ok()) return inserted.status();
      teacher_ids.push_back(inserted->id());
      *response.add_runs() = *std::move(inserted);
    }
    if (teacher_ids.empty()) teacher_ids.push_back(spec.teacher().run_id());
    std::vector<v1::RunStatus> member_status;
    for (int64_t teacher_id : teacher_ids) {
      absl::StatusOr<v1::RunStatus> s =
          core_.StatusBehindTeacherLocked(lock, teacher_id);
      if (!s.ok()) return s.status();
      member_status.push_back(*s);
    }
    sweep->set_teacher_run_id(teacher_ids.front());
    if (absl::Status s = store.SetSweepTeacher(*sweep_id, teacher_ids.front());
        !s.ok())
      return s;
    if (absl::Status s = ForkMembersLocked(lock, spec.fork(), *expanded);
        !s.ok()) {
      return s;
    }
    for (SweepMemberSpec& member : expanded->members) {
      absl::StatusOr<v1::Run> inserted = core_.InsertRunLocked(
          lock, NewSweepRun(*sweep_id, member.name, std::move(member.spec),
                            member_status[member.teacher], spec.priority(),
                            who.name, teacher_ids[member.teacher]));
      if (!inserted.ok()) return inserted.status();
      *response.add_runs() = *std::move(inserted);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  core_.QueueChangedLocked(lock);
  return response;
}

absl::Status Sweeps::ForkMembersLocked(const Locked& lock,
                                       const v1::SweepFork& fork,
                                       ExpandedSweep& expanded) {
  if (fork.sweep_id() == 0) return absl::OkStatus();
  Store& store = core_.store();
  absl::StatusOr<std::vector<v1::Run>> runs =
      store.ListRuns(fork.sweep_id(), v1::RUN_STATUS_UNSPECIFIED);
  if (!runs.ok()) return runs.status();
  // Each member's newest run, and its newest that succeeded.
  absl::flat_hash_map<std::string, const v1::Run*> newest, succeeded;
  for (const v1::Run& run : *runs) {
    if (run.spec().kind() != v1::DISTILL) continue;
    newest[run.member()] = &run;  // In id order: the last is the newest.
    if (run.status() == v1::SUCCEEDED) succeeded[run.member()] = &run;
  }
  if (newest.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("fork.sweep_id ", fork.sweep_id(),
                     ": no such sweep, or it has no "
                     "DISTILL runs"));
  }
  for (SweepMemberSpec& member : expanded.members) {
    auto it = succeeded.find(member.name);
    if (it == succeeded.end()) {
      auto last = newest.find(member.name);
      return absl::FailedPreconditionError(absl::StrCat(
          "member ", member.name, " of sweep ", fork.sweep_id(),
          last == newest.end()
              ? " does not exist there"
              : absl::StrCat(" has no SUCCEEDED run to fork (its newest, run ",
                             last->second->id(), ", is ",
                             StatusName(last->second->status()),
                             "); retry it first")));
    }
    v1::ForkSpec* f = member.spec.mutable_fork();
    f->set_run_id(it->second->id());
    f->set_continue_training(fork.continue_training());
    if (absl::Status s = core_.CheckForkLocked(lock, member.spec); !s.ok()) {
      return absl::Status(
          s.code(), absl::StrCat("member ", member.name, ": ", s.message()));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::SweepActionResponse> Sweeps::Cancel(const std::string& ref,
                                                       const Requester& who) {
  Locked lock(&core_);
  Store& store = core_.store();
  absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(store, ref);
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = CheckMayChange(
          who, sweep->owner(),
          absl::StrCat("sweep ", sweep->id(), " (", sweep->name(), ")"));
      !s.ok()) {
    return s;
  }
  v1::SweepActionResponse response;
  *response.mutable_sweep() = *sweep;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    absl::StatusOr<std::vector<v1::Run>> runs =
        store.ListRuns(sweep->id(), v1::RUN_STATUS_UNSPECIFIED);
    if (!runs.ok()) return runs.status();
    // Students first: each waiting student ends CANCELLED with its sweep,
    // not FAILED because its teacher was cancelled before it.
    std::stable_partition(runs->begin(), runs->end(), [](const v1::Run& r) {
      return r.spec().kind() != v1::TRAIN_TEACHER;
    });
    for (v1::Run& run : *runs) {
      // Re-read: cancelling a teacher fails its waiting students.
      absl::StatusOr<v1::Run> now = store.GetRun(run.id());
      if (!now.ok()) return now.status();
      if (IsTerminal(now->status())) continue;
      if (absl::Status f = core_.FinishLocked(
              lock, *now, v1::CANCELLED,
              absl::StrCat("cancelled with sweep ", sweep->id()));
          !f.ok())
        return f;
      *response.add_runs() = *now;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<absl::flat_hash_map<std::string, int64_t>>
Sweeps::RetryTeachersLocked(const Locked& lock, const v1::Sweep& sweep,
                            const std::vector<v1::Run>& runs,
                            v1::SweepActionResponse* response) {
  absl::flat_hash_map<std::string, int64_t> current;  // Name -> run.
  for (const v1::Run* teacher : NewestByMember(runs, v1::TRAIN_TEACHER)) {
    current[teacher->member()] = teacher->id();
    if (!Retryable(teacher->status())) continue;
    absl::StatusOr<v1::Run> inserted = core_.InsertRunLocked(
        lock, NewSweepRun(sweep.id(), teacher->member(), teacher->spec(),
                          v1::QUEUED, teacher->priority(), sweep.owner()));
    if (!inserted.ok()) return inserted.status();
    current[teacher->member()] = inserted->id();
    *response->add_runs() = *std::move(inserted);
  }
  return current;
}

absl::StatusOr<v1::SweepActionResponse> Sweeps::Retry(const std::string& ref,
                                                      const Requester& who) {
  Locked lock(&core_);
  Store& store = core_.store();
  absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(store, ref);
  if (!sweep.ok()) return sweep.status();
  if (absl::Status s = CheckMayChange(
          who, sweep->owner(),
          absl::StrCat("sweep ", sweep->id(), " (", sweep->name(), ")"));
      !s.ok()) {
    return s;
  }
  v1::SweepActionResponse response;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    absl::StatusOr<std::vector<v1::Run>> runs =
        store.ListRuns(sweep->id(), v1::RUN_STATUS_UNSPECIFIED);
    if (!runs.ok()) return runs.status();
    absl::flat_hash_map<int64_t, std::string> teacher_name;  // Run -> name.
    for (const v1::Run& run : *runs) {
      if (run.spec().kind() == v1::TRAIN_TEACHER)
        teacher_name[run.id()] = run.member();
    }
    auto current = RetryTeachersLocked(lock, *sweep, *runs, &response);
    if (!current.ok()) return current.status();
    // The teacher a member distils from now: its own teacher's newest run,
    // or the existing run the sweep named.
    auto teacher_now = [&](int64_t teacher_id) -> absl::StatusOr<int64_t> {
      if (auto it = teacher_name.find(teacher_id); it != teacher_name.end())
        return (*current)[it->second];
      absl::StatusOr<v1::Run> teacher = store.GetRun(teacher_id);
      if (!teacher.ok()) return teacher.status();
      if (Retryable(teacher->status())) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the sweep's teacher, run ", teacher_id,
            " of another sweep, ended ", StatusName(teacher->status()),
            "; retry that one first"));
      }
      return teacher_id;
    };
    absl::StatusOr<int64_t> first = teacher_now(sweep->teacher_run_id());
    if (!first.ok()) return first.status();
    if (*first != sweep->teacher_run_id()) {
      if (absl::Status t = store.SetSweepTeacher(sweep->id(), *first); !t.ok())
        return t;
      sweep->set_teacher_run_id(*first);
    }
    for (const v1::Run* run : NewestByMember(*runs, v1::DISTILL)) {
      if (!Retryable(run->status())) continue;
      absl::StatusOr<int64_t> teacher_id = teacher_now(run->teacher_run_id());
      if (!teacher_id.ok()) return teacher_id.status();
      absl::StatusOr<v1::RunStatus> member_status =
          core_.StatusBehindTeacherLocked(lock, *teacher_id);
      if (!member_status.ok()) return member_status.status();
      absl::StatusOr<v1::Run> inserted = core_.InsertRunLocked(
          lock,
          NewSweepRun(sweep->id(), run->member(), run->spec(), *member_status,
                      run->priority(), sweep->owner(), *teacher_id));
      if (!inserted.ok()) return inserted.status();
      *response.add_runs() = *std::move(inserted);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  *response.mutable_sweep() = *sweep;
  core_.QueueChangedLocked(lock);
  return response;
}

absl::StatusOr<v1::SweepResults> Sweeps::Results(const std::string& ref) {
  absl::StatusOr<v1::Sweep> sweep;
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::StatusOr<v1::Run> teacher;
  absl::Status read = core_.Read([&](Store& store) -> absl::Status {
    sweep = FindSweepByRef(store, ref);
    if (!sweep.ok()) return sweep.status();
    runs = store.ListRuns(sweep->id(), v1::RUN_STATUS_UNSPECIFIED);
    if (!runs.ok()) return runs.status();
    teacher = store.GetRun(sweep->teacher_run_id());
    return absl::OkStatus();
  });
  if (!read.ok()) return read;
  v1::SweepResults results;
  *results.mutable_sweep() = *sweep;
  results.set_teacher_run_id(sweep->teacher_run_id());
  if (teacher.ok()) {
    results.set_teacher_status(teacher->status());
    if (auto it = teacher->results().find(metric_keys::kEvalTop1);
        it != teacher->results().end()) {
      results.set_teacher_top1(it->second);
    }
  }
  // The teachers: the sweep's own (the newest of each name), or the
  // existing run it names. A member's teacher is known by its run id.
  absl::flat_hash_map<int64_t, std::string> teacher_name;
  for (const v1::Run& run : *runs) {
    if (run.spec().kind() == v1::TRAIN_TEACHER)
      teacher_name[run.id()] = run.member();
  }
  std::vector<const v1::Run*> teachers =
      NewestByMember(*runs, v1::TRAIN_TEACHER);
  if (teachers.empty() && teacher.ok())
    AddTeacher(*teacher, "teacher", &results);
  for (const v1::Run* t : teachers) AddTeacher(*t, t->member(), &results);
  // The DISTILL run of each member (the newest, should a name repeat), in
  // the order the sweep expanded them (grid members included).
  for (const v1::Run* run : NewestByMember(*runs, v1::DISTILL))
    AddMember(*run, teacher_name, &results);
  for (const v1::Run& run : *runs)
    results.set_file_bytes(results.file_bytes() + FileBytes(run));
  return results;
}

absl::Status Sweeps::StopEarlyIfBehindLocked(
    const Locked& lock, v1::Run& run,
    const std::vector<v1::MetricPoint>& points, std::string* stop_reason) {
  if (run.sweep_id() == 0 || run.spec().kind() != v1::DISTILL) {
    return absl::OkStatus();
  }
  // Only a report holding a judgement of an epoch asks for the sweep.
  if (std::none_of(points.begin(), points.end(), [](const v1::MetricPoint& p) {
        return p.epoch() > 0 && absl::StartsWith(p.key(), metric_keys::kEval);
      })) {
    return absl::OkStatus();
  }
  Store& store = core_.store();
  absl::StatusOr<v1::Sweep> sweep = store.GetSweep(run.sweep_id());
  if (!sweep.ok()) return sweep.status();
  const v1::EarlyStopping& rule = sweep->spec().early_stopping();
  if (rule.rule() == v1::STOPPING_RULE_UNSPECIFIED) return absl::OkStatus();
  const std::string metric =
      rule.metric().empty() ? metric_keys::kDefaultRanking : rule.metric();
  const int epoch = JudgedEpoch(points, metric);
  // A member at its last epoch has its result: it completes.
  if (epoch == 0 || epoch >= run.spec().epochs()) return absl::OkStatus();
  absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>> history =
      store.SweepMetric(run.sweep_id(), metric);
  if (!history.ok()) return history.status();
  if (int(CurveOf((*history)[run.id()]).values.size()) < epoch)
    return absl::OkStatus();
  absl::StatusOr<std::vector<v1::Run>> runs =
      store.ListRuns(run.sweep_id(), v1::RUN_STATUS_UNSPECIFIED);
  if (!runs.ok()) return runs.status();
  const Field field = FieldOf(run, *runs, *history, epoch);
  StopDecision decision =
      Decide(rule, run.spec().epochs(), field.member, epoch, field.others);
  if (!decision.stop) return absl::OkStatus();
  if (field.averaged > 1) {
    absl::StrAppend(&decision.reason, " (the mean of ",
                    WithoutSeed(run.member()), "'s ", field.averaged,
                    " seeds at that epoch)");
  }
  DISTILL_LOG(INFO) << "run " << run.id() << " (" << run.member()
                    << "): " << decision.reason;
  if (absl::Status s =
          core_.FinishLocked(lock, run, v1::PRUNED, decision.reason);
      !s.ok())
    return s;
  *stop_reason = decision.reason;
  for (const v1::Run* seed : field.seeds) {
    if (IsTerminal(seed->status())) continue;
    v1::Run sibling = *seed;
    if (absl::Status s = core_.FinishLocked(
            lock, sibling, v1::PRUNED,
            absl::StrCat("pruned with run ", run.id(), " (", run.member(),
                         "), a seed of the same member: ", decision.reason));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace distill
