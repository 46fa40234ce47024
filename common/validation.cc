#include "common/validation.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <set>
#include <string>
#include <tuple>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/catalog.h"
#include "common/metric_keys.h"
#include "common/placement.h"
#include "common/spec_fields.h"
#include "common/spec_resolution.h"

namespace distill {
namespace {

// A whole number as it was written (2147483647, not 2.14748e+09).
std::string Number(double value) {
  if (std::isfinite(value) && value == std::floor(value) &&
      std::fabs(value) < 1e15) {
    return absl::StrCat(int64_t(value));
  }
  return absl::StrCat(value);
}

absl::Status Invalid(const std::string& field, const std::string& rule,
                     double value) {
  return absl::InvalidArgumentError(
      absl::StrCat(field, " must be ", rule, ", got ", Number(value)));
}

// `value` in [lo, hi] (NaN is not), the field named otherwise.
// A result key as workers report them: letters, digits and _./-, as long
// as a metric key may be.
bool IsResultKey(const std::string& key) {
  if (key.empty() || key.size() > limits::kMetricKeyBytes) return false;
  return std::all_of(key.begin(), key.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '/' ||
           c == '-';
  });
}

absl::Status InRange(const std::string& field, double value, double lo,
                     double hi) {
  if (!(value >= lo && value <= hi))
    return Invalid(field, absl::StrCat("in [", lo, ", ", hi, "]"), value);
  return absl::OkStatus();
}

absl::Status CheckLength(const std::string& field, const std::string& value,
                         size_t max_bytes) {
  if (value.size() > max_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be at most ", max_bytes, " bytes, got ", value.size()));
  }
  return absl::OkStatus();
}

// The first error of `checks`, in order.
absl::Status FirstError(std::initializer_list<absl::Status> checks) {
  for (const absl::Status& s : checks) {
    if (!s.ok()) return s;
  }
  return absl::OkStatus();
}

// Every floating-point field of `message` (nested too, by its path) is 0
// or a finite normal number. A subnormal one (0 < |x| < 2.2e-308, such as
// 1e-310) is refused by name: it is 0 in the engine's float32 and trains
// or weighs nothing, so a run that asks for it asks for something else.
// Each field's own range (ValidateSpec) refuses huge values.
absl::Status CheckNumbers(const v1::ExperimentSpec& spec) {
  return ForEachFloatingField(
      spec, "",
      [](const google::protobuf::Message& owner,
         const google::protobuf::FieldDescriptor* field,
         const std::string& path) -> absl::Status {
        const double x = FloatingValue(owner, field);
        if (!std::isfinite(x)) {
          return absl::InvalidArgumentError(
              absl::StrCat(path, " must be a finite number, got ", x));
        }
        if (x != 0 && std::fabs(x) < DBL_MIN) {
          return absl::InvalidArgumentError(absl::StrCat(
              path,
              " must be 0 or at least 2.2250738585072014e-308 in magnitude "
              "(a subnormal number is 0 in the engine's float32), got ",
              x));
        }
        return absl::OkStatus();
      });
}

absl::Status ValidateLosses(const v1::Losses& l) {
  const std::pair<const char*, double> weights[] = {
      {"losses.ce", l.ce()},
      {"losses.mse", l.mse()},
      {"losses.ikd.weight", l.ikd().weight()},
      {"losses.rkd.distance_weight", l.rkd().distance_weight()},
      {"losses.rkd.angle_weight", l.rkd().angle_weight()},
      {"losses.sp", l.sp()},
      {"losses.pkt", l.pkt()},
      {"losses.dkd.weight", l.dkd().weight()},
      {"losses.cka", l.cka()}};
  bool any = false;
  for (const auto& [field, w] : weights) {
    if (absl::Status s = InRange(field, w, 0, limits::kLossWeight); !s.ok())
      return s;
    any = any || w > 0;
  }
  if (!any) {
    return absl::InvalidArgumentError(
        "a DISTILL run needs at least one loss weight > 0 (losses.ce, "
        "losses.mse, losses.ikd.weight, losses.rkd.distance_weight, "
        "losses.rkd.angle_weight, losses.sp, losses.pkt, losses.dkd.weight "
        "or losses.cka)");
  }
  const double t = l.ikd().temperature();
  if (l.ikd().weight() > 0 && !(t > 0 && t <= limits::kTemperature)) {
    return Invalid("losses.ikd.temperature",
                   absl::StrCat("in (0, ", limits::kTemperature, "]"), t);
  }
  if (l.dkd().weight() > 0) {
    const double dt = l.dkd().temperature();
    if (!(dt > 0 && dt <= limits::kTemperature)) {
      return Invalid("losses.dkd.temperature",
                     absl::StrCat("in (0, ", limits::kTemperature, "]"), dt);
    }
    for (const auto& [field, w] :
         {std::pair{"losses.dkd.alpha", l.dkd().alpha()},
          std::pair{"losses.dkd.beta", l.dkd().beta()}}) {
      if (absl::Status s = InRange(field, w, 0, limits::kLossWeight); !s.ok())
        return s;
    }
    if (l.dkd().warmup_epochs() > uint32_t(limits::kEpochs)) {
      return Invalid("losses.dkd.warmup_epochs",
                     absl::StrCat("at most ", limits::kEpochs),
                     l.dkd().warmup_epochs());
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateVit(const v1::VitSpec& vit, int image_size) {
  if (absl::Status s = FirstError(
          {InRange("teacher.vit.patch_size", vit.patch_size(), 1, image_size),
           InRange("teacher.vit.width", vit.width(), 1, limits::kVitWidth),
           InRange("teacher.vit.depth", vit.depth(), 1, limits::kVitDepth),
           InRange("teacher.vit.heads", vit.heads(), 1, limits::kVitHeads),
           InRange("teacher.vit.mlp_ratio", vit.mlp_ratio(), 1,
                   limits::kVitMlpRatio)});
      !s.ok()) {
    return s;
  }
  const int64_t grid = image_size / vit.patch_size();
  if (grid * grid > limits::kVitTokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "teacher.vit.patch_size (", vit.patch_size(), ") cuts ", image_size,
        "-px images into ", grid * grid, " patches; at most ",
        limits::kVitTokens, " are allowed (use a larger patch)"));
  }
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
  return InRange("evaluation.knn_bank", e.knn_bank(), 1, limits::kKnnBank);
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

// What every kind has: its kind, finite normal numbers, bounded strings,
// a data set it can find, sizes, restarts and precision.
absl::Status ValidateCommon(const v1::ExperimentSpec& spec) {
  if (spec.kind() != v1::TRAIN_TEACHER && spec.kind() != v1::DISTILL &&
      spec.kind() != v1::EVALUATE) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind must be TRAIN_TEACHER, DISTILL or EVALUATE, got ",
                     v1::ExperimentKind_Name(spec.kind())));
  }
  if (absl::Status s = CheckNumbers(spec); !s.ok()) return s;
  if (absl::Status s = CheckRequirements(spec.requirements()); !s.ok())
    return s;
  if (spec.fork().run_id() < 0)
    return Invalid("fork.run_id", ">= 0", double(spec.fork().run_id()));
  if (spec.fork().run_id() != 0 && spec.kind() != v1::DISTILL) {
    return absl::InvalidArgumentError(
        absl::StrCat("fork.run_id is for DISTILL runs, got ",
                     v1::ExperimentKind_Name(spec.kind())));
  }
  if (spec.fork().continue_training() && spec.fork().run_id() == 0) {
    return absl::InvalidArgumentError(
        "fork.continue_training needs fork.run_id: the run to go on from");
  }
  const v1::DatasetSpec& data = spec.dataset();
  if (absl::Status s = FirstError(
          {CheckLength("name", spec.name(), limits::kNameBytes),
           CheckLength("dataset.root", data.root(), limits::kPathBytes),
           CheckLength("teacher.torchscript", spec.teacher().torchscript(),
                       limits::kPathBytes),
           CheckLength("student.pretrained", spec.student().pretrained(),
                       limits::kPathBytes)});
      !s.ok()) {
    return s;
  }
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
  if (absl::Status s = FirstError(
          {InRange("dataset.loader_threads", data.loader_threads(), 1,
                   limits::kLoaderThreads),
           InRange("dataset.train_limit", data.train_limit(), 0, INT32_MAX),
           InRange("dataset.test_limit", data.test_limit(), 0, INT32_MAX),
           InRange("dataset.image_size", data.image_size(), 8,
                   limits::kImageSize),
           InRange("max_restarts", spec.max_restarts(), 0,
                   limits::kMaxRestarts)});
      !s.ok()) {
    return s;
  }
  if (!v1::Precision_IsValid(spec.precision())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "precision must be PRECISION_AUTO, FP32, BF16 or FP16, got ",
        int(spec.precision())));
  }
  return absl::OkStatus();
}

