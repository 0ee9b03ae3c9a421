// A simulated history for the bisection engine, with no board and no git: for the tests
// and for the model section of the bisect benchmark (bench/bisect_bench.cc). Revision i
// ("rev<i>") is bad iff i >= culprit; a run of a bad revision detects with probability q,
// drawn from a stream seeded by (seed, revision, run), so outcomes are reproducible.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/seed_mix.h"
#include "controller/bisect/bisection.h"

namespace dmahil::bisect {

class SimulatedHistory : public RevisionRunner {
 public:
  SimulatedHistory(size_t commits, size_t culprit, double q, uint64_t seed)
      : culprit_(culprit), q_(q), seed_(seed) {
    for (size_t i = 0; i <= commits; ++i) revs_.push_back("rev" + std::to_string(i));
  }

  const std::vector<std::string>& revs() const { return revs_; }
  std::set<size_t> skip;                               // revisions whose build "exits 125"
  std::set<size_t> other_failure;                      // revisions failing with another diagnosis
  std::map<std::string, int> prepares;                 // Prepare calls per revision
  std::vector<std::pair<std::string, uint32_t>> runs;  // Run calls in order
  size_t throw_after_runs = SIZE_MAX;                  // simulate a controller killed mid-bisection

  /// Build time 1000 + the revision's index ms, deploy 10 ms (none when skipped).
  Preparation Prepare(const std::string& rev) override {
    ++prepares[rev];
    if (skip.count(Index(rev))) return {Prepared::kSkip, 1000 + Index(rev), 0};
    return {Prepared::kReady, 1000 + Index(rev), 10};
  }

  RunOutcome Run(const std::string& rev, uint32_t run_index) override {
    if (runs.size() >= throw_after_runs) throw BisectError("killed");
    runs.emplace_back(rev, run_index);
    const uint64_t x =
        MixSeed(seed_ ^ (Index(rev) * 0x9E3779B97F4A7C15ULL) ^ (uint64_t{run_index} << 40));
    const double u = static_cast<double>(x >> 11) / 9007199254740992.0;
    RunOutcome out;
    out.board_ms = 100;
    if (Index(rev) >= culprit_ && u < q_) out.failures = {"fixture: stale-line"};
    if (other_failure.count(Index(rev))) out.failures = {"fixture: never-landed"};
    return out;
  }

 private:
  size_t Index(const std::string& rev) const { return std::stoul(rev.substr(3)); }

  std::vector<std::string> revs_;
  size_t culprit_;
  double q_;
  uint64_t seed_;
};

}  // namespace dmahil::bisect
