// End to end, as a user runs it: the `dmahil` binary drives dmahil-vboard processes over
// real gRPC and the device protocol over TCP, on the shipped virtual farm.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include "controller/run/cli_test_support.h"

namespace {

namespace fs = std::filesystem;

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : ".";
}

using dmahil::testing::Slurp;

int Dmahil(const std::string& args, const fs::path& out) {
  return dmahil::testing::RunDmahil(args, out);
}

fs::path TempDir(const std::string& name) {
  const fs::path p =
      fs::temp_directory_path() / ("dmahil-e2e-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p;
}

const std::string kFarm = Env("DMAHIL_SOURCE_DIR") + "/ci/farms/virtual.textproto";

TEST(VirtualFarm, CleanBoardsPassFaultyBoardsFailWithTheirDiagnosis) {
  const fs::path out = TempDir("farm");
  ASSERT_EQ(Dmahil("run --farm " + kFarm + " --out " + out.string(), out), 1)
      << Slurp(out / "stderr");
  const nlohmann::json j = nlohmann::json::parse(Slurp(out / "results.json"));
  size_t clean = 0;
  size_t passed = 0;
  size_t failed = 0;
  for (const auto& r : j["results"]) {
    passed += r["verdict"] == "pass";
    failed += r["verdict"] == "fail";
    const std::string board = r["board"];
    if (board == "zcu102" || board == "rpi4") {
      EXPECT_EQ(r["verdict"], "pass") << board << " " << r["fixture"] << ": " << r["detail"];
      ++clean;
    }
    if (board == "rpi4+bus-addr-no-dma-offset" && r["fixture"] == "foreign-to-device") {
      EXPECT_EQ(r["diagnosis"], "wrong-bus-address");
      EXPECT_EQ(r["displacement"].get<int64_t>(), -0xc0000000LL);
      EXPECT_EQ(r["displacement_hex"], "-0xc0000000");
    }
    if (board == "zcu102+dma-ops-bypass-xen" && r["fixture"] == "foreign-from-device") {
      EXPECT_EQ(r["diagnosis"], "wrong-bus-address");
      const auto& s = r["segments"][0];
      const int64_t pfn = std::stoll(s["pfn"].get<std::string>(), nullptr, 16);
      const int64_t bfn = std::stoll(s["bfn"].get<std::string>(), nullptr, 16);
      EXPECT_NE(pfn, bfn);
      EXPECT_EQ(r["displacement"].get<int64_t>(), (pfn - bfn) * 4096);
    }
    if (board == "zcu102+unmap-no-invalidate-foreign") {
      // The fault is in unmap, for foreign pages the CPU reads after the device wrote.
      const std::string fx = r["fixture"];
      const bool unmaps_foreign_for_cpu =
          fx == "foreign-from-device" || fx == "foreign-double-map-from-device" ||
          fx == "foreign-bidirectional" || fx == "foreign-partial-line-from-device";
      EXPECT_EQ(r["verdict"], unmaps_foreign_for_cpu ? "fail" : "pass") << fx;
      if (r["verdict"] == "fail") {
        EXPECT_EQ(r["diagnosis"], "stale-line");
      }
    }
  }
  std::set<std::string> fixtures;
  for (const auto& r : j["results"]) fixtures.insert(r["fixture"].get<std::string>());
  EXPECT_EQ(clean, 2 * fixtures.size());
  const std::string summary = Slurp(out / "stdout");
  EXPECT_GT(failed, 0u);
  EXPECT_NE(summary.find(std::to_string(passed) + " passed, " + std::to_string(failed) +
                         " failed, 0 errors"),
            std::string::npos)
      << summary;
  EXPECT_TRUE(fs::exists(out / "junit.xml"));
  EXPECT_NE(Slurp(out / "stderr").find("seed 20261122"), std::string::npos);
  fs::remove_all(out);
}

TEST(VirtualFarm, ExpectationsOfTheSelfTestFarmAreMet) {
  const fs::path out = TempDir("expect");
  EXPECT_EQ(Dmahil("run --check-expectations --farm " + kFarm + " --out " + out.string(), out), 0)
      << Slurp(out / "stdout");
  EXPECT_NE(Slurp(out / "stdout").find("farm expectations: all met"), std::string::npos);
  fs::remove_all(out);
}

TEST(VirtualFarm, SameSeedSameResultsBitForBit) {
  const fs::path a = TempDir("seed-a");
  const fs::path b = TempDir("seed-b");
  Dmahil("run --seed 77 --farm " + kFarm + " --out " + a.string(), a);
  Dmahil("run --seed 77 --parallel 2 --farm " + kFarm + " --out " + b.string(), b);
  const std::string ja = Slurp(a / "results.json");
  ASSERT_FALSE(ja.empty());
  EXPECT_EQ(ja, Slurp(b / "results.json"));
  EXPECT_NE(ja.find("\"seed\": 77"), std::string::npos);
  fs::remove_all(a);
  fs::remove_all(b);
}

TEST(VirtualFarm, TypoInABoardFileIsAConfigurationError) {
  const fs::path dir = TempDir("typo");
  fs::create_directories(dir);
  const std::string src = Env("DMAHIL_SOURCE_DIR");
  std::string board = Slurp(src + "/boards/zcu102-virtual.textproto");
  board.replace(board.find("line_size: 64"), 13, "line_sise: 64");
  std::ofstream(dir / "board.textproto") << board;
  std::ofstream(dir / "farm.textproto")
      << "name: \"typo\"\nfixture_file: \"" << src << "/fixtures/foreign-to-device.textproto\"\n"
      << "board { name: \"b\" board_file: \"board.textproto\" }\n";
  EXPECT_EQ(
      Dmahil("run --farm " + (dir / "farm.textproto").string() + " --out " + (dir / "out").string(),
             dir),
      2);
  const std::string err = Slurp(dir / "stderr");
  EXPECT_NE(err.find("board.textproto:"), std::string::npos) << err;
  EXPECT_NE(err.find("line_sise"), std::string::npos) << err;
  EXPECT_FALSE(fs::exists(dir / "out" / "results.json")) << "nothing half-written";
  fs::remove_all(dir);
}

TEST(VirtualFarm, ABoardThatDoesNotComeUpIsAnInfrastructureError) {
  const fs::path out = TempDir("noboot");
  EXPECT_EQ(Dmahil("run --vboard /bin/false --farm " + kFarm + " --out " + out.string(), out), 2);
  const nlohmann::json j = nlohmann::json::parse(Slurp(out / "results.json"));
  for (const auto& r : j["results"]) EXPECT_EQ(r["verdict"], "error");
  const std::string detail = j["results"][0]["detail"];
  EXPECT_NE(detail.find("board offline: health check: power: false (pid "), std::string::npos)
      << detail;
  EXPECT_NE(detail.find("exited on its own, exit status 1"), std::string::npos) << detail;
  fs::remove_all(out);
}

}  // namespace

