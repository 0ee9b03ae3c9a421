// Configuration files no one should write, through the `dmahil` binary as a user runs it:
// each is refused at load (exit 2) with "<file>:<line>:<col>: <field>: <what>", before any
// board starts, and nothing is written outside --out.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "controller/run/cli_test_support.h"

namespace {

namespace fs = std::filesystem;
using dmahil::testing::FreshTestDir;
using dmahil::testing::RunDmahil;
using dmahil::testing::Slurp;

const std::string kSource =
    std::getenv("DMAHIL_SOURCE_DIR") ? std::getenv("DMAHIL_SOURCE_DIR") : ".";

class HostileConfig : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshTestDir("dmahil-hostile",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::copy_file(kSource + "/boards/zcu102-virtual.textproto", dir_ / "board.textproto");
    Write("fixture.textproto", Slurp(kSource + "/fixtures/foreign-to-device.textproto"));
  }

  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  // A farm of one board named `board_name` and one fixture file.
  void WriteFarm(const std::string& board_name, const std::string& fixture_file) const {
    Write("farm.textproto", "name: \"hostile\"\nseed: 1\nfixture_file: \"" + fixture_file +
                                "\"\nboard { name: \"" + board_name +
                                "\" board_file: \"board.textproto\" }\n");
  }

  // `dmahil run --farm <farm> --out <dir>/out`; its stdout/stderr go to <dir>/log.
  int Run(const std::string& farm = "farm.textproto") const {
    return RunDmahil("run --farm " + (dir_ / farm).string() + " --out " + (dir_ / "out").string(),
                     dir_ / "log");
  }

  std::string Stderr() const { return Slurp(dir_ / "log" / "stderr"); }

  // The fixture file with the line starting `key:` replaced by `line`.
  std::string FixtureWith(const std::string& key, const std::string& line) const {
    std::string text = Slurp(dir_ / "fixture.textproto");
    const size_t at = text.find("\n" + key + ":");
    EXPECT_NE(at, std::string::npos) << key;
    const size_t end = text.find('\n', at + 1);
    return text.substr(0, at + 1) + line + text.substr(end);
  }

  fs::path dir_;
};

TEST_F(HostileConfig, ABoardNameThatWouldLeaveTheOutputFolderIsRefused) {
  for (const std::string name : {"../../escaped", "/tmp/escaped", "a/b", "..", "-rf"}) {
    WriteFarm(name, "fixture.textproto");
    ASSERT_EQ(Run(), 2) << name << ": " << Stderr();
    EXPECT_NE(Stderr().find("farm.textproto:4:9: board name \"" + name + "\" must be"),
              std::string::npos)
        << Stderr();
    EXPECT_NE(Stderr().find("must be usable as a file name under --out"), std::string::npos);
    EXPECT_FALSE(fs::exists(dir_.parent_path() / "escaped")) << name;
    EXPECT_FALSE(fs::exists(dir_ / "escaped")) << name;
    EXPECT_FALSE(fs::exists(dir_ / "out" / "results.json")) << name;
  }
}

TEST_F(HostileConfig, ABoardFileNameThatWouldLeaveTheMatrixOutputFolderIsRefused) {
  // dmahil matrix names each run's folder after the board file's own name.
  std::string board = Slurp(dir_ / "board.textproto");
  const size_t at = board.find("\nname: \"");
  ASSERT_NE(at, std::string::npos);
  board.replace(at + 8, board.find('"', at + 8) - (at + 8), "../../matrix-escaped");
  Write("board.textproto", board);
  const int rc = RunDmahil("matrix --seeds 1 --board " + (dir_ / "board.textproto").string() +
                               " --out " + (dir_ / "out").string(),
                           dir_ / "log");
  EXPECT_EQ(rc, 2) << Stderr();
  EXPECT_NE(Stderr().find("board.textproto:"), std::string::npos) << Stderr();
  EXPECT_NE(Stderr().find("board name \"../../matrix-escaped\" must be usable as a file name"),
            std::string::npos)
      << Stderr();
  EXPECT_FALSE(fs::exists(dir_.parent_path() / "matrix-escaped"));
}

TEST_F(HostileConfig, AStringThatIsNotUtf8IsRefusedWithItsField) {
  Write("farm.textproto",
        "name: \"bad\\xff\\xfe\"\nseed: 1\nfixture_file: \"fixture.textproto\"\n"
        "board { name: \"a\" board_file: \"board.textproto\" }\n");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("farm.textproto:1:1: name: the string is not valid UTF-8 (byte 3 of 5)"),
            std::string::npos)
      << Stderr();
  EXPECT_FALSE(fs::exists(dir_ / "out" / "junit.xml"));
}

