// The sequential decision of one bisection step (issue 6, DESIGN §9): how many clean runs
// make a revision "good" when a bug is caught only in a fraction q of runs.
//
// The model, stated once (the report prints the same):
//  - One *run* is one power cycle of the board running the chosen fixtures. On a bad
//    revision each run detects the bug independently with probability q (a race, a
//    layout-dependent eviction: the failure is probabilistic); on a good revision a run
//    never detects it, because a detection is a pattern mismatch the oracle proved, not a
//    timeout or a flaky heuristic. So one detection makes a revision bad with certainty;
//    only "good" verdicts can be wrong.
//  - q is unknown. It is measured at the known-bad end, and on every revision found bad
//    (the same bug): D detections in N runs give the posterior q ~ Beta(D, N - D + 1), from
//    the prior Beta(0, 1) (density ~ 1/q) that leans to rare detection. The uniform prior
//    pulls q towards 1/2 and so overstated the confidence (measured: stated 0.9927, right
//    0.9886 over 10,000 simulated bisections at q = 0.3); this one is honest from q = 0.05
//    to 0.95 (dmahil-bisect-bench).
//  - A revision under test at index m, when the first bad commit is known to lie in
//    (lo, hi], is bad with prior probability pi = (m - lo) / (hi - lo): every candidate
//    position of the first bad commit equally likely.
//  - After n clean runs its probability of being bad anyway is
//        P(bad | n clean) = pi * M(n) / (pi * M(n) + 1 - pi),
//    where M(n) = E[(1 - q)^n] over the Beta posterior
//               = B(D, N - D + 1 + n) / B(D, N - D + 1)
//               = prod_{i=0}^{n-1} (N - D + 1 + i) / (N + 1 + i),
//    the chance that a bad revision stays clean n times, with the doubt about q folded in.
//  - The step runs until a detection (bad) or until P(bad | n clean) <= alpha (good).
#pragma once

#include <cstdint>

namespace dmahil::bisect {

/// What the runs at the known-bad end say about q, the per-run detection probability.
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

/// P(bad | n clean runs) = pi * miss / (pi * miss + 1 - pi), for prior_bad pi in [0, 1] and
/// miss = MissProbability(rate, n).
double PosteriorBad(double prior_bad, double miss);

/// The fewest clean runs n with PosteriorBad(prior_bad, MissProbability(rate, n)) <= alpha,
/// or `cap` if even `cap` runs do not get there (alpha tiny or q ~ 0). alpha in (0, 1).
uint32_t CleanRunsNeeded(const DetectionRate& rate, double prior_bad, double alpha, uint32_t cap);

/// The number of bisection steps still needed to narrow `candidates` positions to one:
/// ceil(log2(candidates)); 0 for candidates <= 1. Used to share the error budget.
uint32_t StepsLeft(uint64_t candidates);

}  // namespace dmahil::bisect
