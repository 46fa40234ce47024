#include "server/scheduling/annotations.h"

#include <map>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/api.h"

namespace distill {
namespace {

// The tags a request sets, each checked, and the keys it removes.
absl::StatusOr<std::map<std::string, std::string>> CheckedTags(
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
  if (request.has_note() && request.note().size() > kMaxNoteBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("a note is at most ", kMaxNoteBytes, " bytes, got ",
                     request.note().size()));
  }
  return set;
}

}  // namespace

absl::StatusOr<v1::AnnotateResponse> Annotations::Annotate(
    const v1::AnnotateRequest& request, const Requester& who) {
  absl::StatusOr<std::map<std::string, std::string>> set = CheckedTags(request);
  if (!set.ok()) return set.status();
  const std::optional<std::string> note =
      request.has_note() ? std::optional(request.note()) : std::nullopt;
  SchedulerCore::Locked lock(&core_);
  Store& store = core_.store();
  v1::AnnotateResponse response;
  absl::Status s = core_.Write([&]() -> absl::Status {
    core_.AssertHeld();
    TagTarget target;
    int64_t id;
    if (request.target_case() == v1::AnnotateRequest::kRunId) {
      target = TagTarget::kRun;
      id = request.run_id();
      absl::StatusOr<v1::Run> run = store.GetRun(id);
      if (!run.ok()) return run.status();
      if (absl::Status s =
              CheckMayChange(who, run->owner(), absl::StrCat("run ", id));
          !s.ok()) {
        return s;
      }
    } else if (request.target_case() == v1::AnnotateRequest::kSweep) {
      target = TagTarget::kSweep;
      absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(store, request.sweep());
      if (!sweep.ok()) return sweep.status();
      if (absl::Status s = CheckMayChange(
              who, sweep->owner(),
              absl::StrCat("sweep ", sweep->id(), " (", sweep->name(), ")"));
          !s.ok()) {
        return s;
      }
      id = sweep->id();
    } else {
      return absl::InvalidArgumentError("name a run_id or a sweep");
    }
    if (absl::Status a = store.Annotate(
            target, id, *set,
            {request.remove_tags().begin(), request.remove_tags().end()}, note);
        !a.ok()) {
      return a;
    }
    google::protobuf::Map<std::string, std::string> tags;
    if (target == TagTarget::kRun) {
      absl::StatusOr<v1::Run> run = store.GetRun(id);
      if (!run.ok()) return run.status();
      tags = run->tags();
      response.set_note(run->note());
      core_.RunChangedLocked(lock, id);
    } else {
      absl::StatusOr<v1::Sweep> sweep = store.GetSweep(id);
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

}  // namespace distill