namespace {

// A board with a geometry no shipped file has (128-byte lines, a 36-bit device,
// a dma-ranges offset of 0x800000000, 2 CPUs without L1) works from one new board file.
TEST(VirtualFarm, ANewGeometryNeedsOnlyABoardFile) {
  const fs::path dir = TempDir("geometry");
  fs::create_directories(dir);
  std::ofstream(dir / "board.textproto") << R"(
name: "synthetic-128b"
kind: BOARD_KIND_VIRTUAL
ram { name: "low" base: 0x0 size: 0x80000000 }
ram { name: "high" base: 0x1000000000 size: 0x40000000 }
cache { line_size: 128 sets: 512 ways: 8 eviction_ppm: 3000 prefetch_ppm: 10000 }
cpus: 2
dma {
  mask_bits: 36
  dma_ranges { bus_base: 0x800000000 cpu_base: 0x0 size: 0x80000000 }
}
xen {
  dom0_ram { base: 0x0 size: 0x40000000 }
  domu_ram { base: 0x40000000 size: 0x40000000 }
  domu_ram { base: 0x1000000000 size: 0x40000000 }
  domu_gfn_base: 0x40000000
  grant_map_region { base: 0x3f000000 size: 0x1000000 }
  swiotlb_pool { base: 0x3e000000 size: 0x1000000 }
}
linux_page_size: 4096
)";
  const std::string src = Env("DMAHIL_SOURCE_DIR");
  std::ofstream farm(dir / "farm.textproto");
  farm << "name: \"geometry\"\n";
  for (const char* f :
       {"foreign-to-device", "foreign-from-device", "foreign-reuse-to-device", "local-from-device"})
    farm << "fixture_file: \"" << src << "/fixtures/" << f << ".textproto\"\n";
  farm << "board { name: \"new\" board_file: \"board.textproto\" }\n"
       << "board { name: \"new+offset\" board_file: \"board.textproto\" "
       << "faults: \"bus-addr-no-dma-offset\" expect: \"wrong-bus-address\" }\n";
  farm.close();
  const fs::path out = dir / "out";
  EXPECT_EQ(Dmahil("run --check-expectations --farm " + (dir / "farm.textproto").string() +
                       " --out " + out.string(),
                   out),
            0)
      << Slurp(out / "stdout") << Slurp(out / "stderr");
  const nlohmann::json j = nlohmann::json::parse(Slurp(out / "results.json"));
  for (const auto& r : j["results"]) {
    if (r["board"] == "new") {
      EXPECT_EQ(r["verdict"], "pass") << r["fixture"] << ": " << r["detail"];
      EXPECT_EQ(r["line_map"][0].get<std::string>().size(), 32u) << "32 lines of 128 B a page";
    } else if (r["verdict"] == "fail") {
      EXPECT_EQ(r["displacement"].get<int64_t>(), -0x800000000LL) << r["fixture"];
    }
  }
  fs::remove_all(dir);
}

}  // namespace

