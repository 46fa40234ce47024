// What the CLI prints.
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/time_text.h"
#include "common/worker_status.h"
#include "render/claims.h"
#include "render/export.h"
#include "render/report.h"
#include "render/results.h"
#include "render/runs.h"
#include "render/seeds.h"
#include "render/text.h"
#include "render/tsne.h"

namespace distill {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::SweepResults Results() {
  v1::SweepResults r;
  r.mutable_sweep()->set_id(3);
  r.mutable_sweep()->set_name("table1");
  r.set_teacher_run_id(1);
  r.set_teacher_status(v1::SUCCEEDED);
  r.set_teacher_top1(0.652);
  v1::MemberResult* a = r.add_members();
  a->set_name("A");
  a->mutable_losses()->set_mse(1);
  a->mutable_losses()->mutable_rkd()->set_angle_weight(2);
  a->set_run_id(2);
  a->set_status(v1::SUCCEEDED);
  a->set_top1(0.008);
  v1::MemberResult* d = r.add_members();
  d->set_name("D");
  d->mutable_losses()->set_ce(1);
  d->set_run_id(5);
  d->set_status(v1::FAILED);
  d->set_message("loss is nan at step 3");
  return r;
}

std::vector<std::string> Lines(const std::string& s) {
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t end; (end = s.find('\n', start)) != std::string::npos;
       start = end + 1) {
    lines.push_back(s.substr(start, end - start));
  }
  return lines;
}

TEST(FormatTest, ResultsTableHasTable1Layout) {
  const std::string table = FormatResultsTable(Results());
  const std::vector<std::string> lines = Lines(table);
  ASSERT_EQ(lines.size(), 7u);  // Title, header, rule, A, D, O, D's failure.
  EXPECT_THAT(lines[1], HasSubstr("labels CE"));
  EXPECT_THAT(lines[1], HasSubstr("embedding MSE"));
  // Row A: no CE, MSE, no IKD, RKD; 0.8 %.
  EXPECT_THAT(lines[3],
              HasSubstr("│           │       ✓       │     │  ✓  │     0.8 │"));
  EXPECT_THAT(lines[4],
              HasSubstr("│     ✓     │               │     │     │       - │"));
  EXPECT_THAT(lines[5], HasSubstr("O   │ teacher ViT"));
  EXPECT_THAT(lines[5], HasSubstr("65.2"));
  EXPECT_THAT(lines[6], HasSubstr("row D failed: loss is nan at step 3"));
}

TEST(FormatTest, ResultsGroupMembersUnderEachTeacherAndSayWhyOneWasPruned) {
  v1::SweepResults results;
  results.mutable_sweep()->set_name("teachers");
  results.set_teacher_run_id(1);
  for (int t = 0; t < 2; ++t) {
    v1::TeacherResult* teacher = results.add_teachers();
    teacher->set_name(t == 0 ? "teacher/vit.width=32" : "teacher/vit.width=64");
    teacher->set_run_id(t + 1);
    teacher->set_status(v1::SUCCEEDED);
    teacher->set_top1(t == 0 ? 0.80 : 0.85);
  }
  // Expanded with the width varying fastest: the table regroups them.
  for (const char* width : {"32", "64"}) {
    for (const char* row : {"D", "G"}) {
      v1::MemberResult* m = results.add_members();
      m->set_name(absl::StrCat(row, "/vit.width=", width));
      m->set_teacher(absl::StrCat("teacher/vit.width=", width));
      m->mutable_losses()->set_ce(1);
      m->set_status(v1::SUCCEEDED);
      m->set_top1(0.5);
    }
  }
  results.mutable_members(3)->set_status(v1::PRUNED);
  results.mutable_members(3)->clear_top1();
  results.mutable_members(3)->set_message(
      "pruned at epoch 2 by the median rule");
  const std::vector<std::string> lines = Lines(FormatResultsTable(results));
  ASSERT_EQ(lines.size(), 11u) << FormatResultsTable(results);
  EXPECT_THAT(lines[0], HasSubstr("2 teachers"));
  EXPECT_THAT(lines[3], HasSubstr("D/vit.width=32"));
  EXPECT_THAT(lines[4], HasSubstr("G/vit.width=32"));
  EXPECT_THAT(lines[5],
              HasSubstr("O              │ teacher ViT teacher/vit.width=32"));
  EXPECT_THAT(lines[5], HasSubstr("80.0"));
  EXPECT_THAT(lines[6], HasSubstr("─┼─"));  // Between the teachers' blocks.
  EXPECT_THAT(lines[7], HasSubstr("D/vit.width=64"));
  EXPECT_THAT(lines[8], HasSubstr("PRUNED"));
  EXPECT_THAT(lines[9], HasSubstr("teacher/vit.width=64"));
  EXPECT_THAT(lines[10],
              HasSubstr("row G/vit.width=64 pruned at epoch 2 by the "
                        "median rule"));
}

