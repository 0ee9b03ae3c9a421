// End to end: every shipped fixture on a board whose RAM lies entirely above 4 GiB
// (boards/zcu102-ddr-high-virtual.textproto). What makes sense there passes; what cannot
// run is n/a with its reason, in every report; nothing is an ERROR.
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "controller/run/cli_test_support.h"

namespace {

namespace fs = std::filesystem;
using dmahil::testing::Slurp;

fs::path Source() {
  const char* v = std::getenv("DMAHIL_SOURCE_DIR");
  return v != nullptr ? v : ".";
}

TEST(BoardAbove4G, EveryFixtureThatMakesSensePassesTheRestAreNotApplicable) {
  const fs::path dir =
      fs::temp_directory_path() / ("dmahil-e2e-ddr-high-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<fs::path> fixtures;
  for (const auto& e : fs::directory_iterator(Source() / "fixtures"))
    if (e.path().extension() == ".textproto") fixtures.push_back(e.path());
  std::sort(fixtures.begin(), fixtures.end());
  ASSERT_EQ(fixtures.size(), 18u);
  const std::string board = (Source() / "boards/zcu102-ddr-high-virtual.textproto").string();
  {
    std::ofstream farm(dir / "farm.textproto");
    farm << "name: \"ddr-high\"\nseed: 7\n";
    for (const fs::path& f : fixtures) farm << "fixture_file: \"" << f.string() << "\"\n";
    farm << "board { name: \"ddr-high\" board_file: \"" << board << "\" }\n";
    farm << "board { name: \"ddr-high+cache-flush-local-addr\" board_file: \"" << board
         << "\" faults: \"cache-flush-local-addr\" expect: \"stale-line\" }\n";
  }
  const fs::path out = dir / "out";
  ASSERT_EQ(dmahil::testing::RunDmahil("run --farm " + (dir / "farm.textproto").string() +
                                           " --out " + out.string() + " --check-expectations",
                                       out),
            0)
      << Slurp(out / "stdout") << Slurp(out / "stderr");
  EXPECT_NE(Slurp(out / "stdout").find("farm expectations: all met"), std::string::npos);

  const nlohmann::json j = nlohmann::json::parse(Slurp(out / "results.json"));
  std::vector<std::string> na;
  size_t passed = 0;
  for (const auto& r : j["results"]) {
    if (r["board"] != "ddr-high") continue;
    const std::string fixture = r["fixture"];
    EXPECT_NE(r["verdict"], "error") << fixture << ": " << r["detail"];
    EXPECT_NE(r["verdict"], "fail") << fixture << ": " << r["detail"];
    if (r["verdict"] == "pass") ++passed;
    if (r["verdict"] != "n/a") continue;
    na.push_back(fixture);
    const std::string reason = r["reason"];
    const bool pv_block = fixture.rfind("pv-block-", 0) == 0;
    EXPECT_NE(
        reason.find(pv_block ? "the domU's agent has no block device" : "no bounce is possible"),
        std::string::npos)
        << fixture << ": " << reason;
    EXPECT_EQ(r["detail"], reason);
  }
  // A 32-bit mask reaches nothing on this board, not even the swiotlb pool: the two
  // bounce fixtures cannot run; a virtual board's domU has no PV disk for the four PV block
  // fixtures; the other twelve pass.
  EXPECT_EQ(na, (std::vector<std::string>{"foreign-bounce-from-device", "foreign-bounce-to-device",
                                          "pv-block-256k-indirect", "pv-block-4k",
                                          "pv-block-64k-sg", "pv-block-sector"}));
  EXPECT_EQ(passed, 12u);

  const std::string junit = Slurp(out / "junit.xml");
  EXPECT_NE(junit.find("<skipped message=\"n/a: no bounce is possible"), std::string::npos)
      << junit;
  EXPECT_NE(junit.find("skipped=\"12\""), std::string::npos) << "6 per board, both boards";
  const std::string summary = Slurp(out / "stdout");
  EXPECT_NE(summary.find(", 12 n/a"), std::string::npos) << summary;
  EXPECT_NE(summary.find("ddr-high / foreign-bounce-to-device: n/a: no bounce is possible"),
            std::string::npos)
      << summary;
  fs::remove_all(dir);
}

}  // namespace