namespace {

// A virtual board reads its revision folder (linux.textproto / xen.textproto) at
// power-on; the farm's revision_dir names it. A faulty revision fails, a clean one passes,
// a folder the deploy hook never wrote is an error that says so.
TEST(VirtualFarm, RevisionFolderSetsTheBoardsFaultsAtPowerOn) {
  const fs::path dir = TempDir("revision");
  fs::create_directories(dir / "rev-faulty");
  fs::create_directories(dir / "rev-clean");
  std::ofstream(dir / "rev-faulty" / "linux.textproto")
      << "tree: \"linux\"\ndescribe: \"bad-commit\"\n"
      << "fault { id: \"cache-flush-local-addr\" boot_rate: 1 }\n";
  std::ofstream(dir / "rev-clean" / "linux.textproto") << "tree: \"linux\"\n";
  const std::string src = Env("DMAHIL_SOURCE_DIR");
  std::ofstream(dir / "farm.textproto")
      << "name: \"revision\"\nfixture_file: \"" << src
      << "/fixtures/foreign-to-device.textproto\"\n"
      << "board { name: \"faulty\" board_file: \"" << src
      << "/boards/zcu102-virtual.textproto\" revision_dir: \"rev-faulty\" }\n"
      << "board { name: \"clean\" board_file: \"" << src
      << "/boards/zcu102-virtual.textproto\" revision_dir: \"rev-clean\" }\n"
      << "board { name: \"undeployed\" board_file: \"" << src
      << "/boards/zcu102-virtual.textproto\" revision_dir: \"rev-missing\" }\n";
  const fs::path out = dir / "out";
  EXPECT_EQ(
      Dmahil("run --farm " + (dir / "farm.textproto").string() + " --out " + out.string(), out), 2)
      << Slurp(out / "stderr");
  const nlohmann::json j = nlohmann::json::parse(Slurp(out / "results.json"));
  std::set<std::string> seen;
  for (const auto& r : j["results"]) {
    const std::string board = r["board"];
    seen.insert(board);
    EXPECT_EQ(r["fixture"], "foreign-to-device");
    if (board == "faulty") {
      EXPECT_EQ(r["verdict"], "fail") << r["detail"];
      EXPECT_EQ(r["diagnosis"], "stale-line") << r["detail"];
    } else if (board == "clean") {
      EXPECT_EQ(r["verdict"], "pass") << r["detail"];
    } else {
      EXPECT_EQ(r["verdict"], "error");
      const std::string detail = r["detail"];
      EXPECT_NE(detail.find("revision folder " + (dir / "rev-missing").string() +
                            " does not exist: did the deploy hook run?"),
                std::string::npos)
          << detail;
      EXPECT_NE(detail.find("exited on its own, exit status 2"), std::string::npos) << detail;
    }
  }
  EXPECT_EQ(seen, (std::set<std::string>{"faulty", "clean", "undeployed"}));
  const std::string console = Slurp(out / "faulty" / "console.log");
  EXPECT_NE(console.find("revision linux (bad-commit): cache-flush-local-addr boot_rate 1: taken "
                         "this boot"),
            std::string::npos)
      << console;
  fs::remove_all(dir);
}

}  // namespace