TEST(FormatTest, TwoSweepsSideBySideByMember) {
  v1::SweepResults a, b;
  a.mutable_sweep()->set_id(3);
  b.mutable_sweep()->set_id(4);
  auto add = [](v1::SweepResults& r, const std::string& name, double top1) {
    v1::MemberResult* m = r.add_members();
    m->set_name(name);
    (*m->mutable_results())["eval/top1"] = top1;
  };
  add(a, "G", 0.80);
  add(a, "H", 0.85);
  add(b, "H", 0.875);
  add(b, "I", 0.9);  // B's own member.
  const std::vector<ResultColumn> top1 = *ParseResultColumns("top1");
  const std::vector<std::string> lines =
      Lines(FormatSweepComparison(a, b, top1, OutputFormat::kTable));
  ASSERT_EQ(lines.size(), 6u);
  EXPECT_THAT(lines[1], HasSubstr("member │ top-1 % A │ top-1 % B │ B - A"));
  EXPECT_THAT(lines[3], HasSubstr("G      │      80.0 │         - │     -"));
  EXPECT_THAT(lines[4], HasSubstr("H      │      85.0 │      87.5 │  +2.5"));
  EXPECT_THAT(lines[5], HasSubstr("I      │         - │      90.0 │     -"));
  EXPECT_EQ(FormatSweepComparison(a, b, top1, OutputFormat::kCsv),
            "member,key,a,b,difference\n"
            "G,eval/top1,0.8,,\n"
            "H,eval/top1,0.85,0.875,0.025\n"
            "I,eval/top1,,0.9,\n");
  EXPECT_THAT(FormatSweepComparison(a, b, top1, OutputFormat::kJson),
              HasSubstr("{\"member\":\"H\",\"key\":\"eval/top1\",\"a\":0.85,"
                        "\"b\":0.875,\"difference\":0.025}"));
}

TEST(FormatTest, ARunAsCsvFieldsAndAWorkerList) {
  v1::Run run;
  run.set_id(7);
  run.set_member("G, T=4");  // Quoted: it holds a comma.
  run.set_status(v1::SUCCEEDED);
  run.mutable_spec()->mutable_losses()->mutable_ikd()->set_temperature(4);
  (*run.mutable_results())["eval/top1"] = 0.8;
  (*run.mutable_tags())["paper"] = "fig2";
  (*run.mutable_provenance())["host"] = "gpu7";
  const std::string csv = FormatRunCsv(run);
  EXPECT_THAT(csv, HasSubstr("field,value\nid,7\n"));
  EXPECT_THAT(csv, HasSubstr("member,\"G, T=4\"\n"));
  EXPECT_THAT(csv, HasSubstr("spec/losses.ikd.temperature,4\n"));
  EXPECT_THAT(csv, HasSubstr("result/eval/top1,0.8\n"));
  EXPECT_THAT(csv, HasSubstr("tag/paper,fig2\n"));
  EXPECT_THAT(csv, HasSubstr("provenance/host,gpu7\n"));
  v1::Worker w;
  w.set_id("gpu7-1a2b");
  w.set_status(v1::WORKER_RUNNING);
  w.set_run_id(7);
  EXPECT_THAT(FormatWorkersCsv({w}),
              HasSubstr("\ngpu7-1a2b,running,,,0,,,7,0,0,,0,\n"));
  EXPECT_THAT(ToJson(run), HasSubstr("\"provenance\":{\"host\":\"gpu7\"}"));
  // The text shows where it ran and from what data.
  (*run.mutable_provenance())["data_sha256"] = std::string(64, 'd');
  (*run.mutable_provenance())["data_files"] = "4";
  const std::string text = FormatRunDetails(run, {});
  EXPECT_THAT(text, HasSubstr("ran on gpu7 (worker -), -, - threads"));
  EXPECT_THAT(text,
              HasSubstr("data sha256 " + std::string(64, 'd') + " (4 files)"));
}

// A preempted run's history, in its text, its CSV and its page (escaped).
TEST(FormatTest, APreemptionIsInTheRunsHistory) {
  v1::Run run;
  run.set_id(8);
  run.set_status(v1::QUEUED);
  run.add_preemptions(
      "2026-12-06 15:40:12 UTC attempt 1 on worker w<1> gave way to run 9: "
      "priority 10 above 0");
  EXPECT_THAT(
      FormatRunDetails(run, {}),
      HasSubstr("  preempted: 2026-12-06 15:40:12 UTC attempt 1 on "
                "worker w<1> gave way to run 9: priority 10 above 0\n"));
  EXPECT_THAT(FormatRunCsv(run),
              HasSubstr("preempted,2026-12-06 15:40:12 UTC"));
  const std::string page = RenderRunPage(run, ReportRun());
  EXPECT_THAT(page, HasSubstr("<p class=\"preempted\">preempted: 2026-12-06"));
  EXPECT_THAT(page, HasSubstr("worker w&lt;1&gt; gave way"));
  EXPECT_THAT(page, Not(HasSubstr("w<1>")));
}

// A worker's status is shown as its word; an older coordinator's `state`
// string as it came, a status newer than this build as "unknown".
TEST(FormatTest, AWorkersStatusIsShownAsAWord) {
  EXPECT_EQ(WorkerStatusWord(v1::WORKER_IDLE), "idle");
  EXPECT_EQ(WorkerStatusWord(v1::WORKER_DRAINING), "draining");
  EXPECT_EQ(WorkerStatusWord(v1::WorkerStatus(99)), "unknown");
  v1::Worker old;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  old.set_state("lost");
#pragma GCC diagnostic pop
  EXPECT_EQ(WorkerStatusWord(old), "lost");
  old.set_status(v1::WORKER_STOPPED);
  EXPECT_EQ(WorkerStatusWord(old), "stopped");
}

