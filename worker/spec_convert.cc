#include "worker/spec_convert.h"

#include <algorithm>

namespace distill {

engine::RunConfig ToRunConfig(const v1::ExperimentSpec& spec,
                              const std::string& device) {
  engine::RunConfig c;
  c.kind = spec.kind() == v1::TRAIN_TEACHER ? engine::RunKind::kTrainTeacher
           : spec.kind() == v1::EVALUATE    ? engine::RunKind::kEvaluate
                                            : engine::RunKind::kDistill;
  const v1::DatasetSpec& d = spec.dataset();
  c.dataset.name = d.name();
  c.dataset.root = d.root();
  c.dataset.train_limit = d.train_limit();
  c.dataset.test_limit = d.test_limit();
  c.dataset.image_size = d.image_size();
  c.dataset.augment = d.augment();
  c.dataset.crop_to_boxes = d.crop_to_boxes();
  c.dataset.loader_threads = d.loader_threads();
  const v1::VitSpec& vit = spec.teacher().vit();
  c.teacher.patch_size = vit.patch_size();
  c.teacher.width = vit.width();
  c.teacher.depth = vit.depth();
  c.teacher.heads = vit.heads();
  c.teacher.mlp_ratio = vit.mlp_ratio();
  c.teacher_torchscript = spec.teacher().torchscript();
  const v1::StudentSpec& st = spec.student();
  c.student.arch = st.arch();
  c.student.stem = st.stem() == v1::IMAGENET ? engine::Stem::kImageNet
                                             : engine::Stem::kSmall;
  c.student.pretrained = st.pretrained();
  c.student.width = st.width();
  c.student.embedding_dim = st.embedding_dim();
  const v1::Losses& l = spec.losses();
  c.losses.ce = l.ce();
  c.losses.mse = l.mse();
  c.losses.ikd = l.ikd().weight();
  c.losses.temperature = l.ikd().temperature();
  c.losses.scale_by_tau_squared = l.ikd().scale_by_tau_squared();
  c.losses.rkd_distance = l.rkd().distance_weight();
  c.losses.rkd_angle = l.rkd().angle_weight();
  c.losses.sp = l.sp();
  c.losses.pkt = l.pkt();
  c.losses.dkd = l.dkd().weight();
  if (l.dkd().has_alpha()) c.losses.dkd_alpha = l.dkd().alpha();
  if (l.dkd().has_beta()) c.losses.dkd_beta = l.dkd().beta();
  if (l.dkd().temperature() > 0)
    c.losses.dkd_temperature = l.dkd().temperature();
  c.losses.dkd_warmup_epochs = l.dkd().warmup_epochs();
  c.losses.cka = l.cka();
  const v1::OptimizerSpec& o = spec.optimizer();
  c.optimizer.kind = o.kind() == v1::ADAMW ? engine::OptimizerKind::kAdamW
                                           : engine::OptimizerKind::kSgd;
  c.optimizer.lr = o.lr();
  c.optimizer.momentum = o.momentum();
  c.optimizer.weight_decay = o.weight_decay();
  c.epochs = spec.epochs();
  c.batch_size = spec.batch_size();
  c.seed = spec.seed();
  c.metrics_every_steps = spec.metrics_every_steps();
  const v1::EvaluationSpec& e = spec.evaluation();
  c.tsne_points = std::max(0, e.tsne_points());  // -1: no map.
  c.knn_bank = e.knn_bank();
  c.embedding_metrics_every_epoch = e.every_epoch();
  c.device = device;
  c.precision = spec.precision() == v1::FP32   ? "fp32"
                : spec.precision() == v1::BF16 ? "bf16"
                : spec.precision() == v1::FP16 ? "fp16"
                                               : "auto";
  return c;
}

}  // namespace distill