// What a kind that trains has: epochs, batches, reporting, evaluation and
// its optimizer.
absl::Status ValidateTraining(const v1::ExperimentSpec& spec) {
  const v1::DatasetSpec& data = spec.dataset();
  if (absl::Status s = FirstError(
          {InRange("epochs", spec.epochs(), 1, limits::kEpochs),
           InRange("batch_size", spec.batch_size(), 1, limits::kBatchSize)});
      !s.ok()) {
    return s;
  }
  if (data.train_limit() > 0 && spec.batch_size() > data.train_limit()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "batch_size (", spec.batch_size(),
        ") must not exceed dataset.train_limit (", data.train_limit(), ")"));
  }
  if (absl::Status s =
          InRange("metrics_every_steps", spec.metrics_every_steps(), 1,
                  limits::kMetricsEverySteps);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateEvaluation(spec.evaluation()); !s.ok()) return s;
  const v1::OptimizerSpec& opt = spec.optimizer();
  if (opt.kind() != v1::SGD && opt.kind() != v1::ADAMW) {
    return absl::InvalidArgumentError(absl::StrCat(
        "optimizer.kind must be SGD or ADAMW, got ", int(opt.kind())));
  }
  if (!(opt.lr() > 0 && opt.lr() <= limits::kLr)) {
    return Invalid("optimizer.lr", absl::StrCat("in (0, ", limits::kLr, "]"),
                   opt.lr());
  }
  if (!(opt.momentum() >= 0 && opt.momentum() < 1)) {
    return Invalid("optimizer.momentum", "in [0, 1)", opt.momentum());
  }
  return InRange("optimizer.weight_decay", opt.weight_decay(), 0,
                 limits::kWeightDecay);
}