TEST(FormatTest, SeedsAreSummarisedAsMeanStdAndN) {
  v1::SweepResults results;
  auto add = [&](const std::string& name, double top1, bool has) {
    v1::MemberResult* m = results.add_members();
    m->set_name(name);
    if (has) {
      m->set_top1(top1);  // As an older coordinator sends it: no map.
      if (name != "G/T=4/seed=1") {
        (*m->mutable_results())["eval/teacher_cka"] = top1 - 0.5;
      }
    }
  };
  add("G/T=4/seed=1", 0.80, true);
  add("G/T=4/seed=2", 0.82, true);
  add("G/T=8/seed=1", 0.70, true);
  add("G/T=8/seed=2", 0.0, false);  // Still running.
  const std::vector<ResultColumn> columns = *ParseResultColumns("top1,cka");
  const std::string summary = FormatSeedSummary(results, columns);
  const std::vector<std::string> lines = Lines(summary);
  ASSERT_EQ(lines.size(), 5u) << summary;
  EXPECT_THAT(lines[1], HasSubstr("over seeds"));
  EXPECT_THAT(lines[2], HasSubstr("member │ top-1 %    │ CKA   │ n"));
  // mean 81.0, sample std sqrt(((-1)^2 + 1^2) / 1) = 1.4; CKA of one run.
  EXPECT_THAT(lines[3], HasSubstr("G/T=4  │ 81.0 ± 1.4 │ 0.320 │ 2 of 2"));
  EXPECT_THAT(lines[4], HasSubstr("G/T=8  │ 70.0       │ 0.200 │ 1 of 2"));
  v1::SweepResults unseeded;
  unseeded.add_members()->set_name("H");
  EXPECT_EQ(FormatSeedSummary(unseeded), "");
}

// The 0.975 quantile at whole and fractional degrees of freedom, against
// tools/t_quantiles.py (mpmath's incomplete beta, inverted at 30 digits).
// Issue 30: interpolating a table between whole rows gave 8.51 at 1.5 and
// 3.74 at 2.5, so Welch's intervals between unequal seeds were too wide.
TEST(SeedStatsTest, StudentsTQuantilesAtAnyDegreesOfFreedom) {
  const std::pair<double, double> known[] = {
      {1, 12.7062047361747},   {1.5, 6.01666310442793}, {2, 4.30265272974946},
      {2.5, 3.57465484200368}, {3.7, 2.86752070719119}, {29, 2.0452296421327},
      {120, 1.97993040508244}};
  for (const auto& [df, quantile] : known)
    EXPECT_NEAR(StudentT975(df), quantile, 1e-9) << "df " << df;
  EXPECT_NEAR(StudentT975(1e9), 1.959964, 1e-6);
}

TEST(SeedStatsTest, StudentsTIntervalsAndDifferences) {
  const double t1 = StudentT975(1), t2 = StudentT975(2), t4 = StudentT975(4);
  // 80 and 82: mean 81, sd sqrt(2), half-width t(1) sqrt(2) / sqrt(2).
  const SeedSummary s = Summarise({80, 82});
  EXPECT_DOUBLE_EQ(s.mean, 81);
  EXPECT_NEAR(s.sd, std::sqrt(2.0), 1e-12);
  ASSERT_TRUE(s.interval.has_value());
  EXPECT_NEAR(s.interval->first, 81 - t1, 1e-9);
  EXPECT_FALSE(Summarise({80}).interval.has_value());
  // The same seeds: paired differences 3, 2, 4: mean 3, sd 1, +-4.303/sqrt3.
  const auto paired =
      Difference({{1, 80}, {2, 82}, {3, 81}}, {{1, 83}, {2, 84}, {3, 85}});
  ASSERT_TRUE(paired.has_value());
  EXPECT_TRUE(paired->paired);
  EXPECT_NEAR(paired->mean, 3, 1e-12);
  EXPECT_NEAR(paired->interval->first, 3 - t2 / std::sqrt(3.0), 1e-9);
  // Other seeds: Welch's interval, wider than the paired one here.
  const auto welch =
      Difference({{1, 80}, {2, 82}, {3, 81}}, {{4, 83}, {5, 84}, {6, 85}});
  EXPECT_FALSE(welch->paired);
  EXPECT_NEAR(welch->mean, 3, 1e-12);
  // sd 1 each: se sqrt(2/3), df 4.
  EXPECT_NEAR(welch->interval->second - welch->mean, t4 * std::sqrt(2.0 / 3),
              1e-9);
  EXPECT_EQ(SeedOf("G/T=4/seed=12"), 12);
  EXPECT_EQ(SeedOf("seed=3"), 3);
  EXPECT_EQ(SeedOf("H"), 0);
}

TEST(FormatTest, ABaselineRowGetsEachRowsDifferenceAndItsInterval) {
  v1::SweepResults results;
  auto add = [&](const std::string& name, double top1) {
    v1::MemberResult* m = results.add_members();
    m->set_name(name);
    (*m->mutable_results())["eval/top1"] = top1;
  };
  for (int seed = 1; seed <= 3; ++seed) {
    add(absl::StrCat("D/seed=", seed), 0.80 + 0.001 * seed);
    add(absl::StrCat("H/seed=", seed), 0.81 + 0.001 * seed);  // D + 1 pp.
    add(absl::StrCat("B/seed=", seed), 0.80 + 0.02 * (seed - 2));
  }
  const std::vector<ResultColumn> columns = *ParseResultColumns("top1");
  const std::string summary = FormatSeedSummary(results, columns, "D");
  EXPECT_THAT(summary, HasSubstr("vs D: the difference in top-1 %"));
  // H: exactly 1 pp above D on every seed: the interval excludes 0.
  EXPECT_THAT(summary, HasSubstr("+1.0 *"));
  EXPECT_THAT(summary, HasSubstr("[1.0, 1.0] paired"));
  // B - D by seed: -2.1, -0.2, 1.7: mean -0.2, sd 1.9, +-4.303 x 1.9 /
  // sqrt(3): not told apart from D (no "*").
  EXPECT_THAT(summary, HasSubstr("-0.2       │ [-4.9, 4.5] paired"));
  EXPECT_THAT(summary, HasSubstr("(baseline)"));
  EXPECT_THAT(FormatSeedSummary(results, columns, "Z"),
              HasSubstr("no member \"Z\" to compare with"));
}

