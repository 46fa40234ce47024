#include "server/scheduling/reads.h"

#include <algorithm>
#include <map>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "common/api.h"
#include "common/catalog.h"
#include "common/sha256.h"
#include "common/spec_fields.h"
#include "common/worker_status.h"
#include "server/scheduling/fair_share.h"
#include "server/scheduling/shares.h"

namespace distill {
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

// The spec-field and tag filters of `request` into `query`.
absl::Status FieldAndTagFilters(const v1::ListRunsRequest& request,
                                RunQuery* query) {
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
    query->fields.emplace_back(condition.substr(0, eq), *std::move(value));
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
    query->tags.emplace_back(key, eq == std::string::npos
                                      ? std::nullopt
                                      : std::optional(tag.substr(eq + 1)));
  }
  return absl::OkStatus();
}

// The query `request` asks for, from `position` of the listing.
absl::StatusOr<RunQuery> QueryOf(const v1::ListRunsRequest& request,
                                 int64_t position) {
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
  if (absl::Status s = FieldAndTagFilters(request, &query); !s.ok()) return s;
  if (request.note_contains().size() > kMaxNoteBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("note_contains is at most ", kMaxNoteBytes, " bytes, got ",
                     request.note_contains().size()));
  }
  query.note_contains = request.note_contains();
  if (request.sweep().size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("sweep must be at most ", limits::kNameBytes,
                     " bytes, got ", request.sweep().size()));
  }
  if (request.owner().size() > limits::kNameBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("owner must be at most ", limits::kNameBytes,
                     " bytes, got ", request.owner().size()));
  }
  query.owner = request.owner();
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
    query.after_id = position;
  } else {
    query.offset = position;
  }
  return query;
}

}  // namespace

absl::StatusOr<v1::Run> Reads::GetRun(int64_t id) {
  absl::StatusOr<v1::Run> run;
  absl::Status s = core_.Read([&](Store& store) -> absl::Status {
    run = store.GetRun(id);
    if (!run.ok()) return run.status();
    std::vector<v1::Run> one = {*run};
    if (absl::Status e = ExplainWaiting(store, one); !e.ok()) return e;
    if (absl::Status e = AddPreemptions(store, one.front()); !e.ok()) return e;
    run = std::move(one.front());
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return run;
}

absl::StatusOr<std::vector<v1::Run>> Reads::ListRuns(int64_t sweep_id,
                                                     v1::RunStatus status) {
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::Status s = core_.Read([&](Store& store) {
    runs = store.ListRuns(sweep_id, status);
    return runs.status();
  });
  if (!s.ok()) return s;
  return runs;
}

absl::StatusOr<RunPage> Reads::FindRuns(const v1::ListRunsRequest& request) {
  absl::StatusOr<int> size = PageSize(request.page_size());
  if (!size.ok()) return size.status();
  absl::StatusOr<int64_t> position = PagePosition(request);
  if (!position.ok()) return position.status();
  absl::StatusOr<RunQuery> query = QueryOf(request, *position);
  if (!query.ok()) return query.status();
  // One more than asked: whether a next page exists.
  query->limit = *size + 1;
  RunPage page;
  absl::Status s = core_.Read([&](Store& store) -> absl::Status {
    // A sweep named by id or name, as every command names one.
    if (!request.sweep().empty()) {
      absl::StatusOr<v1::Sweep> sweep = FindSweepByRef(store, request.sweep());
      if (!sweep.ok()) return sweep.status();
      if (query->sweep_id != 0 && query->sweep_id != sweep->id()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "sweep_id ", query->sweep_id, " and sweep \"", request.sweep(),
            "\" (sweep ", sweep->id(), ") name different sweeps"));
      }
      query->sweep_id = sweep->id();
    }
    absl::StatusOr<std::vector<v1::Run>> runs = store.FindRuns(*query);
    if (!runs.ok()) return runs.status();
    page.runs = *std::move(runs);
    return ExplainWaiting(store, page.runs);
  });
  if (!s.ok()) return s;
  if (int(page.runs.size()) > *size) {
    page.runs.resize(*size);
    page.next_page_token = absl::StrCat(
        FilterDigest(request), ".",
        query->sort_key.empty() ? page.runs.back().id() : *position + *size);
  }
  return page;
}

absl::StatusOr<std::vector<v1::Sweep>> Reads::RecentSweeps(int limit) {
  absl::StatusOr<std::vector<v1::Sweep>> sweeps;
  absl::Status s = core_.Read([&](Store& store) {
    sweeps = store.ListSweeps(limit);
    return sweeps.status();
  });
  if (!s.ok()) return s;
  return sweeps;
}

absl::StatusOr<std::vector<v1::Run>> Reads::RecentRuns(int limit) {
  RunQuery query;
  query.newest_first = true;
  query.limit = limit;
  absl::StatusOr<std::vector<v1::Run>> runs;
  absl::Status s = core_.Read([&](Store& store) {
    runs = store.FindRuns(query);
    return runs.status();
  });
  if (!s.ok()) return s;
  return runs;
}

