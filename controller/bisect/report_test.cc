#include "controller/bisect/report.h"

#include <gtest/gtest.h>

namespace dmahil::bisect {
namespace {

/// Two steps: the measurement at the bad end (a full kernel build) and one good step (an
/// incremental one).
std::pair<BisectContext, BisectResult> TwoSteps() {
  BisectContext c;
  c.tree = "linux";
  c.repo = "/src/linux";
  c.board = "qemu-xen-src-noncoherent";
  c.fixtures = {"foreign-from-device"};
  c.revs = {std::string(40, 'a'), std::string(40, 'b'), std::string(40, 'c')};
  c.requested_confidence = 0.99;
  c.out_dir = "out";
  BisectResult r;
  r.first_bad = 2;
  r.confidence_stated = true;
  r.confidence = 0.995;
  r.rate = {5, 5};
  StepRecord measure;
  measure.kind = StepKind::kMeasure;
  measure.index = 2;
  measure.rev = c.revs[2];
  measure.verdict = Verdict::kBad;
  measure.runs = 5;
  measure.detections = 5;
  measure.build_ms = 1234500;
  measure.deploy_ms = 100;
  measure.board_ms = 300000;
  StepRecord step;
  step.index = 1;
  step.rev = c.revs[1];
  step.runs = 7;
  step.miss = 0.004;
  step.build_ms = 65400;
  step.deploy_ms = 200;
  step.board_ms = 420000;
  r.steps = {measure, step};
  r.total_runs = 12;
  r.build_ms = 1299900;
  r.deploy_ms = 300;
  r.board_ms = 720000;
  return {c, r};
}

TEST(BisectReport, TextGivesEachStepsBuildDeployAndBoardTimeAndTheTotals) {
  const auto [c, r] = TwoSteps();
  const std::string text = RenderReport(c, r);
  EXPECT_NE(text.find("BUILD"), std::string::npos) << text;
  EXPECT_NE(text.find("DEPLOY"), std::string::npos) << text;
  EXPECT_NE(text.find("1234.5 s"), std::string::npos) << text;
  EXPECT_NE(text.find("65.4 s"), std::string::npos) << text;
  EXPECT_NE(text.find("420.0 s"), std::string::npos) << text;
  EXPECT_NE(text.find("runs: 12 in 2 steps; build time 1299.9 s, deploy time 0.3 s, board time "
                      "720.0 s, total 2020.2 s"),
            std::string::npos)
      << text;
}

TEST(BisectReport, JsonGivesTheTimesInMilliseconds) {
  const auto [c, r] = TwoSteps();
  const nlohmann::json j = ReportJson(c, r);
  EXPECT_EQ(j["build_ms"], 1299900);
  EXPECT_EQ(j["deploy_ms"], 300);
  EXPECT_EQ(j["board_ms"], 720000);
  EXPECT_EQ(j["steps"][0]["build_ms"], 1234500);
  EXPECT_EQ(j["steps"][1]["build_ms"], 65400);
  EXPECT_EQ(j["steps"][1]["deploy_ms"], 200);
  EXPECT_EQ(j["steps"][1]["board_ms"], 420000);
}

}  // namespace
}  // namespace dmahil::bisect
