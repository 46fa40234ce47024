#include "common/validation.h"

#include <cmath>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/spec_resolution.h"

namespace distill {
namespace {

absl::Status Invalid(const std::string& field, const std::string& rule,
                     double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", rule, ", got ", value));
}

absl::Status CheckWeight(const std::string& field, double w) {
  if (!std::isfinite(w) || w < 0) return Invalid(field, "finite and >= 0", w);
  return absl::OkStatus();
}

absl::Status ValidateLosses(const v1::Losses& l) {
  const std::pair<const char*, double> weights[] = {
      {"losses.ce", l.ce()},
      {"losses.mse", l.mse()},
      {"losses.ikd.weight", l.ikd().weight()},
      {"losses.rkd.distance_weight", l.rkd().distance_weight()},
      {"losses.rkd.angle_weight", l.rkd().angle_weight()}};
  bool any = false;
  for (const auto& [field, w] : weights) {
    if (absl::Status s = CheckWeight(field, w); !s.ok()) return s;
    any = any || w > 0;
  }
  if (!any) {
    return absl::InvalidArgumentError(
        "a DISTILL run needs at least one loss weight > 0 (losses.ce, "
        "losses.mse, "
        "losses.ikd.weight, losses.rkd.distance_weight or "
        "losses.rkd.angle_weight)");
  }
  if (l.ikd().weight() > 0 &&
      !(l.ikd().temperature() > 0 && std::isfinite(l.ikd().temperature()))) {
    return Invalid("losses.ikd.temperature", "> 0", l.ikd().temperature());
  }
  return absl::OkStatus();
}

absl::Status ValidateVit(const v1::VitSpec& vit, int image_size) {
  const std::pair<const char*, int> sizes[] = {
      {"teacher.vit.patch_size", vit.patch_size()},
      {"teacher.vit.width", vit.width()},
      {"teacher.vit.depth", vit.depth()},
      {"teacher.vit.heads", vit.heads()}};
  for (const auto& [field, v] : sizes) {
    if (v < 1) return Invalid(field, ">= 1", v);
  }
  if (vit.mlp_ratio() < 1)
    return Invalid("teacher.vit.mlp_ratio", ">= 1", vit.mlp_ratio());
  if (const std::string misfit =
          VitMisfit(image_size, vit.patch_size(), vit.width(), vit.heads());
      !misfit.empty()) {
    return absl::InvalidArgumentError(misfit);
  }
  return absl::OkStatus();
}

absl::Status ValidateEvaluation(const v1::EvaluationSpec& e) {
  if (e.tsne_points() < -1 || e.tsne_points() == 0 ||
      e.tsne_points() > defaults::kMaxTsnePoints) {
    return Invalid("evaluation.tsne_points",
                   absl::StrCat("-1 (off) or 1 to ", defaults::kMaxTsnePoints),
                   e.tsne_points());
  }
  if (e.knn_bank() < 1)
    return Invalid("evaluation.knn_bank", ">= 1", e.knn_bank());
  return absl::OkStatus();
}

// EVALUATE trains nothing: it needs something to judge, and data.
absl::Status ValidateEvaluate(const v1::ExperimentSpec& spec) {
  const v1::TeacherSpec& t = spec.teacher();
  if (t.has_vit()) {
    return absl::InvalidArgumentError(
        "teacher.vit is for TRAIN_TEACHER; EVALUATE names teacher.run_id or "
        "teacher.torchscript");
  }
  if (t.run_id() != 0 && !t.torchscript().empty()) {
    return absl::InvalidArgumentError(
        "teacher must set only one of teacher.run_id and teacher.torchscript");
  }
  if (t.run_id() < 0)
    return Invalid("teacher.run_id", ">= 0", double(t.run_id()));
  if (spec.student_run_id() < 0) {
    return Invalid("student_run_id", ">= 0", double(spec.student_run_id()));
  }
  if (t.run_id() == 0 && t.torchscript().empty() &&
      spec.student_run_id() == 0) {
    return absl::InvalidArgumentError(
        "an EVALUATE run needs teacher.run_id, teacher.torchscript or "
        "student_run_id");
  }
  return ValidateEvaluation(spec.evaluation());
}

}  // namespace

absl::Status ValidateSpec(const v1::ExperimentSpec& spec,
                          TeacherReference teacher) {
  if (spec.kind() != v1::TRAIN_TEACHER && spec.kind() != v1::DISTILL &&
      spec.kind() != v1::EVALUATE) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind must be TRAIN_TEACHER, DISTILL or EVALUATE, got ",
                     v1::ExperimentKind_Name(spec.kind())));
  }
  const v1::DatasetSpec& data = spec.dataset();
  const DatasetInfo* info = FindDataset(data.name());
  if (info == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset.name must be one of ", DatasetNames(), ", got \"",
                     data.name(), "\""));
  }
  if (info->standard_root.empty() && data.root().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("dataset.root must name the ", data.name(), " directory"));
  }
  if (data.loader_threads() < 1) {
    return Invalid("dataset.loader_threads", ">= 1", data.loader_threads());
  }
  if (data.train_limit() < 0)
    return Invalid("dataset.train_limit", ">= 0", data.train_limit());
  if (data.test_limit() < 0)
    return Invalid("dataset.test_limit", ">= 0", data.test_limit());
  if (data.image_size() < 8)
    return Invalid("dataset.image_size", ">= 8", data.image_size());
  if (spec.max_restarts() < 0)
    return Invalid("max_restarts", ">= 0", spec.max_restarts());
  if (spec.kind() == v1::EVALUATE) return ValidateEvaluate(spec);
  if (spec.epochs() < 1) return Invalid("epochs", ">= 1", spec.epochs());
  if (spec.batch_size() < 1)
    return Invalid("batch_size", ">= 1", spec.batch_size());
  if (data.train_limit() > 0 && spec.batch_size() > data.train_limit()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size (", spec.batch_size(),
        ") must not exceed dataset.train_limit (", data.train_limit(), ")"));
  }
  if (spec.metrics_every_steps() < 1) {
    return Invalid("metrics_every_steps", ">= 1", spec.metrics_every_steps());
  }
  if (absl::Status s = ValidateEvaluation(spec.evaluation()); !s.ok()) return s;
  const v1::OptimizerSpec& opt = spec.optimizer();
  if (!(opt.lr() > 0) || !std::isfinite(opt.lr()))
    return Invalid("optimizer.lr", "> 0", opt.lr());
  if (!(opt.momentum() >= 0 && opt.momentum() < 1)) {
    return Invalid("optimizer.momentum", "in [0, 1)", opt.momentum());
  }
  if (absl::Status s =
          CheckWeight("optimizer.weight_decay", opt.weight_decay());
      !s.ok()) {
    return s;
  }

  const v1::TeacherSpec& t = spec.teacher();
  const int teacher_sources =
      int(t.has_vit()) + int(t.run_id() != 0) + int(!t.torchscript().empty());
  if (teacher_sources > 1) {
    return absl::InvalidArgumentError(
        "teacher must set only one of teacher.vit, teacher.run_id and "
        "teacher.torchscript");
  }
  if (spec.kind() == v1::TRAIN_TEACHER) {
    if (t.run_id() != 0) {
      return Invalid("teacher.run_id",
                     "0 for TRAIN_TEACHER (it trains teacher.vit)",
                     double(t.run_id()));
    }
    if (!t.torchscript().empty())
      return absl::OkStatus();  // Fits a linear head.
    return ValidateVit(t.vit(), data.image_size());
  }

  if (t.has_vit()) {
    return absl::InvalidArgumentError(
        "teacher.vit is for TRAIN_TEACHER; a DISTILL run names teacher.run_id "
        "or "
        "teacher.torchscript");
  }
  if (teacher == TeacherReference::kRequired && t.run_id() < 1 &&
      t.torchscript().empty()) {
    return Invalid("teacher.run_id",
                   "the id of a TRAIN_TEACHER run (or set teacher.torchscript)",
                   double(t.run_id()));
  }
  const std::string& arch = spec.student().arch();
  if (FindResNet(arch) == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        "student.arch must be one of ", ResNetNames(), ", got \"", arch, "\""));
  }
  if (spec.student().width() < 1)
    return Invalid("student.width", ">= 1", spec.student().width());
  if (spec.student().embedding_dim() < 0) {
    return Invalid("student.embedding_dim", ">= 0",
                   spec.student().embedding_dim());
  }
  if (absl::Status s = ValidateLosses(spec.losses()); !s.ok()) return s;
  const bool rkd = spec.losses().rkd().distance_weight() > 0 ||
                   spec.losses().rkd().angle_weight() > 0;
  if (rkd && spec.batch_size() < 3) {
    return Invalid("batch_size", ">= 3 when RKD is on", spec.batch_size());
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ExperimentSpec> ResolveAndValidate(
    const v1::ExperimentSpec& spec, TeacherReference teacher) {
  absl::StatusOr<v1::ExperimentSpec> resolved = ResolveSpec(spec);
  if (!resolved.ok()) return resolved.status();
  if (absl::Status s = ValidateSpec(*resolved, teacher); !s.ok()) return s;
  return resolved;
}

absl::Status ValidateSweepShape(const v1::SweepSpec& sweep) {
  if (sweep.name().empty())
    return absl::InvalidArgumentError("name must not be empty");
  if (sweep.members().empty()) {
    return absl::InvalidArgumentError("members must list at least one member");
  }
  std::set<std::string> names;
  for (int i = 0; i < sweep.members_size(); ++i) {
    const std::string& name = sweep.members(i).name();
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("members[", i, "].name must not be empty"));
    }
    if (!names.insert(name).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("members[", i, "].name \"", name, "\" is used twice"));
    }
  }
  const bool train = sweep.teacher().has_train();
  const bool existing = sweep.teacher().run_id() != 0;
  if (train == existing) {
    return absl::InvalidArgumentError(
        "teacher must set exactly one of teacher.train (a TRAIN_TEACHER spec) "
        "and "
        "teacher.run_id (an existing teacher run)");
  }
  return absl::OkStatus();
}

}  // namespace distill
