#include "server/scheduler.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/catalog.h"
#include "common/early_stopping.h"
#include "common/log.h"
#include "common/metric_keys.h"
#include "common/provenance.h"
#include "common/run_files.h"
#include "common/sha256.h"
#include "common/spec_fields.h"
#include "common/sweep_expansion.h"
#include "common/validation.h"
#include "common/version.h"

namespace distill {
namespace {

std::string StatusName(v1::RunStatus status) {
  return v1::RunStatus_Name(status);
}

// A run file's name: safe in paths and URLs, and not a hidden file.
bool IsFileName(const std::string& name) {
  if (name.size() > 64 || (!name.empty() && name[0] == '.')) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(c) && c != '.' && c != '_' && c != '-')
      return false;
  }
  return true;
}

// A metric point or result: a key of bounded length and a finite value.
absl::Status CheckMetric(const std::string& where, const std::string& key,
                         double value) {
  if (key.empty() || key.size() > limits::kMetricKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": a metric key must be 1 to ",
                     limits::kMetricKeyBytes, " bytes, got ", key.size()));
  }
  if (!std::isfinite(value)) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ": ", key, " must be finite, got ", value));
  }
  return absl::OkStatus();
}

// A worker's provenance entries: only the keys it may report
// (provenance::kWorkerKeys), digests as SHA-256 hex, the count a number.
absl::Status CheckWorkerProvenance(
    const google::protobuf::Map<std::string, std::string>& entries) {
  for (const auto& [key, value] : entries) {
    if (!provenance::IsWorkerKey(key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("provenance key \"", absl::CHexEscape(key.substr(0, 64)),
                       "\" is not one a worker reports (",
                       absl::StrJoin(provenance::kWorkerKeys, ", "), ")"));
    }
    int64_t count = 0;
    const bool ok = key == provenance::kDataFiles
                        ? value.size() <= 12 &&
                              absl::SimpleAtoi(value, &count) && count >= 0
                        : IsSha256Hex(value);
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("provenance ", key, ": \"",
                       absl::CHexEscape(value.substr(0, 80)), "\" is not ",
                       key == provenance::kDataFiles ? "a file count"
                                                     : "a SHA-256 hex digest"));
    }
  }
  return absl::OkStatus();
}

// Refuses bytes beyond what the upload's header announced, so that a
// stranger's stream cannot fill the disk past its own declared size.
class BoundedWriter final : public RunFileWriter {
 public:
  BoundedWriter(std::unique_ptr<RunFileWriter> writer, int64_t limit)
      : writer_(std::move(writer)), limit_(limit) {}
  absl::Status Append(std::string_view data) override {
    if (writer_->size() + int64_t(data.size()) > limit_) {
      return absl::InvalidArgumentError(
          absl::StrCat("the upload sends more than the ", limit_,
                       " bytes its header announced"));
    }
    return writer_->Append(data);
  }
  absl::StatusOr<std::string> Commit(
      const std::string& expected_sha256) override {
    return writer_->Commit(expected_sha256);
  }
  int64_t size() const override { return writer_->size(); }

 private:
  std::unique_ptr<RunFileWriter> writer_;
  const int64_t limit_;
};

}  // namespace

Scheduler::Scheduler(Store* store, RunFileStore* run_files, Clock* clock,
                     SchedulerOptions options)
    : store_(store), run_files_(run_files), clock_(clock), options_(options) {}

void Scheduler::QueueChanged() { queue_changed_ = true; }

void Scheduler::Shutdown() {
  {
    Locked lock(this);
    shutting_down_ = true;
    QueueChanged();
  }
  hub_.NotifyAll();
}

std::unique_ptr<Store> Scheduler::TakeReader() {
  absl::MutexLock lock(&readers_mu_);
  if (!readers_.empty()) {
    std::unique_ptr<Store> reader = std::move(readers_.back());
    readers_.pop_back();
    return reader;
  }
  if (no_readers_) return nullptr;
  absl::StatusOr<std::unique_ptr<Store>> reader = store_->OpenReader();
  if (!reader.ok()) {
    // An in-memory database: reads share the writer.
    if (absl::IsFailedPrecondition(reader.status()))
      no_readers_ = true;
    else
      DISTILL_LOG(WARNING) << reader.status().message();
    return nullptr;
  }
  return *std::move(reader);
}

void Scheduler::ReturnReader(std::unique_ptr<Store> reader) {
  absl::MutexLock lock(&readers_mu_);
  readers_.push_back(std::move(reader));
}

absl::Status Scheduler::Read(const std::function<absl::Status(Store&)>& fn) {
  if (std::unique_ptr<Store> reader = TakeReader(); reader != nullptr) {
    absl::Status s = reader->InTransaction([&] { return fn(*reader); });
    ReturnReader(std::move(reader));
    return s;
  }
  Locked lock(this);
  return fn(*store_);
}

absl::StatusOr<v1::Run> Scheduler::InsertRun(v1::Run run) {
  run.set_created_ms(clock_->NowMs());
  absl::StatusOr<int64_t> id = store_->InsertRun(run);
  if (!id.ok()) return id.status();
  run.set_id(*id);
  return run;
}

absl::StatusOr<v1::RunStatus> Scheduler::StatusBehindTeacher(
    int64_t teacher_run_id) {
  absl::StatusOr<v1::Run> teacher = store_->GetRun(teacher_run_id);
  if (!teacher.ok()) {
    return absl::NotFoundError(
        absl::StrCat("teacher.run_id ", teacher_run_id, ": no such run"));
  }
  if (teacher->spec().kind() != v1::TRAIN_TEACHER) {
    return absl::InvalidArgumentError(
        absl::StrCat("teacher.run_id ", teacher_run_id, " is a ",
                     v1::ExperimentKind_Name(teacher->spec().kind()),
                     " run, not TRAIN_TEACHER"));
  }
  switch (teacher->status()) {
    case v1::SUCCEEDED:
      return v1::QUEUED;
    case v1::FAILED:
    case v1::CANCELLED:
    case v1::PRUNED:
      return absl::FailedPreconditionError(absl::StrCat(
          "teacher run ", teacher_run_id, " ended ",
          StatusName(teacher->status()), ": ", teacher->message()));
    default:
      return v1::WAITING;
  }
}

absl::StatusOr<v1::Run> Scheduler::SubmitRun(
    const v1::ExperimentSpec& submitted) {
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveAndValidate(submitted);
  if (!resolved.ok()) return resolved.status();
  const v1::ExperimentSpec& spec = *resolved;
  Locked lock(this);
  v1::Run run;
  *run.mutable_spec() = spec;
  run.set_status(v1::QUEUED);
  if (spec.student_run_id() != 0) {
    absl::StatusOr<v1::Run> student = store_->GetRun(spec.student_run_id());
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
  }
  if (spec.kind() != v1::TRAIN_TEACHER && spec.teacher().run_id() != 0) {
    absl::StatusOr<v1::RunStatus> status =
        StatusBehindTeacher(spec.teacher().run_id());
    if (!status.ok()) return status.status();
    run.set_status(*status);
    run.set_teacher_run_id(spec.teacher().run_id());
  }
  // One transaction: a call that fails leaves no run behind.
  absl::StatusOr<v1::Run> inserted;
  absl::Status s = store_->InTransaction([&]() -> absl::Status {
    inserted = InsertRun(std::move(run));
    return inserted.status();
  });
  if (!s.ok()) return s;
  QueueChanged();
  return inserted;
}

