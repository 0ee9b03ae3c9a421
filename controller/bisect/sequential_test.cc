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
  // The same rate, 0.3, measured on 10 runs or on 100: with fewer runs the posterior has
  // a heavier tail of small q, so a bad revision is more likely to stay clean n times.
  EXPECT_GT(MissProbability({3, 9}, 10), MissProbability({30, 99}, 10));
  EXPECT_GT(CleanRunsNeeded({3, 9}, 0.001, 1000), CleanRunsNeeded({30, 99}, 0.001, 1000));
  // With a lot of data it approaches the known-q value (1 - 0.3)^n from above.
  EXPECT_GT(MissProbability({3000, 9999}, 10), std::pow(0.7, 10));
  EXPECT_LT(MissProbability({3000, 9999}, 10), std::pow(0.7, 10) * 1.02);
}

TEST(Sequential, CleanRunsNeededIsTheFewestThatReachAlpha) {
  const DetectionRate rate{5, 17};
  for (double alpha : {0.01, 0.001, 0.0001}) {
    const uint32_t n = CleanRunsNeeded(rate, alpha, 1000);
    ASSERT_GT(n, 0u);
    EXPECT_LE(MissProbability(rate, n), alpha);
    EXPECT_GT(MissProbability(rate, n - 1), alpha);
  }
  EXPECT_EQ(CleanRunsNeeded(rate, 1e-300, 40), 40u);  // capped
  EXPECT_EQ(CleanRunsNeeded(rate, 1.0, 40), 0u);      // any miss is acceptable: no run
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
