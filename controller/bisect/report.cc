#include "controller/bisect/report.h"

#include <fmt/format.h>

namespace dmahil::bisect {
namespace {

std::string Short(const std::string& rev) { return rev.substr(0, 12); }

std::string Seconds(uint64_t ms) { return fmt::format("{:.1f} s", static_cast<double>(ms) / 1e3); }

std::string Clip(const std::string& s, size_t n) {
  return s.size() <= n ? s : s.substr(0, n - 3) + "...";
}

}  // namespace

const char* VerdictName(Verdict verdict) {
  switch (verdict) {
    case Verdict::kGood:
      return "good";
    case Verdict::kBad:
      return "bad";
    case Verdict::kSkip:
      return "skip";
  }
  return "?";
}

std::string ExplainSequentialRule() {
  return R"(How sure: a detection is a proven pattern mismatch, so a bad verdict is certain; a good
verdict is wrong only if a bad revision stayed clean. With D detections in N runs on bad
revisions, the per-run detection rate is q ~ Beta(D, N-D+1) (a prior leaning to rare
detection). A revision bad with prior pi = (m-lo)/(hi-lo) (every first-bad position equally
likely) that stayed clean n times is bad with P = pi*M / (pi*M + 1-pi), M = E[(1-q)^n]. Each
step runs until P is within its share of the error budget 1-confidence; the stated
confidence is the product of 1-P over the good verdicts.
)";
}

std::string RenderReport(const BisectContext& c, const BisectResult& r) {
  std::string s;
  const bool sequential = r.rule == Rule::kSequential;
  s += fmt::format("dmahil bisect: {} tree {}, {} commits after good {} up to bad {}\n", c.tree,
                   c.repo, c.revs.size() - 1, Short(c.revs.front()), Short(c.revs.back()));
  if (!c.pinned.empty()) s += fmt::format("pinned: {}\n", c.pinned);
  std::string fixtures;
  for (const std::string& f : c.fixtures) fixtures += (fixtures.empty() ? "" : ", ") + f;
  s += fmt::format("board {}, fixtures {}; rule {}, seed {}\n", c.board, fixtures,
                   sequential ? fmt::format("sequential, confidence {}", c.requested_confidence)
                              : "fixed runs per step",
                   c.seed);
  if (sequential)
    s += fmt::format(
        "detection rate on bad revisions: {} of {} runs (q ~ Beta({}, {}), mean {:.2f})\n",
        r.rate.detections, r.rate.runs, r.rate.detections, r.rate.runs - r.rate.detections + 1,
        r.rate.Mean());
  s += "\n";
  s += fmt::format("{:<4} {:<12} {:>6} {:>7} {:>5} {:>4} {:<7} {:>9} {:>9}  {}\n", "STEP", "REV",
                   "INDEX", "P(BAD)", "RUNS", "DET", "VERDICT", "P(WRONG)", "BOARD", "SUBJECT");
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const StepRecord& st = r.steps[i];
    const bool measure = st.kind == StepKind::kMeasure;
    s += fmt::format("{:<4} {:<12} {:>6} {:>7} {:>5} {:>4} {:<7} {:>9} {:>9}  {}\n", i,
                     Short(st.rev), st.index,
                     measure ? "bad end" : fmt::format("{:.3f}", st.prior_bad), st.runs,
                     st.detections, measure ? "measure" : VerdictName(st.verdict),
                     st.verdict == Verdict::kGood && sequential ? fmt::format("{:.2e}", st.p_wrong)
                                                                : std::string("-"),
                     Seconds(st.board_ms), Clip(c.subjects[st.index], 50));
    if (st.capped)
      s += fmt::format("     ^ capped at {} runs before reaching its confidence\n", st.runs);
  }
  s += "\n";
  const std::string& first = c.revs[r.first_bad];
  s += fmt::format("first bad commit: {} (index {} of {}) \"{}\"\n", first, r.first_bad,
                   c.revs.size() - 1, c.subjects[r.first_bad]);
  if (!r.also_possible.empty()) {
    s += "  or one of these untestable (skipped) commits before it:\n";
    for (size_t i : r.also_possible) s += fmt::format("    {} \"{}\"\n", c.revs[i], c.subjects[i]);
  }
  for (const StepRecord& st : r.steps)
    if (st.index == r.first_bad && !st.diagnosis.empty())
      s += fmt::format("  it shows: {}\n", st.diagnosis);
  if (sequential)
    s += fmt::format("confidence: {:.4f} that this is the first bad commit (requested {})\n",
                     r.confidence, c.requested_confidence);
  else
    s += "confidence: not stated (fixed runs per step)\n";
  s += fmt::format("runs: {} in {} steps, board time {}\n", r.total_runs, r.steps.size(),
                   Seconds(r.board_ms));
  s += fmt::format("log: {}/journal.jsonl; hook logs and consoles: {}/steps/<rev>/\n", c.out_dir,
                   c.out_dir);
  if (sequential) s += "\n" + ExplainSequentialRule();
  return s;
}

nlohmann::json ReportJson(const BisectContext& c, const BisectResult& r) {
  nlohmann::json steps = nlohmann::json::array();
  for (const StepRecord& st : r.steps)
    steps.push_back({{"kind", st.kind == StepKind::kMeasure ? "measure" : "test"},
                     {"index", st.index},
                     {"rev", st.rev},
                     {"subject", c.subjects[st.index]},
                     {"prior_bad", st.prior_bad},
                     {"alpha", st.alpha},
                     {"planned_clean_runs", st.planned},
                     {"runs", st.runs},
                     {"detections", st.detections},
                     {"verdict", VerdictName(st.verdict)},
                     {"p_wrong", st.p_wrong},
                     {"capped", st.capped},
                     {"board_ms", st.board_ms},
                     {"diagnosis", st.diagnosis}});
  nlohmann::json also = nlohmann::json::array();
  for (size_t i : r.also_possible) also.push_back(c.revs[i]);
  nlohmann::json j = {{"tree", c.tree},
                      {"repo", c.repo},
                      {"pinned", c.pinned},
                      {"board", c.board},
                      {"fixtures", c.fixtures},
                      {"good", c.revs.front()},
                      {"bad", c.revs.back()},
                      {"commits", c.revs.size() - 1},
                      {"rule", r.rule == Rule::kSequential ? "sequential" : "fixed"},
                      {"seed", c.seed},
                      {"first_bad",
                       {{"rev", c.revs[r.first_bad]},
                        {"index", r.first_bad},
                        {"subject", c.subjects[r.first_bad]}}},
                      {"also_possible", also},
                      {"total_runs", r.total_runs},
                      {"board_ms", r.board_ms},
                      {"steps", steps}};
  if (r.rule == Rule::kSequential) {
    j["requested_confidence"] = c.requested_confidence;
    j["confidence"] = r.confidence;
    j["rate"] = {{"detections", r.rate.detections}, {"runs", r.rate.runs}};
  }
  return j;
}

}  // namespace dmahil::bisect
