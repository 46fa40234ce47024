// A sweep's expansion, table-driven: rows crossed with grid axes, random
// points and seeds; the names members get; what each member's spec holds;
// and each bad sweep refused naming the axis and value.
#include "common/sweep_expansion.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/catalog.h"
#include "common/spec_file.h"

namespace distill {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

// The Table 1 sweep's shape, small: a teacher run, rows G and H.
v1::SweepSpec Table1(const std::string& extra = "") {
  v1::SweepSpec sweep;
  const std::string yaml = R"(
name: grid
base:
  dataset: {name: fashion-mnist, train_limit: 1000, test_limit: 200}
  student: {arch: resnet18, width: 16}
  optimizer: {kind: SGD, lr: 0.05, momentum: 0.9}
  epochs: 2
  seed: 1
teacher: {run_id: 7}
members:
  - name: G
    losses: {ce: 1, ikd: {weight: 1, temperature: 4}, rkd: {distance_weight: 1, angle_weight: 2}}
  - name: H
    losses: {ce: 1, mse: 1, ikd: {weight: 1, temperature: 4}, rkd: {distance_weight: 1, angle_weight: 2}}
)" + extra;
  absl::Status s = ParseYamlMessage(yaml, "test.yaml", &sweep);
  EXPECT_TRUE(s.ok()) << s;
  return sweep;
}

std::vector<std::string> Names(const ExpandedSweep& e) {
  std::vector<std::string> names;
  for (const auto& m : e.members) names.push_back(m.name);
  return names;
}

struct Shape {
  const char* name;
  std::string extra;  // YAML added to Table1().
  std::vector<std::string> members;
};

class ExpansionShapeTest : public ::testing::TestWithParam<Shape> {};

TEST_P(ExpansionShapeTest, MembersAndTheirNames) {
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(Table1(GetParam().extra));
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(Names(*e), ElementsAreArray(GetParam().members));
  EXPECT_TRUE(e->teachers.empty());  // teacher.run_id: trains none.
}