absl::StatusOr<MetricPage> Reads::MetricHistory(int64_t run_id,
                                                const std::string& page_token,
                                                int page_size) {
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
  absl::Status s = core_.Read([&](Store& store) -> absl::Status {
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

namespace {

// A first event's history: as it is now, each key spread evenly over at
// most `asked` points, and at most kPointsPerEvent in all, whatever the
// number of keys, so that the event fits in one gRPC message. `*newest`
// becomes the newest point's sequence.
absl::StatusOr<std::vector<StoredMetric>> FirstHistory(
    Store& store, int64_t run_id, const WatchCursor& cursor, int64_t* newest) {
  absl::StatusOr<std::vector<MetricKeyStats>> keys = store.MetricKeys(run_id);
  if (!keys.ok()) return keys.status();
  for (const MetricKeyStats& key : *keys)
    *newest = std::max(*newest, key.last_sequence);
  if (!cursor.include_history) return std::vector<StoredMetric>();
  const int64_t asked = cursor.history_points_per_key > 0
                            ? cursor.history_points_per_key
                            : kHistoryPointsPerKey;
  const int64_t per_key = std::max<int64_t>(
      2, std::min<int64_t>(
             asked,
             kPointsPerEvent / std::max<int64_t>(1, int64_t(keys->size()))));
  return store.SampledMetrics(run_id, per_key);
}

}  // namespace

absl::StatusOr<std::optional<v1::RunEvent>> Reads::PollRunEvent(
    int64_t run_id, WatchCursor* cursor) {
  if (cursor->history_points_per_key < 0 ||
      cursor->history_points_per_key > kMaxHistoryPointsPerKey) {
    return absl::InvalidArgumentError(
        absl::StrCat("history_points_per_key must be 0 (the default, ",
                     kHistoryPointsPerKey, ") to ", kMaxHistoryPointsPerKey,
                     ", got ", cursor->history_points_per_key));
  }
  std::optional<v1::RunEvent> event;
  absl::Status s = core_.Read([&](Store& store) -> absl::Status {
    absl::StatusOr<v1::Run> run = store.GetRun(run_id);
    if (!run.ok()) return run.status();
    const bool first = !cursor->started;
    int64_t newest = cursor->metric_sequence;
    // The history then, or what came after the newest point seen.
    absl::StatusOr<std::vector<StoredMetric>> points =
        first ? FirstHistory(store, run_id, *cursor, &newest)
              : store.Metrics(run_id, cursor->metric_sequence, kPointsPerEvent);
    if (!points.ok()) return points.status();
    if (!first && !points->empty()) newest = points->back().sequence;
    if (!first && run->status() == cursor->status && points->empty())
      return absl::OkStatus();
    cursor->started = true;
    cursor->status = run->status();
    cursor->metric_sequence = newest;
    std::vector<v1::Run> one = {*std::move(run)};
    if (absl::Status e = ExplainWaiting(store, one); !e.ok()) return e;
    if (absl::Status e = AddPreemptions(store, one.front()); !e.ok()) return e;
    event.emplace();
    *event->mutable_run() = std::move(one.front());
    for (StoredMetric& m : *points) *event->add_metrics() = std::move(m.point);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return event;
}

v1::Worker Reads::WorkerInfo(const WorkerRecord& record, int64_t run_id) const {
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
  for (const std::string& label : record.labels) w.add_labels(label);
  w.set_device_memory_bytes(record.device_memory_bytes);
  w.set_accelerator(record.accelerator);
  w.set_cpu_cores(record.cpu_cores);
  const bool silent = core_.clock().NowMs() - record.last_seen_ms >
                      core_.options().lease_duration_ms;
  w.set_status(record.stopped_ms != 0 ? v1::WORKER_STOPPED
               : silent               ? v1::WORKER_LOST
               : record.draining      ? v1::WORKER_DRAINING
               : run_id != 0          ? v1::WORKER_RUNNING
                                      : v1::WORKER_IDLE);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  w.set_state(WorkerStatusWord(w.status()));  // For older clients.
#pragma GCC diagnostic pop
  return w;
}

absl::StatusOr<std::vector<v1::Worker>> Reads::Workers(int64_t before_row,
                                                       int64_t limit) {
  absl::StatusOr<std::vector<WorkerRecord>> workers;
  absl::StatusOr<std::vector<v1::Run>> running;
  absl::Status read = core_.Read([&](Store& store) -> absl::Status {
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

absl::StatusOr<WorkerPage> Reads::WorkersPage(const std::string& page_token,
                                              int page_size) {
  absl::StatusOr<int64_t> before = RowToken(page_token, "worker");
  if (!before.ok()) return before.status();
  absl::StatusOr<int> size = PageSize(page_size);
  if (!size.ok()) return size.status();
  // One more than asked: whether a next page exists.
  absl::StatusOr<std::vector<v1::Worker>> workers = Workers(*before, *size + 1);
  if (!workers.ok()) return workers.status();
  WorkerPage page;
  page.workers = *std::move(workers);
  if (int(page.workers.size()) > *size) {
    page.workers.resize(*size);
    page.next_page_token = absl::StrCat(page.workers.back().row());
  }
  return page;
}

absl::Status Reads::RefreshGauges() {
  if (core_.metrics() == nullptr) return absl::OkStatus();
  absl::StatusOr<std::map<v1::RunStatus, int64_t>> runs;
  if (absl::Status s = core_.Read([&](Store& store) {
        runs = store.CountRunsByStatus();
        return runs.status();
      });
      !s.ok()) {
    return s;
  }
  core_.metrics()->SetRuns(*runs);
  absl::StatusOr<std::vector<v1::Worker>> workers = Workers(0, 0);
  if (!workers.ok()) return workers.status();
  std::map<v1::WorkerStatus, int64_t> by_state;
  for (const v1::Worker& w : *workers) ++by_state[w.status()];
  core_.metrics()->SetWorkers(by_state);
  absl::StatusOr<v1::ListOwnersResponse> owners = Shares(core_).List();
  if (!owners.ok()) return owners.status();
  core_.metrics()->SetOwners(*owners);
  return absl::OkStatus();
}

}  // namespace distill
