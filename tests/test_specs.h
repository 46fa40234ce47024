#ifndef DISTILL_TESTS_TEST_SPECS_H_
#define DISTILL_TESTS_TEST_SPECS_H_

#include <initializer_list>
#include <string>

#include "distill/v1/spec.pb.h"

namespace distill {

// Adds to `spec` a grid axis over the field at `path` with `values`.
inline void AddGridAxis(v1::SweepSpec& spec, const std::string& path,
                        std::initializer_list<const char*> values) {
  v1::GridAxis* axis = spec.add_grid();
  axis->set_path(path);
  for (const char* value : values) axis->add_values(value);
}

// A sweep of a small ViT teacher and two students on 512 Fashion-MNIST
// images for one epoch: D (labels CE) and G (CE + IKD + RKD).
inline v1::SweepSpec SmallSweep(const std::string& name) {
  v1::SweepSpec sweep;
  sweep.set_name(name);
  v1::ExperimentSpec* base = sweep.mutable_base();
  base->mutable_dataset()->set_name("fashion-mnist");
  base->mutable_dataset()->set_train_limit(512);
  base->mutable_dataset()->set_test_limit(500);
  base->mutable_student()->set_arch("resnet18");
  base->mutable_student()->set_width(8);
  base->mutable_optimizer()->set_kind(v1::SGD);
  base->mutable_optimizer()->set_lr(0.05);
  base->mutable_optimizer()->set_momentum(0.9);
  base->set_epochs(1);
  base->set_batch_size(32);
  base->set_seed(7);
  base->set_metrics_every_steps(4);
  v1::ExperimentSpec* teacher = sweep.mutable_teacher()->mutable_train();
  v1::VitSpec* vit = teacher->mutable_teacher()->mutable_vit();
  vit->set_patch_size(7);
  vit->set_width(32);
  vit->set_depth(1);
  vit->set_heads(2);
  teacher->mutable_optimizer()->set_kind(v1::ADAMW);
  teacher->mutable_optimizer()->set_lr(0.003);
  v1::SweepMember* d = sweep.add_members();
  d->set_name("D");
  d->mutable_losses()->set_ce(1);
  v1::SweepMember* g = sweep.add_members();
  g->set_name("G");
  g->mutable_losses()->set_ce(1);
  g->mutable_losses()->mutable_ikd()->set_weight(1);
  g->mutable_losses()->mutable_ikd()->set_temperature(4);
  g->mutable_losses()->mutable_rkd()->set_distance_weight(1);
  g->mutable_losses()->mutable_rkd()->set_angle_weight(2);
  return sweep;
}

}  // namespace distill

#endif  // DISTILL_TESTS_TEST_SPECS_H_
