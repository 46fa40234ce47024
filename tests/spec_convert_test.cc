// The worker's translation of a wire spec into the engine's config
// (worker/spec_convert.h): every field the engine reads arrives, every
// enumeration maps one to one, and a new spec field must be placed.
#include "worker/spec_convert.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "google/protobuf/descriptor.h"

namespace distill {
namespace {

using ::google::protobuf::Descriptor;
using ::google::protobuf::FieldDescriptor;
using ::testing::ElementsAreArray;

// A resolved spec with a value unlike any default in every field.
v1::ExperimentSpec EveryFieldSet() {
  v1::ExperimentSpec spec;
  spec.set_kind(v1::TRAIN_TEACHER);
  v1::DatasetSpec* d = spec.mutable_dataset();
  d->set_name("cub");
  d->set_root("/data/cub");
  d->set_train_limit(101);
  d->set_test_limit(102);
  d->set_image_size(224);
  d->set_augment(false);
  d->set_crop_to_boxes(true);
  d->set_loader_threads(5);
  v1::VitSpec* vit = spec.mutable_teacher()->mutable_vit();
  vit->set_patch_size(16);
  vit->set_width(192);
  vit->set_depth(12);
  vit->set_heads(3);
  vit->set_mlp_ratio(3);
  spec.mutable_teacher()->set_torchscript("teacher.pt");
  v1::StudentSpec* st = spec.mutable_student();
  st->set_arch("resnet50");
  st->set_width(48);
  st->set_embedding_dim(96);
  st->set_stem(v1::IMAGENET);
  st->set_pretrained("resnet50.pt");
  v1::Losses* l = spec.mutable_losses();
  l->set_ce(0.5);
  l->set_mse(0.25);
  l->mutable_ikd()->set_weight(0.125);
  l->mutable_ikd()->set_temperature(3.5);
  l->mutable_ikd()->set_scale_by_tau_squared(false);
  l->mutable_rkd()->set_distance_weight(25);
  l->mutable_rkd()->set_angle_weight(50);
  v1::OptimizerSpec* o = spec.mutable_optimizer();
  o->set_kind(v1::ADAMW);
  o->set_lr(0.0007);
  o->set_momentum(0.85);
  o->set_weight_decay(0.05);
  spec.set_epochs(9);
  spec.set_batch_size(48);
  spec.set_seed(1234567890123);
  spec.set_metrics_every_steps(13);
  spec.mutable_evaluation()->set_tsne_points(300);
  spec.mutable_evaluation()->set_knn_bank(700);
  spec.mutable_evaluation()->set_every_epoch(true);
  spec.set_precision(v1::BF16);
  return spec;
}

TEST(ToRunConfigTest, EveryFieldTheEngineReadsArrives) {
  const engine::RunConfig c = ToRunConfig(EveryFieldSet(), "cuda:1");
  EXPECT_EQ(c.kind, engine::RunKind::kTrainTeacher);
  EXPECT_EQ(c.dataset.name, "cub");
  EXPECT_EQ(c.dataset.root, "/data/cub");
  EXPECT_EQ(c.dataset.train_limit, 101);
  EXPECT_EQ(c.dataset.test_limit, 102);
  EXPECT_EQ(c.dataset.image_size, 224);
  EXPECT_FALSE(c.dataset.augment);
  EXPECT_TRUE(c.dataset.crop_to_boxes);
  EXPECT_EQ(c.dataset.loader_threads, 5);
  EXPECT_EQ(c.teacher.patch_size, 16);
  EXPECT_EQ(c.teacher.width, 192);
  EXPECT_EQ(c.teacher.depth, 12);
  EXPECT_EQ(c.teacher.heads, 3);
  EXPECT_EQ(c.teacher.mlp_ratio, 3);
  EXPECT_EQ(c.teacher_torchscript, "teacher.pt");
  EXPECT_EQ(c.student.arch, "resnet50");
  EXPECT_EQ(c.student.width, 48);
  EXPECT_EQ(c.student.embedding_dim, 96);
  EXPECT_EQ(c.student.stem, engine::Stem::kImageNet);
  EXPECT_EQ(c.student.pretrained, "resnet50.pt");
  EXPECT_EQ(c.losses.ce, 0.5);
  EXPECT_EQ(c.losses.mse, 0.25);
  EXPECT_EQ(c.losses.ikd, 0.125);
  EXPECT_EQ(c.losses.temperature, 3.5);
  EXPECT_FALSE(c.losses.scale_by_tau_squared);
  EXPECT_EQ(c.losses.rkd_distance, 25);
  EXPECT_EQ(c.losses.rkd_angle, 50);
  EXPECT_EQ(c.optimizer.kind, engine::OptimizerKind::kAdamW);
  EXPECT_EQ(c.optimizer.lr, 0.0007);
  EXPECT_EQ(c.optimizer.momentum, 0.85);
  EXPECT_EQ(c.optimizer.weight_decay, 0.05);
  EXPECT_EQ(c.epochs, 9);
  EXPECT_EQ(c.batch_size, 48);
  EXPECT_EQ(c.seed, 1234567890123);
  EXPECT_EQ(c.metrics_every_steps, 13);
  EXPECT_EQ(c.tsne_points, 300);
  EXPECT_EQ(c.knn_bank, 700);
  EXPECT_TRUE(c.embedding_metrics_every_epoch);
  EXPECT_EQ(c.device, "cuda:1");
  EXPECT_EQ(c.precision, "bf16");
}

TEST(ToRunConfigTest, EachEnumerationMapsOneToOne) {
  v1::ExperimentSpec spec = EveryFieldSet();
  spec.set_kind(v1::DISTILL);
  EXPECT_EQ(ToRunConfig(spec, "cpu").kind, engine::RunKind::kDistill);
  spec.set_kind(v1::EVALUATE);
  EXPECT_EQ(ToRunConfig(spec, "cpu").kind, engine::RunKind::kEvaluate);
  spec.mutable_student()->set_stem(v1::SMALL);
  EXPECT_EQ(ToRunConfig(spec, "cpu").student.stem, engine::Stem::kSmall);
  spec.mutable_optimizer()->set_kind(v1::SGD);
  EXPECT_EQ(ToRunConfig(spec, "cpu").optimizer.kind,
            engine::OptimizerKind::kSgd);
  const std::pair<v1::Precision, const char*> precisions[] = {
      {v1::PRECISION_AUTO, "auto"},
      {v1::FP32, "fp32"},
      {v1::BF16, "bf16"},
      {v1::FP16, "fp16"}};
  for (const auto& [precision, name] : precisions) {
    spec.set_precision(precision);
    EXPECT_EQ(ToRunConfig(spec, "cpu").precision, name);
  }
  spec.mutable_evaluation()->set_tsne_points(-1);  // No map.
  EXPECT_EQ(ToRunConfig(spec, "cpu").tsne_points, 0);
}

// Every leaf field under `d`, as its dotted path.
void CollectLeaves(const Descriptor* d, const std::string& prefix,
                   std::set<std::string>* leaves) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    const std::string path = prefix + f->name();
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) {
      CollectLeaves(f->message_type(), path + ".", leaves);
    } else {
      leaves->insert(path);
    }
  }
}