TEST(ClaimsTest, KendallsTau) {
  EXPECT_DOUBLE_EQ(KendallTau({{1, 10}, {2, 20}, {3, 30}}), 1);
  EXPECT_DOUBLE_EQ(KendallTau({{1, 30}, {2, 20}, {3, 10}}), -1);
  // 2 concordant, 1 discordant of 3 pairs.
  EXPECT_NEAR(KendallTau({{1, 10}, {2, 30}, {3, 20}}), 1.0 / 3, 1e-12);
  EXPECT_DOUBLE_EQ(KendallTau({{1, 10}}), 0);
}

// Each kind of claim over a seeded sweep: holds, does not hold, and
// undecided where the intervals overlap.
TEST(ClaimsTest, EachClaimIsDecidedWithItsNumbers) {
  v1::SweepResults results;
  auto add = [&](const std::string& row, std::vector<double> top1, double cka,
                 bool distils) {
    for (size_t i = 0; i < top1.size(); ++i) {
      v1::MemberResult* m = results.add_members();
      m->set_name(absl::StrCat(row, "/seed=", i + 1));
      m->set_status(v1::SUCCEEDED);
      (*m->mutable_results())["eval/top1"] = top1[i];
      (*m->mutable_results())["eval/teacher_cka"] = cka + 0.001 * double(i);
      if (distils) m->mutable_losses()->mutable_ikd()->set_weight(1);
      m->mutable_losses()->set_ce(1);
    }
  };
  add("A", {0.100, 0.105, 0.095}, 0.90, true);
  add("B", {0.700, 0.720, 0.710}, 0.91, true);
  add("D", {0.780, 0.790, 0.785}, 0.80, false);
  add("G", {0.700, 0.790, 0.760}, 0.92, true);
  v1::TeacherResult* o = results.add_teachers();
  o->set_name("teacher");
  o->set_status(v1::SUCCEEDED);
  (*o->mutable_results())["eval/top1"] = 0.705;
  auto claim = [&](v1::ClaimKind kind, const std::string& row,
                   const std::string& other, const std::string& metric) {
    v1::Claim* c = results.mutable_sweep()->mutable_spec()->add_claims();
    c->set_text(absl::StrCat(v1::ClaimKind_Name(kind), " ", row));
    c->set_kind(kind);
    c->set_row(row);
    c->set_other(other);
    c->set_metric(metric);
    return c;
  };
  claim(v1::NEAR_CHANCE, "A", "", "");
  claim(v1::NEAR_CHANCE, "B", "", "");
  claim(v1::AT_LEAST, "B", "O", "");  // 71.0 against one teacher run.
  claim(v1::BEST, "D", "", "");       // Above A and B; G's seeds overlap.
  claim(v1::EXCEEDS, "", "D", "cka");
  v1::Claim* order = claim(v1::ORDERED, "", "", "");
  for (const auto& [row, paper] :
       {std::pair{"A", 0.8}, {"B", 69.9}, {"D", 77.7}, {"G", 74.4}}) {
    v1::RowValue* v = order->add_reference();
    v->set_row(row);
    v->set_value(paper);
  }
  const std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  ASSERT_EQ(verdicts.size(), 6u);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kHolds) << verdicts[0].numbers;
  EXPECT_THAT(verdicts[0].numbers, HasSubstr("A 10.00 [8.76, 11.24]"));
  EXPECT_EQ(verdicts[1].verdict, Verdict::kFails) << verdicts[1].numbers;
  EXPECT_EQ(verdicts[2].verdict, Verdict::kUndecided) << verdicts[2].numbers;
  EXPECT_THAT(verdicts[2].numbers, HasSubstr("B 71.00 vs O 70.50: +0.50 ["));
  EXPECT_EQ(verdicts[3].verdict, Verdict::kUndecided) << verdicts[3].numbers;
  EXPECT_EQ(verdicts[4].verdict, Verdict::kHolds) << verdicts[4].numbers;
  EXPECT_EQ(verdicts[5].verdict, Verdict::kHolds) << verdicts[5].numbers;
  EXPECT_THAT(verdicts[5].numbers, HasSubstr("Kendall's tau 1.00"));
  EXPECT_THAT(FormatClaims(results), HasSubstr("does not hold: NEAR_CHANCE B"));
}

