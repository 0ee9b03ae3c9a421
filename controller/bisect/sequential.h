// The sequential decision of one bisection step (docs/architecture.md §11): how many clean runs
// make a revision "good" when a bug is caught only in a fraction q of runs.
//
// The model, stated once (every sequential report prints the same):
//  - One *run* is one power cycle of the board running the chosen fixtures. On a bad
//    revision each run detects the bug independently with probability q (a race, a
//    layout-dependent eviction: the failure is probabilistic); on a good revision a run
//    never detects it, because a detection is a pattern mismatch the oracle proved, not a
//    timeout or a flaky heuristic. So one detection makes a revision bad with certainty;
//    only "good" verdicts can be wrong. Every bad revision is assumed to have the same q
//    (the same bug; a later commit that makes the race wider breaks this assumption).
//  - q is unknown. It is measured at the known-bad end, and on every revision found bad
//    as the bisection goes: D detections in N runs give the posterior
//    q ~ Beta(D, N - D + 1), from the prior Beta(0, 1) (density ~ 1/q) that leans to rare
//    detection. The uniform prior pulls q towards 1/2 and so overstated the confidence
//    (stated 0.9927, right 0.9886 over 10,000 simulated bisections at q = 0.3);
//    dmahil-bisect-bench checks this one from q = 0.1 to 0.7.
//  - A bad revision stays clean n times in a row with probability
//        M(n) = E[(1 - q)^n] over the Beta posterior
//             = B(D, N - D + 1 + n) / B(D, N - D + 1)
//             = prod_{i=0}^{n-1} (N - D + 1 + i) / (N + 1 + i),
//    the miss probability with the doubt about q folded in.
//  - A step runs until a detection (bad) or n clean runs with M(n) <= alpha (good). The
//    answer is wrong only if some tested revision was bad and missed, so
//    P(wrong) <= sum over tested steps of M(n_i): that sum is the bisection's stated error,
//    whatever the culprit's position (bisection.h shares 1 - confidence among the steps).
#pragma once

#include <cstdint>

namespace dmahil::bisect {

/// What the runs on known-bad revisions say about q, the per-run detection probability.
struct DetectionRate {
  uint32_t detections = 0;  // runs that detected the bug (D), at least 1 to be used
  uint32_t runs = 0;        // runs in total (N), runs >= detections

  /// The posterior mean of q, D / (N + 1).
  double Mean() const;
};

/// M(n): the probability that a bad revision gives `clean_runs` clean runs in a row, with q
/// integrated over its Beta(D, N - D + 1) posterior. 1 for n = 0; decreasing in n.
/// rate.detections must be >= 1 (Bisect refuses a bad end that never detects).
double MissProbability(const DetectionRate& rate, uint32_t clean_runs);

/// The fewest clean runs n with MissProbability(rate, n) <= alpha, or `cap` if even `cap`
/// runs do not get there (alpha tiny, or q ~ 0).
uint32_t CleanRunsNeeded(const DetectionRate& rate, double alpha, uint32_t cap);

/// The number of bisection steps still needed to narrow `candidates` positions to one:
/// ceil(log2(candidates)); 0 for candidates <= 1. Used to share the error budget.
uint32_t StepsLeft(uint64_t candidates);

}  // namespace dmahil::bisect