INSTANTIATE_TEST_SUITE_P(
    Sweeps, ExpansionShapeTest,
    ::testing::Values(
        Shape{"rows_alone", "", {"G", "H"}},
        Shape{"grid_crosses_rows_last_axis_fastest",
              "grid:\n"
              "  - {path: losses.ikd.temperature, values: [1, 4]}\n"
              "  - {path: losses.rkd.angle_weight, values: [0, 2]}\n",
              {"G/T=1/rkd.angle=0", "G/T=1/rkd.angle=2", "G/T=4/rkd.angle=0",
               "G/T=4/rkd.angle=2", "H/T=1/rkd.angle=0", "H/T=1/rkd.angle=2",
               "H/T=4/rkd.angle=0", "H/T=4/rkd.angle=2"}},
        Shape{"seeds_replicate_each_member",
              "seeds: [1, 2]\n",
              {"G/seed=1", "G/seed=2", "H/seed=1", "H/seed=2"}},
        Shape{"grid_and_seeds",
              "grid: [{path: optimizer.lr, values: [0.1, 0.01]}]\n"
              "seeds: [3]\n",
              {"G/lr=0.1/seed=3", "G/lr=0.01/seed=3", "H/lr=0.1/seed=3",
               "H/lr=0.01/seed=3"}},
        Shape{"enum_and_string_axes",
              "grid:\n"
              "  - {path: student.arch, values: [resnet18, resnet34]}\n"
              "  - {path: optimizer.kind, values: [sgd, ADAMW]}\n",
              {"G/student.arch=resnet18/optimizer.kind=sgd",
               "G/student.arch=resnet18/optimizer.kind=ADAMW",
               "G/student.arch=resnet34/optimizer.kind=sgd",
               "G/student.arch=resnet34/optimizer.kind=ADAMW",
               "H/student.arch=resnet18/optimizer.kind=sgd",
               "H/student.arch=resnet18/optimizer.kind=ADAMW",
               "H/student.arch=resnet34/optimizer.kind=sgd",
               "H/student.arch=resnet34/optimizer.kind=ADAMW"}}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ExpansionTest, EachMemberSpecHoldsItsRowAndAxisValues) {
  absl::StatusOr<ExpandedSweep> e =
      ExpandSweep(Table1("grid:\n"
                         "  - {path: losses.ikd.temperature, values: [8]}\n"
                         "  - {path: losses.rkd.angle_weight, values: [0]}\n"
                         "seeds: [5]\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->members.size(), 2u);
  const v1::ExperimentSpec& h = e->members[1].spec;
  EXPECT_EQ(e->members[1].name, "H/T=8/rkd.angle=0/seed=5");
  EXPECT_EQ(h.kind(), v1::DISTILL);
  EXPECT_EQ(h.losses().mse(), 1);                // Row H's own losses...
  EXPECT_EQ(h.losses().ikd().temperature(), 8);  // ...with the axes over them.
  EXPECT_EQ(h.losses().rkd().angle_weight(), 0);
  EXPECT_EQ(h.losses().rkd().distance_weight(), 1);
  EXPECT_EQ(h.seed(), 5);
  EXPECT_EQ(h.epochs(), 2);            // From the base.
  EXPECT_EQ(h.batch_size(), 128);      // Resolved: defaults written out.
  EXPECT_EQ(h.teacher().run_id(), 0);  // The scheduler sets the teacher.
  EXPECT_EQ(e->members[0].spec.losses().mse(), 0);  // Row G has none.
}

TEST(ExpansionTest, WithoutRowsTheBaseLossesAreTheOneRow) {
  v1::SweepSpec sweep =
      Table1("grid: [{path: losses.ikd.temperature, values: [2, 4]}]\n");
  sweep.clear_members();
  sweep.mutable_base()->mutable_losses()->set_ce(1);
  sweep.mutable_base()->mutable_losses()->mutable_ikd()->set_weight(1);
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(sweep);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_THAT(Names(*e), ElementsAre("T=2", "T=4"));
  EXPECT_EQ(e->members[0].spec.losses().ce(), 1);
  EXPECT_EQ(e->members[1].spec.losses().ikd().temperature(), 4);
}

TEST(ExpansionTest, RandomPointsAreDrawnFromTheSeedAndTheSameEachTime) {
  const std::string random =
      "random:\n"
      "  count: 5\n"
      "  seed: 11\n"
      "  axes:\n"
      "    - {path: optimizer.lr, distribution: LOG_UNIFORM, min: 0.001, "
      "max: 0.1}\n"
      "    - {path: losses.ikd.temperature, distribution: UNIFORM, min: 1, "
      "max: 8}\n"
      "    - {path: student.arch, distribution: CHOICE, choices: [resnet18, "
      "resnet34]}\n";
  absl::StatusOr<ExpandedSweep> a = ExpandSweep(Table1(random));
  absl::StatusOr<ExpandedSweep> b = ExpandSweep(Table1(random));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_EQ(a->members.size(), 10u);  // 2 rows x 5 points.
  EXPECT_EQ(Names(*a), Names(*b));
  std::set<std::string> archs;
  for (int i = 0; i < 5; ++i) {
    const v1::ExperimentSpec& s = a->members[i].spec;
    EXPECT_GE(s.optimizer().lr(), 0.001);
    EXPECT_LE(s.optimizer().lr(), 0.1);
    EXPECT_GE(s.losses().ikd().temperature(), 1);
    EXPECT_LE(s.losses().ikd().temperature(), 8);
    archs.insert(s.student().arch());
    // Row H draws the same points as row G.
    EXPECT_EQ(a->members[i].name.substr(1), a->members[i + 5].name.substr(1));
  }
  EXPECT_EQ(archs.size(), 2u);
  v1::SweepSpec other = Table1(random);
  other.mutable_random()->set_seed(12);
  EXPECT_NE(Names(*ExpandSweep(other)), Names(*a));
}

struct Refusal {
  const char* name;
  std::string extra;
  const char* message;
};

class ExpansionRefusalTest : public ::testing::TestWithParam<Refusal> {};

TEST_P(ExpansionRefusalTest, NamesTheAxisAndValue) {
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(Table1(GetParam().extra));
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr(GetParam().message));
}

INSTANTIATE_TEST_SUITE_P(
    Sweeps, ExpansionRefusalTest,
    ::testing::Values(
        Refusal{"unknown_field",
                "grid: [{path: losses.ikd.temp, values: [1]}]\n",
                "grid[0] losses.ikd.temp: no field \"temp\" in IkdLoss"},
        Refusal{"not_a_number",
                "grid: [{path: optimizer.lr, values: [fast]}]\n",
                "grid[0] optimizer.lr: \"fast\" is not a number"},
        Refusal{"not_a_scalar", "grid: [{path: losses.ikd, values: [1]}]\n",
                "losses.ikd: ikd is a group of fields, not a scalar"},
        Refusal{"teacher_axis_without_a_teacher_stage",
                "grid: [{path: teacher.vit.width, values: [64]}]\n",
                "grid[0] teacher.vit.width: a teacher axis needs a teacher "
                "stage that trains (teacher.train)"},
        Refusal{"kind_axis", "grid: [{path: kind, values: [EVALUATE]}]\n",
                "cannot set kind, name or the teacher"},
        Refusal{"early_stopping_metric",
                "early_stopping: {rule: MEDIAN, metric: train/loss}\n",
                "early_stopping.metric must be a per-epoch judgement"},
        Refusal{"early_stopping_embedding_metric_once",
                "early_stopping: {rule: ASHA, metric: eval/nmi}\n",
                "eval/nmi is measured every epoch only with "
                "base.evaluation.every_epoch: true"},
        Refusal{"early_stopping_reduction_factor",
                "early_stopping: {rule: ASHA, reduction_factor: 1}\n",
                "early_stopping.reduction_factor must be 0 (3) or in (1, 100], "
                "got 1"},
        Refusal{"early_stopping_without_rule",
                "early_stopping: {warmup_epochs: 2}\n",
                "early_stopping sets fields but no rule"},
        Refusal{"early_stopping_warmup",
                "early_stopping: {rule: MEDIAN, warmup_epochs: -1}\n",
                "early_stopping.warmup_epochs must be in [0, 10000], got -1"},
        Refusal{"max_concurrent", "max_concurrent: -1\n",
                "max_concurrent must be in [0, 1000], got -1"},
        Refusal{"priority", "priority: 5000\n",
                "priority must be in [-1000, 1000], got 5000"},
        Refusal{"retention_keep_best", "retention: {keep_best: -1}\n",
                "retention.keep_best must be in [0, 100000], got -1"},
        Refusal{"claim_without_kind", "claims: [{text: \"B beats O\"}]\n",
                "claims[0].kind must be NEAR_CHANCE, AT_LEAST, BEST, EXCEEDS "
                "or ORDERED"},
        Refusal{"claim_within", "claims: [{kind: NEAR_CHANCE, within: 1000}]\n",
                "claims[0].within must be in [0, 100], got 1000"},
        Refusal{"too_many_claims",
                "claims: [" +
                    [] {
                      std::string claims;
                      for (int i = 0; i < 33; ++i)
                        claims += "{kind: BEST, row: D}, ";
                      return claims;
                    }() +
                    "]\n",
                "a sweep makes at most 32 claims, got 33"},
        Refusal{"retention_by", "retention: {by: \"top 1\"}\n",
                "retention.by must be a result key of 1 to 128 letters, "
                "digits and _./- (e.g. eval/top1), got \"top 1\""},
        Refusal{"unknown_enum",
                "grid: [{path: optimizer.kind, values: [adam]}]\n",
                "\"adam\" is not one of [SGD, ADAMW]"},
        Refusal{"empty_axis", "grid: [{path: optimizer.lr}]\n",
                "grid[0] optimizer.lr: no values"},
        Refusal{"repeated_value", "grid: [{path: epochs, values: [1, 1]}]\n",
                "the value 1 is listed twice"},
        Refusal{"value_the_spec_refuses",
                "grid: [{path: losses.ikd.temperature, values: [4, -1]}]\n",
                "member \"G/T=-1\": losses.ikd.temperature must be in (0, "},
        Refusal{"repeated_seed", "seeds: [1, 1]\n", "seeds lists 1 twice"},
        Refusal{"too_many_axes",
                "grid: [" +
                    [] {
                      std::string axes;
                      for (int i = 0; i < 33; ++i)
                        axes += "{path: epochs, values: [1]}, ";
                      return axes;
                    }() +
                    "]\n",
                "grid and random.axes may list at most 32 axes each, got 33 "
                "and 0"},
        Refusal{"bad_range",
                "random: {count: 2, axes: [{path: optimizer.lr, "
                "distribution: LOG_UNIFORM, min: 0, max: 1}]}\n",
                "needs min < max and 0 < min, got [0, 1]"},
        Refusal{"no_distribution",
                "random: {count: 2, axes: [{path: optimizer.lr}]}\n",
                "distribution must be UNIFORM, LOG_UNIFORM or CHOICE"},
        Refusal{"count_without_axes", "random: {count: 2}\n",
                "random.count is set but random.axes lists none"},
        Refusal{"too_many_members",
                "grid:\n"
                "  - {path: epochs, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n"
                "  - {path: seed, values: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]}\n"
                "seeds: [1, 2, 3, 4, 5, 6]\n",
                "the sweep expands to 1200 members (2 rows x 100 grid points "
                "x 1 random points x 6 seeds), more than the limit of 1000"}),
    [](const auto& info) { return std::string(info.param.name); });

// Table1() training its own teacher instead of naming run 7.
v1::SweepSpec TrainsTeacher(const std::string& extra, const std::string& vit =
                                                          "vit: {patch_size: "
                                                          "7, width: 32, "
                                                          "depth: 2, heads: "
                                                          "2}") {
  v1::SweepSpec sweep = Table1(extra);
  v1::SweepSpec stage;
  const std::string yaml =
      "name: t\nteacher:\n  train:\n    epochs: 3\n    teacher: {" + vit +
      "}\n";
  absl::Status s = ParseYamlMessage(yaml, "stage.yaml", &stage);
  EXPECT_TRUE(s.ok()) << s;
  *sweep.mutable_teacher() = stage.teacher();
  return sweep;
}

TEST(ExpansionTest, OneTeacherWhenNoAxisVariesIt) {
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(TrainsTeacher(""));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->teachers.size(), 1u);
  EXPECT_EQ(e->teachers[0].name, "teacher");
  EXPECT_EQ(e->teachers[0].spec.kind(), v1::TRAIN_TEACHER);
  EXPECT_EQ(e->teachers[0].spec.epochs(), 3);
  EXPECT_EQ(e->teachers[0].spec.dataset().train_limit(), 1000);  // The base.
  EXPECT_EQ(e->members[0].teacher, 0);
  EXPECT_EQ(e->members[1].teacher, 0);
}

TEST(ExpansionTest, TeacherAxesTrainEachDistinctTeacherOnce) {
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(
      TrainsTeacher("grid:\n"
                    "  - {path: teacher.vit.width, values: [32, 64]}\n"
                    "  - {path: losses.ikd.temperature, values: [1, 4]}\n"));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->teachers.size(), 2u);
  EXPECT_EQ(e->teachers[0].name, "teacher/vit.width=32");
  EXPECT_EQ(e->teachers[1].name, "teacher/vit.width=64");
  EXPECT_EQ(e->teachers[0].spec.teacher().vit().width(), 32);
  EXPECT_EQ(e->teachers[1].spec.teacher().vit().width(), 64);
  EXPECT_EQ(e->teachers[1].spec.teacher().vit().depth(), 2);  // The stage's.
  EXPECT_THAT(Names(*e),
              ElementsAre("G/vit.width=32/T=1", "G/vit.width=32/T=4",
                          "G/vit.width=64/T=1", "G/vit.width=64/T=4",
                          "H/vit.width=32/T=1", "H/vit.width=32/T=4",
                          "H/vit.width=64/T=1", "H/vit.width=64/T=4"));
  std::vector<int> teachers;
  for (const SweepMemberSpec& m : e->members) teachers.push_back(m.teacher);
  EXPECT_THAT(teachers, ElementsAre(0, 0, 1, 1, 0, 0, 1, 1));
  // The axis set the teacher, not the member.
  EXPECT_EQ(e->members[2].spec.teacher().vit().width(), 0);
}

