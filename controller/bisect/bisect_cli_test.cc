// `dmahil bisect` and `dmahil bisect-step` end to end, as a user runs them: synthetic git
// histories (demo/bisect/make-history.sh), the demo hooks, virtual boards that read the
// deployed revision at power-on.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "controller/run/cli_test_support.h"

extern char** environ;

namespace dmahil::bisect {
namespace {

using dmahil::testing::RunDmahil;
using dmahil::testing::Slurp;

std::string Src() { return std::getenv("DMAHIL_SOURCE_DIR"); }

class BisectCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = dmahil::testing::FreshTestDir(
        "dmahil-bisect", ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }
  void TearDown() override {
    if (!HasFailure()) std::filesystem::remove_all(dir_);
  }

  /// Runs make-history.sh into dir_/name; returns the culprit's commit id.
  std::string MakeHistory(const std::string& name, const std::string& args) {
    const auto log = dir_ / (name + ".history");
    const std::string cmd = "bash " + Src() + "/demo/bisect/make-history.sh " +
                            (dir_ / name).string() + " " + args + " >" + log.string() + " 2>&1";
    EXPECT_EQ(std::system(cmd.c_str()), 0) << Slurp(log);
    std::string word, culprit;
    std::istringstream(Slurp(log)) >> word >> culprit;
    EXPECT_EQ(word, "culprit");
    return culprit;
  }

  /// The command line of a bisection of dir_/linux with dir_/xen pinned, its options in
  /// `with` replacing or adding to the defaults (a value "" drops the option).
  std::string LinuxArgs(const std::string& out,
                        const std::map<std::string, std::string>& with = {}) const {
    std::map<std::string, std::string> o = {
        {"--farm", Src() + "/demo/bisect/farm.textproto"},
        {"--board", "zcu102"},
        {"--fixture", "foreign-to-device"},
        {"--tree", "linux=" + (dir_ / "linux").string()},
        {"--good", "good"},
        {"--bad", "bad"},
        {"--pin", "xen=" + (dir_ / "xen").string()},
        {"--pin-rev", "bad"},
        {"--seed", "11"},
        {"--build-hook", Src() + "/demo/bisect/build-hook.sh"},
        {"--deploy-hook", Src() + "/demo/bisect/deploy-hook.sh"},
        {"--out", (dir_ / out).string()}};
    for (const auto& [key, value] : with) o[key] = value;
    std::string args = "bisect";
    for (const auto& [key, value] : o)
      if (!value.empty()) args += " " + key + " '" + value + "'";
    return args;
  }

  std::string Hooks() const {
    return " --build-hook " + Src() + "/demo/bisect/build-hook.sh --deploy-hook " + Src() +
           "/demo/bisect/deploy-hook.sh";
  }

  nlohmann::json Report(const std::string& out) const {
    return nlohmann::json::parse(Slurp(dir_ / out / "bisect.json"));
  }