// Issue 30's reproduction: mid-sweep, row D at 1 of its 2 seeds, rows E-H
// not run yet, B's two seeds tying. "D gives the best student" was said
// to hold on "D - B +5.86 [5.86, 5.86]". No verdict without the runs.
v1::SweepResults MidSweep() {
  v1::SweepResults results;
  auto add = [&](const std::string& row, int seed, v1::RunStatus status,
                 double top1) {
    v1::MemberResult* m = results.add_members();
    m->set_name(absl::StrCat(row, "/seed=", seed));
    m->set_status(status);
    if (status == v1::SUCCEEDED) (*m->mutable_results())["eval/top1"] = top1;
  };
  add("B", 1, v1::SUCCEEDED, 0.80);
  add("B", 2, v1::SUCCEEDED, 0.80);
  add("D", 1, v1::SUCCEEDED, 0.8586);
  add("D", 2, v1::RUNNING, 0);
  for (const char* row : {"E", "F", "G", "H"}) {
    add(row, 1, v1::QUEUED, 0);
    add(row, 2, v1::QUEUED, 0);
  }
  v1::Claim* best = results.mutable_sweep()->mutable_spec()->add_claims();
  best->set_text("labels alone (row D) give the best student");
  best->set_kind(v1::BEST);
  best->set_row("D");
  v1::Claim* order = results.mutable_sweep()->mutable_spec()->add_claims();
  order->set_text("rows ordered as the paper's");
  order->set_kind(v1::ORDERED);
  for (const auto& [row, paper] :
       {std::pair{"B", 69.9}, {"D", 77.7}, {"E", 75.0}, {"Z", 1.0}}) {
    v1::RowValue* v = order->add_reference();
    v->set_row(row);
    v->set_value(paper);
  }
  return results;
}

TEST(ClaimsTest, NoVerdictWhileARowItComparesHasNotAllItsRuns) {
  v1::SweepResults results = MidSweep();
  std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  ASSERT_EQ(verdicts.size(), 2u);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kUndecided) << verdicts[0].numbers;
  EXPECT_THAT(verdicts[0].numbers, HasSubstr("D has 1 of 2"));
  EXPECT_THAT(
      verdicts[0].numbers,
      HasSubstr("no result yet: E (of 2), F (of 2), G (of 2), H (of 2)"));
  EXPECT_EQ(verdicts[1].verdict, Verdict::kUndecided) << verdicts[1].numbers;
  // Z, a row of the paper this sweep does not run, is not waited for.
  EXPECT_THAT(verdicts[1].numbers, Not(HasSubstr("Z")));
  // At the end, rows cancelled: still no verdict, and it says which.
  for (v1::MemberResult& m : *results.mutable_members()) {
    if (m.status() == v1::RUNNING) {
      m.set_status(v1::SUCCEEDED);
      (*m.mutable_results())["eval/top1"] = 0.86;
    } else if (m.status() == v1::QUEUED) {
      m.set_status(v1::CANCELLED);
    }
  }
  verdicts = JudgeClaims(results);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kUndecided) << verdicts[0].numbers;
  EXPECT_THAT(verdicts[0].numbers, HasSubstr("E (of 2)"));
  EXPECT_THAT(verdicts[0].numbers, Not(HasSubstr("D has")));
  EXPECT_EQ(verdicts[1].verdict, Verdict::kUndecided) << verdicts[1].numbers;
  EXPECT_THAT(verdicts[1].numbers, HasSubstr("E (of 2)"));
}

// With every run in, a comparison that has no spread to judge by (one run
// each, or seeds that tie) is decided by the values and says so.
TEST(ClaimsTest, AVerdictWithoutAnIntervalSaysOnWhatItRests) {
  v1::SweepResults results;
  for (const auto& [name, top1] : {std::pair{"B", 0.80}, {"D", 0.86}}) {
    v1::MemberResult* m = results.add_members();
    m->set_name(name);
    m->set_status(v1::SUCCEEDED);
    (*m->mutable_results())["eval/top1"] = top1;
  }
  v1::Claim* best = results.mutable_sweep()->mutable_spec()->add_claims();
  best->set_kind(v1::BEST);
  best->set_row("D");
  std::vector<ClaimVerdict> verdicts = JudgeClaims(results);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kHolds);
  EXPECT_THAT(verdicts[0].numbers,
              HasSubstr("+6.00 (one run each: by the values, no interval)"));
  // Two seeds each whose differences tie: no spread either.
  v1::SweepResults tied = MidSweep();
  tied.mutable_sweep()->mutable_spec()->mutable_claims()->DeleteSubrange(1, 1);
  tied.mutable_members()->DeleteSubrange(4, 8);  // Rows E-H are not asked.
  v1::MemberResult& d2 = tied.mutable_members()->at(3);
  d2.set_status(v1::SUCCEEDED);
  (*d2.mutable_results())["eval/top1"] = 0.8586;
  verdicts = JudgeClaims(tied);
  EXPECT_EQ(verdicts[0].verdict, Verdict::kHolds) << verdicts[0].numbers;
  EXPECT_THAT(verdicts[0].numbers, HasSubstr("the seeds tie"));
}

