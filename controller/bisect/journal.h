// The bisection's journal (docs/architecture.md §11 "a resumable journal so a crash loses
// nothing"): <out>/journal.jsonl, one JSON object per line, flushed to disk (fsync) as each record
// is written. A bisection killed at any moment is resumed by running the same command again: the
// engine is deterministic given the run outcomes, so replaying the journal's outcomes walks it
// through the finished steps without a single board run or hook call, and it goes on live from the
// first run the journal does not have.
//
// Records ("type"): "header" (first line: what is bisected, how), "prepared" (a revision
// built and deployed, or skipped, with its hooks' build_ms and deploy_ms; a revision
// prepared again on resume gets a second one), "run" (one run's outcome), "step" (a finished step,
// for people reading the log; not needed to resume), "result".
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "controller/bisect/bisection.h"

namespace dmahil::bisect {

class Journal {
 public:
  /// Opens `path`, creating it with `header` as its first line, or loads it for replay.
  /// Throws BisectError if the file exists with another header (a different bisection:
  /// the message names the first differing field), if a line other than the last is not
  /// a journal record (file:line), or on an I/O error. A torn last line (a kill
  /// mid-write) is cut off; a file without one complete line is started again.
  Journal(const std::filesystem::path& path, const nlohmann::json& header);
  ~Journal();
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  /// What the first Prepare of rev gave (with its hook times), if the journal has it. A
  /// record written before the times were journalled reads as 0 ms.
  std::optional<Preparation> FindPrepared(const std::string& rev) const;
  /// The outcome of run `run_index` of rev, if the journal has it.
  std::optional<RunOutcome> FindRun(const std::string& rev, uint32_t run_index) const;
  /// Runs loaded from the file when it was opened.
  size_t loaded_runs() const { return loaded_runs_; }

  /// Journals a Prepare of rev; FindPrepared keeps answering with the first one.
  void AppendPrepared(const std::string& rev, const Preparation& prepared);
  void AppendRun(const std::string& rev, uint32_t run_index, const RunOutcome& outcome);
  /// Logs a finished step, once per (rev, kind): steps replayed on resume are not repeated.
  void AppendStep(const StepRecord& step);
  /// Any record (e.g. "result"); `record` must carry a "type".
  void Append(const nlohmann::json& record);

 private:
  /// Loads an existing journal; false if there is none (no file, or no complete line).
  bool Load(const std::filesystem::path& path, const nlohmann::json& header);

  std::FILE* file_ = nullptr;
  std::map<std::string, Preparation> prepared_;
  std::map<std::pair<std::string, uint32_t>, RunOutcome> runs_;
  std::set<std::pair<std::string, bool>> steps_;  // (rev, measure) of "step" records
  size_t loaded_runs_ = 0;
};

/// A RevisionRunner that answers from the journal what is already done and hands the rest
/// to `live`, journalling it. A revision whose "prepared" record is replayed is built and
/// deployed again (live) only if one of its runs is not in the journal: a finished step
/// costs nothing on resume. A replayed Prepare answers with the journalled hook times, so
/// a resumed bisection reports every step's build and deploy time; the times of a build
/// done again on resume are journalled but not added to the step.
class ReplayRunner : public RevisionRunner {
 public:
  ReplayRunner(Journal& journal, RevisionRunner& live) : journal_(journal), live_(live) {}

  Preparation Prepare(const std::string& rev) override;
  RunOutcome Run(const std::string& rev, uint32_t run_index) override;

  uint32_t replayed_runs() const { return replayed_runs_; }
  uint32_t live_runs() const { return live_runs_; }

 private:
  Journal& journal_;
  RevisionRunner& live_;
  std::string prepared_from_journal_;  // rev whose hooks were not run in this process
  uint32_t replayed_runs_ = 0;
  uint32_t live_runs_ = 0;
};

}  // namespace dmahil::bisect
