#include "controller/bisect/report.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace dmahil::bisect {
namespace {

std::string Short(const std::string& rev) { return rev.substr(0, 12); }

std::string Seconds(uint64_t ms) { return fmt::format("{:.1f} s", static_cast<double>(ms) / 1e3); }

/// s cut to at most n bytes (n >= 4) with "...", never inside a UTF-8 character.
std::string Clip(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  size_t cut = n - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

std::string SubjectOf(const BisectContext& c, size_t index) {
  const auto it = c.subjects.find(index);
  return it == c.subjects.end() ? "" : it->second;
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
revisions (the same bug, so the same per-run rate q on each), q ~ Beta(D, N-D+1), a prior
leaning to rare detection. A bad revision stays clean n times with probability
M(n) = E[(1-q)^n]; a step runs until a detection or until M(n) is within its share of the
error budget 1-confidence (P(MISS)). The answer is wrong only if a tested revision was bad
and missed, so the stated confidence is 1 - the sum of P(MISS) over the tested steps,
wherever the culprit is.
)";
}

std::string RenderReport(const BisectContext& c, const BisectResult& r) {
  std::string s;
  const bool sequential = r.rule == Rule::kSequential;
  s += fmt::format("dmahil bisect: {} tree {}, {} commits after good {} up to bad {}\n", c.tree,
                   c.repo, c.revs.size() - 1, Short(c.revs.front()), Short(c.revs.back()));
  if (!c.pinned.empty()) s += fmt::format("pinned: {}\n", c.pinned);
  s +=
      fmt::format("board {}, fixtures {}; rule {}, seed {}\n", c.board, fmt::join(c.fixtures, ", "),
                  sequential ? fmt::format("sequential, confidence {}", c.requested_confidence)
                             : "fixed runs per step",
                  c.seed);
  if (sequential)
    s += fmt::format(
        "detection rate on bad revisions: {} of {} runs (q ~ Beta({}, {}), mean {:.2f})\n",
        r.rate.detections, r.rate.runs, r.rate.detections, r.rate.runs - r.rate.detections + 1,
        r.rate.Mean());
  s += "\n";
  s += fmt::format("{:<4} {:<12} {:>6} {:>5} {:>4} {:<7} {:>9} {:>9} {:>9} {:>9}  {}\n", "STEP",
                   "REV", "INDEX", "RUNS", "DET", "VERDICT", "P(MISS)", "BUILD", "DEPLOY", "BOARD",
                   "SUBJECT");
  for (size_t i = 0; i < r.steps.size(); ++i) {
    const StepRecord& st = r.steps[i];
    const bool measure = st.kind == StepKind::kMeasure;
    const bool tested = !measure && st.runs > 0 && sequential;
    s += fmt::format(
        "{:<4} {:<12} {:>6} {:>5} {:>4} {:<7} {:>9} {:>9} {:>9} {:>9}  {}\n", i, Short(st.rev),
        st.index, st.runs, st.detections, measure ? "measure" : VerdictName(st.verdict),
        tested ? fmt::format("{:.2e}", st.miss) : std::string("-"), Seconds(st.build_ms),
        Seconds(st.deploy_ms), Seconds(st.board_ms), Clip(SubjectOf(c, st.index), 50));
    if (st.capped)
      s += fmt::format("     ^ capped at {} runs: P(MISS) above its share {:.2e}\n", st.runs,
                       st.alpha);
    if (!st.note.empty()) s += fmt::format("     ^ {}\n", st.note);
  }
  s += "\n";
  const std::string& first = c.revs[r.first_bad];
  s += fmt::format("first bad commit: {} (index {} of {}) \"{}\"\n", first, r.first_bad,
                   c.revs.size() - 1, SubjectOf(c, r.first_bad));
  if (!r.also_possible.empty()) {
    s += "  or one of these untestable (skipped) commits before it:\n";
    for (size_t i : r.also_possible)
      s += fmt::format("    {} \"{}\"\n", c.revs[i], SubjectOf(c, i));
  }
  for (const StepRecord& st : r.steps)
    if (st.index == r.first_bad && !st.diagnosis.empty())
      s += fmt::format("  it shows: {}\n", st.diagnosis);
  if (sequential)
    s += fmt::format("confidence: {:.4f} that {} (requested {})\n", r.confidence,
                     r.also_possible.empty()
                         ? "this is the first bad commit"
                         : "the first bad commit is this one or one of the untestable ones",
                     c.requested_confidence);
  else
    s += "confidence: not stated (fixed runs per step)\n";
  s += fmt::format("runs: {} in {} steps; build time {}, deploy time {}, board time {}, total {}\n",
                   r.total_runs, r.steps.size(), Seconds(r.build_ms), Seconds(r.deploy_ms),
                   Seconds(r.board_ms), Seconds(r.build_ms + r.deploy_ms + r.board_ms));
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
                     {"subject", SubjectOf(c, st.index)},
                     {"alpha", st.alpha},
                     {"planned_clean_runs", st.planned},
                     {"miss", st.miss},
                     {"runs", st.runs},
                     {"detections", st.detections},
                     {"verdict", VerdictName(st.verdict)},
                     {"capped", st.capped},
                     {"board_ms", st.board_ms},
                     {"build_ms", st.build_ms},
                     {"deploy_ms", st.deploy_ms},
                     {"diagnosis", st.diagnosis},
                     {"note", st.note}});
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
                        {"subject", SubjectOf(c, r.first_bad)}}},
                      {"also_possible", also},
                      {"total_runs", r.total_runs},
                      {"board_ms", r.board_ms},
                      {"build_ms", r.build_ms},
                      {"deploy_ms", r.deploy_ms},
                      {"steps", steps}};
  if (r.rule == Rule::kSequential) {
    j["requested_confidence"] = c.requested_confidence;
    j["confidence"] = r.confidence;
    j["rate"] = {{"detections", r.rate.detections}, {"runs", r.rate.runs}};
  }
  return j;
}

}  // namespace dmahil::bisect