// Issue 30: --format=csv|json dropped the summary over seeds, --baseline
// and --claims, so the paper's numbers could not be taken from a script.
TEST(ExportTest, CsvAndJsonCarryTheSummaryTheBaselineAndTheClaims) {
  v1::SweepResults results = MidSweep();
  results.mutable_members()->DeleteSubrange(4, 8);  // B and D only.
  v1::MemberResult& d2 = results.mutable_members()->at(3);
  d2.set_status(v1::SUCCEEDED);
  (*d2.mutable_results())["eval/top1"] = 0.8614;
  (*results.mutable_members()->at(1).mutable_results())["eval/top1"] = 0.81;
  results.mutable_sweep()->mutable_spec()->mutable_claims()->DeleteSubrange(1,
                                                                            1);
  const std::vector<ResultColumn> columns = *ParseResultColumns("top1");
  const ExportOptions options{"B", true};

  const std::string csv = ExportResultsCsv(results, columns, options);
  const std::vector<std::string> sections = absl::StrSplit(csv, "\n\n");
  ASSERT_EQ(sections.size(), 4u) << csv;
  EXPECT_THAT(sections[0], ::testing::StartsWith("name,kind,teacher,run_id,"));
  EXPECT_THAT(sections[1],
              ::testing::StartsWith("row,n,asked,eval/top1:mean,eval/top1:sd,"
                                    "eval/top1:ci_low,eval/top1:ci_high\n"));
  // D: 85.86 and 86.14: mean 86, sd 0.19799, half-width t(1) x 0.14.
  EXPECT_THAT(sections[1],
              HasSubstr("\nD,2,2,86,0.1979898987,84.22113134,87.77886866"));
  EXPECT_THAT(sections[2], ::testing::StartsWith(
                               "baseline,row,column,difference,ci_low,ci_high,"
                               "method,n,excludes_zero\n"));
  EXPECT_THAT(sections[2], HasSubstr("\nB,D,eval/top1,5.5,"));
  EXPECT_THAT(sections[2], HasSubstr(",paired,2,"));
  EXPECT_THAT(sections[3],
              ::testing::StartsWith("claim,kind,verdict,numbers\n"));
  EXPECT_THAT(sections[3], HasSubstr("labels alone (row D) give the best "
                                     "student,BEST,holds,\"top-1 %: D - B "
                                     "+5.50 [0.93, 10.07]\""));

  const std::string json = ExportResultsJson(results, columns, options);
  google::protobuf::Struct parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json, &parsed).ok())
      << json;
  const auto& fields = parsed.fields();
  EXPECT_EQ(fields.at("members").list_value().values_size(), 4);
  const auto& summary = fields.at("summary").list_value();
  ASSERT_EQ(summary.values_size(), 2);
  const auto& d = summary.values(1).struct_value().fields();
  EXPECT_EQ(d.at("row").string_value(), "D");
  EXPECT_EQ(d.at("asked").number_value(), 2);
  const auto& top1 = d.at("columns")
                         .struct_value()
                         .fields()
                         .at("eval/top1")
                         .struct_value()
                         .fields();
  EXPECT_EQ(top1.at("n").number_value(), 2);
  EXPECT_NEAR(top1.at("mean").number_value(), 86, 1e-9);
  EXPECT_NEAR(top1.at("ci95").list_value().values(0).number_value(),
              84.22113134, 1e-6);
  const auto& baseline = fields.at("baseline").struct_value().fields();
  EXPECT_EQ(baseline.at("row").string_value(), "B");
  EXPECT_TRUE(baseline.at("found").bool_value());
  const auto& diff =
      baseline.at("differences").list_value().values(0).struct_value().fields();
  EXPECT_EQ(diff.at("row").string_value(), "D");
  EXPECT_NEAR(diff.at("difference").number_value(), 5.5, 1e-9);
  EXPECT_EQ(diff.at("method").string_value(), "paired");
  const auto& claims = fields.at("claims").list_value();
  ASSERT_EQ(claims.values_size(), 1);
  EXPECT_EQ(
      claims.values(0).struct_value().fields().at("verdict").string_value(),
      "holds");
  EXPECT_EQ(claims.values(0).struct_value().fields().at("kind").string_value(),
            "BEST");
  // Without seeds, baseline or claims: the runs alone, as before.
  v1::SweepResults plain;
  plain.add_members()->set_name("H");
  EXPECT_EQ(ExportResultsCsv(plain, columns, {}),
            FormatResultsCsv(plain, columns));
  EXPECT_EQ(ExportResultsJson(plain, columns, {}), ToJson(plain));
}

TEST(FormatTest, ComparedSweepsWithSeedsShowEachDifferenceWithItsInterval) {
  v1::SweepResults a, b;
  for (int seed = 1; seed <= 3; ++seed) {
    v1::MemberResult* m = a.add_members();
    m->set_name(absl::StrCat("D/seed=", seed));
    (*m->mutable_results())["eval/top1"] = 0.80 + 0.01 * seed;
    m = b.add_members();  // B: 2 points above A on every seed.
    m->set_name(absl::StrCat("D/seed=", seed));
    (*m->mutable_results())["eval/top1"] = 0.82 + 0.01 * seed;
  }
  const std::string table = FormatSweepComparison(
      a, b, *ParseResultColumns("top1"), OutputFormat::kTable);
  EXPECT_THAT(table, HasSubstr("over seeds, B - A in top-1 %"));
  EXPECT_THAT(table, HasSubstr("+2.0 *"));
  EXPECT_THAT(table, HasSubstr("[2.0, 2.0] paired"));
}

TEST(FormatTest, TheTableShowsEnoughDecimalsToTellRowsApart) {
  v1::SweepResults results;
  for (const auto& [name, top1] : {std::pair{"D", 0.81000}, {"G", 0.81025}}) {
    v1::MemberResult* m = results.add_members();
    m->set_name(name);
    (*m->mutable_results())["eval/top1"] = top1;
  }
  const std::string table =
      FormatResultsTable(results, *ParseResultColumns("top1"));
  EXPECT_THAT(table, HasSubstr(" 81.00 "));
  EXPECT_THAT(table, HasSubstr(" 81.03 "));  // 81.0 each at one.
}

