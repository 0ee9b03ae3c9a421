#include "controller/bisect/bisection.h"

#include <random>

#include <gtest/gtest.h>

#include "controller/bisect/simulated_history.h"

namespace dmahil::bisect {
namespace {

TEST(Bisection, DeterministicBugIsFoundAtEveryPosition) {
  for (size_t culprit = 1; culprit <= 20; ++culprit) {
    SimulatedHistory h(20, culprit, 1.0, culprit);
    const BisectResult r = Bisect(h.revs(), h, {});
    EXPECT_EQ(r.first_bad, culprit);
    EXPECT_TRUE(r.also_possible.empty());
    EXPECT_GE(r.confidence, 0.99);
    EXPECT_LE(r.steps.size(), 1u + StepsLeft(20));  // the measurement + log2 steps
  }
}

struct Score {
  int right = 0;
  double stated = 0;  // sum of stated confidences
  uint64_t runs = 0;
};

/// `trials` bisections of a 200-commit history with detection rate q; the culprit at
/// `culprit`, or uniformly drawn when 0.
Score Trials(Rule rule, int trials, double q, uint64_t seed, size_t culprit = 0) {
  Score s;
  std::mt19937_64 pick(seed);
  for (int t = 0; t < trials; ++t) {
    const size_t c = culprit != 0 ? culprit : 1 + pick() % 200;
    SimulatedHistory h(200, c, q, pick());
    BisectOptions o;
    o.rule = rule;
    o.max_runs = 1000;  // no step capped: at q = 0.1 a step may need more than the default
    const BisectResult r = Bisect(h.revs(), h, o);
    s.right += r.first_bad == c;
    s.stated += r.confidence;
    s.runs += r.total_runs;
  }
  return s;
}

TEST(Bisection, SequentialRuleIsAsSureAsItSaysWhereverTheCulpritIs) {
  // Culprit at the first commit (every tested revision bad), in the middle, at the bad
  // end (every tested revision good), and anywhere.
  for (const size_t culprit : {size_t{1}, size_t{101}, size_t{200}, size_t{0}}) {
    for (const double q : {0.1, 0.3, 0.7}) {
      const int n = 2000;
      const Score s = Trials(Rule::kSequential, n, q, 7 + culprit, culprit);
      const double accuracy = static_cast<double>(s.right) / n;
      const double stated = s.stated / n;
      EXPECT_GE(stated, 0.99) << "culprit " << culprit << " q " << q;
      // Right at least as often as stated, within 3 sigma of a 0.99 proportion at n = 2000.
      EXPECT_GE(accuracy, stated - 3 * 0.0022) << "culprit " << culprit << " q " << q;
    }
  }
}

TEST(Bisection, FixedThreeRunsBlamesTheWrongCommitAtARateOfThirtyPercent) {
  const int n = 400;
  const Score seq = Trials(Rule::kSequential, n, 0.3, 11);
  const Score fixed = Trials(Rule::kFixedRuns, n, 0.3, 11);
  // Each bad step is missed with 0.7^3 = 0.34: with ~4 bad steps, most answers are wrong.
  EXPECT_LT(fixed.right, n / 2);
  EXPECT_GT(seq.right, fixed.right);
  EXPECT_GT(seq.runs, fixed.runs);  // the price, printed by the benchmark
}

TEST(Bisection, EachRevisionIsPreparedOnceAndRunsCountFromZero) {
  SimulatedHistory h(64, 40, 0.5, 3);
  std::vector<StepRecord> seen;
  const BisectResult r = Bisect(h.revs(), h, {}, [&](const StepRecord& s) { seen.push_back(s); });
  EXPECT_EQ(r.first_bad, 40u);
  EXPECT_EQ(seen.size(), r.steps.size());
  for (const auto& [rev, n] : h.prepares) EXPECT_EQ(n, 1) << rev;
  std::map<std::string, uint32_t> next;
  for (const auto& [rev, i] : h.runs) EXPECT_EQ(i, next[rev]++) << rev;
  uint32_t total = 0;
  for (const StepRecord& s : r.steps) total += s.runs;
  EXPECT_EQ(total, r.total_runs);
  EXPECT_EQ(r.total_runs, h.runs.size());
  EXPECT_EQ(r.board_ms, 100u * h.runs.size());
  EXPECT_EQ(r.steps.front().kind, StepKind::kMeasure);
  EXPECT_EQ(r.steps.front().detections, 5u);
  // The rate pools the bad end and every revision found bad.
  DetectionRate pooled;
  for (const StepRecord& s : r.steps)
    if (s.verdict == Verdict::kBad)
      pooled = {pooled.detections + s.detections, pooled.runs + s.runs};
  EXPECT_EQ(r.rate.detections, pooled.detections);
  EXPECT_EQ(r.rate.runs, pooled.runs);
}

TEST(Bisection, EachStepCarriesItsBuildAndDeployTimeAndTheResultTheirSums) {
  SimulatedHistory h(64, 40, 0.5, 3);
  h.skip = {32};
  const BisectResult r = Bisect(h.revs(), h, {});
  uint64_t build = 0;
  uint64_t deploy = 0;
  for (const StepRecord& s : r.steps) {
    // SimulatedHistory: build 1000 + index ms, deploy 10 ms, none after a skipping build.
    EXPECT_EQ(s.build_ms, 1000 + s.index) << s.rev;
    EXPECT_EQ(s.deploy_ms, h.skip.count(s.index) ? 0u : 10u) << s.rev;
    build += s.build_ms;
    deploy += s.deploy_ms;
  }
  EXPECT_EQ(r.steps.front().build_ms, 1064u);  // the measurement at the bad end
  EXPECT_EQ(r.build_ms, build);
  EXPECT_EQ(r.deploy_ms, deploy);
  BisectOptions fixed;
  fixed.rule = Rule::kFixedRuns;
  const BisectResult f = Bisect(h.revs(), h, fixed);
  for (const StepRecord& s : f.steps) EXPECT_EQ(s.build_ms, 1000 + s.index) << s.rev;
}

TEST(Bisection, SkippedNeighboursOfTheCulpritAreNamedAsPossible) {
  SimulatedHistory h(32, 17, 1.0, 5);
  h.skip = {15, 16};
  const BisectResult r = Bisect(h.revs(), h, {});
  EXPECT_EQ(r.first_bad, 17u);
  EXPECT_EQ(r.also_possible, (std::vector<size_t>{15, 16}));
  bool saw_skip = false;
  for (const StepRecord& s : r.steps) saw_skip |= s.verdict == Verdict::kSkip;
  EXPECT_TRUE(saw_skip);
}

TEST(Bisection, SkippedCommitsAwayFromTheCulpritCostNothingButATry) {
  SimulatedHistory h(32, 5, 1.0, 5);
  h.skip = {16, 17, 8};
  const BisectResult r = Bisect(h.revs(), h, {});
  EXPECT_EQ(r.first_bad, 5u);
  EXPECT_TRUE(r.also_possible.empty());
}

TEST(Bisection, BadEndThatNeverFailsIsAnError) {
  SimulatedHistory h(10, 11, 1.0, 1);  // culprit beyond the end: nothing is bad
  BisectOptions o;
  o.max_runs = 30;
  EXPECT_THROW(Bisect(h.revs(), h, o), BisectError);
  EXPECT_EQ(h.runs.size(), 30u);
}

TEST(Bisection, BadOptionsAreRefused) {
  SimulatedHistory h(10, 5, 1.0, 1);
  BisectOptions o;
  o.confidence = 1.0;
  EXPECT_THROW(Bisect(h.revs(), h, o), BisectError);
  o = {};
  o.rule = Rule::kFixedRuns;
  o.fixed_runs = 0;
  EXPECT_THROW(Bisect(h.revs(), h, o), BisectError);
  EXPECT_THROW(Bisect({"only"}, h, {}), BisectError);
}

TEST(Bisection, TestRevisionStopsAtTheFirstDetection) {
  SimulatedHistory h(10, 0, 1.0, 1);  // everything bad, always detected
  const StepRecord s = TestRevision(h, "rev3", 3, {5, 17}, 0.01, 100);
  EXPECT_EQ(s.verdict, Verdict::kBad);
  EXPECT_EQ(s.runs, 1u);
  EXPECT_EQ(s.diagnosis, "fixture: stale-line");
  SimulatedHistory clean(10, 11, 1.0, 1);  // nothing bad
  const StepRecord g = TestRevision(clean, "rev3", 3, {5, 17}, 0.01, 100);
  EXPECT_EQ(g.verdict, Verdict::kGood);
  EXPECT_EQ(g.runs, g.planned);
  EXPECT_LE(g.miss, 0.01);
  EXPECT_FALSE(g.capped);
  const StepRecord c = TestRevision(clean, "rev3", 3, {5, 17}, 1e-9, 10);
  EXPECT_TRUE(c.capped);
  EXPECT_EQ(c.runs, 10u);
}

TEST(Bisection, ADifferentFailureIsNotBlamedOnTheBug) {
  // rev 8 fails, but with a diagnosis never seen at the bad end (an older bug): it must
  // be skipped, not taken for the first bad commit.
  SimulatedHistory h(16, 12, 1.0, 5);
  h.other_failure = {8};
  const BisectResult r = Bisect(h.revs(), h, {});
  EXPECT_EQ(r.first_bad, 12u);
  bool noted = false;
  for (const StepRecord& s : r.steps)
    if (s.index == 8) {
      EXPECT_EQ(s.verdict, Verdict::kSkip);
      noted = s.note.find("never-landed") != std::string::npos;
    }
  EXPECT_TRUE(noted);
}

TEST(Bisection, StatedConfidenceIsOneMinusTheMissesOfTheTestedSteps) {
  SimulatedHistory h(100, 30, 0.4, 9);
  const BisectResult r = Bisect(h.revs(), h, {});
  double spent = 0;
  for (const StepRecord& s : r.steps)
    if (s.kind == StepKind::kTest && s.verdict != Verdict::kSkip) {
      EXPECT_LE(s.miss, s.alpha);
      spent += s.miss;
    }
  EXPECT_NEAR(r.confidence, 1.0 - spent, 1e-12);
  EXPECT_GE(r.confidence, 0.99);
}

}  // namespace
}  // namespace dmahil::bisect
