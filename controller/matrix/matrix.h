// The detection matrix (docs/architecture.md §1 "harness developer"): every fixture against
// every modelled fault of the catalogue (common/fault_catalogue.h), and against the clean board, on
// every virtual board, over many seeds. It proves that each fixture catches the bug class
// it claims and that clean boards never cry wolf.
//
// Vocabulary used throughout:
//  - a *board run* is one board (one board file) with one fault injected, or none
//    ("clean"), powered on under one run seed; it runs every fixture once, in order;
//  - a fixture *detected* the fault in a board run if its verdict is FAIL; the detection
//    has the *right diagnosis* if report::DiagnosisName of its diagnosis equals the
//    fault's FaultInfo::diagnosis; *iterations until detection* is its failed_iteration;
//  - a board run *caught* its fault if at least one fixture detected it with the right
//    diagnosis; a fault/board pair is DETECTED if it was caught in >= 99% of its runs;
//  - on a clean board every FAIL is a *false positive*;
//  - a fault that cannot manifest on a board (FaultInfo::cannot_manifest) is not run
//    there and is reported as "n/a: <reason>", never as a pass;
//  - a fixture that cannot run on a board (VERDICT_NOT_APPLICABLE,
//    controller/run/applicability.h) is counted apart in its cell with its reason: neither
//    a detection nor a false positive nor an error.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/farm.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil::matrix {

/// The fault name the matrix uses for a clean board run (no fault injected).
inline constexpr std::string_view kNoFault = "none";

/// A fault/board pair is DETECTED if caught in at least this percentage of its runs.
inline constexpr uint32_t kDetectedPercent = 99;

/// One board of the matrix.
struct PlanBoard {
  std::string name;            // Board.name from the file (file stem if empty); unique
  std::filesystem::path file;  // as given on the command line
  v1::Board board;             // the loaded, validated description (a kind that runs the model)
};

/// One fixture of the matrix.
struct PlanFixture {
  std::string name;            // Fixture.name; unique
  std::filesystem::path file;  // as found (folder entry) or given
};

/// One injected fault of the matrix.
struct PlanFault {
  std::string id;         // catalogue id, e.g. "cache-flush-local-addr"
  std::string diagnosis;  // the diagnosis name the harness must give, e.g. "stale-line"
};

/// What a matrix covers; fixed before anything runs.
struct MatrixPlan {
  uint64_t seed = 0;   // base seed: board run i of seed index s uses run seed seed + s
  uint32_t seeds = 0;  // seeded runs per board/fault pair (n)
  std::vector<PlanBoard> boards;
  std::vector<PlanFixture> fixtures;      // every board run runs all of them, in this order
  std::vector<PlanFault> faults;          // modelled faults, catalogue order; clean is implicit
  std::vector<std::string> not_modelled;  // catalogued faults that cannot be injected yet
  /// cannot_manifest[b][f]: why faults[f] cannot manifest on boards[b], "" if it can.
  /// Shape boards.size() x faults.size().
  std::vector<std::vector<std::string>> cannot_manifest;

  /// Run seed of seed index s (0-based): seed + s, wrapping modulo 2^64.
  uint64_t RunSeed(uint32_t s) const { return seed + s; }
};

/// What the user asked for (the `dmahil matrix` command line, resolved to files).
struct MatrixRequest {
  std::vector<std::filesystem::path> board_files;  // at least one; virtual boards only
  /// Fixture files or folders; a folder contributes its *.textproto files in sorted order.
  std::vector<std::filesystem::path> fixture_paths;
  std::vector<std::string> faults;  // catalogue ids; empty: every modelled fault
  uint64_t seed = 0;
  uint32_t seeds = 100;
};

/// Loads and checks everything `request` names and builds the plan: boards (validated,
/// virtual, unique names), fixtures (validated, unique names), faults (known and modelled;
/// "none" is accepted and ignored, clean runs are always part of the matrix) and the
/// cannot-manifest table from the catalogue. Throws ConfigError (common/config.h) with
/// every problem, file:line where one applies.
MatrixPlan MakePlan(const MatrixRequest& request);

