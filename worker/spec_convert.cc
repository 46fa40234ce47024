#include "worker/spec_convert.h"

#include "common/vit_presets.h"

namespace distill {

engine::RunConfig ToRunConfig(const v1::ExperimentSpec& spec,
                              const std::string& device) {
  engine::RunConfig c;
  c.kind = spec.kind() == v1::TRAIN_TEACHER ? engine::RunKind::kTrainTeacher
           : spec.kind() == v1::EVALUATE    ? engine::RunKind::kEvaluate
                                            : engine::RunKind::kDistill;
  c.dataset.name = spec.dataset().name();
  c.dataset.root = spec.dataset().root();
  c.dataset.train_limit = spec.dataset().train_limit();
  c.dataset.test_limit = spec.dataset().test_limit();
  c.dataset.image_size = spec.dataset().image_size();
  c.dataset.augment = !spec.dataset().has_augment() || spec.dataset().augment();
  c.dataset.crop_to_boxes = spec.dataset().crop_to_boxes();
  c.dataset.loader_threads =
      spec.dataset().loader_threads() > 0 ? spec.dataset().loader_threads() : 2;
  // Validated by the coordinator, so the preset is known.
  const v1::VitSpec vit =
      ResolveVitPreset(spec.teacher().vit()).value_or(spec.teacher().vit());
  c.teacher.patch_size = vit.patch_size();
  c.teacher.width = vit.width();
  c.teacher.depth = vit.depth();
  c.teacher.heads = vit.heads();
  c.teacher.mlp_ratio = vit.mlp_ratio() > 0 ? vit.mlp_ratio() : 4;
  c.teacher_torchscript = spec.teacher().torchscript();
  c.student.arch = spec.student().arch();
  c.student.stem = spec.student().stem() == v1::IMAGENET
                       ? engine::Stem::kImageNet
                       : engine::Stem::kSmall;
  c.student.pretrained = spec.student().pretrained();
  c.student.width = spec.student().width() > 0 ? spec.student().width() : 64;
  c.student.embedding_dim = spec.student().embedding_dim();
  const v1::Losses& l = spec.losses();
  c.losses.ce = l.ce();
  c.losses.mse = l.mse();
  c.losses.ikd = l.ikd().weight();
  c.losses.temperature = l.ikd().temperature();
  c.losses.scale_by_tau_squared =
      !l.ikd().has_scale_by_tau_squared() || l.ikd().scale_by_tau_squared();
  c.losses.rkd_distance = l.rkd().distance_weight();
  c.losses.rkd_angle = l.rkd().angle_weight();
  c.optimizer.kind = spec.optimizer().kind() == v1::ADAMW
                         ? engine::OptimizerKind::kAdamW
                         : engine::OptimizerKind::kSgd;
  c.optimizer.lr = spec.optimizer().lr();
  c.optimizer.momentum = spec.optimizer().momentum();
  c.optimizer.weight_decay = spec.optimizer().weight_decay();
  c.epochs = spec.epochs();
  c.batch_size = spec.batch_size();
  c.seed = spec.seed();
  c.metrics_every_steps =
      spec.metrics_every_steps() > 0 ? spec.metrics_every_steps() : 10;
  const v1::EvaluationSpec& e = spec.evaluation();
  c.tsne_points = e.tsne_points() < 0    ? 0
                  : e.tsne_points() == 0 ? 1000
                                         : e.tsne_points();
  c.knn_bank = e.knn_bank() > 0 ? e.knn_bank() : 5000;
  c.embedding_metrics_every_epoch = e.every_epoch();
  c.device = device;
  return c;
}

}  // namespace distill
