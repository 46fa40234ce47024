#include "server/scheduler.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "common/time_text.h"
#include "common/validation.h"

namespace distill {

Scheduler::Scheduler(Store* store, RunFileStore* run_files, Clock* clock,
                     SchedulerOptions options)
    : core_(store, run_files, clock, options) {}

void Scheduler::Shutdown() {
  {
    Locked lock(&core_);
    core_.set_shutting_down();
    core_.QueueChangedLocked(lock);
  }
  core_.hub().NotifyAll();
}

absl::StatusOr<v1::Run> Scheduler::InsertRun(
    const v1::ExperimentSpec& submitted, const Requester& who) {
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

absl::StatusOr<RunPage> Scheduler::ListRunsPage(int64_t sweep_id,
                                                v1::RunStatus status,
                                                const std::string& page_token,
                                                int page_size) {
  v1::ListRunsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_status(status);
  request.set_page_token(page_token);
  request.set_page_size(page_size);
  return reads_.FindRuns(request);
}

absl::StatusOr<v1::Run> Scheduler::Cancel(int64_t id, const Requester& who) {
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

absl::StatusOr<v1::Worker> Scheduler::Drain(const std::string& id) {
  int64_t run_id = 0;
  absl::StatusOr<WorkerRecord> worker = leases_.Drain(id, &run_id);
  if (!worker.ok()) return worker.status();
  return reads_.WorkerInfo(*worker, run_id);
}

namespace {

// The token `name` means to revoke: its one valid token, else its newest
// revoked one (whose revocation Revoke then names); NOT_FOUND when no token
// has it, FAILED_PRECONDITION naming their ids when several valid ones do.
absl::StatusOr<int64_t> TokenNamed(const std::vector<TokenRecord>& tokens,
                                   const std::string& name) {
  std::vector<int64_t> valid;
  int64_t revoked = 0;
  for (const TokenRecord& t : tokens) {
    if (t.name != name) continue;
    if (t.revoked_ms == 0)
      valid.push_back(t.id);
    else
      revoked = t.id;
  }
  if (valid.size() == 1) return valid.front();
  if (valid.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        valid.size(), " valid tokens are named \"", name, "\" (ids ",
        absl::StrJoin(valid, ", "), "); revoke by id"));
  }
  if (revoked != 0) return revoked;
  return absl::NotFoundError(absl::StrCat("no token is named \"", name, "\""));
}

}  // namespace

absl::StatusOr<TokenRecord> Scheduler::AddToken(TokenRecord token,
                                                bool unique_name) {
  Locked lock(&core_);
  token.created_ms = core_.clock().NowMs();
  absl::StatusOr<int64_t> id;
  if (absl::Status s = core_.Write([&]() -> absl::Status {
        core_.AssertHeld();
        if (unique_name) {
          absl::StatusOr<std::vector<TokenRecord>> tokens =
              core_.store().ListTokens();
          if (!tokens.ok()) return tokens.status();
          for (const TokenRecord& t : *tokens) {
            if (t.name != token.name || t.revoked_ms != 0) continue;
            return absl::AlreadyExistsError(absl::StrCat(
                "token ", t.id, " is named \"", token.name,
                "\" and valid (made ", TimeText(t.created_ms),
                "); a name is one owner: revoke that token first, or "
                "choose another name"));
          }
        }
        id = core_.store().InsertToken(token);
        return id.status();
      });
      !s.ok()) {
    return s;
  }
  token.id = *id;
  return token;
}

absl::StatusOr<std::vector<TokenRecord>> Scheduler::ListTokens() {
  Locked lock(&core_);
  return core_.store().ListTokens();
}

absl::StatusOr<TokenPage> Scheduler::ListTokensPage(
    const std::string& page_token, int page_size) {
  absl::StatusOr<int64_t> after = RowToken(page_token, "token");
  if (!after.ok()) return after.status();
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) return size.status();
  // Tokens are made by hand and few: read whole, answered a page at a time.
  absl::StatusOr<std::vector<TokenRecord>> tokens = ListTokens();
  if (!tokens.ok()) return tokens.status();
  TokenPage page;
  for (TokenRecord& token : *tokens) {
    if (token.id <= *after) continue;
    if (int(page.tokens.size()) == *size) {
      page.next_page_token = absl::StrCat(page.tokens.back().id);
      break;
    }
    page.tokens.push_back(std::move(token));
  }
  return page;
}

absl::StatusOr<TokenRecord> Scheduler::Revoke(int64_t id,
                                              const std::string& name) {
  Locked lock(&core_);
  absl::StatusOr<TokenRecord> revoked;
  const int64_t now = core_.clock().NowMs();
  if (absl::Status s = core_.Write([&]() -> absl::Status {
        core_.AssertHeld();
        absl::StatusOr<std::vector<TokenRecord>> tokens =
            core_.store().ListTokens();
        if (!tokens.ok()) return tokens.status();
        if (id == 0) {
          absl::StatusOr<int64_t> named = TokenNamed(*tokens, name);
          if (!named.ok()) return named.status();
          id = *named;
        }
        // A revoked token says when it was revoked, not "revoked" again.
        for (const TokenRecord& t : *tokens) {
          if (t.id != id || t.revoked_ms == 0) continue;
          return absl::FailedPreconditionError(absl::StrCat(
              "token ", id, " (", t.name, ") was already revoked at ",
              TimeText(t.revoked_ms)));
        }
        revoked = core_.store().RevokeToken(id, now);
        return revoked.status();
      });
      !s.ok()) {
    return s;
  }
  return revoked;
}

}  // namespace distill
