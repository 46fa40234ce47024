#include "common/spec_resolution.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <map>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/catalog.h"
#include "common/spec_fields.h"

namespace distill {
namespace {

struct VitPreset {
  int patch_size, width, depth, heads;
};

// The DeiT / DINO sizes for 224-px images, and one for 28-px images.
const std::map<std::string, VitPreset>& VitPresets() {
  static const auto* const kPresets = new std::map<std::string, VitPreset>{
      {"base", {16, 768, 12, 12}},
      {"small", {16, 384, 12, 6}},
      {"small-28", {7, 96, 4, 4}},
      {"tiny", {16, 192, 12, 3}},
  };
  return *kPresets;
}

void ResolveDataset(v1::DatasetSpec& d) {
  if (d.name().empty()) d.set_name(std::string(defaults::kDataset));
  if (const DatasetInfo* info = FindDataset(d.name())) {
    if (d.image_size() == 0) d.set_image_size(info->native_size);
  }
  if (!d.has_augment()) d.set_augment(true);
  if (d.loader_threads() == 0) d.set_loader_threads(defaults::kLoaderThreads);
}

void ResolveTraining(v1::ExperimentSpec& s) {
  v1::OptimizerSpec& o = *s.mutable_optimizer();
  if (o.kind() == v1::OPTIMIZER_KIND_UNSPECIFIED) o.set_kind(v1::SGD);
  if (o.lr() == 0) {
    o.set_lr(o.kind() == v1::ADAMW ? defaults::kAdamWLr : defaults::kSgdLr);
  }
  if (s.epochs() == 0) s.set_epochs(defaults::kEpochs);
  if (s.batch_size() == 0) s.set_batch_size(defaults::kBatchSize);
  if (s.metrics_every_steps() == 0)
    s.set_metrics_every_steps(defaults::kMetricsEverySteps);
}

void ResolveStudent(v1::StudentSpec& st) {
  if (st.arch().empty()) st.set_arch(std::string(defaults::kStudentArch));
  if (st.width() == 0) st.set_width(defaults::kStudentWidth);
  if (st.stem() == v1::STEM_UNSPECIFIED) st.set_stem(v1::SMALL);
}

void ResolveLosses(v1::Losses& l) {
  v1::IkdLoss& ikd = *l.mutable_ikd();
  if (ikd.temperature() == 0) ikd.set_temperature(defaults::kTemperature);
  if (!ikd.has_scale_by_tau_squared()) ikd.set_scale_by_tau_squared(true);
  // Filled only when on, so that a spec without DKD reads as before it.
  if (l.dkd().weight() > 0) {
    v1::DkdLoss& dkd = *l.mutable_dkd();
    if (!dkd.has_alpha()) dkd.set_alpha(defaults::kDkdAlpha);
    if (!dkd.has_beta()) dkd.set_beta(defaults::kDkdBeta);
    if (dkd.temperature() == 0) dkd.set_temperature(defaults::kTemperature);
  }
}

// Every -0 in `spec` (nested too) made +0: the two are equal, and a stored
// spec, its run_fields and the engine then all say 0.
void PositiveZeros(v1::ExperimentSpec& spec) {
  ForEachFloatingField(
      spec, "",
      [](google::protobuf::Message& owner,
         const google::protobuf::FieldDescriptor* field, const std::string&) {
        const google::protobuf::Reflection* r = owner.GetReflection();
        // HasField: a proto3 -0 is "set" (its bits are not zero).
        if (FloatingValue(owner, field) == 0 && r->HasField(owner, field)) {
          if (field->cpp_type() ==
              google::protobuf::FieldDescriptor::CPPTYPE_FLOAT) {
            r->SetFloat(&owner, field, 0.0f);
          } else {
            r->SetDouble(&owner, field, 0.0);
          }
        }
        return absl::OkStatus();
      })
      .IgnoreError();
}

void ResolveEvaluation(v1::EvaluationSpec& e) {
  if (e.tsne_points() == 0) e.set_tsne_points(defaults::kTsnePoints);
  if (e.knn_bank() == 0) e.set_knn_bank(defaults::kKnnBank);
}

}  // namespace

absl::StatusOr<v1::VitSpec> ResolveVit(const v1::VitSpec& vit) {
  v1::VitSpec out = vit;
  if (!vit.preset().empty()) {
    auto it = VitPresets().find(vit.preset());
    if (it == VitPresets().end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "teacher.vit.preset must be one of ",
          NameList(VitPresets(), [](const auto& p) { return p.first; }),
          ", got \"", vit.preset(), "\""));
    }
    const VitPreset& p = it->second;
    if (out.patch_size() == 0) out.set_patch_size(p.patch_size);
    if (out.width() == 0) out.set_width(p.width);
    if (out.depth() == 0) out.set_depth(p.depth);
    if (out.heads() == 0) out.set_heads(p.heads);
  }
  if (out.mlp_ratio() == 0) out.set_mlp_ratio(defaults::kMlpRatio);
  return out;
}

absl::StatusOr<v1::ExperimentSpec> ResolveSpec(const v1::ExperimentSpec& spec) {
  v1::ExperimentSpec s = spec;
  PositiveZeros(s);
  ResolveDataset(*s.mutable_dataset());
  ResolveEvaluation(*s.mutable_evaluation());
  if (!s.has_max_restarts()) s.set_max_restarts(defaults::kMaxRestarts);
  if (s.kind() == v1::TRAIN_TEACHER || s.kind() == v1::DISTILL)
    ResolveTraining(s);
  if (s.kind() == v1::TRAIN_TEACHER && s.teacher().has_vit()) {
    absl::StatusOr<v1::VitSpec> vit = ResolveVit(s.teacher().vit());
    if (!vit.ok()) return vit.status();
    *s.mutable_teacher()->mutable_vit() = *std::move(vit);
  }
  if (s.kind() == v1::DISTILL) {
    ResolveStudent(*s.mutable_student());
    ResolveLosses(*s.mutable_losses());
  }
  return s;
}

}  // namespace distill
