#include "controller/bisect/sequential.h"

#include <cmath>

#include <gtest/gtest.h>

namespace dmahil::bisect {
namespace {

// E[(1-q)^n] for q ~ Beta(a, b) by numerical integration (midpoint rule), independent of
// the product formula under test.
double MissByIntegration(double a, double b, uint32_t n) {
  const int steps = 200000;
  double num = 0;
  double den = 0;
  for (int i = 0; i < steps; ++i) {
    const double q = (i + 0.5) / steps;
    const double w = std::pow(q, a - 1) * std::pow(1 - q, b - 1);
    num += w * std::pow(1 - q, n);
    den += w;
  }
  return num / den;
}

TEST(Sequential, MissProbabilityIsTheBetaMeanOfCleanRuns) {
  const DetectionRate rate{5, 17};  // Beta(5, 13)
  EXPECT_DOUBLE_EQ(MissProbability(rate, 0), 1.0);
  for (uint32_t n : {1u, 3u, 10u, 25u})
    EXPECT_NEAR(MissProbability(rate, n), MissByIntegration(5, 13, n), 1e-6) << n;
  // One detection in one run: Beta(1, 1), q uniform: 1/2, then 1/2 * 2/3.
  EXPECT_NEAR(MissProbability({1, 1}, 1), 1.0 / 2, 1e-12);
  EXPECT_NEAR(MissProbability({1, 1}, 2), 1.0 / 3, 1e-12);
  EXPECT_NEAR(DetectionRate({1, 1}).Mean(), 0.5, 1e-12);
  EXPECT_NEAR(DetectionRate({5, 17}).Mean(), 5.0 / 18, 1e-12);
}

TEST(Sequential, DoubtAboutTheRateCostsRuns) {
  // The same mean rate measured on fewer runs leaves a heavier tail of small q, so a bad
  // revision is more likely to stay clean n times than with q known.
  const double known = std::pow(1 - 0.3, 10);
  EXPECT_GT(MissProbability({2, 8}, 10), MissProbability({29, 98}, 10));
  EXPECT_GT(MissProbability({29, 98}, 10), known * 0.99);
}

TEST(Sequential, PosteriorBad) {
  EXPECT_DOUBLE_EQ(PosteriorBad(0.0, 0.5), 0.0);
  EXPECT_DOUBLE_EQ(PosteriorBad(1.0, 0.5), 1.0);
  EXPECT_NEAR(PosteriorBad(0.5, 0.01), 0.01 / 1.01, 1e-12);
  EXPECT_NEAR(PosteriorBad(0.25, 1.0), 0.25, 1e-12);
}

TEST(Sequential, CleanRunsNeededIsTheFewestThatReachAlpha) {
  const DetectionRate rate{5, 17};
  for (double prior : {0.1, 0.5, 0.9}) {
    for (double alpha : {0.01, 0.001}) {
      const uint32_t n = CleanRunsNeeded(rate, prior, alpha, 1000);
      ASSERT_GT(n, 0u);
      EXPECT_LE(PosteriorBad(prior, MissProbability(rate, n)), alpha);
      EXPECT_GT(PosteriorBad(prior, MissProbability(rate, n - 1)), alpha);
    }
  }
  EXPECT_EQ(CleanRunsNeeded(rate, 0.5, 1e-300, 40), 40u);  // capped
  EXPECT_EQ(CleanRunsNeeded(rate, 0.0, 0.01, 40), 0u);     // cannot be bad: no run needed
}

TEST(Sequential, StepsLeftIsCeilLog2) {
  EXPECT_EQ(StepsLeft(1), 0u);
  EXPECT_EQ(StepsLeft(2), 1u);
  EXPECT_EQ(StepsLeft(3), 2u);
  EXPECT_EQ(StepsLeft(4), 2u);
  EXPECT_EQ(StepsLeft(5), 3u);
  EXPECT_EQ(StepsLeft(300), 9u);
}

}  // namespace
}  // namespace dmahil::bisect
