// Steps a worker takes with the scheduler, for tests and the fuzzers that
// need runs with metrics and files: an epoch report, an upload.
#ifndef DISTILL_TESTS_SCHEDULER_STEPS_H_
#define DISTILL_TESTS_SCHEDULER_STEPS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "common/sha256.h"
#include "server/scheduling/scheduler.h"

namespace distill {

// The header of an upload of `data` as the run's file `name`.
inline v1::RunFileHeader UploadHeader(const v1::Run& run,
                                      const std::string& data,
                                      const std::string& name = "") {
  v1::RunFileHeader header;
  header.set_run_id(run.id());
  header.set_attempt(run.attempt());
  header.set_sha256(Sha256Hex(data));
  header.set_size(int64_t(data.size()));
  header.set_name(name);
  return header;
}

// Uploads `data` as the run's file `name` (its checkpoint when empty);
// the status of the first step that failed.
inline absl::Status UploadRunFile(Scheduler& scheduler, const v1::Run& run,
                                  const std::string& data,
                                  const std::string& name = "") {
  const v1::RunFileHeader header = UploadHeader(run, data, name);
  absl::StatusOr<std::unique_ptr<RunFileWriter>> writer =
      scheduler.BeginUpload(header);
  if (!writer.ok()) return writer.status();
  if (absl::Status s = (*writer)->Append(data); !s.ok()) return s;
  return scheduler.FinishUpload(header, **writer);
}

// A report of train/loss and eval/top1 at epochs 1..`epochs` (step 10 x
// epoch, value 0.5 + 0.1 x epoch).
inline v1::ReportMetricsRequest EpochReport(const v1::Run& run, int epochs) {
  v1::ReportMetricsRequest report;
  report.set_run_id(run.id());
  report.set_attempt(run.attempt());
  for (int epoch = 1; epoch <= epochs; ++epoch) {
    for (const char* key : {"train/loss", "eval/top1"}) {
      v1::MetricPoint* p = report.add_points();
      p->set_key(key);
      p->set_epoch(epoch);
      p->set_step(epoch * 10);
      p->set_value(0.5 + 0.1 * epoch);
    }
  }
  return report;
}

}  // namespace distill

#endif  // DISTILL_TESTS_SCHEDULER_STEPS_H_
