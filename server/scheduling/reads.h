// What the coordinator answers without changing anything: runs by id, by
// filters (in SQL) and in pages, a run's metric history and its watch
// events, the newest sweeps and runs, workers as operators see them, and
// /metrics' gauges. Each read runs on a snapshot of its own connection and
// never waits for a write. Thread-safe.
#ifndef DISTILL_SERVER_SCHEDULING_READS_H_
#define DISTILL_SERVER_SCHEDULING_READS_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "distill/v1/experiment_service.pb.h"
#include "server/scheduling/scheduler_core.h"

namespace distill {

// Where a watcher is in a run's history.
struct WatchCursor {
  bool started = false;
  bool include_history = false;
  // The first event's history: at most this many points of each key,
  // spread evenly (0: kHistoryPointsPerKey).
  int64_t history_points_per_key = 0;
  int64_t metric_sequence = 0;
  v1::RunStatus status = v1::RUN_STATUS_UNSPECIFIED;
};

// One page of a listing and the token of the next (empty at the end).
struct RunPage {
  std::vector<v1::Run> runs;
  std::string next_page_token;
};

struct WorkerPage {
  std::vector<v1::Worker> workers;
  std::string next_page_token;
};

struct MetricPage {
  std::vector<v1::MetricPoint> points;
  std::string next_page_token;
};

struct QueueView;

class Reads {
 public:
  // Does not take ownership; `core` must outlive it.
  explicit Reads(SchedulerCore& core) : core_(core) {}

  // With its waiting_reason when it is QUEUED or WAITING.
  absl::StatusOr<v1::Run> GetRun(int64_t id);
  absl::StatusOr<std::vector<v1::Run>> ListRuns(int64_t sweep_id,
                                                v1::RunStatus status);
  // A page of the runs that pass the request's filters, in id order or by
  // its sort; the filters run in SQL (Store::FindRuns).
  absl::StatusOr<RunPage> FindRuns(const v1::ListRunsRequest& request);
  // A page of the runs of a sweep and status, in id order; `page_token`
  // from the previous page, `page_size` 0 for the default.
  absl::StatusOr<RunPage> ListRunsPage(int64_t sweep_id, v1::RunStatus status,
                                       const std::string& page_token,
                                       int page_size) {
    v1::ListRunsRequest request;
    request.set_sweep_id(sweep_id);
    request.set_status(status);
    request.set_page_token(page_token);
    request.set_page_size(page_size);
    return FindRuns(request);
  }
  // The newest `limit` sweeps and runs (the live pages' index).
  absl::StatusOr<std::vector<v1::Sweep>> RecentSweeps(int limit);
  absl::StatusOr<std::vector<v1::Run>> RecentRuns(int limit);
  // A page of the run's full metric history, oldest first (for CSV).
  absl::StatusOr<MetricPage> MetricHistory(int64_t run_id,
                                           const std::string& page_token,
                                           int page_size);
  // The run's event for a watcher at `cursor`, or nullopt when nothing
  // changed since; advances the cursor. Never waits.
  absl::StatusOr<std::optional<v1::RunEvent>> PollRunEvent(int64_t run_id,
                                                           WatchCursor* cursor);

  // Workers newest first with the runs they hold: at most `limit` (0:
  // all) registered before `before_row` (0: from the newest).
  absl::StatusOr<std::vector<v1::Worker>> Workers(int64_t before_row,
                                                  int64_t limit);
  // A page of them, newest first.
  absl::StatusOr<WorkerPage> WorkersPage(const std::string& page_token,
                                         int page_size);
  // The worker as listed, with its state and the run it holds (0: none).
  v1::Worker WorkerInfo(const WorkerRecord& record, int64_t run_id) const;
  // Sets options.metrics' gauges: runs by status, workers by state.
  absl::Status RefreshGauges();

 private:
  // Sets the waiting_reason of each QUEUED or WAITING run of `runs`: its
  // teacher's status, the disk guard, its sweep's max_concurrent, the runs
  // ahead of it in the queue, the workers.
  absl::Status ExplainWaiting(Store& store, std::vector<v1::Run>& runs);
  absl::StatusOr<QueueView> ViewQueue(Store& store);
  std::string WhyQueued(Store& store, const v1::Run& run, QueueView& view);
  // Adds the run's preemptions to its history (Run.preemptions).
  static absl::Status AddPreemptions(Store& store, v1::Run& run);
  // Why the owner's runs wait for others' (its cap; owners further below
  // their share), or "".
  std::string OwnersTurn(const OwnerRecord& owner, const QueueView& view) const;
  SchedulerCore& core_;
};

}  // namespace distill

#endif  // DISTILL_SERVER_SCHEDULING_READS_H_
