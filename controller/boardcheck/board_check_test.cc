// `dmahil board check` through the binary, as a user runs it: every shipped board and the
// example lab farm are accepted; malformed files are rejected with file:line:col and the
// field; plus the summary and file-kind helpers directly.
#include "controller/boardcheck/board_check.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "common/scratch_dir_test_support.h"
#include "common/validate.h"
#include "controller/run/cli_test_support.h"

namespace {

namespace fs = std::filesystem;
using dmahil::testing::RunDmahil;
using dmahil::testing::Slurp;

::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

fs::path SourceDir() {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  return root != nullptr ? fs::path(root) : fs::path(".");
}

// 1-based line of the first occurrence of `needle` in `text` (0 if absent).
int LineOf(const std::string& text, const std::string& needle) {
  const size_t at = text.find(needle);
  if (at == std::string::npos) return 0;
  return 1 + static_cast<int>(std::count(text.begin(), text.begin() + static_cast<long>(at), '\n'));
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  const size_t at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) text.replace(at, from.size(), to);
  return text;
}

class BoardCheckTest : public dmahil::testing::ScratchDirTest {
 protected:
  BoardCheckTest() : ScratchDirTest("boardcheck") {}

  // Runs `dmahil board check <args>`; fills out_ and err_.
  int Check(const std::string& args) {
    const int rc = RunDmahil("board check " + args, dir_ / "run");
    out_ = Slurp(dir_ / "run/stdout");
    err_ = Slurp(dir_ / "run/stderr");
    return rc;
  }

  std::string ZcuText() { return Slurp(SourceDir() / "boards/zcu102.textproto"); }

  std::string out_;
  std::string err_;
};

TEST_F(BoardCheckTest, EveryShippedBoardIsAccepted) {
  std::string args;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(SourceDir() / "boards")) {
    if (e.path().extension() != ".textproto") continue;
    args += " " + e.path().string();
    names.push_back(e.path().string());
  }
  ASSERT_GE(names.size(), 8u) << "4 virtual and 4 hardware boards are shipped";
  ASSERT_EQ(Check(args), 0) << out_ << err_;
  EXPECT_EQ(err_, "");
  for (const auto& n : names) EXPECT_TRUE(Contains(out_, n + ": ")) << n;
  EXPECT_TRUE(Contains(
      out_, fmt::format("board check: {} files, {} valid, 0 invalid", names.size(), names.size())));
  // One line for the ZCU102 with its kind, SoC, CPUs, line size, engine port, ranges, mask.
  EXPECT_TRUE(Contains(out_,
                       "zcu102: hardware, AMD/Xilinx Zynq UltraScale+ MPSoC ZU9EG (4x Cortex-A53), "
                       "4 CPUs, 64 B lines, engine on pcie (non-coherent), dma-ranges identity, "
                       "mask 64-bit\n"));
  EXPECT_TRUE(Contains(out_,
                       "rpi4-cm4: hardware, Broadcom BCM2711 (4x Cortex-A72), 4 CPUs, 64 B "
                       "lines, engine on pcie0 (non-coherent), dma-ranges bus 0x0 -> cpu "
                       "0x0 (3 GiB), mask 64-bit\n"));
  EXPECT_TRUE(Contains(out_, "rpi4-virtual: virtual,"));
  EXPECT_TRUE(Contains(out_, "dma-ranges bus 0xc0000000 -> cpu 0x0 (1 GiB), mask 32-bit"));
  EXPECT_TRUE(Contains(out_, "zcu102-smmu-virtual: virtual,"));
  EXPECT_TRUE(Contains(out_, ", behind SMMU"));
}

TEST_F(BoardCheckTest, LabExampleFarmIsAcceptedWithItsWiring) {
  const fs::path farm = SourceDir() / "ci/farms/lab-example.textproto";
  ASSERT_EQ(Check(farm.string()), 0) << out_ << err_;
  EXPECT_TRUE(Contains(out_, farm.string() + ": board \"zcu102\" ("));
  EXPECT_TRUE(Contains(out_,
                       "; wired: power gpio gpiochip0:17 (active-low), console "
                       "/dev/serial/by-id/"));
  EXPECT_TRUE(Contains(out_, "engine 0403:601f serial DMAHIL-ZCU102-1, agents 192.0.2.11:50051"));
  EXPECT_TRUE(Contains(out_, "board \"rcar-h3\""));
  EXPECT_TRUE(Contains(out_, "power pdu lab-pdu-1 port 3"));
  EXPECT_TRUE(Contains(out_, "board check: 1 file, 1 valid, 0 invalid"));
}

