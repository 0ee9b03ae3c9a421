// The detection matrix: aggregation and exit rule on synthetic results, the table and
// matrix.json, planning from the catalogue, and one small real matrix through `dmahil`.
#include "controller/matrix/matrix.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "controller/run/cli_test_support.h"

#include "common/config.h"
#include "common/fault_catalogue.h"
#include "common/validate.h"
#include "controller/matrix/matrix_report.h"

namespace dmahil::matrix {
namespace {

namespace fs = std::filesystem;

// ---- synthetic plans and results ------------------------------------------------------

v1::FixtureResult Result(const std::string& fixture, v1::Verdict verdict,
                         v1::Diagnosis diagnosis = v1::DIAGNOSIS_NONE,
                         uint32_t failed_iteration = 0, uint64_t mismatching = 0) {
  v1::FixtureResult r;
  r.set_fixture(fixture);
  r.set_verdict(verdict);
  r.set_diagnosis(diagnosis);
  r.set_failed_iteration(failed_iteration);
  r.set_lines_checked(1024);
  r.set_mismatching_lines(mismatching);
  r.set_detail(verdict == v1::VERDICT_ERROR ? "agent did not answer" : "");
  return r;
}

v1::FixtureResult Pass(const std::string& fixture) { return Result(fixture, v1::VERDICT_PASS); }

v1::FixtureResult Fail(const std::string& fixture, v1::Diagnosis d, uint32_t iteration) {
  return Result(fixture, v1::VERDICT_FAIL, d, iteration, 17);
}

// Two boards ("alpha", "beta"), three fixtures, two faults; "offset" cannot manifest on beta.
MatrixPlan SyntheticPlan(uint32_t seeds) {
  MatrixPlan p;
  p.seed = 1000;
  p.seeds = seeds;
  p.boards = {{"alpha", "boards/alpha.textproto", {}}, {"beta", "boards/beta.textproto", {}}};
  p.fixtures = {{"fx-a", "fixtures/fx-a.textproto"},
                {"fx-b", "fixtures/fx-b.textproto"},
                {"fx-c", "fixtures/fx-c.textproto"}};
  p.faults = {{"stale", "stale-line"}, {"offset", "wrong-bus-address"}};
  p.not_modelled = {"future-fault"};
  p.cannot_manifest = {{"", ""}, {"", "no dma-ranges offset"}};
  return p;
}

BoardRun MakeRun(size_t board, const std::string& fault, uint64_t seed,
                 std::vector<v1::FixtureResult> results) {
  return BoardRun{board, fault, seed, std::move(results)};
}

// Every manifestable pair of SyntheticPlan, `seeds` runs each: clean passes, "stale" is
// caught by fx-b at iteration 1 + s % 2, "offset" by fx-a at iteration 1.
std::vector<BoardRun> AllGood(const MatrixPlan& p) {
  std::vector<BoardRun> runs;
  for (uint32_t s = 0; s < p.seeds; ++s) {
    const uint64_t seed = p.RunSeed(s);
    for (size_t b = 0; b < 2; ++b) {
      runs.push_back(MakeRun(b, "none", seed, {Pass("fx-a"), Pass("fx-b"), Pass("fx-c")}));
      runs.push_back(
          MakeRun(b, "stale", seed,
                  {Pass("fx-a"), Fail("fx-b", v1::DIAGNOSIS_STALE_LINE, 1 + s % 2), Pass("fx-c")}));
    }
    runs.push_back(
        MakeRun(0, "offset", seed,
                {Fail("fx-a", v1::DIAGNOSIS_WRONG_BUS_ADDRESS, 1), Pass("fx-b"), Pass("fx-c")}));
  }
  return runs;
}

const Row& FindRow(const Matrix& m, size_t board, const std::string& fault) {
  for (const Row& r : m.rows)
    if (r.board == board && r.fault == fault) return r;
  throw std::runtime_error("no row " + fault);
}

// Replaces the results of `fault` on board 0 for the first `count` seeds by `results`.
void Override(std::vector<BoardRun>& runs, const std::string& fault, uint32_t count,
              const std::vector<v1::FixtureResult>& results) {
  uint32_t done = 0;
  for (BoardRun& r : runs)
    if (r.board == 0 && r.fault == fault && done < count) {
      r.results = results;
      ++done;
    }
}

TEST(MatrixAggregate, CountsKOfNAndMedianIterations) {
  const MatrixPlan p = SyntheticPlan(4);
  const Matrix m = Aggregate(p, AllGood(p));
  ASSERT_EQ(m.rows.size(), 2u * 3u);  // boards x (clean + faults)
  const Row& stale = FindRow(m, 0, "stale");
  ASSERT_EQ(stale.cells.size(), 3u);
  EXPECT_EQ(stale.cells[0].detected, 0u);
  EXPECT_EQ(stale.cells[0].runs, 4u);
  EXPECT_EQ(stale.cells[1].detected, 4u);
  EXPECT_EQ(stale.cells[1].right_diagnosis, 4u);
  EXPECT_EQ(stale.cells[1].wrong_diagnosis, 0u);
  EXPECT_DOUBLE_EQ(stale.cells[1].MedianIterations(), 1.5);  // iterations 1 2 1 2
  EXPECT_DOUBLE_EQ(stale.cells[0].MedianIterations(), -1);
  EXPECT_EQ(stale.caught_runs, 4u);
  EXPECT_EQ(stale.status, RowStatus::kDetected);
  EXPECT_EQ(ExitCode(m), 0);

  Cell odd;
  odd.failed_iterations = {4, 1, 3};
  EXPECT_DOUBLE_EQ(odd.MedianIterations(), 3);
}

TEST(MatrixAggregate, WrongDiagnosisIsCountedAndDoesNotCatch) {
  const MatrixPlan p = SyntheticPlan(4);
  std::vector<BoardRun> runs = AllGood(p);
  // Seed 0: fx-b says torn-line instead of stale-line, nothing else catches the fault.
  Override(runs, "stale", 1,
           {Pass("fx-a"), Fail("fx-b", v1::DIAGNOSIS_TORN_LINE, 3), Pass("fx-c")});
  const Matrix m = Aggregate(p, runs);
  const Row& stale = FindRow(m, 0, "stale");
  EXPECT_EQ(stale.cells[1].detected, 4u);
  EXPECT_EQ(stale.cells[1].wrong_diagnosis, 1u);
  EXPECT_EQ(stale.cells[1].diagnoses.at("torn-line"), 1u);
  EXPECT_EQ(stale.detected_runs, 4u);
  EXPECT_EQ(stale.caught_runs, 3u);
  EXPECT_EQ(stale.missed_seeds, std::vector<uint64_t>{1000});
  EXPECT_EQ(stale.status, RowStatus::kWrongDiagnosis);  // detected 4/4, right in 3/4
  EXPECT_EQ(ExitCode(m), 1);
  const std::string table = RenderMatrixTable(p, m);
  EXPECT_NE(table.find("4/4 2!"), std::string::npos) << table;
  EXPECT_NE(table.find("WRONG-DIAG 3/4"), std::string::npos) << table;
  EXPECT_NE(table.find("alpha stale / F2 fx-b: 1 of 4 detections said torn-line x1 "
                       "(expected stale-line)"),
            std::string::npos)
      << table;
}

TEST(MatrixAggregate, AnyFixtureCatchingCountsForTheRun) {
  // fx-a catches on even seeds, fx-c on odd ones: each fixture alone is 50%, the run 100%.
  const MatrixPlan p = SyntheticPlan(4);
  std::vector<BoardRun> runs = AllGood(p);
  uint32_t s = 0;
  for (BoardRun& r : runs)
    if (r.board == 0 && r.fault == "stale")
      r.results =
          s++ % 2 == 0
              ? std::vector{Fail("fx-a", v1::DIAGNOSIS_STALE_LINE, 2), Pass("fx-b"), Pass("fx-c")}
              : std::vector{Pass("fx-a"), Pass("fx-b"), Fail("fx-c", v1::DIAGNOSIS_STALE_LINE, 4)};
  const Matrix m = Aggregate(p, runs);
  const Row& stale = FindRow(m, 0, "stale");
  EXPECT_EQ(stale.cells[0].detected, 2u);
  EXPECT_EQ(stale.cells[2].detected, 2u);
  EXPECT_EQ(stale.status, RowStatus::kDetected);
}

TEST(MatrixAggregate, ExitRuleNeedsNinetyNinePercent) {
  const MatrixPlan p = SyntheticPlan(100);
  const std::vector<v1::FixtureResult> miss = {Pass("fx-a"), Pass("fx-b"), Pass("fx-c")};
  {
    std::vector<BoardRun> runs = AllGood(p);
    Override(runs, "stale", 1, miss);  // 99 of 100
    const Matrix m = Aggregate(p, runs);
    EXPECT_EQ(FindRow(m, 0, "stale").status, RowStatus::kDetected);
    EXPECT_EQ(ExitCode(m), 0);
  }
  {
    std::vector<BoardRun> runs = AllGood(p);
    Override(runs, "stale", 2, miss);  // 98 of 100
    const Matrix m = Aggregate(p, runs);
    EXPECT_EQ(FindRow(m, 0, "stale").status, RowStatus::kWeak);
    EXPECT_EQ(FindRow(m, 0, "stale").missed_seeds, (std::vector<uint64_t>{1000, 1001}));
    EXPECT_EQ(ExitCode(m), 1);
    EXPECT_NE(
        RenderMatrixTable(p, m).find("alpha stale: WEAK 98/100; not caught at seeds 1000 1001"),
        std::string::npos);
  }
  {
    std::vector<BoardRun> runs = AllGood(p);
    Override(runs, "stale", 100, miss);
    const Matrix m = Aggregate(p, runs);
    EXPECT_EQ(FindRow(m, 0, "stale").status, RowStatus::kMissed);
    EXPECT_EQ(ExitCode(m), 1);
    EXPECT_NE(RenderMatrixTable(p, m).find("matrix: FAIL: 2 of 3 fault/board pairs"),
              std::string::npos);
  }
}

TEST(MatrixAggregate, ErrorsAreInfrastructureAndExitTwo) {
  const MatrixPlan p = SyntheticPlan(3);
  for (const v1::Verdict v : {v1::VERDICT_ERROR, v1::VERDICT_UNSPECIFIED}) {
    std::vector<BoardRun> runs = AllGood(p);
    Override(runs, "none", 1, {Pass("fx-a"), Result("fx-b", v), Pass("fx-c")});
    const Matrix m = Aggregate(p, runs);
    EXPECT_EQ(m.error_results, 1u);
    EXPECT_EQ(FindRow(m, 0, "none").error_seeds, std::vector<uint64_t>{1000});
    EXPECT_EQ(FindRow(m, 0, "none").cells[1].errors, 1u);
    EXPECT_EQ(FindRow(m, 0, "none").status, RowStatus::kClean);  // an error is no FAIL
    EXPECT_EQ(ExitCode(m), 2);
    const std::string table = RenderMatrixTable(p, m);
    EXPECT_NE(table.find("0/3E"), std::string::npos) << table;
    EXPECT_NE(table.find("matrix: ERROR:"), std::string::npos);
  }
}

TEST(MatrixAggregate, NotApplicableFixturesAreCountedApartNeverAMissNorAnError) {
  const MatrixPlan p = SyntheticPlan(3);
  std::vector<BoardRun> runs = AllGood(p);
  // fx-c cannot run on board 0, whatever the fault and the seed.
  v1::FixtureResult na = Result("fx-c", v1::VERDICT_NOT_APPLICABLE);
  na.set_detail("no bounce is possible: the swiotlb pool is beyond the mask");
  for (BoardRun& r : runs)
    if (r.board == 0) r.results[2] = na;
  const Matrix m = Aggregate(p, runs);
  for (const char* fault : {"none", "stale", "offset"}) {
    const Cell& c = FindRow(m, 0, fault).cells[2];
    EXPECT_EQ(c.runs, 3u) << fault;
    EXPECT_EQ(c.not_applicable, 3u) << fault;
    EXPECT_EQ(c.detected, 0u) << fault;
    EXPECT_EQ(c.errors, 0u) << fault;
    EXPECT_EQ(c.not_applicable_reason, na.detail()) << fault;
  }
  EXPECT_EQ(FindRow(m, 0, "none").status, RowStatus::kClean);
  EXPECT_EQ(FindRow(m, 0, "stale").status, RowStatus::kDetected);
  EXPECT_EQ(m.error_results, 0u);
  EXPECT_EQ(ExitCode(m), 0);
  const std::string table = RenderMatrixTable(p, m);
  EXPECT_NE(table.find("alpha / F3 fx-c: no bounce is possible"), std::string::npos) << table;
  EXPECT_NE(RenderMatrixJson(p, m).find("\"not_applicable_reason\": \"no bounce is possible"),
            std::string::npos);
}

TEST(MatrixAggregate, CleanBoardFalsePositivesAndVerifiedLines) {
  const MatrixPlan p = SyntheticPlan(5);
  {
    const Matrix m = Aggregate(p, AllGood(p));
    EXPECT_EQ(m.clean.runs, 10u);
    EXPECT_EQ(m.clean.false_positive_runs, 0u);
    EXPECT_EQ(m.clean.lines_checked, 10u * 3u * 1024u);
    EXPECT_EQ(FindRow(m, 1, "none").status, RowStatus::kClean);
    const std::string table = RenderMatrixTable(p, m);
    EXPECT_NE(table.find("0 mismatching lines in 30,720 verified lines"), std::string::npos)
        << table;
    EXPECT_NE(table.find("not shown by this matrix"), std::string::npos);
  }
  std::vector<BoardRun> runs = AllGood(p);
  Override(runs, "none", 2,
           {Fail("fx-a", v1::DIAGNOSIS_STALE_LINE, 2), Fail("fx-b", v1::DIAGNOSIS_STALE_LINE, 4),
            Pass("fx-c")});
  const Matrix m = Aggregate(p, runs);
  const Row& clean = FindRow(m, 0, "none");
  EXPECT_EQ(clean.status, RowStatus::kFalsePositive);
  EXPECT_EQ(clean.detected_runs, 2u);
  EXPECT_EQ(clean.cells[0].detected, 2u);
  EXPECT_EQ(clean.cells[0].wrong_diagnosis, 0u);  // clean rows have no right diagnosis
  EXPECT_EQ(clean.missed_seeds, (std::vector<uint64_t>{1000, 1001}));
  EXPECT_EQ(m.clean.false_positive_runs, 2u);
  EXPECT_EQ(m.clean.false_positive_results, 4u);
  EXPECT_EQ(m.clean.mismatching_lines, 4u * 17u);
  EXPECT_EQ(ExitCode(m), 1);
  EXPECT_NE(RenderMatrixTable(p, m).find("FALSE+ 2/5"), std::string::npos);

  // A PASS that still counted mismatching lines is a false positive too.
  runs = AllGood(p);
  Override(
      runs, "none", 1,
      {Result("fx-a", v1::VERDICT_PASS, v1::DIAGNOSIS_NONE, 0, 1), Pass("fx-b"), Pass("fx-c")});
  EXPECT_EQ(ExitCode(Aggregate(p, runs)), 1);
}

TEST(MatrixAggregate, FaultsThatCannotManifestAreNotApplicableNeverPasses) {
  const MatrixPlan p = SyntheticPlan(2);
  const Matrix m = Aggregate(p, AllGood(p));
  const Row& na = FindRow(m, 1, "offset");
  EXPECT_EQ(na.status, RowStatus::kNotApplicable);
  EXPECT_TRUE(na.cells.empty());
  EXPECT_EQ(ExitCode(m), 0);
  const std::string table = RenderMatrixTable(p, m);
  EXPECT_NE(table.find("offset        n/a: no dma-ranges offset"), std::string::npos) << table;
  const auto j = nlohmann::json::parse(RenderMatrixJson(p, m));
  bool seen = false;
  for (const auto& row : j["rows"])
    if (row["board"] == "beta" && row["fault"] == "offset") {
      seen = true;
      EXPECT_EQ(row["status"], "n/a");
      EXPECT_EQ(row["cannot_manifest"], "no dma-ranges offset");
      EXPECT_FALSE(row.contains("cells"));
      EXPECT_FALSE(row.contains("runs"));
    }
  EXPECT_TRUE(seen);

  // A run of a pair that cannot manifest, or a run that does not fit the plan, is a bug.
  std::vector<BoardRun> bad = AllGood(p);
  bad.push_back(MakeRun(1, "offset", 1, {Pass("fx-a"), Pass("fx-b"), Pass("fx-c")}));
  EXPECT_THROW(Aggregate(p, bad), std::invalid_argument);
  using Runs = std::vector<BoardRun>;
  EXPECT_THROW(Aggregate(p, Runs{MakeRun(0, "unknown", 1, {})}), std::invalid_argument);
  EXPECT_THROW(Aggregate(p, Runs{MakeRun(0, "none", 1, {Pass("fx-a")})}), std::invalid_argument);
  EXPECT_THROW(
      Aggregate(p, Runs{MakeRun(0, "none", 1, {Pass("fx-b"), Pass("fx-a"), Pass("fx-c")})}),
      std::invalid_argument);
}

TEST(MatrixReport, JsonIsDeterministicWhateverTheRunOrder) {
  const MatrixPlan p = SyntheticPlan(6);
  std::vector<BoardRun> runs = AllGood(p);
  Override(runs, "none", 1, {Pass("fx-a"), Result("fx-b", v1::VERDICT_ERROR), Pass("fx-c")});
  const std::string a = RenderMatrixJson(p, Aggregate(p, runs));
  std::mt19937 rng(7);
  std::shuffle(runs.begin(), runs.end(), rng);
  EXPECT_EQ(a, RenderMatrixJson(p, Aggregate(p, runs)));
  const auto j = nlohmann::json::parse(a);
  EXPECT_EQ(j["seed"], 1000);
  EXPECT_EQ(j["seeds"], 6);
  EXPECT_EQ(j["fixtures"][1]["id"], "F2");
  EXPECT_EQ(j["not_modelled"][0], "future-fault");
  EXPECT_EQ(j["exit_code"], 2);
  const auto& stale = j["rows"][1];
  EXPECT_EQ(stale["fault"], "stale");
  EXPECT_EQ(stale["status"], "detected");
  EXPECT_EQ(stale["cells"][1]["median_iterations"], 1.5);
  EXPECT_EQ(stale["cells"][1]["iterations"]["1"], 3);
  EXPECT_EQ(stale["cells"][1]["iterations"]["2"], 3);
  EXPECT_EQ(stale["cells"][1]["diagnoses"]["stale-line"], 6);
  EXPECT_TRUE(stale["cells"][0]["median_iterations"].is_null());
  EXPECT_EQ(j["errors"]["first"], "alpha+none seed 1000 / fx-b: agent did not answer");
  EXPECT_EQ(j["errors"]["kinds"][0]["count"], 1);
}

TEST(MatrixReport, ErrorDetailsAreGroupedWithPortsMasked) {
  const MatrixPlan p = SyntheticPlan(4);
  std::vector<BoardRun> runs = AllGood(p);
  uint16_t port = 40000;
  for (BoardRun& r : runs)
    if (r.fault == "none") {
      r.results[0] = Result("fx-a", v1::VERDICT_ERROR);
      r.results[0].set_detail("127.0.0.1:" + std::to_string(port++) +
                              " DmaMap: RESOURCE_EXHAUSTED");
    }
  Override(runs, "stale", 1, {Pass("fx-a"), Result("fx-b", v1::VERDICT_ERROR), Pass("fx-c")});
  const Matrix m = Aggregate(p, runs);
  EXPECT_EQ(m.error_results, 9u);
  ASSERT_EQ(m.error_details.size(), 2u);
  EXPECT_EQ(m.error_details.at("127.0.0.1:<port> DmaMap: RESOURCE_EXHAUSTED"), 8u);
  const std::string table = RenderMatrixTable(p, m);
  EXPECT_NE(
      table.find(
          "    8 x 127.0.0.1:<port> DmaMap: RESOURCE_EXHAUSTED\n    1 x agent did not answer"),
      std::string::npos)
      << table;
  const auto j = nlohmann::json::parse(RenderMatrixJson(p, m));
  EXPECT_EQ(j["errors"]["kinds"][0]["count"], 8);
  EXPECT_EQ(j["errors"]["kinds"][1]["detail"], "agent did not answer");
  EXPECT_EQ(j["rows"][0]["cells"][0]["first_error"],
            "seed 1000: 127.0.0.1:<port> DmaMap: RESOURCE_EXHAUSTED");
  EXPECT_FALSE(j["rows"][0]["cells"][1].contains("first_error"));
}

TEST(MatrixReport, TableStaysWithin120ColumnsWithPanels) {
  for (const size_t nfix : {size_t{6}, size_t{14}}) {
    MatrixPlan p = SyntheticPlan(100);
    p.fixtures.clear();
    for (size_t x = 0; x < nfix; ++x)
      p.fixtures.push_back({"a-rather-long-fixture-name-" + std::to_string(x), "f"});
    p.faults = {{"unmap-no-invalidate-foreign", "stale-line"}, {"offset", "wrong-bus-address"}};
    p.cannot_manifest = {{"", ""},
                         {"",
                          "no domU RAM above 4 GiB: a 32-bit device never needs to bounce "
                          "its pages, and this reason is long"}};
    std::vector<BoardRun> runs;
    for (uint32_t s = 0; s < p.seeds; ++s)
      for (size_t b = 0; b < 2; ++b)
        for (const std::string f : {"none", "unmap-no-invalidate-foreign", "offset"}) {
          if (b == 1 && std::string(f) == "offset") continue;
          std::vector<v1::FixtureResult> rs;
          for (size_t x = 0; x < nfix; ++x)
            rs.push_back(std::string(f) == "none"
                             ? Pass(p.fixtures[x].name)
                             : Fail(p.fixtures[x].name,
                                    x % 2 ? v1::DIAGNOSIS_STALE_LINE : v1::DIAGNOSIS_TORN_LINE,
                                    1 + s % 4));
          runs.push_back(MakeRun(b, f, p.RunSeed(s), rs));
        }
    const std::string table = RenderMatrixTable(p, Aggregate(p, runs));
    std::istringstream in(table);
    std::string line;
    while (std::getline(in, line)) EXPECT_LE(line.size(), 120u) << line;
    EXPECT_NE(table.find("100/100 2.5!"), std::string::npos) << table;
    EXPECT_NE(table.find("n/a: no domU RAM above 4 GiB: a 32-bit device never needs to bounce"),
              std::string::npos)
        << table;
    EXPECT_NE(table.find(" long\n"), std::string::npos) << "n/a reasons are not cut\n" << table;
    EXPECT_EQ(table.find("..."), std::string::npos) << table;
    if (nfix > 6) {
      EXPECT_NE(table.find("fixtures F1-"), std::string::npos) << table;
    }
    EXPECT_NE(table.find("F" + std::to_string(nfix) + " a-rather-long-fixture-name-"),
              std::string::npos);
  }
}

// ---- planning from files and the catalogue --------------------------------------------

std::string SourceDir() {
  const char* v = std::getenv("DMAHIL_SOURCE_DIR");
  return v ? v : ".";
}

fs::path TempDir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("dmahil-matrix-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

TEST(MatrixPlan, EveryModelledFaultWithCannotManifestFromTheCatalogue) {
  // A fixture folder: its *.textproto files in sorted order, other files ignored.
  const fs::path dir = TempDir("fixtures");
  fs::create_directories(dir);
  fs::copy_file(SourceDir() + "/fixtures/local-from-device.textproto", dir / "b.textproto");
  fs::copy_file(SourceDir() + "/fixtures/foreign-to-device.textproto", dir / "a.textproto");
  std::ofstream(dir / "README") << "not a fixture\n";
  MatrixRequest req;
  req.board_files = {SourceDir() + "/boards/zcu102-virtual.textproto",
                     SourceDir() + "/boards/rpi4-virtual.textproto"};
  req.fixture_paths = {dir};
  req.seeds = 3;
  req.seed = 9;
  const MatrixPlan p = MakePlan(req);
  ASSERT_EQ(p.boards.size(), 2u);
  size_t modelled = 0;
  for (const FaultInfo& f : FaultCatalogue()) modelled += f.modelled() ? 1 : 0;
  EXPECT_EQ(p.faults.size(), modelled);
  EXPECT_EQ(p.faults.size() + p.not_modelled.size(), FaultCatalogue().size());
  for (size_t b = 0; b < 2; ++b)
    for (size_t f = 0; f < p.faults.size(); ++f) {
      const FaultInfo* info = FindFault(p.faults[f].id);
      ASSERT_NE(info, nullptr);
      EXPECT_EQ(p.faults[f].diagnosis, DiagnosisKebabName(info->diagnosis_cached));
      EXPECT_EQ(p.cannot_manifest[b][f], info->cannot_manifest(p.boards[b].board));
    }
  ASSERT_EQ(p.fixtures.size(), 2u);
  EXPECT_EQ(p.fixtures[0].name, "foreign-to-device");
  EXPECT_EQ(p.fixtures[1].name, "local-from-device");
  fs::remove_all(dir);

  // The farm: per board, clean plus every fault that can manifest, with its expectation.
  std::vector<std::pair<size_t, std::string>> layout;
  const v1::Farm farm = MatrixFarm(p, &layout);
  ASSERT_EQ(static_cast<size_t>(farm.board_size()), layout.size());
  EXPECT_EQ(farm.board(0).name(), p.boards[0].name);
  EXPECT_EQ(farm.board(0).faults_size(), 0);
  for (int i = 0; i < farm.board_size(); ++i) {
    if (layout[i].second == "none") continue;
    EXPECT_EQ(farm.board(i).name(), p.boards[layout[i].first].name + "+" + layout[i].second);
    EXPECT_EQ(farm.board(i).expect(),
              DiagnosisKebabName(FindFault(layout[i].second)->diagnosis_cached));
    EXPECT_TRUE(fs::path(farm.board(i).board_file()).is_absolute());
  }
}

TEST(MatrixPlan, ConfigurationErrorsNameTheProblem) {
  MatrixRequest req;
  req.fixture_paths = {SourceDir() + "/fixtures/foreign-to-device.textproto"};
  try {
    MakePlan(req);
    FAIL() << "no board accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("at least one --board"), std::string::npos);
  }
  req.board_files = {SourceDir() + "/boards/zcu102-virtual.textproto",
                     SourceDir() + "/boards/zcu102-virtual.textproto"};
  req.faults = {"no-such-fault"};
  for (const FaultInfo& f : FaultCatalogue())
    if (!f.modelled()) req.faults.emplace_back(f.name);
  try {
    MakePlan(req);
    FAIL() << "bad request accepted";
  } catch (const ConfigError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("unknown fault \"no-such-fault\""), std::string::npos) << what;
    EXPECT_NE(what.find("is also the name of"), std::string::npos) << what;
    if (req.faults.size() > 1) {
      EXPECT_NE(what.find("not modelled yet"), std::string::npos) << what;
    }
  }
}

// ---- one small real matrix through the binary -----------------------------------------

using dmahil::testing::Slurp;

int Dmahil(const std::string& args, const fs::path& out) {
  return dmahil::testing::RunDmahil(args, out);
}

TEST(MatrixBinary, SmallMatrixOnZcu102WritesDeterministicJson) {
  const fs::path a = TempDir("a");
  const fs::path b = TempDir("b");
  const std::string src = SourceDir();
  const std::string args = "matrix --board " + src + "/boards/zcu102-virtual.textproto" +
                           " --fixtures " + src + "/fixtures/foreign-to-device.textproto" +
                           " --fixtures " + src + "/fixtures/foreign-from-device.textproto" +
                           " --seeds 2 --seed 41 --parallel 2 --out ";
  const int rc = Dmahil(args + a.string(), a);
  ASSERT_TRUE(rc == 0 || rc == 1) << rc << "\n" << Slurp(a / "stderr") << Slurp(a / "stdout");
  EXPECT_EQ(Slurp(a / "stderr").rfind("dmahil matrix: seed 41 ", 0), 0u) << "seed printed first";

  const std::string text = Slurp(a / "matrix.json");
  const auto j = nlohmann::json::parse(text);
  EXPECT_EQ(j["exit_code"], rc);
  EXPECT_EQ(j["seed"], 41);
  EXPECT_EQ(j["seeds"], 2);
  ASSERT_EQ(j["fixtures"].size(), 2u);
  EXPECT_EQ(j["fixtures"][0]["name"], "foreign-to-device");
  size_t modelled = 0;
  for (const FaultInfo& f : FaultCatalogue()) modelled += f.modelled() ? 1 : 0;
  ASSERT_EQ(j["rows"].size(), 1 + modelled);

  const v1::Board board = LoadBoard(src + "/boards/zcu102-virtual.textproto");
  const auto& clean = j["rows"][0];
  EXPECT_EQ(clean["fault"], "none");
  EXPECT_EQ(clean["status"], "clean") << text;
  EXPECT_EQ(clean["runs"], 2);
  EXPECT_EQ(j["clean"]["false_positive_runs"], 0);
  EXPECT_EQ(j["clean"]["mismatching_lines"], 0);
  EXPECT_GT(j["clean"]["lines_checked"].get<uint64_t>(), 0u);
  EXPECT_EQ(j["errors"]["results"], 0) << j["errors"]["first"];
  for (size_t i = 1; i < j["rows"].size(); ++i) {
    const auto& row = j["rows"][i];
    const FaultInfo* f = FindFault(row["fault"].get<std::string>());
    ASSERT_NE(f, nullptr);
    EXPECT_EQ(row["expected_diagnosis"], DiagnosisKebabName(f->diagnosis_cached));
    const std::string why = f->cannot_manifest(board);
    if (!why.empty()) {
      EXPECT_EQ(row["status"], "n/a");
      EXPECT_EQ(row["cannot_manifest"], why);
      continue;
    }
    EXPECT_EQ(row["runs"], 2);
    ASSERT_EQ(row["cells"].size(), 2u);
    for (const auto& c : row["cells"]) {
      EXPECT_EQ(c["runs"], 2);
      EXPECT_EQ(c["right_diagnosis"].get<int>() + c["wrong_diagnosis"].get<int>(),
                c["detected"].get<int>());
    }
    if (row["status"] == "detected") {
      EXPECT_EQ(row["caught_runs"], 2);
      EXPECT_TRUE(row["missed_seeds"].empty());
    }
  }
  const std::string table = Slurp(a / "stdout");
  EXPECT_NE(table.find("F1 foreign-to-device"), std::string::npos) << table;
  EXPECT_NE(table.find("none (clean)"), std::string::npos) << table;
  EXPECT_NE(table.find("matrix: "), std::string::npos) << table;
  EXPECT_TRUE(fs::exists(a / "farm.textproto"));

  // Same arguments, another folder, other parallelism: the same bytes.
  const std::string args_b = "matrix --board " + src + "/boards/zcu102-virtual.textproto" +
                             " --fixtures " + src + "/fixtures/foreign-to-device.textproto" +
                             " --fixtures " + src + "/fixtures/foreign-from-device.textproto" +
                             " --seeds 2 --seed 41 --parallel 1 --out ";
  EXPECT_EQ(Dmahil(args_b + b.string(), b), rc);
  EXPECT_EQ(Slurp(b / "matrix.json"), text);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(MatrixBinary, BadFaultIsAConfigurationErrorAfterTheSeed) {
  const fs::path out = TempDir("bad");
  const std::string src = SourceDir();
  EXPECT_EQ(
      Dmahil("matrix --board " + src + "/boards/zcu102-virtual.textproto --fixtures " + src +
                 "/fixtures/foreign-to-device.textproto --faults no-such-fault --seed 3 --out " +
                 out.string(),
             out),
      2);
  const std::string err = Slurp(out / "stderr");
  EXPECT_EQ(err.rfind("dmahil matrix: seed 3 ", 0), 0u) << err;
  EXPECT_NE(err.find("unknown fault \"no-such-fault\""), std::string::npos) << err;
  fs::remove_all(out);
}

}  // namespace
}  // namespace dmahil::matrix