absl::StatusOr<v1::SubmitSweepResponse> Scheduler::SubmitSweep(
    const v1::SweepSpec& spec) {
  absl::StatusOr<ExpandedSweep> expanded = ExpandSweep(spec);
  if (!expanded.ok()) return expanded.status();

  Locked lock(this);
  v1::SubmitSweepResponse response;
  absl::Status status = store_->InTransaction([&]() -> absl::Status {
    v1::Sweep* sweep = response.mutable_sweep();
    sweep->set_name(spec.name());
    *sweep->mutable_spec() = spec;
    sweep->set_created_ms(clock_->NowMs());
    absl::StatusOr<int64_t> sweep_id = store_->InsertSweep(*sweep);
    if (!sweep_id.ok()) return sweep_id.status();
    sweep->set_id(*sweep_id);

    // The teachers first (each member waits for its own), then the members.
    std::vector<int64_t> teacher_ids;
    for (SweepTeacherSpec& teacher_spec : expanded->teachers) {
      v1::Run teacher;
      teacher.set_sweep_id(*sweep_id);
      teacher.set_member(teacher_spec.name);
      *teacher.mutable_spec() = std::move(teacher_spec.spec);
      teacher.set_status(v1::QUEUED);
      teacher.set_priority(spec.priority());
      absl::StatusOr<v1::Run> inserted = InsertRun(std::move(teacher));
      if (!inserted.ok()) return inserted.status();
      teacher_ids.push_back(inserted->id());
      *response.add_runs() = *std::move(inserted);
    }
    if (teacher_ids.empty()) teacher_ids.push_back(spec.teacher().run_id());
    std::vector<v1::RunStatus> member_status;
    for (int64_t teacher_id : teacher_ids) {
      absl::StatusOr<v1::RunStatus> s = StatusBehindTeacher(teacher_id);
      if (!s.ok()) return s.status();
      member_status.push_back(*s);
    }
    sweep->set_teacher_run_id(teacher_ids.front());
    if (absl::Status s =
            store_->SetSweepTeacher(*sweep_id, teacher_ids.front());
        !s.ok())
      return s;

    for (SweepMemberSpec& member : expanded->members) {
      const int64_t teacher_id = teacher_ids[member.teacher];
      v1::Run run;
      run.set_sweep_id(*sweep_id);
      run.set_member(member.name);
      member.spec.mutable_teacher()->set_run_id(teacher_id);
      *run.mutable_spec() = std::move(member.spec);
      run.set_status(member_status[member.teacher]);
      run.set_teacher_run_id(teacher_id);
      run.set_priority(spec.priority());
      absl::StatusOr<v1::Run> inserted = InsertRun(std::move(run));
      if (!inserted.ok()) return inserted.status();
      *response.add_runs() = *std::move(inserted);
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  QueueChanged();
  return response;
}

absl::StatusOr<v1::Run> Scheduler::GetRun(int64_t id) {
  absl::StatusOr<v1::Run> run;
  absl::Status s = Read([&](Store& store) {
    run = store.GetRun(id);
    return run.status();
  });
  if (!s.ok()) return s;
  return run;
}

absl::StatusOr<std::vector<v1::Run>> Scheduler::ListRuns(int64_t sweep_id,
                                                         v1::RunStatus status) {
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::Status s = Read([&](Store& store) {
    runs = store.ListRuns(sweep_id, status);
    return runs.status();
  });
  if (!s.ok()) return s;
  return runs;
}

namespace {

// A page token names the filters it was made for (a digest of them) and
// where the next page starts (the last id shown, or with a sort the rows
// shown): "FILTERS.N".
std::string FilterDigest(const v1::ListRunsRequest& request) {
  v1::ListRunsRequest filters = request;
  filters.clear_page_token();
  filters.clear_page_size();
  return Sha256Hex(filters.SerializeAsString()).substr(0, 12);
}

absl::StatusOr<int64_t> PagePosition(const v1::ListRunsRequest& request) {
  const std::string& token = request.page_token();
  if (token.empty()) return 0;
  const std::vector<std::string> parts = absl::StrSplit(token, '.');
  int64_t position;
  if (parts.size() != 2 || !absl::SimpleAtoi(parts[1], &position) ||
      position < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", token.substr(0, 64),
                     "\" is not one a listing answered"));
  }
  if (parts[0] != FilterDigest(request)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_token \"", token.substr(0, 64),
        "\" was made for other filters; keep the filters of the first page"));
  }
  return position;
}

// A page token that is a row's id (0 when empty).
absl::StatusOr<int64_t> RowToken(const std::string& token, const char* what) {
  int64_t row = 0;
  if (!token.empty() && (!absl::SimpleAtoi(token, &row) || row <= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", token.substr(0, 64), "\" is not one a ",
                     what, " listing answered"));
  }
  return row;
}

absl::Status CheckTagKey(const std::string& key) {
  const bool ok =
      !key.empty() && key.size() <= kMaxTagKeyBytes &&
      std::all_of(key.begin(), key.end(), [](char c) {
        return absl::ascii_isalnum(c) ||
               std::string_view("_.-/:").find(c) != std::string_view::npos;
      });
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("tag key \"", key.substr(0, 64), "\" must be 1 to ",
                   kMaxTagKeyBytes, " letters, digits and _.-/:"));
}

absl::StatusOr<int> PageSize(int page_size) {
  if (page_size < 0 || page_size > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be 0 (the default, ", kDefaultPageSize,
                     ") to ", kMaxPageSize, ", got ", page_size));
  }
  return page_size == 0 ? kDefaultPageSize : page_size;
}

}  // namespace

absl::StatusOr<RunPage> Scheduler::ListRunsPage(int64_t sweep_id,
                                                v1::RunStatus status,
                                                const std::string& page_token,
                                                int page_size) {
  v1::ListRunsRequest request;
  request.set_sweep_id(sweep_id);
  request.set_status(status);
  request.set_page_token(page_token);
  request.set_page_size(page_size);
  return FindRuns(request);
}

absl::StatusOr<RunPage> Scheduler::FindRuns(
    const v1::ListRunsRequest& request) {
  absl::StatusOr<int> size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::StatusOr<int64_t> position = PagePosition(request);
  if (!position.ok()) return position.status();
  RunQuery query;
  query.sweep_id = request.sweep_id();
  query.status = request.status();
  query.kind = request.kind();
  query.teacher_run_id = request.teacher_run_id();
  query.member = request.member();
  query.created_after_ms = request.created_after_ms();
  query.created_before_ms = request.created_before_ms();
  if (!v1::RunStatus_IsValid(query.status) ||
      !v1::ExperimentKind_IsValid(query.kind)) {
    return absl::InvalidArgumentError(
        absl::StrCat("status ", int(query.status), " or kind ", int(query.kind),
                     " is not a value of its enum"));
  }
  if (query.member.size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("member must be at most ", limits::kNameBytes,
                     " bytes, got ", query.member.size()));
  }
  if (request.where_size() > kMaxRunFilters) {
    return absl::InvalidArgumentError(
        absl::StrCat("where lists at most ", kMaxRunFilters, " fields, got ",
                     request.where_size()));
  }
  for (const std::string& condition : request.where()) {
    const size_t eq = condition.find('=');
    if (eq == std::string::npos || eq == 0 ||
        condition.size() > limits::kPathBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("where \"", condition.substr(0, 64),
                       "\" is not PATH=VALUE (\"losses.ikd.temperature=4\")"));
    }
    absl::StatusOr<std::string> value =
        CanonicalFieldValue(condition.substr(0, eq), condition.substr(eq + 1));
    if (!value.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("where ", value.status().message()));
    }
    query.fields.emplace_back(condition.substr(0, eq), *std::move(value));
  }
  if (request.tag_size() > kMaxRunFilters) {
    return absl::InvalidArgumentError(
        absl::StrCat("tag lists at most ", kMaxRunFilters, " tags, got ",
                     request.tag_size()));
  }
  for (const std::string& tag : request.tag()) {
    const size_t eq = tag.find('=');
    const std::string key = tag.substr(0, eq);
    if (absl::Status s = CheckTagKey(key); !s.ok()) return s;
    query.tags.emplace_back(key, eq == std::string::npos
                                     ? std::nullopt
                                     : std::optional(tag.substr(eq + 1)));
  }
  if (request.note_contains().size() > kMaxNoteBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("note_contains is at most ", kMaxNoteBytes, " bytes, got ",
                     request.note_contains().size()));
  }
  query.note_contains = request.note_contains();
  std::string sort = request.sort();
  if (absl::StartsWith(sort, "-")) {
    query.descending = true;
    sort = sort.substr(1);
  }
  if (sort.size() > limits::kMetricKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sort must name a result key of at most ",
                     limits::kMetricKeyBytes, " bytes, got ", sort.size()));
  }
  query.sort_key = sort;
  if (sort.empty()) {
    query.after_id = *position;
  } else {
    query.offset = *position;
  }
  // One more than asked: whether a next page exists.
  query.limit = *size + 1;
  RunPage page;
  absl::Status s = Read([&](Store& store) -> absl::Status {
    absl::StatusOr<std::vector<v1::Run>> runs = store.FindRuns(query);
    if (!runs.ok()) return runs.status();
    page.runs = *std::move(runs);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (int(page.runs.size()) > *size) {
    page.runs.resize(*size);
    page.next_page_token =
        absl::StrCat(FilterDigest(request), ".",
                     sort.empty() ? page.runs.back().id() : *position + *size);
  }
  return page;
}

absl::StatusOr<std::vector<v1::Sweep>> Scheduler::RecentSweeps(int limit) {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps;
  absl::Status s = Read([&](Store& store) {
    sweeps = store.ListSweeps(limit);
    return sweeps.status();
  });
  if (!s.ok()) return s;
  return sweeps;
}

absl::StatusOr<std::vector<v1::Run>> Scheduler::RecentRuns(int limit) {
  RunQuery query;
  query.newest_first = true;
  query.limit = limit;
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::Status s = Read([&](Store& store) {
    runs = store.FindRuns(query);
    return runs.status();
  });
  if (!s.ok()) return s;
  return runs;
}

absl::StatusOr<std::string> Scheduler::ReadRunFile(int64_t run_id,
                                                   const std::string& name,
                                                   size_t max_bytes) {
  absl::StatusOr<std::unique_ptr<RunFileReader>> reader =
      OpenRunFile(run_id, name);
  if (!reader.ok()) return reader.status();
  std::string content;
  while (true) {
    absl::StatusOr<std::string> chunk = (*reader)->Read(1 << 20);
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) return content;
    content += *chunk;
    if (content.size() > max_bytes) {
      return absl::OutOfRangeError(absl::StrCat("run ", run_id, "'s ", name,
                                                " is larger than ", max_bytes,
                                                " bytes"));
    }
  }
}