  std::filesystem::path dir_;
};

TEST_F(BisectCli, FindsTheLinuxCommitOfAnIntermittentFaultWithXenPinned) {
  const std::string culprit = MakeHistory("linux", "--commits 40 --culprit 23 --boot-rate 0.3");
  MakeHistory("xen", "--tree xen --commits 4 --culprit 4 --fault grant-not-in-iommu");
  // The xen fault is in xen@bad, but zcu102 has no SMMU: it cannot manifest there.
  ASSERT_EQ(RunDmahil(LinuxArgs("out"), dir_ / "out"), 0) << Slurp(dir_ / "out" / "stderr");
  const nlohmann::json r = Report("out");
  EXPECT_EQ(r["first_bad"]["rev"], culprit);
  EXPECT_GE(r["confidence"].get<double>(), 0.99);
  EXPECT_EQ(r["total_runs"], r["runs_live"]);
  const auto& measure = r["steps"][0];
  EXPECT_EQ(measure["kind"], "measure");
  EXPECT_EQ(measure["detections"], 5);
  // The runs found an intermittent bug, not a constant one: clean runs at the bad end.
  EXPECT_GT(measure["runs"].get<int>(), 5);
  // Both trees were deployed to the board's revision folder, and every step has its logs.
  EXPECT_NE(Slurp(dir_ / "out/deploy/xen.textproto").find("grant-not-in-iommu"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir_ / "out/deploy/linux.textproto"));
  for (const auto& s : r["steps"]) {
    const auto step = dir_ / "out/steps" / s["rev"].get<std::string>().substr(0, 12);
    EXPECT_TRUE(std::filesystem::exists(step / "linux-build.log")) << step;
    EXPECT_TRUE(std::filesystem::exists(step / "zcu102/console.log")) << step;
  }
  // Each step's hooks are timed (a hook is a process: at least a millisecond), and the
  // totals are the steps' sums.
  uint64_t build = 0;
  uint64_t deploy = 0;
  for (const auto& s : r["steps"]) {
    EXPECT_GT(s["build_ms"].get<uint64_t>(), 0u) << s.dump();
    EXPECT_GT(s["deploy_ms"].get<uint64_t>(), 0u) << s.dump();
    build += s["build_ms"].get<uint64_t>();
    deploy += s["deploy_ms"].get<uint64_t>();
  }
  EXPECT_EQ(r["build_ms"].get<uint64_t>(), build);
  EXPECT_EQ(r["deploy_ms"].get<uint64_t>(), deploy);
  const std::string text = Slurp(dir_ / "out/stdout");
  EXPECT_NE(text.find("first bad commit: " + culprit), std::string::npos) << text;
  EXPECT_NE(text.find("pinned: xen"), std::string::npos) << text;
  EXPECT_NE(text.find("build time"), std::string::npos) << text;
}

TEST_F(BisectCli, FindsTheXenCommitWithLinuxPinned) {
  MakeHistory("linux", "--commits 3 --culprit 3 --boot-rate 0.3");
  const std::string culprit =
      MakeHistory("xen",
                  "--tree xen --commits 30 --culprit 11 --fault grant-not-in-iommu "
                  "--boot-rate 1");
  const std::string args = LinuxArgs("out", {{"--board", "zcu102-smmu"},
                                             {"--fixture", ""},
                                             {"--tree", "xen=" + (dir_ / "xen").string()},
                                             {"--pin", "linux=" + (dir_ / "linux").string()},
                                             {"--pin-rev", "good"},
                                             {"--seed", "5"}});
  ASSERT_EQ(RunDmahil(args, dir_ / "out"), 0) << Slurp(dir_ / "out/stderr");
  const nlohmann::json r = Report("out");
  EXPECT_EQ(r["first_bad"]["rev"], culprit);
  EXPECT_EQ(r["tree"], "xen");
  bool culprit_step = false;
  for (const auto& s : r["steps"])
    if (s["rev"] == culprit) {
      culprit_step = true;
      // Both fixtures fail: the report lists every failing fixture with its diagnosis.
      EXPECT_EQ(s["diagnosis"],
                "foreign-from-device: never-landed; foreign-to-device: never-landed")
          << s.dump();
    }
  EXPECT_TRUE(culprit_step);
}

/// Starts dmahil in the background; returns its pid.
pid_t Spawn(const std::string& args, const std::filesystem::path& out) {
  std::filesystem::create_directories(out);
  const std::string cmd = "exec " + std::string(DMAHIL_TEST_BINARY_DIR) + "/bin/dmahil " + args +
                          " >" + (out / "stdout").string() + " 2>" + (out / "stderr").string();
  const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
  pid_t pid = -1;
  posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ);
  return pid;
}

size_t CountRuns(const std::filesystem::path& journal) {
  std::istringstream in(Slurp(journal));
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    n += line.find("\"type\":\"run\"") != std::string::npos;
  return n;
}