/// One board run's outcome: what the aggregation needs, nothing of the line maps.
struct BoardRun {
  size_t board = 0;                        // index into MatrixPlan::boards
  std::string fault;                       // a MatrixPlan::faults id, or kNoFault
  uint64_t run_seed = 0;                   // the campaign seed it ran under
  std::vector<v1::FixtureResult> results;  // one per MatrixPlan::fixtures, in order
};

/// The farm one seed's campaign runs: for each plan board, a clean entry named
/// "<board>" and one entry "<board>+<fault>" per fault that can manifest on it (with
/// `expect` = the fault's diagnosis); fixture files and board files as absolute paths.
/// Written beside matrix.json so that `dmahil run --farm <out>/farm.textproto --seed S`
/// reproduces one seed's board runs bit for bit. `runs` receives, per farm board in
/// order, {board index, fault or kNoFault}.
v1::Farm MatrixFarm(const MatrixPlan& plan, std::vector<std::pair<size_t, std::string>>* runs);

/// How to run the matrix.
struct RunnerOptions {
  std::filesystem::path out_dir;     // <out>/farm.textproto, <out>/runs/seed-<S>/...
  std::filesystem::path vboard;      // the dmahil-vboard executable
  uint32_t parallel = 0;             // boards driven at once; 0: hardware threads
  uint32_t boot_timeout_ms = 15000;  // per board run, power-on to agents answering
  /// Called after each seed with (seeds done, seeds in total); may be empty.
  std::function<void(uint32_t, uint32_t)> progress;
};

/// Runs the plan: writes <out>/farm.textproto (MatrixFarm), then, for each seed index s,
/// one controller::RunCampaign of that farm under RunSeed(s) with artifacts in
/// <out>/runs/seed-<S>/. A seed's folder (its results.json and the consoles of the board
/// runs that missed their fault, gave a false positive or an error) is kept only if such
/// a board run exists; otherwise it is removed. Returns plan.seeds x farm boards runs,
/// seed-major, with segments and line maps dropped. Throws ConfigError if the written
/// farm does not load, std::runtime_error / std::filesystem::filesystem_error if the out
/// folder cannot be written; board problems are ERROR results, never exceptions.
std::vector<BoardRun> RunMatrix(const MatrixPlan& plan, const RunnerOptions& options);

/// Per-row verdict.
enum class RowStatus {
  kClean,           // clean board: no FAIL in any run
  kFalsePositive,   // clean board: some fixture FAILed in some run
  kDetected,        // caught in >= kDetectedPercent % of runs
  kWrongDiagnosis,  // detected in >= kDetectedPercent % of runs, but too rarely with the
                    // right diagnosis
  kWeak,            // detected (any diagnosis) in some runs, fewer than the threshold
  kMissed,          // never detected by any fixture
  kNotApplicable,   // the fault cannot manifest on this board: not run
};

/// Lower-case kebab name: "clean", "false-positive", "detected", "wrong-diagnosis",
/// "weak", "missed", "n/a".
std::string_view RowStatusName(RowStatus status);

/// One fault (or clean) x fixture cell on one board.
struct Cell {
  uint32_t runs = 0;                        // n: board runs in which the fixture ran
  uint32_t detected = 0;                    // k: of those, verdict FAIL
  uint32_t right_diagnosis = 0;             // detections whose diagnosis is the fault's
  uint32_t wrong_diagnosis = 0;             // detections with another diagnosis (clean: 0)
  uint32_t errors = 0;                      // verdict ERROR (or unspecified)
  uint32_t not_applicable = 0;              // verdict NOT_APPLICABLE: never a detection nor a miss
  std::string not_applicable_reason;        // detail of the first n/a result, "" if none
  std::vector<uint32_t> failed_iterations;  // of each detection, in run order (1-based)
  std::map<std::string, uint32_t> diagnoses;  // diagnosis name -> detections
  uint64_t mismatching_lines = 0;             // summed over runs
  uint64_t lines_checked = 0;                 // summed over runs
  std::string first_error;                    // detail of the first ERROR, "" if none

