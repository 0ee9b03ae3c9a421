// The detection matrix's outputs: a table a person reads at 8 a.m. (stdout) and
// matrix.json for machines. Both are deterministic: the same plan and runs give the same
// bytes (no timestamps, no timings, no absolute paths that the command line did not give).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include "controller/matrix/matrix.h"

namespace dmahil::matrix {

struct TableOptions {
  size_t width = 120;     // columns; fixture columns are split into panels to stay inside
  std::string farm_file;  // the written farm, named in reproduction hints ("" to omit them)
};

/// Renders the table, plain ASCII, ending with '\n':
///  - a header (base seed, runs per cell) and the fixture legend (F1.. = fixture names);
///  - per board, one row per fault: FAULT, one cell per fixture, VERDICT.
///    Cell: "k/n" runs in which the fixture FAILed, then the median iteration of
///    detection ("1", "2.5") when k > 0, then "!" if some detection gave another diagnosis
///    than the fault's, "E" if the fixture had errors and "N" if some runs were n/a; a cell
///    whose every run was VERDICT_NOT_APPLICABLE reads "n/a" (the reasons are in the footer). The
///    clean row ("none (clean)") counts false positives the same way. A fault that cannot manifest
///    reads "n/a: <reason>" across the cells. VERDICT: DETECTED / WRONG-DIAG / WEAK / MISSED
///    followed by caught/n runs; CLEAN / FALSE+ followed by false-positive runs/n.
///    If the fixture columns do not fit in `width`, they are split over several panels.
///  - footer: clean-board totals (false-positive runs and results, mismatching lines,
///    verified lines against the 10^7-line false-positive goal), wrong diagnoses per cell, rows not
///    detected with their seeds and a reproduction command, errors (the first, and the
///    three most frequent details with their counts), faults not modelled;
///  - the last line: "matrix: PASS ...", "matrix: FAIL ..." or "matrix: ERROR ..." (the
///    meaning of ExitCode).
std::string RenderMatrixTable(const MatrixPlan& plan, const Matrix& matrix,
                              const TableOptions& options = {});

/// matrix.json, pretty-printed (2 spaces), keys in a fixed order, ending with '\n':
/// {
///   "seed": base seed, "seeds": n, "run_seeds": "seed + i, i in [0, n)",
///   "detected_percent": 99,
///   "boards": [{"name", "file"}], "fixtures": [{"id": "F1", "name", "file"}],
///   "faults": [{"id", "diagnosis"}], "not_modelled": [id],
///   "rows": [{"board", "fault" ("none" = clean), "expected_diagnosis" (null for clean),
///             "status" (RowStatusName), "cannot_manifest" (n/a rows only, then no counts),
///             "runs", "detected_runs", "caught_runs", "error_runs",
///             "missed_seeds" (fault rows: not caught; clean rows: false positives),
///             "error_seeds",
///             "cells": [{"fixture", "runs", "detected", "right_diagnosis",
///                        "wrong_diagnosis", "errors", "first_error" (if errors),
///                        "not_applicable", "not_applicable_reason" (if any),
///                        "median_iterations" (null if none),
///                        "iterations": {"<failed iteration>": count},
///                        "diagnoses": {"<name>": count},
///                        "mismatching_lines", "lines_checked"}]}],
///   "clean": {"runs", "false_positive_runs", "false_positive_results",
///             "mismatching_lines", "lines_checked"},
///   "errors": {"results", "first", "kinds": [{"count", "detail"}] (most frequent first)},
///   "exit_code": ExitCode(matrix)
/// }
/// File paths are written as given (not made absolute), so output does not depend on
/// the working directory; loopback ports in error details are masked ("127.0.0.1:<port>").
std::string RenderMatrixJson(const MatrixPlan& plan, const Matrix& matrix);

/// Writes RenderMatrixJson to `path` atomically. Throws std::runtime_error naming the
/// path on failure.
void WriteMatrixJson(const std::filesystem::path& path, const MatrixPlan& plan,
                     const Matrix& matrix);

}  // namespace dmahil::matrix