TEST_F(BisectCli, KilledMidBisectionResumesWithTheSameAnswerWithoutRepeatingSteps) {
  MakeHistory("linux", "--commits 60 --culprit 37 --boot-rate 0.3");
  MakeHistory("xen", "--tree xen --commits 2 --culprit 2 --fault grant-not-in-iommu");
  ASSERT_EQ(RunDmahil(LinuxArgs("whole"), dir_ / "whole"), 0) << Slurp(dir_ / "whole/stderr");
  const nlohmann::json whole = Report("whole");

  // The same bisection, its build hook counting builds, killed once some steps are done.
  const std::string counted = LinuxArgs(
      "out", {{"--build-hook", "echo $DMAHIL_TREE $DMAHIL_REV >> " + (dir_ / "builds").string() +
                                   "; exec " + Src() + "/demo/bisect/build-hook.sh"}});
  const pid_t pid = Spawn(counted, dir_ / "out");
  ASSERT_GT(pid, 0);
  const auto journal = dir_ / "out/journal.jsonl";
  const size_t kill_after = whole["total_runs"].get<size_t>() / 2;
  // No wall-clock limit of its own (under ASan on a loaded CI machine half the steps took
  // over a minute): it waits for the journal or for dmahil to end by itself, which ctest's
  // timeout bounds.
  bool exited = false;
  while (CountRuns(journal) < kill_after && !exited) {
    exited = waitpid(pid, nullptr, WNOHANG) == pid;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_FALSE(exited) << "dmahil ended before " << kill_after << " runs were journaled\n"
                       << Slurp(dir_ / "out/stderr");
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  const size_t done = CountRuns(journal);
  ASSERT_GE(done, kill_after);
  ASSERT_LT(done, whole["total_runs"].get<size_t>());
  std::set<std::string> built_before;
  {
    std::istringstream in(Slurp(dir_ / "builds"));
    for (std::string line; std::getline(in, line);) built_before.insert(line);
  }
  std::filesystem::remove(dir_ / "builds");

  ASSERT_EQ(RunDmahil(counted, dir_ / "out"), 0) << Slurp(dir_ / "out/stderr");
  const nlohmann::json r = Report("out");
  EXPECT_EQ(r["first_bad"], whole["first_bad"]);
  EXPECT_EQ(r["confidence"], whole["confidence"]);
  EXPECT_EQ(r["total_runs"], whole["total_runs"]);
  EXPECT_EQ(r["runs_replayed"].get<size_t>(), done);
  EXPECT_EQ(r["runs_live"].get<size_t>(), whole["total_runs"].get<size_t>() - done);
  // No run twice in the journal; no finished step built again (only the one cut short).
  std::istringstream in(Slurp(journal));
  std::set<std::pair<std::string, int>> runs;
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    if (j["type"] == "run") {
      EXPECT_TRUE(runs.insert({j["rev"].get<std::string>(), j["run"].get<int>()}).second) << line;
    }
  }
  // The pinned xen tree is deployed again (once), the board may hold anything by now.
  size_t rebuilt = 0;
  size_t xen_builds = 0;
  std::istringstream builds(Slurp(dir_ / "builds"));
  for (std::string line; std::getline(builds, line);) {
    if (line.rfind("xen ", 0) == 0)
      ++xen_builds;
    else
      rebuilt += built_before.count(line);
  }
  EXPECT_LE(rebuilt, 1u);
  EXPECT_EQ(xen_builds, 1u);
  // The steps finished before the kill keep their build and deploy times from the journal.
  for (const auto& s : r["steps"]) EXPECT_GT(s["build_ms"].get<uint64_t>(), 0u) << s.dump();
  EXPECT_NE(Slurp(dir_ / "out/stderr").find("resuming"), std::string::npos);
}

TEST_F(BisectCli, UntestableCommitsBeforeTheCulpritAreNamed) {
  const std::string culprit =
      MakeHistory("linux", "--commits 20 --culprit 9 --boot-rate 1 --untestable 7-8");
  MakeHistory("xen", "--tree xen --commits 1 --culprit 1 --fault grant-not-in-iommu");
  EXPECT_EQ(RunDmahil(LinuxArgs("out"), dir_ / "out"), 1) << Slurp(dir_ / "out/stderr");
  const nlohmann::json r = Report("out");
  EXPECT_EQ(r["first_bad"]["rev"], culprit);
  EXPECT_EQ(r["also_possible"].size(), 2u);
  EXPECT_NE(Slurp(dir_ / "out/stdout").find("untestable"), std::string::npos);
}

TEST_F(BisectCli, GitBisectRunWithBisectStep) {
  const std::string culprit = MakeHistory("linux",
                                          "--commits 30 --culprit 19 --boot-rate 0.3 "
                                          "--untestable 5-6");
  const std::string repo = (dir_ / "linux").string();
  const std::string step = std::string(DMAHIL_TEST_BINARY_DIR) + "/bin/dmahil bisect-step --farm " +
                           Src() + "/demo/bisect/farm.textproto --board zcu102 --fixture " +
                           "foreign-to-device --seed 3" + Hooks() + " --out " +
                           (dir_ / "steps").string();
  // The rate first, at the bad end.
  const std::string measure = "cd " + repo + " && git checkout -q bad && " + step +
                              " --measure-rate 5 > " + (dir_ / "rate").string() + " 2>&1";
  ASSERT_EQ(std::system(measure.c_str()), 0) << Slurp(dir_ / "rate");
  const std::string said = Slurp(dir_ / "rate");
  const size_t at = said.find("--rate ");
  ASSERT_NE(at, std::string::npos) << said;
  const std::string rate = said.substr(at + 7, said.find(' ', at + 7) - at - 7);
  const std::string cmd = "cd " + repo + " && git bisect start bad good >/dev/null && " +
                          "git bisect run " + step + " --rate " + rate + " > " +
                          (dir_ / "bisect.log").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << Slurp(dir_ / "bisect.log");
  const std::string log = Slurp(dir_ / "bisect.log");
  EXPECT_NE(log.find(culprit + " is the first bad commit"), std::string::npos) << log;
}