TEST(FormatTest, MeansCloserThanADecimalGetMoreDecimals) {
  v1::SweepResults results;
  for (const auto& [name, top1] :
       {std::pair{"D/seed=1", 0.81020}, {"G/seed=1", 0.81045}}) {
    v1::MemberResult* m = results.add_members();
    m->set_name(name);
    (*m->mutable_results())["eval/top1"] = top1;
  }
  const std::string summary =
      FormatSeedSummary(results, *ParseResultColumns("top1"));
  EXPECT_THAT(summary, HasSubstr("81.02 "));
  EXPECT_THAT(summary, HasSubstr("81.05 "));
}

TEST(FormatTest, ResultColumnsAreChosenByName) {
  EXPECT_EQ(ParseResultColumns("")->size(), 7u);
  auto columns = ParseResultColumns("cka,top1");
  ASSERT_TRUE(columns.ok());
  EXPECT_EQ((*columns)[0].key, "eval/teacher_cka");
  EXPECT_EQ((*columns)[1].header, "top-1 %");
  auto bad = ParseResultColumns("top1,accuracy");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()),
              HasSubstr("unknown column \"accuracy\"; the columns are "
                        "top1,knn,nmi,ari,agree,cka,overlap"));
}

// A metric point `key` = `value` at `step` of `epoch`, into `event`.
void AddPoint(v1::RunEvent* event, const char* key, double value, int64_t step,
              int epoch) {
  v1::MetricPoint* p = event->add_metrics();
  p->set_key(key);
  p->set_value(value);
  p->set_step(step);
  p->set_epoch(epoch);
}

TEST(FormatTest, ProgressLineShowsEpochStepLossSpeedAndEta) {
  v1::Run run;
  run.set_id(4);
  run.set_member("B");
  run.set_status(v1::RUNNING);
  run.mutable_spec()->set_epochs(3);
  run.mutable_spec()->set_batch_size(100);
  v1::RunEvent event;
  auto add = [&](const char* key, double value, int64_t step, int epoch) {
    AddPoint(&event, key, value, step, epoch);
  };
  add("train/total_steps", 300, 0, 0);
  add("train/loss", 0.25, 120, 2);
  add("train/images_per_sec", 1000, 120, 2);
  Progress progress;
  UpdateProgress(event, &progress);
  EXPECT_EQ(ProgressLine(run, progress),
            "run 4 (B) RUNNING  epoch 2/3  step 120/300  loss 0.2500  1000 "
            "img/s  ETA 0:18");
}

// After the last step the line says what the evaluation is doing, not an
// ETA of 0 (issue 32: `watch` sat at "step 4/4 ... ETA 0:00"); training
// again clears it.
TEST(FormatTest, ProgressLineShowsTheEvaluationStage) {
  v1::Run run;
  run.set_id(4);
  run.set_status(v1::RUNNING);
  run.mutable_spec()->set_epochs(2);
  run.mutable_spec()->set_batch_size(100);
  v1::RunEvent event;
  auto add = [&](const char* key, double value, int64_t step, int epoch) {
    AddPoint(&event, key, value, step, epoch);
  };
  add("train/total_steps", 4, 0, 0);
  add("train/loss", 0.25, 4, 2);
  add("train/images_per_sec", 1000, 4, 2);
  add("evaluating/embeddings", 0.5, 4, 2);
  add("evaluating/tsne", 0.4, 4, 2);
  Progress progress;
  UpdateProgress(event, &progress);
  EXPECT_EQ(ProgressLine(run, progress),
            "run 4 RUNNING  epoch 2/2  step 4/4  loss 0.2500  1000 img/s  "
            "evaluating: t-SNE 40 %");
  run.set_status(v1::SUCCEEDED);
  EXPECT_THAT(ProgressLine(run, progress), Not(HasSubstr("evaluating")));
  run.set_status(v1::RUNNING);
  event.clear_metrics();
  add("train/loss", 0.2, 5, 3);
  UpdateProgress(event, &progress);
  EXPECT_THAT(ProgressLine(run, progress), Not(HasSubstr("evaluating")));
  EXPECT_EQ(StageName("evaluating/kmeans"), "k-means");
  EXPECT_EQ(StageName("evaluating/umap"), "umap");
}

// One time format, in UTC and saying so, for messages, listings, pages and
// logs (issue 33: four formats in two time zones).
TEST(FormatTest, TimesAreUtcAndSaySo) {
  EXPECT_EQ(TimeText(int64_t{0}), "1970-01-01 00:00:00 UTC");
  EXPECT_EQ(TimeText(int64_t{1796583771547}), "2026-12-06 19:02:51 UTC");
  EXPECT_EQ(PreciseTimeText(absl::FromUnixMillis(1796583771547)),
            "2026-12-06 19:02:51.547 UTC");
}

TEST(FormatTest, SparklineScalesToTheRange) {
  EXPECT_EQ(Sparkline({0, 1, 2, 3, 4, 5, 6, 7}), "▁▂▃▄▅▆▇█");
  EXPECT_EQ(Sparkline({5, 5}), "▄▄");
  EXPECT_EQ(Sparkline({}), "");
  // 120 values into 60 columns: each the mean of two.
  std::vector<double> falling;
  for (int i = 0; i < 120; ++i) falling.push_back(120 - i);
  const std::string line = Sparkline(falling, 60);
  EXPECT_EQ(line.size(), 60u * 3);  // Three UTF-8 bytes a block.
  EXPECT_EQ(line.substr(0, 3), "█");
  EXPECT_EQ(line.substr(line.size() - 3), "▁");
}

