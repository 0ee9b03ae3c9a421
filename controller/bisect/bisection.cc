#include "controller/bisect/bisection.h"

#include <fmt/format.h>

namespace dmahil::bisect {
namespace {

/// Runs `rev` once and adds the outcome to `step`; true if it detected the bug.
bool RunOnce(RevisionRunner& runner, StepRecord& step) {
  const RunOutcome out = runner.Run(step.rev, step.runs);
  ++step.runs;
  step.board_ms += out.board_ms;
  if (!out.detected) return false;
  ++step.detections;
  if (step.diagnosis.empty()) step.diagnosis = out.diagnosis;
  return true;
}

/// The untested revision nearest the middle of (lo, hi), or hi if all of them are skipped.
size_t PickNext(size_t lo, size_t hi, const std::vector<bool>& skipped) {
  const size_t mid = lo + (hi - lo) / 2;
  for (size_t d = 0; d < hi - lo; ++d) {
    if (mid + d < hi && !skipped[mid + d]) return mid + d;
    if (d > 0 && mid > lo + d && !skipped[mid - d]) return mid - d;
  }
  return hi;
}

/// The measurement at the bad end: runs until rate_detections detections or max_runs.
StepRecord MeasureRate(RevisionRunner& runner, const std::string& bad, size_t index,
                       const BisectOptions& options) {
  if (runner.Prepare(bad) == Prepared::kSkip)
    throw BisectError(fmt::format("the bad end {} cannot be built (build hook exit 125)", bad));
  StepRecord step;
  step.kind = StepKind::kMeasure;
  step.index = index;
  step.rev = bad;
  step.prior_bad = 1.0;
  step.verdict = Verdict::kBad;
  while (step.detections < options.rate_detections && step.runs < options.max_runs)
    RunOnce(runner, step);
  if (step.detections == 0)
    throw BisectError(fmt::format(
        "the bad end {} showed no detection in {} runs: it is not bad with these fixtures on "
        "this board, or its rate is below 1/{}",
        bad, step.runs, step.runs));
  return step;
}

void Validate(const std::vector<std::string>& revs, const BisectOptions& o) {
  if (revs.size() < 2) throw BisectError("bisect needs a good and a bad revision");
  if (o.rule == Rule::kSequential && !(o.confidence > 0.0 && o.confidence < 1.0))
    throw BisectError(fmt::format("confidence {} is not in (0, 1)", o.confidence));
  if (o.rule == Rule::kFixedRuns && o.fixed_runs == 0)
    throw BisectError("fixed runs per step must be at least 1");
  if (o.max_runs == 0 || o.rate_detections == 0)
    throw BisectError("max runs and rate detections must be at least 1");
}

}  // namespace

StepRecord TestRevision(RevisionRunner& runner, const std::string& rev, size_t index,
                        const DetectionRate& rate, double prior_bad, double alpha,
                        uint32_t max_runs) {
  StepRecord step;
  step.index = index;
  step.rev = rev;
  step.prior_bad = prior_bad;
  step.alpha = alpha;
  step.planned = CleanRunsNeeded(rate, prior_bad, alpha, max_runs);
  step.capped = PosteriorBad(prior_bad, MissProbability(rate, step.planned)) > alpha;
  while (step.runs < step.planned) {
    if (RunOnce(runner, step)) {
      step.verdict = Verdict::kBad;
      step.capped = false;
      return step;
    }
  }
  step.verdict = Verdict::kGood;
  step.p_wrong = PosteriorBad(prior_bad, MissProbability(rate, step.runs));
  return step;
}

BisectResult Bisect(const std::vector<std::string>& revs, RevisionRunner& runner,
                    const BisectOptions& options, const StepObserver& on_step) {
  Validate(revs, options);
  BisectResult result;
  result.rule = options.rule;
  result.confidence_stated = options.rule == Rule::kSequential;
  result.confidence = 1.0;
  const auto finish_step = [&](StepRecord step) {
    result.total_runs += step.runs;
    result.board_ms += step.board_ms;
    result.confidence *= 1.0 - step.p_wrong;
    if (on_step) on_step(step);
    result.steps.push_back(std::move(step));
  };

  size_t lo = 0;
  size_t hi = revs.size() - 1;
  if (options.rule == Rule::kSequential) {
    StepRecord measure = MeasureRate(runner, revs[hi], hi, options);
    result.rate = {measure.detections, measure.runs};
    finish_step(std::move(measure));
  }
  double budget = 1.0 - options.confidence;
  std::vector<bool> skipped(revs.size(), false);
  while (hi - lo > 1) {
    const size_t m = PickNext(lo, hi, skipped);
    if (m == hi) break;  // everything between lo and hi is untestable
    const double prior_bad = static_cast<double>(m - lo) / static_cast<double>(hi - lo);
    StepRecord step;
    if (runner.Prepare(revs[m]) == Prepared::kSkip) {
      skipped[m] = true;
      step.index = m;
      step.rev = revs[m];
      step.prior_bad = prior_bad;
      step.verdict = Verdict::kSkip;
    } else if (options.rule == Rule::kSequential) {
      const double alpha = budget / StepsLeft(hi - lo);
      step = TestRevision(runner, revs[m], m, result.rate, prior_bad, alpha, options.max_runs);
      budget -= step.p_wrong;
    } else {
      step.index = m;
      step.rev = revs[m];
      step.prior_bad = prior_bad;
      step.planned = options.fixed_runs;
      bool bad = false;
      while (!bad && step.runs < options.fixed_runs) bad = RunOnce(runner, step);
      step.verdict = bad ? Verdict::kBad : Verdict::kGood;
    }
    if (step.verdict == Verdict::kBad) hi = m;
    if (step.verdict == Verdict::kBad && options.rule == Rule::kSequential) {
      // A revision found bad has the same bug: its runs sharpen q for the steps to come.
      result.rate.detections += step.detections;
      result.rate.runs += step.runs;
    }
    if (step.verdict == Verdict::kGood) lo = m;
    finish_step(std::move(step));
  }
  result.first_bad = hi;
  for (size_t i = lo + 1; i < hi; ++i)
    if (skipped[i]) result.also_possible.push_back(i);
  return result;
}

}  // namespace dmahil::bisect