TEST_F(BisectCli, BisectStepNeverSaysBadWhenItCannotTell) {
  // `git bisect run` reads 1..127 (but 125) as "bad": a typo must abort it (255) instead.
  MakeHistory("linux", "--commits 3 --culprit 3 --boot-rate 1");
  const std::string step = std::string(DMAHIL_TEST_BINARY_DIR) + "/bin/dmahil bisect-step --farm " +
                           Src() + "/demo/bisect/farm.textproto --board zcu102 --out " +
                           (dir_ / "steps").string() + Hooks();
  const auto status = [&](const std::string& extra, const std::string& rev = "bad") {
    const std::string cmd = "cd " + (dir_ / "linux").string() + " && git checkout -q " + rev +
                            " && " + step + " " + extra + " >/dev/null 2>&1";
    const int rc = std::system(cmd.c_str());
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  };
  EXPECT_EQ(status("--rate 5/17 --no-such-option"), 255);
  EXPECT_EQ(status("--rate 0/17"), 255);
  EXPECT_EQ(status("--rate 5/17x"), 255);
  EXPECT_EQ(status("--rate -1/17"), 255);
  EXPECT_EQ(status("--rate 5/17 --confidence 2"), 255);
  EXPECT_EQ(status("--rate 5/17 --board nosuch"), 255);
  EXPECT_EQ(status("--rate 5/17 --tree ocaml"), 255);
  // Too few runs allowed to reach the confidence on a clean revision: cannot tell.
  EXPECT_EQ(status("--rate 5/17 --max-runs 2 --confidence 0.999999", "good"), 255);
  // And the real answers: bad at the bad end, good at the good end.
  EXPECT_EQ(status("--rate 5/5"), 1);
  EXPECT_EQ(status("--rate 5/5", "good"), 0);
}

TEST_F(BisectCli, BadInputIsAClearErrorWithExitTwo) {
  MakeHistory("linux", "--commits 10 --culprit 10 --boot-rate 1");
  MakeHistory("xen", "--tree xen --commits 1 --culprit 1 --fault grant-not-in-iommu");
  // A refused command line leaves no journal behind (it could not be resumed with the
  // corrected command); a bisection that failed while running keeps its journal.
  const auto expect_error = [&](const std::string& args, const std::string& says,
                                bool leaves_journal = false) {
    const auto out = dir_ / "err";
    EXPECT_EQ(RunDmahil(args, out), 2) << args;
    EXPECT_NE(Slurp(out / "stderr").find(says), std::string::npos) << Slurp(out / "stderr");
    EXPECT_EQ(std::filesystem::exists(out / "journal.jsonl"), leaves_journal) << args;
    std::filesystem::remove_all(out);
  };
  const auto with = [&](const std::map<std::string, std::string>& o) {
    return LinuxArgs("err", o);
  };
  expect_error(with({{"--board", "nosuch"}}), "no board \"nosuch\"");
  expect_error(with({{"--fixture", "nosuch"}}), "no fixture \"nosuch\"");
  expect_error(with({{"--good", "bad"}, {"--bad", "good"}}), "no commits between");
  expect_error(with({{"--bad", "nosuchrev"}}), "no commit named \"nosuchrev\"");
  expect_error(with({{"--tree", "ocaml=/x"}}), "expected linux=<path>");
  expect_error(with({{"--pin", "xen=/nonexistent"}}), "/nonexistent: no such folder");
  expect_error(with({{"--pin-rev", "nosuchrev"}}), "no commit named \"nosuchrev\"");
  expect_error(with({{"--confidence", "1.5"}}), "--confidence");
  expect_error(with({{"--confidence", "1"}}), "not in (0, 1)");
  expect_error(with({{"--rule", "vibes"}}), "--rule");
  expect_error(with({{"--farm", "/nonexistent.textproto"}}), "/nonexistent.textproto");
  // A bad end without the fault: the bisection refuses to guess.
  expect_error(with({{"--bad", "bad~1"}, {"--max-runs", "4"}}), "showed no detection in 4 runs",
               true);
  expect_error(with({{"--deploy-hook", "false"}}), "deploy hook failed", true);
  expect_error(with({{"--no-such-option", "1"}}), "no-such-option");
}

}  // namespace
}  // namespace dmahil::bisect