// A field added to ExperimentSpec fails this until it is placed: copied
// by ToRunConfig (and its value checked above), or the coordinator's.
TEST(ToRunConfigTest, EverySpecFieldIsTheEnginesOrTheCoordinators) {
  const std::set<std::string> converted = {"kind",
                                           "dataset.name",
                                           "dataset.root",
                                           "dataset.train_limit",
                                           "dataset.test_limit",
                                           "dataset.image_size",
                                           "dataset.augment",
                                           "dataset.crop_to_boxes",
                                           "dataset.loader_threads",
                                           "teacher.vit.patch_size",
                                           "teacher.vit.width",
                                           "teacher.vit.depth",
                                           "teacher.vit.heads",
                                           "teacher.vit.mlp_ratio",
                                           "teacher.torchscript",
                                           "student.arch",
                                           "student.width",
                                           "student.embedding_dim",
                                           "student.stem",
                                           "student.pretrained",
                                           "losses.ce",
                                           "losses.mse",
                                           "losses.ikd.weight",
                                           "losses.ikd.temperature",
                                           "losses.ikd.scale_by_tau_squared",
                                           "losses.rkd.distance_weight",
                                           "losses.rkd.angle_weight",
                                           "losses.sp",
                                           "losses.pkt",
                                           "losses.dkd.weight",
                                           "losses.dkd.alpha",
                                           "losses.dkd.beta",
                                           "losses.dkd.temperature",
                                           "losses.dkd.warmup_epochs",
                                           "losses.cka",
                                           "optimizer.kind",
                                           "optimizer.lr",
                                           "optimizer.momentum",
                                           "optimizer.weight_decay",
                                           "epochs",
                                           "batch_size",
                                           "seed",
                                           "metrics_every_steps",
                                           "evaluation.tsne_points",
                                           "evaluation.knn_bank",
                                           "evaluation.every_epoch",
                                           "precision"};
  // Resolved or acted on by the coordinator: a preset is written out as
  // its fields, a teacher or student run (or the run a fork starts from)
  // arrives as the lease's files, the requirements place the run.
  const std::set<std::string> coordinators = {
      "teacher.vit.preset",
      "teacher.run_id",
      "name",
      "max_restarts",
      "student_run_id",
      "fork.run_id",
      "fork.continue_training",
      "requirements.labels",
      "requirements.min_device_memory_gib",
      "requirements.device_kind"};
  std::set<std::string> placed = converted;
  placed.insert(coordinators.begin(), coordinators.end());
  std::set<std::string> leaves;
  CollectLeaves(v1::ExperimentSpec::descriptor(), "", &leaves);
  EXPECT_THAT(leaves, ElementsAreArray(placed));
}

}  // namespace
}  // namespace distill
