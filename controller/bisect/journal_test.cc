#include "controller/bisect/journal.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>

#include <gtest/gtest.h>

#include "controller/bisect/simulated_history.h"

namespace dmahil::bisect {
namespace {

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("dmahil-journal-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    path_ = dir_ / "journal.jsonl";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  const nlohmann::json header_ = {{"type", "header"}, {"good", "a"}, {"seed", 1}};
  std::filesystem::path dir_;
  std::filesystem::path path_;
};

BisectResult BisectWithJournal(const std::filesystem::path& path, const nlohmann::json& header,
                               SimulatedHistory& h) {
  Journal journal(path, header);
  ReplayRunner runner(journal, h);
  BisectResult r =
      Bisect(h.revs(), runner, {}, [&](const StepRecord& s) { journal.AppendStep(s); });
  EXPECT_EQ(runner.live_runs() + runner.replayed_runs(), r.total_runs);
  return r;
}

TEST_F(JournalTest, KilledBisectionResumesWithTheSameAnswerAndNoRepeatedRun) {
  SimulatedHistory whole(300, 211, 0.3, 42);
  const BisectResult expected = BisectWithJournal(dir_ / "whole.jsonl", header_, whole);

  for (size_t kill_at : {1ul, 37ul, whole.runs.size() / 2, whole.runs.size() - 1}) {
    std::filesystem::remove(path_);
    SimulatedHistory first(300, 211, 0.3, 42);
    first.throw_after_runs = kill_at;
    EXPECT_THROW(BisectWithJournal(path_, header_, first), BisectError);
    ASSERT_EQ(first.runs.size(), kill_at);

    SimulatedHistory second(300, 211, 0.3, 42);
    const BisectResult r = BisectWithJournal(path_, header_, second);
    EXPECT_EQ(r.first_bad, expected.first_bad);
    EXPECT_EQ(r.total_runs, expected.total_runs);
    EXPECT_DOUBLE_EQ(r.confidence, expected.confidence);
    // Not one run is done twice: the second process ran exactly what the first did not.
    EXPECT_EQ(second.runs.size(), whole.runs.size() - kill_at) << kill_at;
    for (const auto& run : first.runs)
      EXPECT_EQ(std::count(second.runs.begin(), second.runs.end(), run), 0);
    // Only the revision being tested when the first process died is built again.
    size_t rebuilt = 0;
    for (const auto& [rev, n] : second.prepares) rebuilt += first.prepares.count(rev);
    EXPECT_LE(rebuilt, 1u) << kill_at;
  }
}

TEST_F(JournalTest, TornLastLineIsCutOff) {
  {
    Journal j(path_, header_);
    j.AppendRun("r1", 0, {{"foreign-to-device: stale-line"}, 12});
  }
  const auto good_size = std::filesystem::file_size(path_);
  std::ofstream(path_, std::ios::app) << R"({"type":"run","rev":"r1","ru)";
  Journal j(path_, header_);
  EXPECT_EQ(std::filesystem::file_size(path_), good_size);
  ASSERT_TRUE(j.FindRun("r1", 0));
  EXPECT_TRUE(j.FindRun("r1", 0)->detected());
  EXPECT_EQ(j.FindRun("r1", 0)->failures,
            std::vector<std::string>{"foreign-to-device: stale-line"});
  EXPECT_EQ(j.FindRun("r1", 0)->board_ms, 12u);
  EXPECT_FALSE(j.FindRun("r1", 1));
  EXPECT_EQ(j.loaded_runs(), 1u);
}

TEST_F(JournalTest, AnotherBisectionsJournalIsRefusedNamingTheField) {
  { Journal j(path_, header_); }
  nlohmann::json other = header_;
  other["seed"] = 2;
  try {
    Journal j(path_, other);
    FAIL() << "accepted a journal with another seed";
  } catch (const BisectError& e) {
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
}

TEST_F(JournalTest, CorruptLineInTheMiddleIsAnErrorWithItsLineNumber) {
  { Journal j(path_, header_); }
  std::ofstream(path_, std::ios::app) << "garbage\n"
                                      << R"({"type":"prepared","rev":"r","skip":false})"
                                      << "\n";
  try {
    Journal j(path_, header_);
    FAIL() << "accepted a corrupt journal";
  } catch (const BisectError& e) {
    EXPECT_NE(std::string(e.what()).find(":2:"), std::string::npos) << e.what();
  }
}

TEST_F(JournalTest, AJournalKilledWhileWritingItsHeaderStartsAgain) {
  std::ofstream(path_) << R"({"type":"head)";
  Journal j(path_, header_);
  j.AppendPrepared("r", {});
  std::ifstream in(path_);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(nlohmann::json::parse(first), header_);
}

TEST_F(JournalTest, EachStepIsLoggedOnceAcrossResumes) {
  StepRecord step;
  step.rev = "r7";
  {
    Journal j(path_, header_);
    j.AppendStep(step);
  }
  Journal j(path_, header_);
  j.AppendStep(step);  // replayed after a resume
  step.kind = StepKind::kMeasure;
  j.AppendStep(step);  // another step of the same revision
  std::ifstream in(path_);
  int steps = 0;
  for (std::string line; std::getline(in, line);)
    steps += nlohmann::json::parse(line)["type"] == "step";
  EXPECT_EQ(steps, 2);
}

TEST_F(JournalTest, SkipsAreReplayedWithoutCallingTheBuild) {
  {
    Journal j(path_, header_);
    j.AppendPrepared("rev5", {Prepared::kSkip, 0, 0});
  }
  Journal j(path_, header_);
  SimulatedHistory h(10, 3, 1.0, 1);
  ReplayRunner runner(j, h);
  EXPECT_TRUE(runner.Prepare("rev5").skip());
  EXPECT_EQ(h.prepares.count("rev5"), 0u);
}

TEST_F(JournalTest, BuildAndDeployTimesAreReplayedFromTheJournal) {
  {
    Journal j(path_, header_);
    j.AppendPrepared("rev4", {Prepared::kReady, 61000, 250});
    j.AppendPrepared("rev4", {Prepared::kReady, 5, 5});  // built again on a resume
  }
  Journal j(path_, header_);
  ASSERT_TRUE(j.FindPrepared("rev4"));
  EXPECT_EQ(j.FindPrepared("rev4")->build_ms, 61000u);  // the first build counts
  EXPECT_EQ(j.FindPrepared("rev4")->deploy_ms, 250u);
  SimulatedHistory h(10, 3, 1.0, 1);
  ReplayRunner runner(j, h);
  const Preparation p = runner.Prepare("rev4");
  EXPECT_EQ(p.build_ms, 61000u);
  EXPECT_EQ(p.deploy_ms, 250u);
  EXPECT_EQ(h.prepares.count("rev4"), 0u);
  // A live Prepare is journalled with its times.
  EXPECT_EQ(runner.Prepare("rev6").build_ms, 1006u);
  std::ifstream in(path_);
  std::string last;
  for (std::string line; std::getline(in, line);) last = line;
  const auto rec = nlohmann::json::parse(last);
  EXPECT_EQ(rec["rev"], "rev6");
  EXPECT_EQ(rec["build_ms"], 1006);
  EXPECT_EQ(rec["deploy_ms"], 10);
}

TEST_F(JournalTest, APreparedRecordWithoutTimesReadsAsZero) {
  { Journal j(path_, header_); }
  std::ofstream(path_, std::ios::app) << R"({"type":"prepared","rev":"r","skip":false})"
                                      << "\n";
  Journal j(path_, header_);
  ASSERT_TRUE(j.FindPrepared("r"));
  EXPECT_FALSE(j.FindPrepared("r")->skip());
  EXPECT_EQ(j.FindPrepared("r")->build_ms, 0u);
}

TEST_F(JournalTest, AResumedBisectionReportsTheSameBuildAndDeployTimes) {
  SimulatedHistory whole(60, 37, 0.5, 8);
  const BisectResult expected = BisectWithJournal(dir_ / "whole.jsonl", header_, whole);
  SimulatedHistory first(60, 37, 0.5, 8);
  first.throw_after_runs = whole.runs.size() / 2;
  EXPECT_THROW(BisectWithJournal(path_, header_, first), BisectError);
  SimulatedHistory second(60, 37, 0.5, 8);
  const BisectResult r = BisectWithJournal(path_, header_, second);
  EXPECT_EQ(r.build_ms, expected.build_ms);
  EXPECT_EQ(r.deploy_ms, expected.deploy_ms);
  ASSERT_EQ(r.steps.size(), expected.steps.size());
  for (size_t i = 0; i < r.steps.size(); ++i) {
    EXPECT_EQ(r.steps[i].build_ms, expected.steps[i].build_ms) << i;
    EXPECT_EQ(r.steps[i].deploy_ms, expected.steps[i].deploy_ms) << i;
  }
}

}  // namespace
}  // namespace dmahil::bisect
