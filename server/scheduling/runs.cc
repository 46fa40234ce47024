#include "server/scheduling/runs.h"

#include "absl/strings/str_cat.h"
#include "common/run_status.h"
#include "common/validation.h"

namespace distill {

absl::StatusOr<v1::Run> Runs::Submit(const v1::ExperimentSpec& submitted,
                                     const Requester& who) {
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveAndValidate(submitted);
  if (!resolved.ok()) return resolved.status();
  const v1::ExperimentSpec& spec = *resolved;
  Locked lock(&core_);
  Store& store = core_.store();
  v1::Run run;
  *run.mutable_spec() = spec;
  run.set_status(v1::QUEUED);
  run.set_owner(who.name);
  if (spec.student_run_id() != 0) {
    absl::StatusOr<v1::Run> student = store.GetRun(spec.student_run_id());
    if (!student.ok()) {
      return absl::NotFoundError(absl::StrCat(
          "student_run_id ", spec.student_run_id(), ": no such run"));
    }
    if (student->spec().kind() != v1::DISTILL ||
        student->status() != v1::SUCCEEDED) {
      return absl::FailedPreconditionError(
          absl::StrCat("student_run_id ", spec.student_run_id(), " is a ",
                       v1::ExperimentKind_Name(student->spec().kind()),
                       " run that is ", StatusName(student->status()),
                       "; EVALUATE needs a SUCCEEDED DISTILL run"));
    }
    if (absl::Status s =
            core_.CheckpointKeptLocked(lock, *student, "student_run_id");
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = core_.CheckForkLocked(lock, spec); !s.ok()) return s;
  if (spec.kind() != v1::TRAIN_TEACHER && spec.teacher().run_id() != 0) {
    absl::StatusOr<v1::RunStatus> status =
        core_.StatusBehindTeacherLocked(lock, spec.teacher().run_id());
    if (!status.ok()) return status.status();
    run.set_status(*status);
    run.set_teacher_run_id(spec.teacher().run_id());
  }
  // One transaction: a call that fails leaves no run behind.
  absl::StatusOr<v1::Run> inserted;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    inserted = core_.InsertRunLocked(lock, std::move(run));
    return inserted.status();
  });
  if (!s.ok()) return s;
  core_.QueueChangedLocked(lock);
  return inserted;
}

absl::StatusOr<v1::Run> Runs::Cancel(int64_t id, const Requester& who) {
  Locked lock(&core_);
  absl::StatusOr<v1::Run> run = core_.store().GetRun(id);
  if (!run.ok()) return run.status();
  if (absl::Status s =
          CheckMayChange(who, run->owner(), absl::StrCat("run ", id));
      !s.ok()) {
    return s;
  }
  if (IsTerminal(run->status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", id, " already ended ", StatusName(run->status())));
  }
  absl::Status s = core_.Write([&] {
    core_.AssertHeld();
    return core_.FinishLocked(lock, *run, v1::CANCELLED,
                              "cancelled by request");
  });
  if (!s.ok()) return s;
  return *run;
}

}  // namespace distill
