// The names of the values a run reports, shared by the engine that measures
// them, the coordinator that ranks by them and the CLI that shows them.
// Header-only, no dependencies (the engine links LibTorch alone).
#ifndef DISTILL_COMMON_METRIC_KEYS_H_
#define DISTILL_COMMON_METRIC_KEYS_H_

namespace distill::metric_keys {

// Training, every metrics_every_steps steps.
inline constexpr char kLoss[] = "train/loss";  // The weighted total.
inline constexpr char kLossCe[] = "train/loss_ce";
inline constexpr char kLossMse[] = "train/loss_mse";
inline constexpr char kLossIkd[] = "train/loss_ikd";
inline constexpr char kLossRkdDistance[] = "train/loss_rkd_distance";
inline constexpr char kLossRkdAngle[] = "train/loss_rkd_angle";
inline constexpr char kLossSp[] = "train/loss_sp";
inline constexpr char kLossPkt[] = "train/loss_pkt";
inline constexpr char kLossDkd[] = "train/loss_dkd";
inline constexpr char kLossCka[] = "train/loss_cka";
inline constexpr char kLr[] = "train/lr";
inline constexpr char kImagesPerSec[] = "train/images_per_sec";
// Once, at step 0: how many steps the run will take.
inline constexpr char kTotalSteps[] = "train/total_steps";
// A result: the epoch a resumed attempt went on from.
inline constexpr char kResumedFromEpoch[] = "train/resumed_from_epoch";

// The evaluation after an epoch's steps (and before the first, of a
// frozen teacher), as it goes: a stage's fraction done in [0, 1], at the
// step and epoch it judges. Not results.
inline constexpr char kEvaluating[] = "evaluating/";
inline constexpr char kEvaluatingEmbeddings[] = "evaluating/embeddings";
inline constexpr char kEvaluatingKnn[] = "evaluating/knn";
inline constexpr char kEvaluatingKmeans[] = "evaluating/kmeans";
inline constexpr char kEvaluatingTsne[] = "evaluating/tsne";

// Judgements (every epoch, and results), each under a prefix: the model a
// run trains ("eval/"), its frozen teacher ("teacher/") or, in EVALUATE,
// the student checkpoint it judges ("student/").
inline constexpr char kEval[] = "eval/";
inline constexpr char kTeacher[] = "teacher/";
inline constexpr char kStudent[] = "student/";
inline constexpr char kTop1[] = "top1";         // Head top-1 in [0, 1].
inline constexpr char kKnnTop1[] = "knn_top1";  // DINO's k-NN top-1.
inline constexpr char kNmi[] = "nmi";           // k-means NMI.
inline constexpr char kAri[] = "ari";           // k-means ARI.

inline constexpr char kEvalTop1[] = "eval/top1";
// What a rule that ranks runs (early stopping's metric, retention's by)
// ranks by when it names no key.
inline constexpr const char* kDefaultRanking = kEvalTop1;
inline constexpr char kTeacherTop1[] = "teacher/top1";
// Student and teacher predict the same class, fraction of test images.
inline constexpr char kTeacherAgreement[] = "eval/teacher_agreement";
// The judgements measured after every epoch, and those measured every
// epoch only with evaluation.every_epoch (else after the last): what early
// stopping may judge by.
inline constexpr const char* kEveryEpochJudgements[] = {kEvalTop1,
                                                        kTeacherAgreement};
inline constexpr const char* kEmbeddingJudgements[] = {"eval/knn_top1",
                                                       "eval/nmi", "eval/ari"};
// Structure transfer, once the student is trained (DISTILL) or judged
// (EVALUATE with a teacher): linear CKA of the teacher's and the student's
// test embeddings, and the mean fraction of each test image's 10 nearest
// neighbours (cosine) the two embeddings share.
inline constexpr char kTeacherCka[] = "eval/teacher_cka";
inline constexpr char kTeacherKnnOverlap[] = "eval/teacher_knn_overlap";
inline constexpr int kKnnOverlapK = 10;
// 1 when the teacher's outputs came from the host's cache.
inline constexpr char kTeacherCacheHit[] = "teacher/cache_hit";
// 1 when the teacher ran on every batch (augmented views).
inline constexpr char kTeacherOnline[] = "teacher/online";

}  // namespace distill::metric_keys

#endif  // DISTILL_COMMON_METRIC_KEYS_H_