TEST(FormatTest, TsnePlotDrawsEachModelsClasses) {
  const std::string csv =
      "model,x,y,label\n"
      "teacher,0,0,3\nteacher,10,10,7\nteacher,0.1,0.1,3\n"
      "student,5,5,1\nstudent,6,5,2\n";
  const std::string plot = TsnePlot(csv, 10, 5);
  const std::vector<std::string> lines = Lines(plot);
  ASSERT_EQ(lines.size(), 2u * (1 + 5 + 2));
  EXPECT_EQ(lines[0], "teacher (3 test images; a digit is a class)");
  EXPECT_EQ(lines[2], "│         7│");  // Top right: (10, 10).
  EXPECT_EQ(lines[6], "│3         │");  // Bottom left: both 3s.
  EXPECT_EQ(lines[8], "student (2 test images; a digit is a class)");
  EXPECT_THAT(TsnePlot("model,x,y,label\nteacher,a,b,c\n"),
              HasSubstr("tsne.csv line 2 is not model,x,y,label"));
}

TEST(FormatTest, RunDetailsPlotTheLoss) {
  v1::Run run;
  run.set_id(9);
  run.set_status(v1::SUCCEEDED);
  run.mutable_spec()->set_kind(v1::DISTILL);
  run.mutable_spec()->mutable_losses()->set_ce(1);
  (*run.mutable_results())["eval/top1"] = 0.9;
  std::vector<v1::MetricPoint> history(3);
  history[0].set_key("train/loss");
  history[0].set_value(2.0);
  history[1].set_key("train/loss");
  history[1].set_value(1.0);
  history[2].set_key("eval/top1");
  history[2].set_value(0.9);
  const std::string details = FormatRunDetails(run, history);
  EXPECT_THAT(details, HasSubstr("losses CE"));
  EXPECT_THAT(details, HasSubstr("train/loss   2.0000 █▁ 1.0000"));
  EXPECT_THAT(details, HasSubstr("eval/top1 by epoch: 90.0%"));
  EXPECT_THAT(details, Not(HasSubstr("message")));
}

// A fork's runs show names its parent and draws its curves on from the
// parent's, one scale, "│" where its own begin (issue 34).
TEST(FormatTest, AForksCurvesJoinItsParents) {
  v1::Run run;
  run.set_id(9);
  run.mutable_spec()->set_kind(v1::DISTILL);
  run.mutable_spec()->mutable_fork()->set_run_id(5);
  run.mutable_spec()->mutable_fork()->set_continue_training(true);
  auto point = [](const char* key, double value, int64_t step, int64_t epoch) {
    v1::MetricPoint p;
    p.set_key(key);
    p.set_value(value);
    p.set_step(step);
    p.set_epoch(epoch);
    return p;
  };
  const std::vector<v1::MetricPoint> parent = {
      point("train/loss", 2.0, 1, 1), point("eval/top1", 0.5, 1, 1),
      point("train/loss", 1.0, 2, 2), point("eval/top1", 0.6, 2, 2)};
  const std::vector<v1::MetricPoint> own = {point("eval/top1", 0.6, 2, 2),
                                            point("train/loss", 0.5, 3, 3),
                                            point("eval/top1", 0.7, 3, 3)};
  const std::string details = FormatRunDetails(run, own, parent);
  EXPECT_THAT(details, HasSubstr("forked from run 5 (continued: its weights, "
                                 "optimizer and epochs)"));
  EXPECT_THAT(details, HasSubstr("train/loss   2.0000 █▃│▁ 0.5000"));
  EXPECT_THAT(details,
              HasSubstr("eval/top1 by epoch: 50.0% 60.0% │ 60.0% 70.0%"));
  // Not a fork: no mark.
  run.mutable_spec()->clear_fork();
  EXPECT_THAT(FormatRunDetails(run, own), Not(HasSubstr("│")));
}

TEST(FormatTest, AResumedAttemptReplacesWhatItMeasuredAgain) {
  // Attempt 1 reached step 30 and was lost; attempt 2 went on from its
  // resume point at step 20.
  std::vector<v1::MetricPoint> history;
  auto add = [&](int32_t attempt, int64_t step, const char* key, double v) {
    v1::MetricPoint& m = history.emplace_back();
    m.set_attempt(attempt);
    m.set_step(step);
    m.set_key(key);
    m.set_value(v);
  };
  add(1, 10, "train/loss", 3);
  add(1, 20, "train/loss", 2);
  add(1, 20, "eval/top1", 0.5);
  add(1, 30, "train/loss", 1.5);  // Measured again by attempt 2.
  add(2, 30, "train/loss", 1.4);
  add(2, 40, "train/loss", 1);
  add(2, 40, "eval/top1", 0.7);
  std::vector<double> kept;
  for (const v1::MetricPoint& m : LatestMeasurements(history))
    kept.push_back(m.value());
  EXPECT_EQ(kept, (std::vector<double>{3, 2, 0.5, 1.4, 1, 0.7}));

  v1::Run run;
  run.mutable_spec()->set_kind(v1::TRAIN_TEACHER);
  EXPECT_THAT(FormatRunDetails(run, history),
              HasSubstr("eval/top1 by epoch: 50.0% 70.0%"));
}

}  // namespace
}  // namespace distill