// A DISTILL run: a teacher to learn from, a student it can build, losses.
absl::Status ValidateDistill(const v1::ExperimentSpec& spec,
                             TeacherReference teacher) {
  const v1::TeacherSpec& t = spec.teacher();
  if (t.has_vit()) {
    return absl::InvalidArgumentError(
        "teacher.vit is for TRAIN_TEACHER; a DISTILL run names teacher.run_id "
        "or teacher.torchscript");
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
  if (absl::Status s = FirstError(
          {InRange("student.width", spec.student().width(), 1,
                   limits::kStudentWidth),
           InRange("student.embedding_dim", spec.student().embedding_dim(), 0,
                   limits::kEmbeddingDim)});
      !s.ok()) {
    return s;
  }
  if (spec.student().stem() != v1::SMALL &&
      spec.student().stem() != v1::IMAGENET) {
    return absl::InvalidArgumentError(
        absl::StrCat("student.stem must be SMALL or IMAGENET, got ",
                     int(spec.student().stem())));
  }
  if (absl::Status s = ValidateLosses(spec.losses()); !s.ok()) return s;
  const bool rkd = spec.losses().rkd().distance_weight() > 0 ||
                   spec.losses().rkd().angle_weight() > 0;
  if (rkd && spec.batch_size() < 3) {
    return Invalid("batch_size", ">= 3 when RKD is on", spec.batch_size());
  }
  if (spec.losses().cka() > 0 && spec.batch_size() < 2) {
    return Invalid("batch_size", ">= 2 when CKA is a loss", spec.batch_size());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSpec(const v1::ExperimentSpec& spec,
                          TeacherReference teacher) {
  if (absl::Status s = ValidateCommon(spec); !s.ok()) return s;
  if (spec.kind() == v1::EVALUATE) return ValidateEvaluate(spec);
  if (absl::Status s = ValidateTraining(spec); !s.ok()) return s;
  const v1::TeacherSpec& t = spec.teacher();
  const int teacher_sources =
      int(t.has_vit()) + int(t.run_id() != 0) + int(!t.torchscript().empty());
  if (teacher_sources > 1) {
    return absl::InvalidArgumentError(
        "teacher must set only one of teacher.vit, teacher.run_id and "
        "teacher.torchscript");
  }
  if (spec.kind() == v1::DISTILL) return ValidateDistill(spec, teacher);
  // TRAIN_TEACHER: a ViT to train, or a linear head on a TorchScript one.
  if (t.run_id() != 0) {
    return Invalid("teacher.run_id",
                   "0 for TRAIN_TEACHER (it trains teacher.vit)",
                   double(t.run_id()));
  }
  if (!t.torchscript().empty()) return absl::OkStatus();
  return ValidateVit(t.vit(), spec.dataset().image_size());
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
  if (absl::Status s = CheckLength("name", sweep.name(), limits::kNameBytes);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          NotReadAsAnId("name", sweep.name(), "a command taking a sweep");
      !s.ok()) {
    return s;
  }
  if (sweep.members().empty() && sweep.grid().empty() &&
      sweep.random().axes().empty()) {
    return absl::InvalidArgumentError(
        "members must list at least one member (or grid or random an axis)");
  }
  if (sweep.members_size() > limits::kSweepMembers) {
    return absl::InvalidArgumentError(
        absl::StrCat("members must list at most ", limits::kSweepMembers,
                     " members, got ", sweep.members_size()));
  }
  std::set<std::string> names;
  for (int i = 0; i < sweep.members_size(); ++i) {
    const std::string& name = sweep.members(i).name();
    if (name.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("members[", i, "].name must not be empty"));
    }
    if (absl::Status s = CheckLength(absl::StrCat("members[", i, "].name"),
                                     name, limits::kNameBytes);
        !s.ok()) {
      return s;
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
  if (absl::Status s = InRange("max_concurrent", sweep.max_concurrent(), 0,
                               limits::kSweepMembers);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = InRange("priority", sweep.priority(),
                               -limits::kSweepPriority, limits::kSweepPriority);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = ValidateRetention(sweep.retention()); !s.ok()) return s;
  if (absl::Status s = ValidateClaims(sweep); !s.ok()) return s;
  return ValidateEarlyStopping(sweep.early_stopping(),
                               sweep.base().evaluation().every_epoch());
}

absl::Status ValidateClaims(const v1::SweepSpec& sweep) {
  if (sweep.claims_size() > 32) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a sweep makes at most 32 claims, got ", sweep.claims_size()));
  }
  for (int i = 0; i < sweep.claims_size(); ++i) {
    const v1::Claim& c = sweep.claims(i);
    const std::string at = absl::StrCat("claims[", i, "]");
    if (!v1::ClaimKind_IsValid(c.kind()) ||
        c.kind() == v1::CLAIM_KIND_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          at, ".kind must be NEAR_CHANCE, AT_LEAST, BEST, EXCEEDS or ORDERED"));
    }
    if (c.text().size() > 256 || c.row().size() > 128 ||
        c.other().size() > 128 || c.metric().size() > 32 ||
        c.rows_size() > 64 || c.reference_size() > 64) {
      return absl::InvalidArgumentError(absl::StrCat(
          at,
          ": text at most 256 bytes, row and other 128, metric 32, at "
          "most 64 rows and 64 reference values"));
    }
    for (const auto& [field, value, lo, hi] :
         {std::tuple{".within", c.within(), 0.0, 100.0},
          std::tuple{".classes", double(c.classes()), 0.0, 100000.0},
          std::tuple{".min_tau", c.min_tau(), -1.0, 1.0}}) {
      if (absl::Status s = InRange(at + field, value, lo, hi); !s.ok())
        return s;
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateRetention(const v1::Retention& retention) {
  if (retention.has_keep_best()) {
    if (absl::Status s =
            InRange("retention.keep_best", retention.keep_best(), 0, 100'000);
        !s.ok()) {
      return s;
    }
  }
  if (!retention.by().empty() && !IsResultKey(retention.by())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "retention.by must be a result key of 1 to ", limits::kMetricKeyBytes,
        " letters, digits and _./- (e.g. eval/top1), got \"",
        retention.by().substr(0, 2 * limits::kMetricKeyBytes), "\""));
  }
  return absl::OkStatus();
}

absl::Status ValidateEarlyStopping(const v1::EarlyStopping& stopping,
                                   bool every_epoch) {
  if (!v1::StoppingRule_IsValid(stopping.rule())) {
    return Invalid("early_stopping.rule", "MEDIAN or ASHA", stopping.rule());
  }
  if (stopping.rule() == v1::STOPPING_RULE_UNSPECIFIED) {
    if (stopping.ByteSizeLong() != 0) {
      return absl::InvalidArgumentError(
          "early_stopping sets fields but no rule (MEDIAN or ASHA)");
    }
    return absl::OkStatus();
  }
  namespace k = metric_keys;
  const std::string metric =
      stopping.metric().empty() ? k::kDefaultRanking : stopping.metric();
  auto among = [&](const auto& keys) {
    return std::find(std::begin(keys), std::end(keys), metric) !=
           std::end(keys);
  };
  const bool always = among(k::kEveryEpochJudgements);
  const bool embedding = among(k::kEmbeddingJudgements);
  if (!always && !embedding) {
    std::vector<std::string> keys(std::begin(k::kEveryEpochJudgements),
                                  std::end(k::kEveryEpochJudgements));
    keys.insert(keys.end(), std::begin(k::kEmbeddingJudgements),
                std::end(k::kEmbeddingJudgements));
    const std::string last = keys.back();
    keys.pop_back();
    return absl::InvalidArgumentError(
        absl::StrCat("early_stopping.metric must be a per-epoch judgement (",
                     absl::StrJoin(keys, ", "), " or ", last, "), got \"",
                     metric.substr(0, 64), "\""));
  }
  if (embedding && !every_epoch) {
    return absl::InvalidArgumentError(absl::StrCat(
        "early_stopping.metric ", metric,
        " is measured every epoch only with base.evaluation.every_epoch: "
        "true"));
  }
  if (absl::Status s = InRange("early_stopping.warmup_epochs",
                               stopping.warmup_epochs(), 0, limits::kEpochs);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          InRange("early_stopping.min_completed", stopping.min_completed(), 0,
                  limits::kSweepMembers);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = InRange("early_stopping.grace_period",
                               stopping.grace_period(), 0, limits::kEpochs);
      !s.ok()) {
    return s;
  }
  const double rf = stopping.reduction_factor();
  if (rf != 0 && !(rf > 1 && rf <= 100)) {
    return Invalid("early_stopping.reduction_factor", "0 (3) or in (1, 100]",
                   rf);
  }
  return absl::OkStatus();
}

absl::Status NotReadAsAnId(absl::string_view what, absl::string_view name,
                           absl::string_view reader) {
  if (name.empty() ||
      !std::all_of(name.begin(), name.end(), absl::ascii_isdigit)) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat(what, " \"", name, "\" is all digits, which ", reader,
                   " reads as an id; add a letter"));
}

}  // namespace distill
