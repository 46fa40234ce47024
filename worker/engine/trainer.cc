#include "worker/engine/trainer.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "common/metric_keys.h"
#include "worker/engine/evaluation.h"
#include "worker/engine/judge.h"
#include "worker/engine/objective.h"
#include "worker/engine/teacher_outputs.h"
#include "worker/engine/training_loop.h"
#include "worker/engine/weights.h"

namespace distill::engine {
namespace {

namespace k = metric_keys;

// An autocast output upcast for the losses; undefined stays undefined.
torch::Tensor Fp32(const torch::Tensor& t) {
  return t.defined() ? t.to(torch::kFloat) : t;
}

// The host's cache entry for this run's teacher outputs; empty: none.
absl::StatusOr<std::string> CacheEntry(const RunContext& run) {
  return TeacherCacheEntry(
      run.config, TeacherFile(run.config, run.hooks.teacher_checkpoint),
      run.hooks.teacher_cache);
}

absl::StatusOr<TeacherOutputs> FrozenTeacherOutputs(RunContext& run, Data& data,
                                                    Teacher* teacher) {
  absl::StatusOr<std::string> entry = CacheEntry(run);
  if (!entry.ok()) return entry.status();
  absl::StatusOr<TeacherOutputs> outputs = ComputeTeacherOutputs(
      data, teacher, run.config, run.hooks.teacher_checkpoint, *entry);
  if (outputs.ok()) run.results[k::kTeacherCacheHit] = outputs->from_cache;
  return outputs;
}

// The teacher's judgement from its outputs: k-NN against its first
// knn_bank training embeddings.
absl::StatusOr<std::map<std::string, double>> JudgeTeacher(
    const std::string& prefix, const TeacherOutputs& outputs, Data& data,
    RunContext& run) {
  const int64_t bank = std::min(run.config.knn_bank, data.train->size());
  return Judge(prefix, outputs.test, outputs.train.second.slice(0, 0, bank),
               data, run.config, run.Stages());
}

// The outcome of a run whose evaluation `status` interrupted: stopped, or
// handed back (with the resume point of its training, when it has one).
// Any other status as it is.
absl::StatusOr<RunOutcome> EndedEarly(RunContext& run,
                                      const absl::Status& status) {
  if (!IsInterrupted(status)) return status;
  RunOutcome outcome{run.results, run.HandBack(), false};
  outcome.drained = run.drained;
  return outcome;
}

// Adds the t-SNE maps of `maps` as a run file, when asked for.
absl::Status AddTsne(
    RunContext& run, RunOutcome& outcome,
    const std::vector<std::pair<std::string, torch::Tensor>>& maps,
    Data& data) {
  if (run.config.tsne_points <= 0 || run.hooks.run_file_dir.empty())
    return absl::OkStatus();
  absl::StatusOr<std::string> tsne =
      WriteTsne(run.hooks.run_file_dir, maps, data.test->labels(), run.config,
                run.Stages());
  if (!tsne.ok()) return tsne.status();
  outcome.run_files.push_back(*tsne);
  return absl::OkStatus();
}

// How much of the teacher's embedding structure the student took: linear
// CKA and k-NN neighbourhood overlap of their test embeddings.
void AddStructureTransfer(const torch::Tensor& teacher_test,
                          const torch::Tensor& student_test,
                          std::map<std::string, double>& results) {
  results[k::kTeacherCka] = LinearCka(teacher_test, student_test);
  results[k::kTeacherKnnOverlap] =
      NeighbourhoodOverlap(teacher_test, student_test, k::kKnnOverlapK);
}

// Per-epoch judgement of a model the run trains, embedding metrics on
// the last epoch or every epoch when asked; `last_test` keeps the final
// test outputs.
template <typename Model>
EpochEvalFn EvaluateEachEpoch(
    RunContext& run, Model& model, Data& data,
    LogitsAndEmbedding* last_test = nullptr,
    const torch::Tensor* teacher_test_logits = nullptr) {
  return [&run, &model, &data, last_test, teacher_test_logits](
             bool last_epoch) -> absl::StatusOr<std::map<std::string, double>> {
    absl::StatusOr<Judgement> j =
        JudgeModel(Frozen(model), k::kEval,
                   last_epoch || run.config.embedding_metrics_every_epoch, data,
                   run.config, run.Stages());
    if (!j.ok()) return j.status();
    if (teacher_test_logits != nullptr) {
      j->metrics[k::kTeacherAgreement] =
          TopOneAgreement(j->test.first, *teacher_test_logits);
    }
    if (last_epoch && last_test != nullptr) *last_test = j->test;
    return j->metrics;
  };
}

absl::StatusOr<RunOutcome> TrainTeacher(RunContext& run, Data& data) {
  const std::vector<int64_t> shape = data.train->image_shape();
  VitConfig vit = run.config.teacher;
  vit.in_channels = shape[0];
  vit.image_size = shape[1];
  vit.num_classes = data.num_classes;
  if (const std::string misfit =
          VitMisfit(vit.image_size, vit.patch_size, vit.width, vit.heads);
      !misfit.empty()) {
    return absl::InvalidArgumentError(misfit);
  }
  Vit teacher(vit);
  teacher->to(run.device);
  auto step = [&](const torch::Tensor& images,
                  const torch::Tensor& idx) -> absl::StatusOr<Objective> {
    torch::Tensor logits;
    {
      AutocastScope amp(run.device, run.precision);
      logits = teacher->forward(ToDevice(images, run.device)).first;
    }
    return LabelsObjective(
        logits.to(torch::kFloat),
        ToDevice(data.train->labels().index_select(0, idx), run.device));
  };
  absl::StatusOr<bool> stopped =
      TrainLoop(run, *teacher, data.train.get(), data.train->size(), step,
                EvaluateEachEpoch(run, teacher, data));
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{run.results, *stopped, run.drained};
  if (*stopped) return outcome;
  if (absl::Status s = SaveVitTeacher(teacher, run.hooks.output_checkpoint);
      !s.ok())
    return s;
  return outcome;
}

absl::StatusOr<RunOutcome> TrainLinearHead(RunContext& run, Data& data) {
  // The backbone is frozen: its embeddings (evaluation views) are computed
  // once, and the head trains on them alone.
  absl::StatusOr<TeacherOutputs> outputs =
      FrozenTeacherOutputs(run, data, nullptr);
  if (!outputs.ok()) return outputs.status();
  const torch::Tensor& train_embedding = outputs->train.second;
  const torch::Tensor& test_embedding = outputs->test.second;
  torch::manual_seed(run.config.seed);  // The same head, cache or not.
  torch::nn::Linear head(train_embedding.size(1), data.num_classes);
  head->to(run.device);
  auto step = [&](const torch::Tensor&,
                  const torch::Tensor& idx) -> absl::StatusOr<Objective> {
    return LabelsObjective(
        head(ToDevice(train_embedding.index_select(0, idx), run.device)),
        ToDevice(data.train->labels().index_select(0, idx), run.device));
  };
  auto evaluate =
      [&](bool last_epoch) -> absl::StatusOr<std::map<std::string, double>> {
    torch::NoGradGuard no_grad;
    TeacherOutputs judged = *outputs;
    judged.test.first = head(test_embedding.to(run.device)).to(torch::kCPU);
    if (!last_epoch && !run.config.embedding_metrics_every_epoch) {
      return Judge(k::kEval, judged.test, torch::Tensor(), data, run.config,
                   run.Stages());
    }
    return JudgeTeacher(k::kEval, judged, data, run);
  };
  absl::StatusOr<bool> stopped =
      TrainLoop(run, *head, nullptr, data.train->size(), step, evaluate);
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{run.results, *stopped, run.drained};
  if (*stopped) return outcome;
  absl::Status saved = SaveLinearHeadTeacher(run.config.teacher_torchscript,
                                             head, run.hooks.output_checkpoint);
  if (!saved.ok()) return saved;
  return outcome;
}

// The student a DISTILL run trains, on the run's device: its config for
// the data and a teacher embedding `teacher_width` wide, from its
// pretrained weights when it names them.
absl::StatusOr<ResNetStudent> NewStudent(RunContext& run, Data& data,
                                         int64_t teacher_width) {
  StudentConfig sc = run.config.student;
  sc.in_channels = data.train->image_shape()[0];
  sc.num_classes = data.num_classes;
  sc.teacher_width = teacher_width;
  // Whether the teacher was loaded (drawing random numbers for its initial
  // weights) or its outputs came from the cache, the student starts the same.
  torch::manual_seed(run.config.seed);
  ResNetStudent student(sc);
  if (!sc.pretrained.empty()) {
    // A head for other classes and the student's own layers start fresh.
    absl::Status s = LoadWeightsByName(*student, sc.pretrained,
                                       {"fc.", "embedding.", "projection."});
    if (!s.ok()) return s;
  }
  if (!run.hooks.student_checkpoint.empty()) {
    // A fork: the parent's student, but a projection to another teacher's
    // width or a head for other classes start fresh.
    absl::StatusOr<ResNetStudent> parent =
        LoadStudent(run.hooks.student_checkpoint, torch::kCPU,
                    data.train->image_shape()[1]);
    if (!parent.ok()) return parent.status();
    absl::Status s = CopyWeightsByName(
        *student, NamedWeights(**parent),
        absl::StrCat("the forked run's student ", run.hooks.student_checkpoint),
        {"fc.", "projection."});
    if (!s.ok()) return s;
  }
  student->to(run.device);
  student->UseChannelsLast(data.train->image_shape()[1]);
  return student;
}

// The rows `idx` of the frozen teacher's outputs, on `device`.
LogitsAndEmbedding TeacherRows(const LogitsAndEmbedding& outputs,
                               const torch::Tensor& idx,
                               const torch::Device& device) {
  const torch::Tensor at = ToDevice(idx, outputs.first.device());
  return {ToDevice(outputs.first.index_select(0, at), device),
          ToDevice(outputs.second.index_select(0, at), device)};
}

absl::StatusOr<RunOutcome> Distill(RunContext& run, Data& data) {
  // Where the training view is deterministic the frozen teacher runs once
  // per image, or not at all when this host's cache has its outputs; with
  // random augmentation it runs online on every batch.
  std::unique_ptr<Teacher> online;
  if (!data.train->deterministic()) {
    absl::StatusOr<std::unique_ptr<Teacher>> t =
        LoadFrozenTeacher(run.config, run.hooks.teacher_checkpoint);
    if (!t.ok()) return t.status();
    online = *std::move(t);
  }
  absl::StatusOr<TeacherOutputs> outputs =
      FrozenTeacherOutputs(run, data, online.get());
  if (!outputs.ok()) return outputs.status();
  // On a GPU the frozen teacher's outputs stay there for the run (each
  // step gathers its batch on the device).
  const torch::Tensor teacher_logits =
      KeepOnDevice(outputs->train.first, run.device);
  const torch::Tensor teacher_embedding =
      KeepOnDevice(outputs->train.second, run.device);
  const torch::Tensor& teacher_test_logits = outputs->test.first;
  run.results[k::kTeacherOnline] = online ? 1 : 0;
  absl::StatusOr<std::map<std::string, double>> judged_teacher =
      JudgeTeacher(k::kTeacher, *outputs, data, run);
  if (!judged_teacher.ok()) return EndedEarly(run, judged_teacher.status());
  run.results.merge(*judged_teacher);

  absl::StatusOr<ResNetStudent> made =
      NewStudent(run, data, teacher_embedding.size(1));
  if (!made.ok()) return made.status();
  ResNetStudent& student = *made;

  const LossWeights& weights = run.config.losses;
  auto step = [&](const torch::Tensor& images,
                  const torch::Tensor& idx) -> absl::StatusOr<Objective> {
    torch::Tensor on_device = ToDevice(images, run.device);
    torch::Tensor t_logits, t_embedding, logits, embedding, projected;
    {
      // The forward passes in the run's precision; the losses below in
      // fp32 on upcast inputs, as DESIGN.md defines them.
      AutocastScope amp(run.device, run.precision);
      absl::StatusOr<LogitsAndEmbedding> t =
          online ? online->Forward(on_device)
                 : TeacherRows({teacher_logits, teacher_embedding}, idx,
                               run.device);
      if (!t.ok()) return t.status();
      std::tie(t_logits, t_embedding) = *t;
      std::tie(logits, embedding) = student->forward(on_device);
      if (UsesProjection(weights)) projected = student->Project(embedding);
    }
    return DistillationObjective(
        weights, {.student_logits = Fp32(logits),
                  .student_embedding = Fp32(embedding),
                  .projected = Fp32(projected),
                  .teacher_logits = Fp32(t_logits),
                  .teacher_embedding = Fp32(t_embedding),
                  .labels = ToDevice(data.train->labels().index_select(0, idx),
                                     run.device),
                  .epoch = run.epoch});
  };
  LogitsAndEmbedding student_test;
  absl::StatusOr<bool> stopped =
      TrainLoop(run, *student, data.train.get(), data.train->size(), step,
                EvaluateEachEpoch(run, student, data, &student_test,
                                  &teacher_test_logits));
  if (!stopped.ok()) return stopped.status();
  RunOutcome outcome{run.results, *stopped, run.drained};
  if (*stopped) return outcome;
  AddStructureTransfer(outputs->test.second, student_test.second,
                       outcome.results);
  if (absl::Status s = SaveStudent(student, run.hooks.output_checkpoint);
      !s.ok())
    return s;
  absl::Status tsne = AddTsne(
      run, outcome,
      {{"teacher", outputs->test.second}, {"student", student_test.second}},
      data);
  if (!tsne.ok()) return EndedEarly(run, tsne);
  return outcome;
}

absl::StatusOr<RunOutcome> Evaluate(RunContext& run, Data& data) {
  const bool has_teacher = !run.hooks.teacher_checkpoint.empty() ||
                           !run.config.teacher_torchscript.empty();
  std::vector<std::pair<std::string, torch::Tensor>> maps;
  torch::Tensor teacher_logits, teacher_embedding;
  if (has_teacher) {
    absl::StatusOr<TeacherOutputs> outputs =
        FrozenTeacherOutputs(run, data, nullptr);
    if (!outputs.ok()) return outputs.status();
    teacher_logits = outputs->test.first;
    teacher_embedding = outputs->test.second;
    absl::StatusOr<std::map<std::string, double>> judged =
        JudgeTeacher(k::kTeacher, *outputs, data, run);
    if (!judged.ok()) return EndedEarly(run, judged.status());
    run.results.merge(*judged);
    maps.emplace_back("teacher", outputs->test.second);
  }
  if (!run.hooks.student_checkpoint.empty()) {
    absl::StatusOr<ResNetStudent> student = LoadStudent(
        run.hooks.student_checkpoint, run.device, data.test->image_shape()[1]);
    if (!student.ok()) return student.status();
    const StudentConfig& sc = (*student)->config;
    if (sc.in_channels != data.test->image_shape()[0] ||
        sc.num_classes != data.num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the student takes ", sc.in_channels, "-channel images and has ",
          sc.num_classes, " classes; the data set has ",
          data.test->image_shape()[0], " and ", data.num_classes));
    }
    absl::StatusOr<Judgement> j = JudgeModel(
        Frozen(*student), k::kStudent, true, data, run.config, run.Stages());
    if (!j.ok()) return EndedEarly(run, j.status());
    run.results.merge(j->metrics);
    if (has_teacher) {
      run.results[k::kTeacherAgreement] =
          TopOneAgreement(j->test.first, teacher_logits);
      AddStructureTransfer(teacher_embedding, j->test.second, run.results);
    }
    maps.emplace_back("student", j->test.second);
  }
  for (const auto& [key, value] : run.results) run.sink.Emit(0, 0, key, value);
  run.sink.Flush();
  RunOutcome outcome{run.results, false};
  if (absl::Status s = AddTsne(run, outcome, maps, data); !s.ok())
    return EndedEarly(run, s);
  return outcome;
}

absl::StatusOr<RunOutcome> Execute(const RunConfig& config,
                                   const RunHooks& hooks) {
  torch::manual_seed(config.seed);
  absl::StatusOr<Data> data = OpenData(config.dataset, uint64_t(config.seed));
  if (!data.ok()) return data.status();
  const torch::Device run_device(config.device);
  absl::StatusOr<Precision> precision =
      ResolvePrecision(config.precision, run_device);
  if (!precision.ok()) return precision.status();
  ConfigureDevice(run_device);
  RunContext run(config, hooks, *precision);
  switch (config.kind) {
    case RunKind::kEvaluate:
      return Evaluate(run, *data);
    case RunKind::kTrainTeacher:
      return config.teacher_torchscript.empty() ? TrainTeacher(run, *data)
                                                : TrainLinearHead(run, *data);
    case RunKind::kDistill:
      return Distill(run, *data);
  }
  return absl::InvalidArgumentError("unknown run kind");
}

}  // namespace

absl::StatusOr<RunOutcome> ExecuteRun(const RunConfig& config,
                                      const RunHooks& hooks) {
  try {
    return Execute(config, hooks);
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("LibTorch: ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(e.what());
  }
}

}  // namespace distill::engine
