// The live RevisionRunner without a board: what it asks the board's kind (boot timeout,
// revision folder) and what its hooks see and cost. Runs need a board; the end-to-end
// tests are bisect_cli_test.cc (virtual boards) and ci/kernel-bisect.sh (qemu-xen).
#include "controller/bisect/board_runner.h"

#include <gtest/gtest.h>

#include "controller/bisect/command.h"
#include "controller/run/cli_test_support.h"

namespace dmahil::bisect {
namespace {

std::string Src() { return std::getenv("DMAHIL_SOURCE_DIR"); }

using dmahil::testing::Slurp;

class BoardRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = dmahil::testing::FreshTestDir(
        "dmahil-bisect-runner", ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_ / "tree");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  /// A runner for `board` of `farm` (relative to the source folder), the tree dir_/tree
  /// used as it is, hooks that record their environment and take at least 200 ms each.
  BoardRunnerConfig Config(const std::string& farm, const std::string& board,
                           const std::string& fixture) const {
    BoardOptions o;
    o.farm = Src() + "/" + farm;
    o.board = board;
    o.fixtures = {fixture};
    BoardRunnerConfig rc;
    rc.farm = LoadBoardFarm(o);
    rc.out_dir = dir_ / "out";
    rc.deploy_dir = dir_ / "out/deploy";
    rc.boot_timeout_ms = 12345;
    rc.hooks.build = "sleep 0.2; env | grep ^DMAHIL_ > " + (dir_ / "build.env").string();
    rc.hooks.deploy = "sleep 0.2; env | grep ^DMAHIL_ > " + (dir_ / "deploy.env").string();
    rc.tree = {"linux", std::nullopt, dir_ / "tree"};
    return rc;
  }

  std::filesystem::path dir_;
};

TEST_F(BoardRunnerTest, AQemuXenBoardWaitsAsLongAsItsWiringSaysAndHasNoRevisionFolder) {
  BoardRevisionRunner runner(Config("ci/farms/qemu-xen-source.textproto",
                                    "qemu-xen-src-noncoherent", "foreign-from-device"));
  // The farm's boot_timeout_ms (Xen, dom0, the domU and the agents under TCG), not the
  // 12345 ms a virtual board would get.
  EXPECT_EQ(runner.BootTimeoutMs(), 180000u);
  EXPECT_FALSE(runner.UsesDeployDir());
  const Preparation p = runner.Prepare("0123456789abcdef0123456789abcdef01234567");
  EXPECT_FALSE(p.skip());
  EXPECT_GE(p.build_ms, 200u);
  EXPECT_GE(p.deploy_ms, 200u);
  // The hooks install the kernel where the wiring points; no revision folder is made.
  EXPECT_FALSE(std::filesystem::exists(dir_ / "out/deploy"));
  const std::string env = Slurp(dir_ / "deploy.env");
  EXPECT_NE(env.find("DMAHIL_DEPLOY_DIR=\n"), std::string::npos) << env;
  EXPECT_NE(env.find("DMAHIL_BOARD=qemu-xen-src-noncoherent\n"), std::string::npos) << env;
  EXPECT_NE(env.find("DMAHIL_REV=0123456789abcdef0123456789abcdef01234567\n"), std::string::npos)
      << env;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "out/steps/0123456789ab/linux-build.log"));
}

TEST_F(BoardRunnerTest, AVirtualBoardReadsItsRevisionFolderAndTakesTheConfiguredTimeout) {
  BoardRevisionRunner runner(Config("demo/bisect/farm.textproto", "zcu102", "foreign-to-device"));
  EXPECT_EQ(runner.BootTimeoutMs(), 12345u);
  EXPECT_TRUE(runner.UsesDeployDir());
  const Preparation p = runner.Prepare("feedfacefeedfacefeedfacefeedfacefeedface");
  EXPECT_GE(p.build_ms, 200u);
  EXPECT_TRUE(std::filesystem::is_directory(dir_ / "out/deploy"));
  const std::string env = Slurp(dir_ / "build.env");
  EXPECT_NE(env.find("DMAHIL_DEPLOY_DIR=" +
                     std::filesystem::absolute(dir_ / "out/deploy").string() + "\n"),
            std::string::npos)
      << env;
}

TEST_F(BoardRunnerTest, ASkippingBuildIsTimedAndDeploysNothing) {
  BoardRunnerConfig rc = Config("demo/bisect/farm.textproto", "zcu102", "foreign-to-device");
  rc.hooks.build = "sleep 0.2; exit 125";
  BoardRevisionRunner runner(std::move(rc));
  const Preparation p = runner.Prepare("feedfacefeedfacefeedfacefeedfacefeedface");
  EXPECT_TRUE(p.skip());
  EXPECT_GE(p.build_ms, 200u);
  EXPECT_EQ(p.deploy_ms, 0u);
  EXPECT_FALSE(std::filesystem::exists(dir_ / "deploy.env"));
}

}  // namespace
}  // namespace dmahil::bisect