absl::StatusOr<MetricPage> Scheduler::MetricHistory(
    int64_t run_id, const std::string& page_token, int page_size) {
  int64_t after = 0;
  if (!page_token.empty() &&
      (!absl::SimpleAtoi(page_token, &after) || after < 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_token \"", page_token.substr(0, 64),
                     "\" is not one a metric history page answered"));
  }
  if (page_size < 0 || page_size > kMaxMetricPageSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "page_size must be 0 (the default, ", kDefaultMetricPageSize, ") to ",
        kMaxMetricPageSize, ", got ", page_size));
  }
  const int64_t size = page_size == 0 ? kDefaultMetricPageSize : page_size;
  MetricPage page;
  absl::Status s = Read([&](Store& store) -> absl::Status {
    if (absl::Status s = store.GetRun(run_id).status(); !s.ok()) return s;
    absl::StatusOr<std::vector<StoredMetric>> points =
        store.Metrics(run_id, after, size + 1);
    if (!points.ok()) return points.status();
    const bool more = int64_t(points->size()) > size;
    if (more) points->resize(size);
    for (StoredMetric& m : *points) page.points.push_back(std::move(m.point));
    if (more) page.next_page_token = absl::StrCat(points->back().sequence);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return page;
}

absl::StatusOr<v1::Run> Scheduler::CancelRun(int64_t id) {
  Locked lock(this);
  absl::StatusOr<v1::Run> run = store_->GetRun(id);
  if (!run.ok()) return run.status();
  if (IsTerminal(run->status())) {
    return absl::FailedPreconditionError(
        absl::StrCat("run ", id, " already ended ", StatusName(run->status())));
  }
  absl::Status s = Transaction(
      [&] { return Finish(*run, v1::CANCELLED, "cancelled by request"); });
  if (!s.ok()) return s;
  return *run;
}

namespace {

absl::StatusOr<v1::Sweep> FindSweepByRef(Store& store, const std::string& ref) {
  int64_t id;
  return absl::SimpleAtoi(ref, &id) ? store.GetSweep(id) : store.FindSweep(ref);
}

// The newest run of each name among `runs` (id order), in first-seen order.
std::vector<const v1::Run*> NewestByMember(const std::vector<v1::Run>& runs,
                                           v1::ExperimentKind kind) {
  absl::flat_hash_map<std::string, size_t> slot;
  std::vector<const v1::Run*> newest;
  for (const v1::Run& run : runs) {
    if (run.spec().kind() != kind) continue;
    auto [it, added] = slot.try_emplace(run.member(), newest.size());
    if (added) {
      newest.push_back(&run);
    } else {
      newest[it->second] = &run;
    }
  }
  return newest;
}

}  // namespace

absl::StatusOr<v1::SweepActionResponse> Scheduler::CancelSweep(
    const std::string& ref) {
  Locked lock(this);
  absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(*store_, ref);
  if (!sweep.ok()) return sweep.status();
  v1::SweepActionResponse response;
  *response.mutable_sweep() = *sweep;
  absl::Status s = Transaction([&]() -> absl::Status {
    absl::StatusOr<std::vector<v1::Run>> runs =
        store_->ListRuns(sweep->id(), v1::RUN_STATUS_UNSPECIFIED);
    if (!runs.ok()) return runs.status();
    for (v1::Run& run : *runs) {
      // Re-read: cancelling a teacher fails its waiting students.
      absl::StatusOr<v1::Run> now = store_->GetRun(run.id());
      if (!now.ok()) return now.status();
      if (IsTerminal(now->status())) continue;
      if (absl::Status f =
              Finish(*now, v1::CANCELLED,
                     absl::StrCat("cancelled with sweep ", sweep->id()));
          !f.ok())
        return f;
      *response.add_runs() = *now;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  QueueChanged();
  return response;
}

absl::StatusOr<v1::SweepActionResponse> Scheduler::RetrySweep(
    const std::string& ref) {
  Locked lock(this);
  absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(*store_, ref);
  if (!sweep.ok()) return sweep.status();
  v1::SweepActionResponse response;
  auto retryable = [](v1::RunStatus s) {
    return s == v1::FAILED || s == v1::CANCELLED;
  };
  absl::Status s = store_->InTransaction([&]() -> absl::Status {
    absl::StatusOr<std::vector<v1::Run>> runs =
        store_->ListRuns(sweep->id(), v1::RUN_STATUS_UNSPECIFIED);
    if (!runs.ok()) return runs.status();
    // The sweep's own teachers: each name's newest run, queued again when
    // it did not succeed.
    absl::flat_hash_map<int64_t, std::string> teacher_name;  // Run -> name.
    for (const v1::Run& run : *runs) {
      if (run.spec().kind() == v1::TRAIN_TEACHER)
        teacher_name[run.id()] = run.member();
    }
    absl::flat_hash_map<std::string, int64_t> current;  // Name -> run.
    for (const v1::Run* teacher : NewestByMember(*runs, v1::TRAIN_TEACHER)) {
      current[teacher->member()] = teacher->id();
      if (!retryable(teacher->status())) continue;
      v1::Run again;
      again.set_sweep_id(sweep->id());
      again.set_member(teacher->member());
      *again.mutable_spec() = teacher->spec();
      again.set_status(v1::QUEUED);
      again.set_priority(teacher->priority());
      absl::StatusOr<v1::Run> inserted = InsertRun(std::move(again));
      if (!inserted.ok()) return inserted.status();
      current[teacher->member()] = inserted->id();
      *response.add_runs() = *std::move(inserted);
    }
    // The teacher a member distils from now: its own teacher's newest run,
    // or the existing run the sweep named.
    auto teacher_now = [&](int64_t teacher_id) -> absl::StatusOr<int64_t> {
      if (auto it = teacher_name.find(teacher_id); it != teacher_name.end())
        return current[it->second];
      absl::StatusOr<v1::Run> teacher = store_->GetRun(teacher_id);
      if (!teacher.ok()) return teacher.status();
      if (retryable(teacher->status())) {
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
      if (absl::Status t = store_->SetSweepTeacher(sweep->id(), *first);
          !t.ok())
        return t;
      sweep->set_teacher_run_id(*first);
    }
    for (const v1::Run* run : NewestByMember(*runs, v1::DISTILL)) {
      if (!retryable(run->status())) continue;
      absl::StatusOr<int64_t> teacher_id = teacher_now(run->teacher_run_id());
      if (!teacher_id.ok()) return teacher_id.status();
      absl::StatusOr<v1::RunStatus> member_status =
          StatusBehindTeacher(*teacher_id);
      if (!member_status.ok()) return member_status.status();
      v1::Run again;
      again.set_sweep_id(sweep->id());
      again.set_member(run->member());
      *again.mutable_spec() = run->spec();
      again.mutable_spec()->mutable_teacher()->set_run_id(*teacher_id);
      again.set_teacher_run_id(*teacher_id);
      again.set_status(*member_status);
      again.set_priority(run->priority());
      absl::StatusOr<v1::Run> inserted = InsertRun(std::move(again));
      if (!inserted.ok()) return inserted.status();
      *response.add_runs() = *std::move(inserted);
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  *response.mutable_sweep() = *sweep;
  QueueChanged();
  return response;
}

absl::Status Scheduler::Transaction(const std::function<absl::Status()>& fn) {
  orphaned_.clear();
  absl::Status status = store_->InTransaction(fn);
  if (status.ok()) RemoveOrphaned();
  orphaned_.clear();
  return status;
}

void Scheduler::RemoveOrphaned() {
  for (const std::string& sha256 : orphaned_) {
    if (absl::Status s = run_files_->Remove(sha256); !s.ok())
      DISTILL_LOG(WARNING) << s.message();
  }
}

namespace {

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

}  // namespace

absl::Status Scheduler::StopEarlyIfBehind(
    v1::Run& run, const std::vector<v1::MetricPoint>& points,
    std::string* stop_reason) {
  if (run.sweep_id() == 0 || run.spec().kind() != v1::DISTILL) {
    return absl::OkStatus();
  }
  // Only a report holding a judgement of an epoch (one a run's epoch) asks
  // for the sweep.
  bool judged = false;
  for (const v1::MetricPoint& p : points) {
    judged = judged ||
             (p.epoch() > 0 && absl::StartsWith(p.key(), metric_keys::kEval));
  }
  if (!judged) return absl::OkStatus();
  absl::StatusOr<v1::Sweep> sweep = store_->GetSweep(run.sweep_id());
  if (!sweep.ok()) return sweep.status();
  const v1::EarlyStopping& rule = sweep->spec().early_stopping();
  if (rule.rule() == v1::STOPPING_RULE_UNSPECIFIED) return absl::OkStatus();
  const std::string metric =
      rule.metric().empty() ? metric_keys::kEvalTop1 : rule.metric();
  int epoch = 0;
  for (const v1::MetricPoint& p : points) {
    if (p.key() == metric) epoch = std::max(epoch, int(p.epoch()));
  }
  // A member at its last epoch has its result: it completes.
  if (epoch == 0 || epoch >= run.spec().epochs()) return absl::OkStatus();

  absl::StatusOr<std::map<int64_t, std::vector<EpochValue>>> history =
      store_->SweepMetric(run.sweep_id(), metric);
  if (!history.ok()) return history.status();
  Curve own = CurveOf((*history)[run.id()]);
  if (int(own.values.size()) < epoch) return absl::OkStatus();
  absl::StatusOr<std::vector<v1::Run>> runs =
      store_->ListRuns(run.sweep_id(), v1::RUN_STATUS_UNSPECIFIED);
  if (!runs.ok()) return runs.status();
  // Members are judged as the results table shows them: a member's seeds
  // as one, on their mean curve (so no seed of it survives on luck alone),
  // and they stop together.
  const std::string cell = WithoutSeed(run.member());
  std::map<std::string, std::vector<Curve>> replicates;
  std::vector<const v1::Run*> seeds;  // The other runs of `cell`.
  for (const v1::Run* other : NewestByMember(*runs, v1::DISTILL)) {
    if (other->id() == run.id()) continue;
    Curve curve = CurveOf((*history)[other->id()]);
    curve.completed = other->status() == v1::SUCCEEDED;
    const std::string other_cell = WithoutSeed(other->member());
    replicates[other_cell].push_back(std::move(curve));
    if (other_cell == cell) seeds.push_back(other);
  }
  std::vector<Curve>& mine = replicates[cell];
  mine.push_back(std::move(own));
  int averaged = 0;  // Seeds in the member's value at `epoch`.
  for (const Curve& c : mine) averaged += int(c.values.size()) >= epoch;
  const Curve member = MeanCurve(mine);
  std::vector<Curve> others;
  for (const auto& [name, curves] : replicates) {
    if (name != cell) others.push_back(MeanCurve(curves));
  }
  StopDecision decision;
  if (rule.rule() == v1::MEDIAN) {
    MedianRule median;
    if (rule.has_warmup_epochs()) median.warmup_epochs = rule.warmup_epochs();
    if (rule.min_completed() > 0) median.min_completed = rule.min_completed();
    decision = MedianDecision(median, Goal::kMaximize, member, epoch, others);
  } else {
    AshaRule asha;
    if (rule.grace_period() > 0) asha.grace_period = rule.grace_period();
    if (rule.reduction_factor() > 0)
      asha.reduction_factor = rule.reduction_factor();
    asha.max_epochs = run.spec().epochs();
    std::vector<double> recorded;
    for (const Curve& other : others) {
      if (int(other.values.size()) >= epoch)
        recorded.push_back(other.values[epoch - 1]);
    }
    decision = AshaDecision(asha, Goal::kMaximize, epoch,
                            member.values[epoch - 1], recorded);
  }
  if (!decision.stop) return absl::OkStatus();
  if (averaged > 1) {
    absl::StrAppend(&decision.reason, " (the mean of ", cell, "'s ", averaged,
                    " seeds at that epoch)");
  }
  DISTILL_LOG(INFO) << "run " << run.id() << " (" << run.member()
                    << "): " << decision.reason;
  if (absl::Status s = Finish(run, v1::PRUNED, decision.reason); !s.ok())
    return s;
  *stop_reason = decision.reason;
  for (const v1::Run* seed : seeds) {
    if (IsTerminal(seed->status())) continue;
    v1::Run sibling = *seed;
    if (absl::Status s = Finish(
            sibling, v1::PRUNED,
            absl::StrCat("pruned with run ", run.id(), " (", run.member(),
                         "), a seed of the same member: ", decision.reason));
        !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

absl::Status Scheduler::Finish(v1::Run& run, v1::RunStatus status,
                               const std::string& message) {
  run.set_status(status);
  run.set_message(message);
  run.set_finished_ms(clock_->NowMs());
  run.set_lease_expires_ms(0);
  if (absl::Status s = store_->UpdateRun(run); !s.ok()) return s;
  // A run that ended keeps no resume point; one that did not succeed keeps
  // no file at all (what it uploaded serves nobody, and must not pile up).
  absl::StatusOr<std::vector<std::string>> gone = store_->DeleteRunFiles(
      run.id(), status == v1::SUCCEEDED ? kResumeFile : "", "");
  if (!gone.ok()) return gone.status();
  orphaned_.insert(orphaned_.end(), gone->begin(), gone->end());
  absl::StatusOr<std::vector<v1::Run>> dependents =
      store_->RunsWithTeacher(run.id());
  if (!dependents.ok()) return dependents.status();
  for (v1::Run& dependent : *dependents) {
    if (dependent.status() != v1::WAITING) continue;
    if (status == v1::SUCCEEDED) {
      dependent.set_status(v1::QUEUED);
      if (absl::Status s = store_->UpdateRun(dependent); !s.ok()) return s;
    } else {
      const std::string why = absl::StrCat("teacher run ", run.id(), " ended ",
                                           StatusName(status), ": ", message);
      if (absl::Status s = Finish(dependent, v1::FAILED, why); !s.ok())
        return s;
    }
    RunChanged(dependent.id());
  }
  QueueChanged();
  RunChanged(run.id());
  return absl::OkStatus();
}

absl::StatusOr<v1::SweepResults> Scheduler::SweepResults(
    const std::string& sweep_ref) {
  absl::StatusOr<v1::Sweep> sweep;
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::StatusOr<v1::Run> teacher;
  absl::Status read = Read([&](Store& store) -> absl::Status {
    sweep = FindSweepByRef(store, sweep_ref);
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
  auto add_teacher = [&](const v1::Run& run, const std::string& name) {
    v1::TeacherResult* t = results.add_teachers();
    t->set_name(name);
    t->set_run_id(run.id());
    t->set_status(run.status());
    if (auto it = run.results().find(metric_keys::kEvalTop1);
        it != run.results().end()) {
      t->set_top1(it->second);
    }
    *t->mutable_results() = run.results();
  };
  std::vector<const v1::Run*> teachers =
      NewestByMember(*runs, v1::TRAIN_TEACHER);
  if (teachers.empty() && teacher.ok()) add_teacher(*teacher, "teacher");
  for (const v1::Run* t : teachers) add_teacher(*t, t->member());
  // The DISTILL run of each member (the newest, should a name repeat), in
  // the order the sweep expanded them (grid members included).
  for (const v1::Run* run : NewestByMember(*runs, v1::DISTILL)) {
    v1::MemberResult* row = results.add_members();
    row->set_name(run->member());
    row->set_teacher_run_id(run->teacher_run_id());
    if (auto it = teacher_name.find(run->teacher_run_id());
        it != teacher_name.end()) {
      row->set_teacher(it->second);
    } else {
      row->set_teacher("teacher");
    }
    *row->mutable_losses() = run->spec().losses();
    row->set_run_id(run->id());
    row->set_status(run->status());
    row->set_message(run->message());
    if (auto top1 = run->results().find(metric_keys::kEvalTop1);
        top1 != run->results().end()) {
      row->set_top1(top1->second);
    }
    *row->mutable_results() = run->results();
  }
  return results;
}

absl::StatusOr<v1::AnnotateResponse> Scheduler::Annotate(
    const v1::AnnotateRequest& request) {
  if (request.set_tags_size() + request.remove_tags_size() > kMaxTags) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", kMaxTags, " tags change at once, got ",
                     request.set_tags_size() + request.remove_tags_size()));
  }
  std::map<std::string, std::string> set;
  for (const auto& [key, value] : request.set_tags()) {
    if (absl::Status s = CheckTagKey(key); !s.ok()) return s;
    if (value.size() > kMaxTagValueBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("tag ", key, ": a value is at most ", kMaxTagValueBytes,
                       " bytes, got ", value.size()));
    }
    set[key] = value;
  }
  for (const std::string& key : request.remove_tags()) {
    if (absl::Status s = CheckTagKey(key); !s.ok()) return s;
  }
  std::optional<std::string> note;
  if (request.has_note()) {
    if (request.note().size() > kMaxNoteBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("a note is at most ", kMaxNoteBytes, " bytes, got ",
                       request.note().size()));
    }
    note = request.note();
  }
  Locked lock(this);
  v1::AnnotateResponse response;
  absl::Status s = store_->InTransaction([&]() -> absl::Status {
    TagTarget target;
    int64_t id;
    if (request.target_case() == v1::AnnotateRequest::kRunId) {
      target = TagTarget::kRun;
      id = request.run_id();
      absl::StatusOr<v1::Run> run = store_->GetRun(id);
      if (!run.ok()) return run.status();
    } else if (request.target_case() == v1::AnnotateRequest::kSweep) {
      target = TagTarget::kSweep;
      absl::StatusOr<v1::Sweep> sweep =
          FindSweepByRef(*store_, request.sweep());
      if (!sweep.ok()) return sweep.status();
      id = sweep->id();
    } else {
      return absl::InvalidArgumentError("name a run_id or a sweep");
    }
    if (absl::Status a = store_->Annotate(
            target, id, set,
            {request.remove_tags().begin(), request.remove_tags().end()}, note);
        !a.ok()) {
      return a;
    }
    google::protobuf::Map<std::string, std::string> tags;
    if (target == TagTarget::kRun) {
      absl::StatusOr<v1::Run> run = store_->GetRun(id);
      if (!run.ok()) return run.status();
      tags = run->tags();
      response.set_note(run->note());
      RunChanged(id);
    } else {
      absl::StatusOr<v1::Sweep> sweep = store_->GetSweep(id);
      if (!sweep.ok()) return sweep.status();
      tags = sweep->tags();
      response.set_note(sweep->note());
    }
    if (int(tags.size()) > kMaxTags) {
      return absl::InvalidArgumentError(
          absl::StrCat("a run or a sweep holds at most ", kMaxTags,
                       " tags; this would make ", tags.size()));
    }
    *response.mutable_tags() = std::move(tags);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return response;
}

absl::StatusOr<std::optional<v1::RunEvent>> Scheduler::PollRunEvent(
    int64_t run_id, WatchCursor* cursor) {
  if (cursor->history_points_per_key < 0 ||
      cursor->history_points_per_key > kMaxHistoryPointsPerKey) {
    return absl::InvalidArgumentError(
        absl::StrCat("history_points_per_key must be 0 (the default, ",
                     kHistoryPointsPerKey, ") to ", kMaxHistoryPointsPerKey,
                     ", got ", cursor->history_points_per_key));
  }
  std::optional<v1::RunEvent> event;
  absl::Status s = Read([&](Store& store) -> absl::Status {
    absl::StatusOr<v1::Run> run = store.GetRun(run_id);
    if (!run.ok()) return run.status();
    const bool first = !cursor->started;
    std::vector<StoredMetric> points;
    int64_t newest = cursor->metric_sequence;
    if (first) {
      // The history as it is now, spread evenly when long; then only what
      // comes after the newest point.
      absl::StatusOr<std::vector<MetricKeyStats>> keys =
          store.MetricKeys(run_id);
      if (!keys.ok()) return keys.status();
      for (const MetricKeyStats& key : *keys)
        newest = std::max(newest, key.last_sequence);
      if (cursor->include_history) {
        // At most kPointsPerEvent in all, whatever the number of keys, so
        // that the event fits in one gRPC message.
        const int64_t asked = cursor->history_points_per_key > 0
                                  ? cursor->history_points_per_key
                                  : kHistoryPointsPerKey;
        const int64_t per_key = std::max<int64_t>(
            2, std::min<int64_t>(
                   asked, kPointsPerEvent /
                              std::max<int64_t>(1, int64_t(keys->size()))));
        absl::StatusOr<std::vector<StoredMetric>> history =
            store.SampledMetrics(run_id, per_key);
        if (!history.ok()) return history.status();
        points = *std::move(history);
      }
    } else {
      absl::StatusOr<std::vector<StoredMetric>> fresh =
          store.Metrics(run_id, cursor->metric_sequence, kPointsPerEvent);
      if (!fresh.ok()) return fresh.status();
      points = *std::move(fresh);
      if (!points.empty()) newest = points.back().sequence;
    }
    if (!first && run->status() == cursor->status && points.empty())
      return absl::OkStatus();
    cursor->started = true;
    cursor->status = run->status();
    cursor->metric_sequence = newest;
    event.emplace();
    *event->mutable_run() = *std::move(run);
    for (StoredMetric& m : points) *event->add_metrics() = std::move(m.point);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return event;
}

absl::StatusOr<v1::RegisterWorkerResponse> Scheduler::RegisterWorker(
    const v1::RegisterWorkerRequest& request, int64_t caller) {
  for (const auto& [field, value] :
       {std::pair<const char*, const std::string*>{"hostname",
                                                   &request.hostname()},
        {"device", &request.device()},
        {"libtorch_version", &request.libtorch_version()},
        {"blas", &request.blas()},
        {"distill_version", &request.distill_version()}}) {
    if (value->size() > limits::kNameBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, " must be at most ", limits::kNameBytes,
                       " bytes, got ", value->size()));
    }
  }
  Locked lock(this);
  const int64_t now = clock_->NowMs();
  WorkerRecord worker;
  worker.hostname = request.hostname().empty() ? "unknown" : request.hostname();
  worker.distill_version = request.distill_version();
  worker.id = absl::StrCat(
      worker.hostname, "-",
      Sha256Hex(absl::StrCat(worker.hostname, now, version_, request.device()))
          .substr(0, 8));
  worker.device = request.device();
  worker.threads = request.threads();
  worker.libtorch_version = request.libtorch_version();
  worker.blas = request.blas();
  worker.registered_ms = worker.last_seen_ms = now;
  worker.token_id = caller;
  if (absl::Status s = store_->UpsertWorker(worker); !s.ok()) return s;
  worker_tokens_[worker.id] = caller;
  ++version_;  // Keeps ids unique within one millisecond.
  v1::RegisterWorkerResponse response;
  response.set_worker_id(worker.id);
  response.set_heartbeat_interval_ms(options_.heartbeat_interval_ms);
  response.set_lease_duration_ms(options_.lease_duration_ms);
  return response;
}

absl::Status Scheduler::ExpireLeases() {
  Locked lock(this);
  return ExpireLeasesLocked();
}

absl::Status Scheduler::ExpireLeasesLocked() {
  absl::StatusOr<std::vector<v1::Run>> expired =
      store_->ExpiredLeases(clock_->NowMs());
  if (!expired.ok()) return expired.status();
  for (v1::Run& run : *expired) {
    if (options_.metrics != nullptr) options_.metrics->LeaseExpired();
    const int max_restarts = run.spec().max_restarts();  // Resolved.
    const std::string what =
        absl::StrCat("the lease of attempt ", run.attempt(), " on worker ",
                     run.worker_id(), " expired");
    absl::Status s = Transaction([&]() -> absl::Status {
      if (run.attempt() - run.releases() > max_restarts) {
        return Finish(run, v1::FAILED,
                      absl::StrCat("LOST: ", what, " and max_restarts (",
                                   max_restarts, ") is spent"));
      }
      run.set_status(v1::QUEUED);
      run.set_message(absl::StrCat(what, "; queued again"));
      run.set_worker_id("");
      run.set_lease_expires_ms(0);
      return store_->UpdateRun(run);
    });
    if (!s.ok()) return s;
    QueueChanged();
    RunChanged(run.id());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::LeaseRunResponse> Scheduler::LeaseRun(
    const std::string& worker_id, int64_t caller) {
  int64_t sync_upto = 0;
  absl::StatusOr<v1::LeaseRunResponse> response =
      LeaseRunLocked(worker_id, caller, &sync_upto);
  // A granted lease is on disk before the worker hears of it; the fsync
  // outside the lock, shared with every commit before it.
  if (response.ok() && response->has_run()) {
    if (absl::Status s = store_->SyncWal(sync_upto); !s.ok()) return s;
  }
  return response;
}

absl::StatusOr<v1::LeaseRunResponse> Scheduler::LeaseRunLocked(
    const std::string& worker_id, int64_t caller, int64_t* sync_upto) {
  Locked lock(this);
  absl::StatusOr<WorkerRecord> worker = store_->GetWorker(worker_id);
  if (!worker.ok()) return worker.status();
  if (worker->token_id != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker ", worker_id, " registered with another token"));
  }
  if (worker->stopped_ms != 0) {
    return absl::NotFoundError(
        absl::StrCat("worker ", worker_id, " deregistered"));
  }
  // Seen now; written when it was last written a second ago or more (a
  // worker leasing in a loop is not one write per call), or with its lease.
  if (clock_->NowMs() - worker->last_seen_ms >= 1000) {
    worker->last_seen_ms = clock_->NowMs();
    if (absl::Status s =
            store_->InTransaction([&] { return store_->UpsertWorker(*worker); },
                                  Store::Durability::kInWal);
        !s.ok()) {
      return s;
    }
  }
  // A worker runs one run at a time: one that asks for a run while the
  // store says it holds one never got the answer that leased it (the
  // coordinator went down, the call timed out). It gets that run again, at
  // the same attempt, instead of the run waiting for its lease to expire.
  if (absl::Status s = ExpireLeasesLocked(); !s.ok()) return s;
  absl::StatusOr<std::optional<v1::Run>> next = store_->RunHeldBy(worker_id);
  if (!next.ok()) return next.status();
  const bool again = next->has_value();
  v1::LeaseRunResponse response;
  if (shutting_down_) return response;
  if (worker->draining) {
    response.set_drain_requested(true);
    return response;
  }
  if (!again) {
    next = store_->NextQueuedRun();
    if (!next.ok()) return next.status();
  }
  {
    if (next->has_value()) {
      v1::Run& run = **next;
      const int64_t now = clock_->NowMs();
      std::map<std::string, std::string> stale;  // Keys to remove.
      if (again) {
        DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                          << " leased again to worker " << worker_id
                          << ", which asked for a run while holding it";
      } else {
        run.set_status(v1::RUNNING);
        run.set_attempt(run.attempt() + 1);
        run.set_worker_id(worker_id);
        // Where and from what this attempt runs.
        auto& p = *run.mutable_provenance();
        namespace k = provenance;
        p[k::kCoordinatorVersion] = DistillVersion();
        p[k::kWorkerVersion] = worker->distill_version;
        p[k::kWorker] = worker_id;
        p[k::kHost] = worker->hostname;
        p[k::kDevice] = worker->device;
        p[k::kThreads] = absl::StrCat(worker->threads);
        p[k::kLibTorch] = worker->libtorch_version;
        p[k::kBlas] = worker->blas;
        p[k::kSpecSha256] = Sha256Hex(run.spec().SerializeAsString());
        // What an earlier attempt's worker reported is not this one's.
        for (const char* key : provenance::kWorkerKeys) {
          if (p.erase(std::string(key)) > 0) stale.emplace(key, "");
        }
      }
      run.set_lease_expires_ms(now + options_.lease_duration_ms);
      if (run.started_ms() == 0) run.set_started_ms(now);
      if (run.teacher_run_id() != 0) {
        absl::StatusOr<v1::Run> teacher = store_->GetRun(run.teacher_run_id());
        if (!teacher.ok()) return teacher.status();
        response.set_teacher_checkpoint_sha256(teacher->checkpoint_sha256());
        (*run.mutable_provenance())[provenance::kTeacherCheckpointSha256] =
            teacher->checkpoint_sha256();
      }
      if (run.spec().student_run_id() != 0) {
        absl::StatusOr<v1::Run> student =
            store_->GetRun(run.spec().student_run_id());
        if (!student.ok()) return student.status();
        response.set_student_checkpoint_sha256(student->checkpoint_sha256());
        (*run.mutable_provenance())[provenance::kStudentCheckpointSha256] =
            student->checkpoint_sha256();
      }
      absl::StatusOr<RunFileRecord> resume =
          store_->FindRunFile(run.id(), kResumeFile);
      if (resume.ok()) {
        response.set_resume_point_sha256(resume->sha256);
      } else if (!absl::IsNotFound(resume.status())) {
        return resume.status();
      }
      worker->last_seen_ms = now;
      if (absl::Status s = store_->InTransaction(
              [&]() -> absl::Status {
                if (absl::Status s = store_->UpsertWorker(*worker); !s.ok())
                  return s;
                if (absl::Status s = store_->SetProvenance(run.id(), stale);
                    !s.ok()) {
                  return s;
                }
                return store_->UpdateRun(run);
              },
              Store::Durability::kSyncAfter);
          !s.ok()) {
        return s;
      }
      *sync_upto = store_->UnsyncedCommits();
      RunChanged(run.id());
      if (options_.metrics != nullptr && !again) {
        options_.metrics->LeaseGranted(
            run.attempt() == 1 ? double(now - run.created_ms()) / 1000 : -1);
      }
      *response.mutable_run() = std::move(run);
      return response;
    }
  }
  return response;
}

absl::Status Scheduler::CheckHolder(const v1::Run& run, int64_t caller) {
  auto it = worker_tokens_.find(run.worker_id());
  if (it == worker_tokens_.end()) {
    absl::StatusOr<WorkerRecord> worker = store_->GetWorker(run.worker_id());
    if (!worker.ok() && !absl::IsNotFound(worker.status()))
      return worker.status();
    // A run leased to no known worker belongs to no token.
    it = worker_tokens_
             .emplace(run.worker_id(), worker.ok() ? worker->token_id : -1)
             .first;
  }
  if (it->second != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("run ", run.id(), " is leased to worker ", run.worker_id(),
                     ", which registered with another token"));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Run> Scheduler::CurrentLease(int64_t run_id, int32_t attempt,
                                                int64_t caller) {
  absl::StatusOr<v1::Run> run = store_->GetRun(run_id);
  if (!run.ok()) return run.status();
  if (run->status() != v1::RUNNING || run->attempt() != attempt) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", run_id, " attempt ", attempt, " holds no lease: the run is ",
        StatusName(run->status()), " at attempt ", run->attempt()));
  }
  if (absl::Status s = CheckHolder(*run, caller); !s.ok()) return s;
  return run;
}

absl::StatusOr<v1::HeartbeatResponse> Scheduler::Heartbeat(
    const v1::HeartbeatRequest& request, int64_t caller) {
  Locked lock(this);
  v1::HeartbeatResponse response;
  absl::StatusOr<v1::Run> run = store_->GetRun(request.run_id());
  if (!run.ok()) return run.status();
  if ((run->status() == v1::CANCELLED || run->status() == v1::PRUNED) &&
      run->attempt() == request.attempt()) {
    if (absl::Status s = CheckHolder(*run, caller); !s.ok()) return s;
    response.set_cancel_requested(true);
    response.set_stop_reason(run->message());
    return response;
  }
  run = CurrentLease(request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  run->set_lease_expires_ms(clock_->NowMs() + options_.lease_duration_ms);
  response.set_lease_expires_ms(run->lease_expires_ms());
  // An extension lost to a power cut makes the lease expire sooner: safe.
  absl::Status s = store_->InTransaction(
      [&]() -> absl::Status {
        if (absl::Status s = store_->UpdateRun(*run); !s.ok()) return s;
        absl::StatusOr<WorkerRecord> worker =
            store_->GetWorker(run->worker_id());
        if (!worker.ok()) return absl::OkStatus();
        worker->last_seen_ms = clock_->NowMs();
        response.set_drain_requested(worker->draining);
        return store_->UpsertWorker(*worker);
      },
      Store::Durability::kInWal);
  if (!s.ok()) return s;
  return response;
}

absl::Status Scheduler::ReportMetrics(const v1::ReportMetricsRequest& request,
                                      int64_t caller,
                                      v1::ReportMetricsResponse* response) {
  // A bad batch is refused whole, before anything is stored.
  if (request.points_size() > limits::kMetricPointsPerReport) {
    return absl::InvalidArgumentError(
        absl::StrCat("a report holds at most ", limits::kMetricPointsPerReport,
                     " metric points, got ", request.points_size()));
  }
  for (int i = 0; i < request.points_size(); ++i) {
    const v1::MetricPoint& p = request.points(i);
    if (absl::Status s =
            CheckMetric(absl::StrCat("points[", i, "]"), p.key(), p.value());
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = CheckWorkerProvenance(request.provenance()); !s.ok())
    return s;
  // Group commit: the first waiting report writes every report queued
  // behind it in one transaction; the others wait for it.
  IngestBatch mine{&request, caller};
  ingest_mu_.Lock();
  ingest_queue_.push_back(&mine);
  while (!mine.done && ingest_queue_.front() != &mine) {
    ingest_done_.Wait(&ingest_mu_);
  }
  if (mine.done) {
    ingest_mu_.Unlock();
    if (response != nullptr) response->set_stop_reason(mine.stop_reason);
    return mine.status;
  }
  std::vector<IngestBatch*> group;
  int64_t points = 0;
  for (IngestBatch* batch : ingest_queue_) {
    if (!group.empty() &&
        points + batch->request->points_size() > kPointsPerIngestGroup) {
      break;
    }
    group.push_back(batch);
    points += batch->request->points_size();
  }
  ingest_mu_.Unlock();
  WriteGroup(group);
  ingest_mu_.Lock();
  for (IngestBatch* batch : group) {
    ingest_queue_.pop_front();
    batch->done = true;
  }
  ingest_done_.SignalAll();
  ingest_mu_.Unlock();
  if (response != nullptr) response->set_stop_reason(mine.stop_reason);
  return mine.status;
}

void Scheduler::WriteGroup(const std::vector<IngestBatch*>& group) {
  std::vector<int64_t> changed;
  std::vector<IngestBatch*> written;
  int64_t points = 0;
  int64_t sync_upto = 0;
  {
    Locked lock(this);
    orphaned_.clear();
    absl::Status s = store_->InTransaction(
        [&]() -> absl::Status {
          for (IngestBatch* batch : group) {
            const v1::ReportMetricsRequest& request = *batch->request;
            // A report whose lease is gone is refused alone.
            absl::StatusOr<v1::Run> run = CurrentLease(
                request.run_id(), request.attempt(), batch->caller);
            batch->status = run.status();
            if (!batch->status.ok()) continue;
            const std::vector<v1::MetricPoint> batch_points(
                request.points().begin(), request.points().end());
            if (absl::Status s = store_->AppendMetrics(
                    request.run_id(), request.attempt(), batch_points);
                !s.ok()) {
              return s;
            }
            if (!request.provenance().empty()) {
              if (absl::Status s = store_->SetProvenance(
                      request.run_id(), std::map<std::string, std::string>(
                                            request.provenance().begin(),
                                            request.provenance().end()));
                  !s.ok()) {
                return s;
              }
            }
            if (absl::Status s =
                    StopEarlyIfBehind(*run, batch_points, &batch->stop_reason);
                !s.ok()) {
              return s;
            }
            written.push_back(batch);
          }
          return absl::OkStatus();
        },
        Store::Durability::kSyncAfter);
    sync_upto = store_->UnsyncedCommits();
    // A member stopped early keeps no file.
    if (s.ok()) RemoveOrphaned();
    orphaned_.clear();
    if (!s.ok()) {
      written.clear();
      // Nothing of the group was stored: every report not refused alone
      // gets the transaction's error.
      for (IngestBatch* batch : group) {
        if (batch->status.ok()) batch->status = s;
        batch->stop_reason.clear();
      }
    } else {
      for (IngestBatch* batch : written) {
        changed.push_back(batch->request->run_id());
        points += batch->request->points_size();
      }
    }
  }
  // On disk before any report is acknowledged; the fsync outside the
  // lock, shared with every commit before it.
  if (!written.empty()) {
    if (absl::Status s = store_->SyncWal(sync_upto); !s.ok()) {
      for (IngestBatch* batch : written) batch->status = s;
    }
  }
  for (int64_t run_id : changed) hub_.Notify(run_id);
  if (options_.metrics != nullptr && points > 0)
    options_.metrics->PointsIngested(points);
}

absl::StatusOr<std::unique_ptr<RunFileWriter>> Scheduler::BeginUpload(
    const v1::RunFileHeader& header, int64_t caller) {
  if (!IsFileName(header.name())) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.name must be empty or a file name of at most 64 "
                     "letters, digits, '.', '_' "
                     "and '-', got \"",
                     header.name(), "\""));
  }
  if (!IsSha256Hex(header.sha256())) {
    return absl::InvalidArgumentError(
        absl::StrCat("header.sha256 must be 64 lower-case hex digits, got \"",
                     header.sha256(), "\""));
  }
  if (header.size() < 0 || header.size() > options_.max_run_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "header.size ", header.size(),
        " is beyond this coordinator's limit of ", options_.max_run_file_bytes,
        " bytes per run file (--max_run_file_mb)"));
  }
  {
    Locked lock(this);
    absl::StatusOr<v1::Run> run =
        CurrentLease(header.run_id(), header.attempt(), caller);
    if (!run.ok()) return run.status();
  }
  absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
      run_files_->NewWriter();
  if (!writer.ok()) return writer.status();
  return std::make_unique<BoundedWriter>(*std::move(writer), header.size());
}

absl::Status Scheduler::FinishUpload(const v1::RunFileHeader& header,
                                     RunFileWriter& writer, int64_t caller) {
  if (writer.size() != header.size()) {
    return absl::DataLossError(
        absl::StrCat("the run file upload ended after ", writer.size(),
                     " bytes, the header promised ", header.size()));
  }
  Locked lock(this);
  // Checked before the file becomes visible: a superseded attempt's upload
  // leaves nothing behind (the writer removes it).
  absl::StatusOr<v1::Run> run =
      CurrentLease(header.run_id(), header.attempt(), caller);
  if (!run.ok()) return run.status();
  absl::StatusOr<std::string> path = writer.Commit(header.sha256());
  if (!path.ok()) return path.status();
  const std::string name =
      header.name().empty() ? kCheckpointFile : header.name();
  return Transaction([&]() -> absl::Status {
    if (absl::Status s = store_->InsertRunFile(
            {header.sha256(), header.run_id(), header.attempt(), header.size(),
             *path, name});
        !s.ok()) {
      return s;
    }
    if (name != kResumeFile) return absl::OkStatus();
    // A run keeps only its latest resume point.
    absl::StatusOr<std::vector<std::string>> gone =
        store_->DeleteRunFiles(header.run_id(), name, header.sha256());
    if (!gone.ok()) return gone.status();
    orphaned_ = *std::move(gone);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::unique_ptr<RunFileReader>> Scheduler::OpenRunFile(
    int64_t run_id, const std::string& name) {
  std::string sha256;
  if (absl::Status s = Read([&](Store& store) -> absl::Status {
        absl::StatusOr<RunFileRecord> file = store.FindRunFile(run_id, name);
        if (!file.ok()) return file.status();
        sha256 = file->sha256;
        return absl::OkStatus();
      });
      !s.ok()) {
    return s;
  }
  return run_files_->Open(sha256);
}

absl::StatusOr<bool> Scheduler::NeededByCaller(const std::string& sha256,
                                               int64_t caller) {
  absl::StatusOr<std::vector<v1::Run>> running =
      store_->ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  for (const v1::Run& run : *running) {
    if (!CheckHolder(run, caller).ok()) continue;
    // By digest, not by the file record's run: identical bytes may have
    // been uploaded by another run first.
    for (int64_t source : {run.teacher_run_id(), run.spec().student_run_id()}) {
      if (source == 0) continue;
      absl::StatusOr<v1::Run> other = store_->GetRun(source);
      if (other.ok() && other->checkpoint_sha256() == sha256) return true;
    }
    absl::StatusOr<RunFileRecord> resume =
        store_->FindRunFile(run.id(), kResumeFile);
    if (resume.ok() && resume->sha256 == sha256) return true;
  }
  return false;
}

absl::StatusOr<std::unique_ptr<RunFileReader>> Scheduler::OpenRunFileByDigest(
    const std::string& sha256, int64_t caller) {
  if (caller != 0) {
    if (!IsSha256Hex(sha256)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sha256 must be 64 lower-case hex digits, got \"", sha256, "\""));
    }
    Locked lock(this);
    if (absl::Status s = store_->FindRunFileByDigest(sha256).status();
        !s.ok()) {
      return s;
    }
    absl::StatusOr<bool> needed = NeededByCaller(sha256, caller);
    if (!needed.ok()) return needed.status();
    if (!*needed) {
      return absl::PermissionDeniedError(absl::StrCat(
          "run file ", sha256,
          " is no resume point, teacher or student checkpoint of a run this "
          "worker holds"));
    }
  }
  return run_files_->Open(sha256);
}

absl::Status Scheduler::CompleteRun(const v1::CompleteRunRequest& request,
                                    int64_t caller) {
  if (request.results_size() > limits::kResults) {
    return absl::InvalidArgumentError(
        absl::StrCat("a run reports at most ", limits::kResults,
                     " results, got ", request.results_size()));
  }
  for (const auto& [key, value] : request.results()) {
    if (absl::Status s = CheckMetric("results", key, value); !s.ok()) return s;
  }
  Locked lock(this);
  absl::StatusOr<v1::Run> run =
      CurrentLease(request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // Every kind but EVALUATE ends with a checkpoint of the run.
  const bool needs_checkpoint = run->spec().kind() != v1::EVALUATE;
  // Looked up by run, not by digest: a deterministic run can write the very
  // bytes another run already uploaded.
  absl::StatusOr<RunFileRecord> checkpoint =
      store_->FindRunFile(request.run_id(), kCheckpointFile);
  if (needs_checkpoint &&
      (!checkpoint.ok() || checkpoint->sha256 != request.checkpoint_sha256() ||
       checkpoint->attempt != request.attempt())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "run ", request.run_id(), " cannot complete: checkpoint \"",
        request.checkpoint_sha256(), "\" was not uploaded for it"));
  }
  run->set_checkpoint_sha256(request.checkpoint_sha256());
  for (const auto& [key, value] : request.results())
    (*run->mutable_results())[key] = value;
  return Transaction([&] { return Finish(*run, v1::SUCCEEDED, ""); });
}

absl::Status Scheduler::FailRun(const v1::FailRunRequest& request,
                                int64_t caller) {
  Locked lock(this);
  absl::StatusOr<v1::Run> run =
      CurrentLease(request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // A worker's message is kept whole up to a bound, so that no listing of
  // runs grows past what one answer may carry.
  std::string message = request.message().substr(0, limits::kMessageBytes);
  if (message.size() < request.message().size()) message += " [...]";
  return Transaction([&] { return Finish(*run, v1::FAILED, message); });
}

absl::StatusOr<TokenRecord> Scheduler::InsertToken(TokenRecord token) {
  Locked lock(this);
  token.created_ms = clock_->NowMs();
  absl::StatusOr<int64_t> id = store_->InsertToken(token);
  if (!id.ok()) return id.status();
  token.id = *id;
  return token;
}

absl::StatusOr<std::vector<TokenRecord>> Scheduler::ListTokens() {
  Locked lock(this);
  return store_->ListTokens();
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

absl::StatusOr<TokenRecord> Scheduler::RevokeToken(int64_t id) {
  Locked lock(this);
  return store_->RevokeToken(id, clock_->NowMs());
}

absl::Status Scheduler::ReleaseRun(const v1::ReleaseRunRequest& request,
                                   int64_t caller) {
  Locked lock(this);
  absl::StatusOr<v1::Run> run =
      CurrentLease(request.run_id(), request.attempt(), caller);
  if (!run.ok()) return run.status();
  // Queued again at once, with its resume point; the next lease is the next
  // attempt, and a release is no restart (nothing was lost).
  const std::string reason =
      request.reason().substr(0, limits::kMessageBytes / 4);
  run->set_message(absl::StrCat("attempt ", run->attempt(), " on worker ",
                                run->worker_id(), " handed back",
                                reason.empty() ? "" : ": ", reason));
  run->set_status(v1::QUEUED);
  run->set_worker_id("");
  run->set_lease_expires_ms(0);
  run->set_releases(run->releases() + 1);
  // A hand-back lost to a power cut leaves the lease to expire: safe.
  if (absl::Status s = store_->InTransaction(
          [&] { return store_->UpdateRun(*run); }, Store::Durability::kInWal);
      !s.ok()) {
    return s;
  }
  QueueChanged();
  RunChanged(run->id());
  if (options_.metrics != nullptr) options_.metrics->RunReleased();
  return absl::OkStatus();
}

absl::Status Scheduler::Deregister(const std::string& worker_id,
                                   int64_t caller) {
  Locked lock(this);
  absl::StatusOr<WorkerRecord> worker = store_->GetWorker(worker_id);
  if (!worker.ok()) return worker.status();
  if (worker->token_id != caller) {
    return absl::PermissionDeniedError(
        absl::StrCat("worker ", worker_id, " registered with another token"));
  }
  worker->stopped_ms = worker->last_seen_ms = clock_->NowMs();
  // A run the store says it holds (a lease answer it never got) is queued
  // again now: a stopped worker runs nothing.
  absl::StatusOr<std::optional<v1::Run>> held = store_->RunHeldBy(worker_id);
  if (!held.ok()) return held.status();
  absl::Status s = Transaction([&]() -> absl::Status {
    if (absl::Status s = store_->UpsertWorker(*worker); !s.ok()) return s;
    if (!held->has_value()) return absl::OkStatus();
    v1::Run& run = **held;
    DISTILL_LOG(INFO) << "run " << run.id() << " attempt " << run.attempt()
                      << " queued again: its worker " << worker_id
                      << " stopped without it";
    run.set_message(absl::StrCat("attempt ", run.attempt(), " on worker ",
                                 worker_id,
                                 " handed back: the worker stopped"));
    run.set_status(v1::QUEUED);
    run.set_worker_id("");
    run.set_lease_expires_ms(0);
    run.set_releases(run.releases() + 1);
    return store_->UpdateRun(run);
  });
  if (!s.ok()) return s;
  QueueChanged();
  if (held->has_value()) RunChanged((*held)->id());
  return absl::OkStatus();
}

v1::Worker Scheduler::WorkerInfo(const WorkerRecord& record,
                                 int64_t run_id) const {
  v1::Worker w;
  w.set_id(record.id);
  w.set_hostname(record.hostname);
  w.set_device(record.device);
  w.set_threads(record.threads);
  w.set_libtorch_version(record.libtorch_version);
  w.set_blas(record.blas);
  w.set_registered_ms(record.registered_ms);
  w.set_last_seen_ms(record.last_seen_ms);
  w.set_run_id(run_id);
  const bool silent =
      clock_->NowMs() - record.last_seen_ms > options_.lease_duration_ms;
  w.set_state(record.stopped_ms != 0 ? "stopped"
              : silent               ? "lost"
              : record.draining      ? "draining"
              : run_id != 0          ? "running"
                                     : "idle");
  return w;
}

absl::StatusOr<std::vector<v1::Worker>> Scheduler::ListWorkers() {
  return ReadWorkers(0, 0);
}

absl::StatusOr<std::vector<v1::Worker>> Scheduler::ReadWorkers(
    int64_t before_row, int64_t limit) {
  absl::StatusOr<std::vector<WorkerRecord>> workers;
  absl::StatusOr<std::vector<v1::Run>> running;
  absl::Status read = Read([&](Store& store) -> absl::Status {
    workers = limit > 0 ? store.ListWorkersPage(before_row, limit)
                        : store.ListWorkers();
    if (!workers.ok()) return workers.status();
    running = store.ListRuns(0, v1::RUNNING);
    return running.status();
  });
  if (!read.ok()) return read;
  absl::flat_hash_map<std::string, int64_t> holding;
  for (const v1::Run& run : *running) holding[run.worker_id()] = run.id();
  std::vector<v1::Worker> out;
  for (const WorkerRecord& record : *workers) {
    const auto it = holding.find(record.id);
    out.push_back(WorkerInfo(record, it == holding.end() ? 0 : it->second));
    out.back().set_row(record.row);
  }
  return out;
}

absl::StatusOr<WorkerPage> Scheduler::ListWorkersPage(
    const std::string& page_token, int page_size) {
  absl::StatusOr<int64_t> before = RowToken(page_token, "worker");
  if (!before.ok()) return before.status();
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) return size.status();
  // One more than asked: whether a next page exists.
  absl::StatusOr<std::vector<v1::Worker>> workers =
      ReadWorkers(*before, *size + 1);
  if (!workers.ok()) return workers.status();
  WorkerPage page;
  page.workers = *std::move(workers);
  if (int(page.workers.size()) > *size) {
    page.workers.resize(*size);
    page.next_page_token = absl::StrCat(page.workers.back().row());
  }
  return page;
}

absl::StatusOr<v1::Worker> Scheduler::DrainWorker(const std::string& id) {
  Locked lock(this);
  absl::StatusOr<WorkerRecord> worker = store_->GetWorker(id);
  if (!worker.ok()) return worker.status();
  worker->draining = true;
  if (absl::Status s = store_->UpsertWorker(*worker); !s.ok()) return s;
  QueueChanged();  // Wakes its long-poll.
  absl::StatusOr<std::optional<v1::Run>> held = store_->RunHeldBy(id);
  if (!held.ok()) return held.status();
  return WorkerInfo(*worker, held->has_value() ? (*held)->id() : 0);
}

absl::Status Scheduler::RefreshGauges() {
  if (options_.metrics == nullptr) return absl::OkStatus();
  absl::StatusOr<std::map<v1::RunStatus, int64_t>> runs;
  if (absl::Status s = Read([&](Store& store) {
        runs = store.CountRunsByStatus();
        return runs.status();
      });
      !s.ok()) {
    return s;
  }
  std::map<std::string, int64_t> by_status;
  for (const auto& [status, n] : *runs)
    by_status[v1::RunStatus_Name(status)] = n;
  options_.metrics->SetRuns(by_status);
  absl::StatusOr<std::vector<v1::Worker>> workers = ListWorkers();
  if (!workers.ok()) return workers.status();
  std::map<std::string, int64_t> by_state;
  for (const v1::Worker& w : *workers) ++by_state[w.state()];
  options_.metrics->SetWorkers(by_state);
  return absl::OkStatus();
}

absl::StatusOr<int> Scheduler::ExpireLeasesOfHosts(const std::string& prefix) {
  Locked lock(this);
  absl::StatusOr<std::vector<v1::Run>> running =
      store_->ListRuns(0, v1::RUNNING);
  if (!running.ok()) return running.status();
  int expired = 0;
  absl::Status s = store_->InTransaction([&]() -> absl::Status {
    for (v1::Run& run : *running) {
      absl::StatusOr<WorkerRecord> worker = store_->GetWorker(run.worker_id());
      if (!worker.ok() || worker->hostname.rfind(prefix, 0) != 0) continue;
      run.set_lease_expires_ms(clock_->NowMs() - 1);
      if (absl::Status s = store_->UpdateRun(run); !s.ok()) return s;
      ++expired;
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (expired > 0) {
    if (absl::Status s = ExpireLeasesLocked(); !s.ok()) return s;
  }
  return expired;
}

}  // namespace distill