TEST(ExpansionTest, TorchScriptTeachersAreNamedByTheirFile) {
  absl::StatusOr<ExpandedSweep> e = ExpandSweep(TrainsTeacher(
      "grid: [{path: teacher.torchscript, values: [/t/dino_s16.pt, "
      "/t/deit_tiny.pt]}]\n",
      ""));
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->teachers.size(), 2u);
  EXPECT_EQ(e->teachers[0].name, "teacher/teacher=dino_s16");
  EXPECT_EQ(e->teachers[1].spec.teacher().torchscript(), "/t/deit_tiny.pt");
  EXPECT_THAT(Names(*e),
              ElementsAre("G/teacher=dino_s16", "G/teacher=deit_tiny",
                          "H/teacher=dino_s16", "H/teacher=deit_tiny"));
}

TEST(ExpansionTest, TeacherAxesAreRefusedWhereTheyCannotHold) {
  struct Case {
    std::string extra;
    std::string vit;
    const char* message;
  };
  const std::string vit = "vit: {patch_size: 7, width: 32, depth: 2, heads: 2}";
  for (const Case& c : std::vector<Case>{
           {"grid: [{path: teacher.run_id, values: [3]}]\n", vit,
            "a teacher axis sets teacher.vit.* or teacher.torchscript"},
           {"random: {count: 2, axes: [{path: teacher.vit.width, "
            "distribution: CHOICE, choices: [32, 64]}]}\n",
            vit,
            "random.axes[0] teacher.vit.width: a teacher axis must be a "
            "grid axis"},
           {"grid: [{path: teacher.vit.width, values: [33]}]\n", vit,
            "teacher \"teacher/vit.width=33\": "},
           {"grid: [{path: teacher.torchscript, values: [/a/x.pt, "
            "/b/x.pt]}]\n",
            "", "two teachers are both named \"teacher/teacher=x\""},
       }) {
    absl::StatusOr<ExpandedSweep> e =
        ExpandSweep(TrainsTeacher(c.extra, c.vit));
    ASSERT_FALSE(e.ok()) << c.extra;
    EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(e.status().message()), HasSubstr(c.message))
        << c.extra;
  }
}

TEST(ExpansionTest, AxisLabelsAreShort) {
  EXPECT_EQ(AxisLabel("teacher.vit.width"), "vit.width");
  EXPECT_EQ(AxisLabel("teacher.torchscript"), "teacher");
  EXPECT_EQ(AxisLabel("losses.ikd.temperature"), "T");
  EXPECT_EQ(AxisLabel("losses.rkd.angle_weight"), "rkd.angle");
  EXPECT_EQ(AxisLabel("losses.mse"), "mse");
  EXPECT_EQ(AxisLabel("optimizer.lr"), "lr");
  EXPECT_EQ(AxisLabel("student.arch"), "student.arch");
}

}  // namespace
}  // namespace distill