  /// Median of failed_iterations (mean of the middle two for an even count); -1 if
  /// there was no detection.
  double MedianIterations() const;
};

/// One fault (or clean) on one board: a row of the matrix.
struct Row {
  size_t board = 0;                    // index into MatrixPlan::boards
  std::string fault;                   // fault id or kNoFault
  std::string expected;                // the diagnosis the fault must give; "" for clean
  std::string cannot_manifest;         // non-empty: n/a, no runs, cells empty
  std::vector<Cell> cells;             // one per MatrixPlan::fixtures (empty when n/a)
  uint32_t runs = 0;                   // board runs of this row
  uint32_t detected_runs = 0;          // runs where some fixture FAILed (clean: false positives)
  uint32_t caught_runs = 0;            // runs where some fixture FAILed with the right diagnosis
  uint32_t error_runs = 0;             // runs with at least one ERROR result
  std::vector<uint64_t> missed_seeds;  // fault rows: run seeds not caught; clean rows:
                                       // run seeds with a false positive
  std::vector<uint64_t> error_seeds;   // run seeds with an ERROR result
  RowStatus status = RowStatus::kMissed;
};

/// Clean-board totals over every clean board run.
struct CleanTotals {
  uint32_t runs = 0;
  uint32_t false_positive_runs = 0;     // runs with at least one FAIL
  uint32_t false_positive_results = 0;  // FAIL results
  uint64_t mismatching_lines = 0;       // summed over every clean result
  uint64_t lines_checked = 0;           // verified cache lines, summed
};

/// The aggregated matrix.
struct Matrix {
  /// Rows board-major in plan order; per board: clean first, then plan faults in order
  /// (n/a rows included). Shape boards x (1 + faults).
  std::vector<Row> rows;
  CleanTotals clean;
  uint32_t error_results = 0;  // ERROR (or unspecified) results over every run
  std::string first_error;     // "<board>+<fault> seed S / <fixture>: <detail>", "" if none
  /// ERROR details (loopback ports masked as "<port>") -> how many results gave each.
  std::map<std::string, uint32_t> error_details;
};

/// Aggregates board runs (any order; each must name a plan board, a plan fault or kNoFault
/// of a pair that can manifest, and carry one result per plan fixture in order) into the
/// matrix. Throws std::invalid_argument on a run that does not fit the plan.
Matrix Aggregate(const MatrixPlan& plan, const std::vector<BoardRun>& runs);

/// The exit status of `dmahil matrix`:
///  2 if any result is an ERROR (the harness could not run a fixture, so the matrix does
///    not say what it claims: an infrastructure error, not a verdict on the fixtures);
///  else 1 if any fault row that can manifest is not DETECTED, or any clean run had a
///    FAIL or a mismatching line;
///  else 0.
int ExitCode(const Matrix& matrix);

/// What `dmahil matrix` was asked on its command line.
struct CommandLine {
  MatrixRequest request;
  std::filesystem::path out_dir;  // matrix.json, farm.textproto, runs/
  std::filesystem::path vboard;   // dmahil-vboard
  uint32_t parallel = 0;          // 0: hardware threads
  uint32_t boot_timeout_ms = 15000;
};

/// The whole `dmahil matrix` command: prints the seed (to `err`) before anything runs,
/// plans, runs (progress on `err` every 10% of the seeds), writes <out>/matrix.json and
/// prints the table (to `out`), the wall time and where the files are. Returns the exit
/// status: ExitCode, or 2 for a configuration error or an out folder that cannot be
/// written (reported on `err`).
int MatrixCommand(const CommandLine& command, std::ostream& out, std::ostream& err);

}  // namespace dmahil::matrix