TEST_F(HostileConfig, AControlCharacterInAStringIsRefused) {
  Write("fixture.textproto", FixtureWith("name", "name: \"to-device\\033[2J\""));
  WriteFarm("a", "fixture.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("fixture.textproto:"), std::string::npos);
  EXPECT_NE(Stderr().find("name: the string holds control character 0x1b"), std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, AnEnumGivenAsANumberIsRefusedWithItsFileLineAndField) {
  Write("undefined.textproto", FixtureWith("direction", "direction: 7"));
  WriteFarm("a", "undefined.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("undefined.textproto:"), std::string::npos) << Stderr();
  EXPECT_NE(Stderr().find(": direction: 7 is not a value of dmahil.v1.DmaDirection"),
            std::string::npos)
      << Stderr();
  EXPECT_EQ(Stderr().find("DmaMap"), std::string::npos) << "refused only by the agent";

  Write("number.textproto", FixtureWith("direction", "direction: 1"));
  WriteFarm("a", "number.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(
      Stderr().find(": direction: give the value by name (DMA_BIDIRECTIONAL), not as the number 1"),
      std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, AValueOfTheWrongTypeNamesItsField) {
  Write("typed.textproto", FixtureWith("pages", "pages: \"many\""));
  WriteFarm("a", "typed.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find(": pages: Expected integer, got: \"many\""), std::string::npos)
      << Stderr();

  // Nested and repeated: the second ram bank's base.
  std::string board = Slurp(dir_ / "board.textproto");
  const size_t second = board.find("base: 0x800000000");
  ASSERT_NE(second, std::string::npos);
  board.replace(second, 17, "base: high");
  Write("board.textproto", board);
  WriteFarm("a", "fixture.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find(": ram[1].base: Expected integer, got: high"), std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, GrantsOfADoubleMappedFixtureAreCountedAtLoad) {
  std::string text = Slurp(kSource + "/fixtures/foreign-double-map-from-device.textproto");
  const size_t at = text.find("\npages:");
  ASSERT_NE(at, std::string::npos);
  text.replace(at + 1, text.find('\n', at + 1) - at - 1, "pages: 1000");
  Write("double.textproto", text);
  WriteFarm("a", "double.textproto");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("double.textproto:"), std::string::npos) << Stderr();
  EXPECT_NE(Stderr().find("granted twice (double_map), need 2004 grants; one grant table has "
                          "1024"),
            std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, AFarmExpectationThatNamesNoDiagnosisIsRefusedWithoutCheckExpectations) {
  Write("farm.textproto",
        "name: \"f\"\nseed: 1\nfixture_file: \"fixture.textproto\"\n"
        "board { name: \"a\" board_file: \"board.textproto\" expect: \"wrong-bus-adress\" }\n");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("farm.textproto:4:49: board[0].expect: \"wrong-bus-adress\" is not a "
                          "diagnosis"),
            std::string::npos)
      << Stderr();
  EXPECT_FALSE(fs::exists(dir_ / "out" / "results.json"));
}

TEST_F(HostileConfig, AFifoOrADeviceAsAConfigFileIsRefusedAtOnce) {
  ASSERT_EQ(::mkfifo((dir_ / "fifo.textproto").c_str(), 0600), 0);
  // No writer ever opens the FIFO: reading it would block forever.
  ASSERT_EQ(Run("fifo.textproto"), 2) << Stderr();
  EXPECT_NE(Stderr().find("fifo.textproto: cannot read: is a FIFO, not a regular file"),
            std::string::npos)
      << Stderr();

  ASSERT_EQ(RunDmahil("run --farm /dev/zero --out " + (dir_ / "out").string(), dir_ / "log"), 2);
  EXPECT_NE(Stderr().find("/dev/zero: cannot read: is a character device, not a regular file"),
            std::string::npos)
      << Stderr();

  // As a board file named by a farm, too.
  ASSERT_EQ(::mkfifo((dir_ / "board-fifo.textproto").c_str(), 0600), 0);
  Write("farm.textproto",
        "name: \"f\"\nseed: 1\nfixture_file: \"fixture.textproto\"\n"
        "board { name: \"a\" board_file: \"board-fifo.textproto\" }\n");
  ASSERT_EQ(Run(), 2) << Stderr();
  EXPECT_NE(Stderr().find("board-fifo.textproto: cannot read: is a FIFO"), std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, AnOversizeConfigFileIsRefusedUnread) {
  {
    std::ofstream big(dir_ / "big.textproto", std::ios::binary);
    const std::string line(1023, '#');
    for (int i = 0; i < 5 * 1024; ++i) big << line << '\n';  // 5 MiB of comments
  }
  ASSERT_EQ(Run("big.textproto"), 2) << Stderr();
  EXPECT_NE(Stderr().find("big.textproto: cannot read: 5242880 bytes; a configuration file is at "
                          "most 4194304 bytes"),
            std::string::npos)
      << Stderr();
}

TEST_F(HostileConfig, ABoardFileWithThousandsOfBanksIsRefusedByCount) {
  std::string board = Slurp(dir_ / "board.textproto");
  std::string banks;
  for (int i = 0; i < 20000; ++i)
    banks +=
        "ram { base: " + std::to_string(0x1000000000ULL + uint64_t(i) * 0x2000) + " size: 4096 }\n";
  Write("board.textproto", board + banks);
  ASSERT_EQ(RunDmahil("board check " + (dir_ / "board.textproto").string(), dir_ / "log"), 2)
      << Stderr();
  const std::string out = Slurp(dir_ / "log" / "stdout") + Stderr();
  EXPECT_NE(out.find("ram has 20002 entries; a board file gives at most 64"), std::string::npos)
      << out.substr(0, 2000);
}

}  // namespace