TEST_F(BoardCheckTest, SyntaxErrorNamesFileAndLine) {
  const std::string text = Replace(ZcuText(), "cpus: 4", "cpus 4 4");
  const fs::path p = Write("syntax.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(Contains(err_, fmt::format("{}:{}:", p.string(), LineOf(text, "cpus 4 4")))) << err_;
  EXPECT_TRUE(Contains(out_, "board check: 1 file, 0 valid, 1 invalid"));
}

TEST_F(BoardCheckTest, MisspelledFieldNamesTheField) {
  const std::string text = Replace(ZcuText(), "mask_bits: 64", "mask_bit: 64");
  const fs::path p = Write("typo.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(Contains(err_, fmt::format("{}:{}:", p.string(), LineOf(text, "mask_bit:"))));
  EXPECT_TRUE(Contains(err_,
                       "unknown field \"mask_bit\" in dmahil.v1.DmaEngineDesc; did you mean "
                       "\"mask_bits\"?"));
}

TEST_F(BoardCheckTest, BadValueNamesFileLineAndField) {
  const std::string text = Replace(ZcuText(), "l1 { line_size: 64", "l1 { line_size: 48");
  const fs::path p = Write("value.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(Contains(err_, fmt::format("{}:{}:6: l1.line_size 48 must be a power of two",
                                         p.string(), LineOf(text, "l1 { line_size: 48"))))
      << err_;
}

TEST_F(BoardCheckTest, UnknownEnginePortIsRejected) {
  const std::string text =
      Replace(ZcuText(), "coherent: false port: \"pcie\"", "coherent: false port: \"pcie9\"");
  const fs::path p = Write("port.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(Contains(err_, fmt::format("{}:{}:", p.string(), LineOf(text, "port: \"pcie9\""))));
  EXPECT_TRUE(Contains(err_,
                       "dma.port \"pcie9\" names no declared port (declared: pcie, "
                       "s_axi_hp0_fpd, s_axi_hpc0_fpd, s_axi_hpc1_fpd)"))
      << err_;
}

TEST_F(BoardCheckTest, EngineCoherencyMustMatchItsPort) {
  const std::string text = Replace(ZcuText(), "mask_bits: 64 coherent: false port: \"pcie\"",
                                   "mask_bits: 64 coherent: true port: \"pcie\"");
  const fs::path p = Write("coherent.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(
      Contains(err_, fmt::format("{}:{}:", p.string(), LineOf(text, "coherent: true port"))));
  EXPECT_TRUE(Contains(err_, "dma.coherent is true but the engine's port \"pcie\""));
}

TEST_F(BoardCheckTest, BadWiringInAFarmNamesTheFarmLineAndField) {
  // The example farm, with its board and fixture paths made absolute and one bad endpoint.
  std::string text = Slurp(SourceDir() / "ci/farms/lab-example.textproto");
  const std::string root = (SourceDir()).lexically_normal().string() + "/";
  for (size_t at; (at = text.find("\"../../")) != std::string::npos;)
    text.replace(at, 7, "\"" + root);
  text = Replace(text, "ep_in: 0x82   # bulk IN", "ep_in: 0x02   # bulk IN");
  const fs::path p = Write("farm.textproto", text);
  ASSERT_EQ(Check(p.string()), 2) << out_;
  EXPECT_TRUE(Contains(err_, fmt::format("{}:{}:", p.string(), LineOf(text, "ep_in: 0x02"))));
  EXPECT_TRUE(Contains(err_,
                       "board[0].wiring.engine.ep_in 0x02 is an OUT address; an IN endpoint "
                       "has bit 0x80 set (e.g. 0x82)"))
      << err_;
}

TEST_F(BoardCheckTest, ValidAndInvalidFilesTogetherExit2AndReportBoth) {
  const fs::path good = SourceDir() / "boards/imx8mq-evk.textproto";
  const fs::path missing = dir_ / "nope.textproto";
  ASSERT_EQ(Check(good.string() + " " + missing.string()), 2);
  EXPECT_TRUE(Contains(out_, good.string() + ": imx8mq-evk: hardware"));
  EXPECT_TRUE(Contains(err_, missing.string() + ": cannot read"));
  EXPECT_TRUE(Contains(out_, "board check: 2 files, 1 valid, 1 invalid"));
}

TEST_F(BoardCheckTest, NoFileIsACommandLineError) { EXPECT_EQ(Check(""), 2); }

TEST(BoardCheckHelpers, DetectKindBySchemaHeaderOrContent) {
  using dmahil::boardcheck::DetectKind;
  using dmahil::boardcheck::FileKind;
  EXPECT_EQ(DetectKind(SourceDir() / "ci/farms/virtual.textproto"), FileKind::kFarm);
  EXPECT_EQ(DetectKind(SourceDir() / "boards/zcu102.textproto"), FileKind::kBoard);
  const fs::path p = fs::temp_directory_path() / ("dmahil_kind_" + std::to_string(::getpid()));
  std::ofstream(p) << "board { name: \"a\" board_file: \"b\" }\n";
  EXPECT_EQ(DetectKind(p), FileKind::kFarm);  // no header: parses as a farm
  std::ofstream(p) << "name: \"x\"\nsoc: \"y\"\n";
  EXPECT_EQ(DetectKind(p), FileKind::kBoard);  // no header: not a farm
  fs::remove(p);
  EXPECT_EQ(DetectKind("/nonexistent/file"), FileKind::kBoard);
}

}  // namespace
