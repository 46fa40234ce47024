#include "render/runs.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/byte_sizes.h"
#include "common/metric_keys.h"
#include "common/placement.h"
#include "common/provenance.h"
#include "common/spec_fields.h"
#include "common/worker_status.h"
#include "render/results.h"
#include "render/text.h"

namespace distill {

std::string StageName(const std::string& key) {
  namespace k = metric_keys;
  static const auto* const kNames = new std::map<std::string, std::string>{
      {k::kEvaluatingEmbeddings, "embeddings"},
      {k::kEvaluatingKnn, "k-NN"},
      {k::kEvaluatingKmeans, "k-means"},
      {k::kEvaluatingTsne, "t-SNE"},
  };
  auto it = kNames->find(key);
  if (it != kNames->end()) return it->second;
  return key.substr(key.find('/') + 1);
}

void UpdateProgress(const v1::MetricPoint& m, Progress* p) {
  if (m.key() == metric_keys::kTotalSteps) {
    p->total_steps = int64_t(m.value());
    return;
  }
  if (absl::StartsWith(m.key(), metric_keys::kEvaluating)) {
    p->stage = StageName(m.key());
    p->stage_fraction = m.value();
    p->stage_step = m.step();
    return;
  }
  // Training again after an epoch's evaluation.
  if (m.step() > p->stage_step) p->stage.clear();
  p->step = std::max(p->step, m.step());
  p->epoch = std::max(p->epoch, m.epoch());
  if (m.key() == metric_keys::kLoss) {
    p->loss = m.value();
    p->has_loss = true;
  } else if (m.key() == metric_keys::kImagesPerSec) {
    p->images_per_sec = m.value();
  } else if (m.key() == metric_keys::kEvalTop1) {
    p->top1 = m.value();
  }
}

void UpdateProgress(const v1::RunEvent& event, Progress* p) {
  for (const v1::MetricPoint& m : event.metrics()) UpdateProgress(m, p);
}

std::string ProgressLine(const v1::Run& run, const Progress& p) {
  std::string out = absl::StrCat("run ", run.id());
  if (!run.member().empty()) absl::StrAppend(&out, " (", run.member(), ")");
  absl::StrAppend(&out, " ", v1::RunStatus_Name(run.status()));
  if (run.status() == v1::RUNNING || run.status() == v1::SUCCEEDED) {
    absl::StrAppend(&out, "  epoch ", std::max(1, p.epoch), "/",
                    run.spec().epochs());
    if (p.total_steps > 0)
      absl::StrAppend(&out, "  step ", p.step, "/", p.total_steps);
    if (p.has_loss)
      absl::StrAppend(&out, absl::StrFormat("  loss %.4f", p.loss));
    const bool evaluating = run.status() == v1::RUNNING && !p.stage.empty();
    if (p.images_per_sec > 0) {
      absl::StrAppend(&out, absl::StrFormat("  %.0f img/s", p.images_per_sec));
      if (run.status() == v1::RUNNING && p.total_steps > 0 && !evaluating) {
        const double left = double(p.total_steps - p.step) *
                            run.spec().batch_size() / p.images_per_sec;
        absl::StrAppend(&out, "  ETA ", Duration(left));
      }
    }
    if (evaluating) {
      absl::StrAppend(&out, absl::StrFormat("  evaluating: %s %.0f %%", p.stage,
                                            100 * p.stage_fraction));
    }
    if (p.top1 >= 0)
      absl::StrAppend(&out, absl::StrFormat("  top-1 %.1f%%", 100 * p.top1));
  }
  if (!run.message().empty() && run.status() != v1::RUNNING) {
    absl::StrAppend(&out, "  ", run.message());
  }
  return out;
}

std::string Sparkline(const std::vector<double>& values, size_t width) {
  if (values.empty()) return "";
  static const char* const kBlocks[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  const size_t n = std::min(width, values.size());
  std::vector<double> buckets(n);
  for (size_t b = 0; b < n; ++b) {
    const size_t from = b * values.size() / n, to = (b + 1) * values.size() / n;
    double sum = 0;
    for (size_t i = from; i < to; ++i) sum += values[i];
    buckets[b] = sum / double(to - from);
  }
  const auto [lo, hi] = std::minmax_element(buckets.begin(), buckets.end());
  std::string out;
  for (double v : buckets) {
    const int level =
        *hi > *lo ? int(std::lround(7 * (v - *lo) / (*hi - *lo))) : 3;
    out += kBlocks[level];
  }
  return out;
}

std::vector<v1::MetricPoint> LatestMeasurements(
    const std::vector<v1::MetricPoint>& history) {
  // Per key and attempt, the first step measured.
  std::map<std::pair<std::string, int32_t>, int64_t> first_step;
  for (const v1::MetricPoint& m : history) {
    auto [it, inserted] =
        first_step.try_emplace({m.key(), m.attempt()}, m.step());
    if (!inserted) it->second = std::min(it->second, m.step());
  }
  std::vector<v1::MetricPoint> out;
  for (const v1::MetricPoint& m : history) {
    bool superseded = false;
    for (auto it = first_step.upper_bound({m.key(), m.attempt()});
         it != first_step.end() && it->first.first == m.key(); ++it) {
      superseded |= it->second <= m.step();
    }
    if (!superseded) out.push_back(m);
  }
  return out;
}

namespace {}  // namespace

std::string ForkLine(const v1::ForkSpec& fork) {
  if (fork.run_id() == 0) return "";
  return absl::StrCat("forked from run ", fork.run_id(),
                      fork.continue_training()
                          ? " (continued: its weights, optimizer and epochs)"
                          : " (its student's weights, a new optimizer)");
}

namespace {

// "run 3  DISTILL  SUCCEEDED  attempt 0", its sweep, tags and note.
std::string RunHeading(const v1::Run& run) {
  std::string out = absl::StrCat(
      "run ", run.id(), "  ", v1::ExperimentKind_Name(run.spec().kind()), "  ",
      v1::RunStatus_Name(run.status()), "  attempt ", run.attempt(), "\n");
  if (run.sweep_id() != 0) {
    absl::StrAppend(&out, "  sweep ", run.sweep_id(), " member ", run.member(),
                    "\n");
  }
  if (!run.owner().empty())
    absl::StrAppend(&out, "  owner ", run.owner(), "\n");
  if (const std::string from = ForkLine(run.spec().fork()); !from.empty())
    absl::StrAppend(&out, "  ", from, "\n");
  if (!run.waiting_reason().empty())
    absl::StrAppend(&out, "  waiting: ", run.waiting_reason(), "\n");
  for (const std::string& p : run.preemptions())
    absl::StrAppend(&out, "  preempted: ", p, "\n");
  if (!run.tags().empty()) {
    std::vector<std::string> tags;
    for (const auto& [key, value] : run.tags())
      tags.push_back(absl::StrCat(key, "=", value));
    std::sort(tags.begin(), tags.end());
    absl::StrAppend(&out, "  tags ", absl::StrJoin(tags, " "), "\n");
  }
  if (!run.note().empty()) absl::StrAppend(&out, "  note ", run.note(), "\n");
  return out;
}

// Where and with what it ran, and the digests of what it read.
std::string ProvenanceLines(const v1::Run& run) {
  if (run.provenance().empty()) return "";
  const std::map<std::string, std::string> p(run.provenance().begin(),
                                             run.provenance().end());
  auto get = [&](const char* key) {
    auto it = p.find(key);
    return it == p.end() || it->second.empty() ? std::string("-") : it->second;
  };
  namespace k = provenance;
  std::string out = absl::StrCat(
      "  ran on ", get(k::kHost), " (worker ", get(k::kWorker), "), ",
      get(k::kDevice), ", ", get(k::kThreads), " threads, LibTorch ",
      get(k::kLibTorch), ", BLAS ", get(k::kBlas), "\n  built ",
      get(k::kWorkerVersion), " (coordinator ", get(k::kCoordinatorVersion),
      ")  spec sha256 ", get(k::kSpecSha256).substr(0, 16), "\n");
  if (p.count(k::kDataSha256)) {
    absl::StrAppend(&out, "  data sha256 ", get(k::kDataSha256), " (",
                    get(k::kDataFiles), " files)\n");
  }
  if (p.count(k::kTeacherCheckpointSha256)) {
    absl::StrAppend(&out, "  teacher checkpoint sha256 ",
                    get(k::kTeacherCheckpointSha256), "\n");
  }
  if (p.count(k::kTeacherTorchScriptSha256)) {
    absl::StrAppend(&out, "  teacher TorchScript sha256 ",
                    get(k::kTeacherTorchScriptSha256), "\n");
  }
  return out;
}

// How it ended: its worker, message, wall time, results and files.
std::string OutcomeLines(const v1::Run& run) {
  std::string out;
  if (!run.worker_id().empty())
    absl::StrAppend(&out, "  worker ", run.worker_id(), "\n");
  if (!run.message().empty())
    absl::StrAppend(&out, "  message: ", run.message(), "\n");
  if (run.finished_ms() > 0 && run.started_ms() > 0) {
    absl::StrAppend(
        &out, "  wall time ",
        Duration(double(run.finished_ms() - run.started_ms()) / 1000), "\n");
  }
  for (const auto& [key, value] : std::map<std::string, double>(
           run.results().begin(), run.results().end())) {
    absl::StrAppend(&out, "  ", key, " = ", absl::StrFormat("%.4f", value),
                    "\n");
  }
  int64_t held = 0;
  for (const v1::RunFile& f : run.files()) {
    absl::StrAppend(&out, "  file ", f.name(), " (", HumanBytes(f.size()),
                    ", sha256 ", f.sha256().substr(0, 12), ")\n");
    held += f.size();
  }
  if (held > 0)
    absl::StrAppend(&out, "  run files held: ", HumanBytes(held), "\n");
  if (auto it = run.provenance().find(provenance::kRetention);
      it != run.provenance().end()) {
    absl::StrAppend(&out, "  retention: ", it->second, "\n");
  }
  return out;
}

// The training loss and test top-1 by epoch of `history`.
struct RunCurves {
  std::vector<double> loss, top1;
};

RunCurves CurvesOf(const std::vector<v1::MetricPoint>& history) {
  RunCurves c;
  for (const v1::MetricPoint& m : history) {
    if (m.key() == metric_keys::kLoss) c.loss.push_back(m.value());
    if (m.key() == metric_keys::kEvalTop1) c.top1.push_back(m.value());
  }
  return c;
}

// The training loss as a sparkline, test top-1 by epoch: the parent's (a
// fork's; may be empty), "│", then the run's own.
std::string CurveLines(const RunCurves& parent, const RunCurves& own) {
  std::string out;
  const bool joined = !parent.loss.empty() || !parent.top1.empty();
  const std::string mark = joined ? " │" : "";
  if (!own.loss.empty()) {
    const double first =
        parent.loss.empty() ? own.loss.front() : parent.loss.front();
    // One scale for both; the mark where the run's own points begin.
    std::vector<double> all = parent.loss;
    all.insert(all.end(), own.loss.begin(), own.loss.end());
    std::string line = Sparkline(all);
    if (!parent.loss.empty()) {
      const size_t glyphs = line.size() / 3;  // Each block is 3 bytes.
      const size_t at = std::min(
          glyphs, (parent.loss.size() * glyphs + all.size() / 2) / all.size());
      line.insert(3 * at, "│");
    }
    absl::StrAppend(&out, absl::StrFormat("  train/loss %8.4f ", first), line,
                    absl::StrFormat(" %.4f\n", own.loss.back()));
  }
  if (!own.top1.empty()) {
    absl::StrAppend(&out, "  eval/top1 by epoch:");
    for (double t : parent.top1)
      absl::StrAppend(&out, absl::StrFormat(" %.1f%%", 100 * t));
    absl::StrAppend(&out, mark);
    for (double t : own.top1)
      absl::StrAppend(&out, absl::StrFormat(" %.1f%%", 100 * t));
    absl::StrAppend(&out, "\n");
  }
  return out;
}

}  // namespace

// What the spec asks for: data, training, and the models of its kind.
std::string SpecLines(const v1::Run& run) {
  const v1::ExperimentSpec& s = run.spec();
  const v1::DatasetSpec& d = s.dataset();
  std::string out = absl::StrCat(
      "  data ", d.name(),
      d.root().empty() ? "" : absl::StrCat(" at ", d.root()), " (train ",
      d.train_limit(), ", test ", d.test_limit(), "; 0 = all)  image ",
      d.image_size(), " px  seed ", s.seed(), "\n");
  if (const std::string needs = DescribeRequirements(s.requirements());
      !needs.empty()) {
    absl::StrAppend(&out, "  requires ", needs, "\n");
  }
  if (s.kind() != v1::EVALUATE) {
    const v1::OptimizerSpec& o = s.optimizer();
    absl::StrAppend(
        &out, "  epochs ", s.epochs(), "  batch ", s.batch_size(),
        "  optimizer ", v1::OptimizerKind_Name(o.kind()), " lr ", o.lr(),
        // AdamW has no momentum term.
        o.kind() == v1::SGD ? absl::StrCat(" momentum ", o.momentum()) : "",
        " weight decay ", o.weight_decay(), "  max restarts ", s.max_restarts(),
        "\n");
  }
  const std::string teacher = s.teacher().torchscript().empty()
                                  ? absl::StrCat("run ", run.teacher_run_id())
                                  : s.teacher().torchscript();
  if (s.kind() == v1::DISTILL) {
    const v1::StudentSpec& st = s.student();
    absl::StrAppend(&out, "  teacher ", teacher, "  student ", st.arch(),
                    " width ", st.width(), " stem ", v1::Stem_Name(st.stem()),
                    " embedding ",
                    st.embedding_dim() > 0 ? absl::StrCat(st.embedding_dim())
                                           : std::string("pooled"),
                    "\n  losses ", LossWeights(s.losses()), "\n");
  } else if (s.kind() == v1::EVALUATE) {
    absl::StrAppend(&out, "  evaluates teacher ",
                    s.teacher().torchscript().empty()
                        ? absl::StrCat("run ", s.teacher().run_id())
                        : s.teacher().torchscript(),
                    ", student run ", s.student_run_id(), "\n");
  } else if (!s.teacher().torchscript().empty()) {
    absl::StrAppend(&out, "  linear head on TorchScript backbone ",
                    s.teacher().torchscript(), "\n");
  } else {
    const v1::VitSpec& v = s.teacher().vit();
    absl::StrAppend(
        &out, "  ViT ", v.preset().empty() ? "" : absl::StrCat(v.preset(), " "),
        "patch ", v.patch_size(), " width ", v.width(), " depth ", v.depth(),
        " heads ", v.heads(), " mlp ratio ", v.mlp_ratio(), "\n");
  }
  return out;
}

std::string FormatRunDetails(
    const v1::Run& run, const std::vector<v1::MetricPoint>& history,
    const std::vector<v1::MetricPoint>& parent_history) {
  return absl::StrCat(RunHeading(run), ProvenanceLines(run), SpecLines(run),
                      OutcomeLines(run),
                      CurveLines(CurvesOf(LatestMeasurements(parent_history)),
                                 CurvesOf(LatestMeasurements(history))));
}

std::string FormatRunList(const std::vector<v1::Run>& runs) {
  std::string out = absl::StrFormat(
      "%5s  %-5s  %-13s  %-10s  %-10s  %-14s  %-7s  %-12s  %s\n", "id", "sweep",
      "kind", "member", "status", "losses", "top-1 %", "owner", "waiting for");
  for (const v1::Run& r : runs) {
    auto it = r.results().find(metric_keys::kEvalTop1);
    const std::string top1 = it == r.results().end()
                                 ? "-"
                                 : absl::StrFormat("%.1f", 100 * it->second);
    const std::string line = absl::StrFormat(
        "%5d  %-5s  %-13s  %-10s  %-10s  %-14s  %-7s  %-12s  %s", r.id(),
        r.sweep_id() ? absl::StrCat(r.sweep_id()) : "-",
        v1::ExperimentKind_Name(r.spec().kind()),
        r.member().empty() ? "-" : r.member(), v1::RunStatus_Name(r.status()),
        r.spec().kind() == v1::DISTILL ? LossSummary(r.spec().losses()) : "-",
        top1, r.owner().empty() ? "-" : r.owner(), r.waiting_reason());
    absl::StrAppend(&out, absl::StripTrailingAsciiWhitespace(line), "\n");
  }
  return out;
}

std::string FormatRunListCsv(const std::vector<v1::Run>& runs) {
  std::set<std::string> keys;
  for (const v1::Run& r : runs)
    for (const auto& [key, value] : r.results()) keys.insert(key);
  std::vector<std::string> header = {
      "id",     "sweep_id",       "member",     "kind",
      "status", "teacher_run_id", "created_ms", "finished_ms",
      "owner",  "waiting_reason"};
  for (const std::string& key : keys) header.push_back(CsvField(key));
  std::string out = absl::StrCat(absl::StrJoin(header, ","), "\n");
  for (const v1::Run& r : runs) {
    std::vector<std::string> cells = {absl::StrCat(r.id()),
                                      absl::StrCat(r.sweep_id()),
                                      CsvField(r.member()),
                                      v1::ExperimentKind_Name(r.spec().kind()),
                                      v1::RunStatus_Name(r.status()),
                                      absl::StrCat(r.teacher_run_id()),
                                      absl::StrCat(r.created_ms()),
                                      absl::StrCat(r.finished_ms()),
                                      CsvField(r.owner()),
                                      CsvField(r.waiting_reason())};
    for (const std::string& key : keys) {
      auto it = r.results().find(key);
      cells.push_back(it == r.results().end() ? "" : CsvNumber(it->second));
    }
    absl::StrAppend(&out, absl::StrJoin(cells, ","), "\n");
  }
  return out;
}

std::string FormatRunCsv(const v1::Run& run) {
  std::string out = "field,value\n";
  auto row = [&](const std::string& field, const std::string& value) {
    absl::StrAppend(&out, CsvField(field), ",", CsvField(value), "\n");
  };
  row("id", absl::StrCat(run.id()));
  row("sweep_id", absl::StrCat(run.sweep_id()));
  row("member", run.member());
  row("status", v1::RunStatus_Name(run.status()));
  row("attempt", absl::StrCat(run.attempt()));
  row("owner", run.owner());
  row("waiting_reason", run.waiting_reason());
  for (const std::string& p : run.preemptions()) row("preempted", p);
  row("message", run.message());
  row("note", run.note());
  for (const auto& [path, value] : FlattenSpec(run.spec()))
    row(absl::StrCat("spec/", path), value);
  std::map<std::string, double> results(run.results().begin(),
                                        run.results().end());
  for (const auto& [key, value] : results)
    row(absl::StrCat("result/", key), CsvNumber(value));
  std::map<std::string, std::string> tags(run.tags().begin(), run.tags().end());
  for (const auto& [key, value] : tags) row(absl::StrCat("tag/", key), value);
  std::map<std::string, std::string> provenance(run.provenance().begin(),
                                                run.provenance().end());
  for (const auto& [key, value] : provenance)
    row(absl::StrCat("provenance/", key), value);
  for (const v1::RunFile& f : run.files())
    row(absl::StrCat("file/", f.name()), f.sha256());
  return out;
}

std::string FormatWorkersCsv(const std::vector<v1::Worker>& workers) {
  std::string out =
      "id,state,hostname,device,threads,libtorch_version,blas,run_id,"
      "last_seen_ms,device_memory_bytes,accelerator,cpu_cores,labels\n";
  for (const v1::Worker& w : workers) {
    absl::StrAppend(
        &out,
        absl::StrJoin({CsvField(w.id()), CsvField(WorkerStatusWord(w)),
                       CsvField(w.hostname()), CsvField(w.device()),
                       absl::StrCat(w.threads()),
                       CsvField(w.libtorch_version()), CsvField(w.blas()),
                       absl::StrCat(w.run_id()), absl::StrCat(w.last_seen_ms()),
                       absl::StrCat(w.device_memory_bytes()),
                       CsvField(w.accelerator()), absl::StrCat(w.cpu_cores()),
                       CsvField(absl::StrJoin(w.labels(), ","))},
                      ","),
        "\n");
  }
  return out;
}

}  // namespace distill
