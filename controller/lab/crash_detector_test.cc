// ClassifyConsoleLine and CrashRecorder on real-looking Linux, Xen and U-Boot console logs.
#include "controller/lab/crash_detector.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace dmahil::lab {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Feeds `text` line by line; line numbers from 1, 10 ms apart.
CrashRecorder Feed(const std::string& text) {
  CrashRecorder recorder;
  uint64_t n = 0;
  for (const std::string& line : Lines(text)) {
    ++n;
    recorder.Add(ConsoleLine{n, n * 10, line});
  }
  return recorder;
}

// A clean boot on a ZCU102-like board: U-Boot, Xen, dom0 Linux, the agent. Contains
// look-alikes that must not match: Xen's 51-star boot banners and "(XEN) WARNING:" notes,
// "DEBUG: " and a "BUG: " inside a user message, a dump_stack() call trace.
constexpr const char* kCleanBoot = R"(U-Boot 2023.01 (Jan 09 2023 - 12:00:00 +0000)
CPU:   ZynqMP
Hit any key to stop autoboot:  0
Starting kernel ...
 Xen 4.17.2
(XEN) Xen version 4.17.2 (builder@lab) (aarch64-linux-gnu-gcc (Debian 12.2.0-14) 12.2.0) debug=y
(XEN) ***************************************************
(XEN) WARNING: CONSOLE OUTPUT IS SYNCHRONOUS
(XEN) This option is intended to aid debugging of Xen by ensuring
(XEN) ***************************************************
(XEN) [    1.234567] Brought up 4 CPUs
(XEN) *** LOADING DOMAIN 0 ***
(XEN) Freed 356kB init memory.
[    0.000000] Booting Linux on physical CPU 0x0000000000 [0x410fd034]
[    0.000000] Linux version 6.1.0-18-arm64 (debian-kernel@lists.debian.org)
[    0.000000] Xen 4.17 support found
[    1.024511] xen:grant_table: Grant tables using version 1 layout
[    2.100000] CPU: 1 PID: 77 Comm: modprobe Not tainted 6.1.0-18-arm64 #1
[    2.100010] Call trace:
[    2.100020]  dump_backtrace+0xe4/0x140
[    2.100030]  dump_stack_lvl+0x64/0x80
[    3.500000] systemd[1]: Started dmahil-agent.service - dmahil agent.
DEBUG: dmahil-agent: mapping grant ref 8 for domain 1
dmahil-agent: counted "BUG: " strings in dmesg: 0
(d1) [    0.912345] Booting Linux on physical CPU 0x0000000000
dmahil-agent: dom0 ready
)";

TEST(ClassifyConsoleLineTest, CleanBootHasNoCrashOrWarning) {
  for (const std::string& line : Lines(kCleanBoot)) {
    const std::optional<CrashMatch> m = ClassifyConsoleLine(line);
    if (m) {
      EXPECT_EQ(m->severity, CrashSeverity::kContext) << line;
    }
  }
  const CrashRecorder r = Feed(kCleanBoot);
  EXPECT_FALSE(r.crash().has_value());
  EXPECT_EQ(r.warning_count(), 0u);
}

TEST(ClassifyConsoleLineTest, EveryPatternWithItsKindAndSeverity) {
  struct Case {
    const char* line;
    const char* kind;
    CrashSeverity severity;
  };
  const Case cases[] = {
      {"[   42.126200] Kernel panic - not syncing: Oops: Fatal exception", "linux-panic",
       CrashSeverity::kFatal},
      {"[   42.123600] Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP", "linux-oops",
       CrashSeverity::kFatal},
      {"[   42.123456] Unable to handle kernel NULL pointer dereference at virtual address "
       "0000000000000008",
       "linux-bad-access", CrashSeverity::kFatal},
      {"[   12.000001] Unable to handle kernel paging request at virtual address ffff800010000000",
       "linux-bad-access", CrashSeverity::kFatal},
      {"<3>[   31.337000] BUG: KASAN: use-after-free in xen_swiotlb_unmap_page+0x30/0x90",
       "linux-bug", CrashSeverity::kFatal},
      {"[   50.000000][    T1] BUG: scheduling while atomic: swapper/0/1/0x00000002", "linux-bug",
       CrashSeverity::kFatal},
      {"[   77.700000] SError Interrupt on CPU2, code 0x00000000be000011 -- SError", "arm64-serror",
       CrashSeverity::kFatal},
      {"(XEN) Panic on CPU 0:", "xen-panic", CrashSeverity::kFatal},
      {"(XEN) ****************************************", "xen-panic-banner", CrashSeverity::kFatal},
      {"(XEN) Xen BUG at arch/arm/mm.c:1234", "xen-bug", CrashSeverity::kFatal},
      {"(XEN) FATAL TRAP: vector = 6 (invalid opcode)", "xen-fatal-trap", CrashSeverity::kFatal},
      {"(XEN) Assertion 'page_get_owner(pg) == d' failed at arch/arm/mm.c:1402", "xen-assert",
       CrashSeverity::kFatal},
      {"(XEN) [  101.000200] Assertion 'spin_is_locked(&d->page_alloc_lock)' failed at "
       "common/grant_table.c:1077",
       "xen-assert", CrashSeverity::kFatal},
      {"[   20.500000] WARNING: CPU: 3 PID: 412 at kernel/dma/mapping.c:532 "
       "dma_map_page_attrs+0x1f4/0x3b0",
       "linux-warning", CrashSeverity::kWarning},
      {"(XEN) Xen WARN at common/grant_table.c:1234", "xen-warning", CrashSeverity::kWarning},
      {"[   42.124300] Call trace:", "linux-call-trace", CrashSeverity::kContext},
      {"(XEN) Xen call trace:", "xen-call-trace", CrashSeverity::kContext},
      // A guest's console through Xen, with the line end still on.
      {"(d1) [    3.000000] Kernel panic - not syncing: VFS: Unable to mount root fs\r",
       "linux-panic", CrashSeverity::kFatal},
  };
  for (const Case& c : cases) {
    const std::optional<CrashMatch> m = ClassifyConsoleLine(c.line);
    ASSERT_TRUE(m.has_value()) << c.line;
    EXPECT_EQ(m->kind, c.kind) << c.line;
    EXPECT_EQ(m->severity, c.severity) << c.line;
  }
}

TEST(ClassifyConsoleLineTest, LookAlikesDoNotMatch) {
  const char* lines[] = {
      "DEBUG: mapping grant 3",                                     // "BUG: " inside a word
      "[    5.000000] dmahil: no BUG: found",                       // "BUG: " not at the start
      "(XEN) ***************************************************",  // 51 stars
      "****************************************",                   // 40 stars without "(XEN)"
      "Panic on CPU 0:",                                            // Xen's words without "(XEN)"
      "[   42.126500] ---[ end Kernel panic - not syncing: Oops: Fatal exception ]---",
      "(XEN) WARNING: SILO mode is not enabled.",       // a boot note, not WARN_ON
      "WARNING: CPU: feature missing",                  // no " at "
      "a.out: main.c:12: main: Assertion `x' failed.",  // glibc assert, not Xen's
      "",
  };
  for (const char* line : lines) {
    EXPECT_FALSE(ClassifyConsoleLine(line).has_value()) << line;
  }
}

// An arm64 dom0 oops in the middle of the agent's work, then the panic it escalates to.
constexpr const char* kOopsLog =
    R"([    3.500000] systemd[1]: Started dmahil-agent.service - dmahil agent.
[   42.100000] dmahil-agent: fixture foreign-to-device: mapping 16 grants
[   42.123456] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000008
[   42.123470] Mem abort info:
[   42.123475]   ESR = 0x0000000096000006
[   42.123480]   EC = 0x25: DABT (current EL), IL = 32 bits
[   42.123600] Internal error: Oops: 0000000096000006 [#1] PREEMPT SMP
[   42.123700] Modules linked in: dmahil_agent(O)
[   42.123800] CPU: 2 PID: 345 Comm: dmahil-agent Tainted: G           O       6.1.0 #1
[   42.123900] Hardware name: ZynqMP ZCU102 Rev1.0 (DT)
[   42.124100] pc : xen_swiotlb_map_page+0x48/0x2a0
[   42.124200] lr : dma_map_page_attrs+0x1a4/0x3b0
[   42.124300] Call trace:
[   42.124400]  xen_swiotlb_map_page+0x48/0x2a0
[   42.124500]  dma_map_page_attrs+0x1a4/0x3b0
[   42.126100] ---[ end trace 0000000000000000 ]---
[   42.126200] Kernel panic - not syncing: Oops: Fatal exception
[   42.126300] SMP: stopping secondary CPUs
[   42.126500] ---[ end Kernel panic - not syncing: Oops: Fatal exception ]---
)";

TEST(CrashRecorderTest, KeepsTheFirstFatalLineWithContext) {
  const CrashRecorder r = Feed(kOopsLog);
  ASSERT_TRUE(r.crash().has_value());
  const ConsoleCrash& c = *r.crash();
  EXPECT_EQ(c.kind, "linux-bad-access");
  EXPECT_EQ(c.line.number, 3u);
  EXPECT_EQ(c.line.ms, 30u);
  EXPECT_NE(c.line.text.find("NULL pointer dereference"), std::string::npos);
  // 2 lines before, the line, and the 16 after (fewer than 40).
  ASSERT_EQ(c.excerpt.size(), 19u);
  EXPECT_EQ(c.excerpt.front().number, 1u);
  EXPECT_EQ(c.excerpt.back().text,
            "[   42.126500] ---[ end Kernel panic - not syncing: Oops: Fatal exception ]---");
  EXPECT_NE(c.Summary().find("linux-bad-access at console line 3 (+30 ms): "), std::string::npos);
  EXPECT_NE(c.FormatExcerpt().find("[        30 ms] [   42.123456] Unable to handle kernel"),
            std::string::npos);
}

TEST(CrashRecorderTest, ExcerptIsBoundedBeforeAndAfter) {
  CrashRecorder r;
  uint64_t n = 0;
  for (int i = 0; i < 100; ++i) r.Add(ConsoleLine{++n, n, "boot line " + std::to_string(i)});
  EXPECT_TRUE(r.Add(ConsoleLine{++n, n, "(XEN) Xen BUG at arch/arm/p2m.c:2000"}));
  // A second fatal line does not replace the first.
  EXPECT_FALSE(r.Add(ConsoleLine{++n, n, "(XEN) Panic on CPU 0:"}));
  for (int i = 0; i < 100; ++i) r.Add(ConsoleLine{++n, n, "after " + std::to_string(i)});
  ASSERT_TRUE(r.crash().has_value());
  const ConsoleCrash& c = *r.crash();
  EXPECT_EQ(c.kind, "xen-bug");
  EXPECT_EQ(c.line.number, 101u);
  ASSERT_EQ(c.excerpt.size(), CrashRecorder::kLinesBefore + 1 + CrashRecorder::kLinesAfter);
  EXPECT_EQ(c.excerpt.front().text, "boot line 80");
  EXPECT_EQ(c.excerpt[CrashRecorder::kLinesBefore].number, 101u);
  EXPECT_EQ(c.excerpt.back().text, "after 38");  // line 102 is the Panic line
}

// Xen's own panic on Arm: the BUG line comes first, then the 40-star panic banner.
constexpr const char* kXenPanicLog = R"((XEN) d1: grant map of ref 8 failed
(XEN) Xen BUG at arch/arm/mm.c:1234
(XEN) ----[ Xen-4.17.2  arm64  debug=y  Not tainted ]----
(XEN) CPU:    0
(XEN) PC:     0000000000263d5c mm.c#xen_pt_update+0x2b0/0x3a0
(XEN) Xen call trace:
(XEN)    [<0000000000263d5c>] mm.c#xen_pt_update+0x2b0/0x3a0 (PC)
(XEN)
(XEN) ****************************************
(XEN) Panic on CPU 0:
(XEN) Xen BUG at arch/arm/mm.c:1234
(XEN) ****************************************
(XEN)
(XEN) Reboot in five seconds...
)";

TEST(CrashRecorderTest, XenPanicIsCaughtAtItsFirstLine) {
  const CrashRecorder r = Feed(kXenPanicLog);
  ASSERT_TRUE(r.crash().has_value());
  EXPECT_EQ(r.crash()->kind, "xen-bug");
  EXPECT_EQ(r.crash()->line.number, 2u);
  EXPECT_EQ(r.crash()->excerpt.back().text, "(XEN) Reboot in five seconds...");

  // Without the BUG line (e.g. lost on the wire), the banner still catches it.
  const CrashRecorder banner_only = Feed(
      "(XEN) d1: grant map of ref 8 failed\n(XEN) ****************************************\n"
      "(XEN) Panic on CPU 1:\n");
  ASSERT_TRUE(banner_only.crash().has_value());
  EXPECT_EQ(banner_only.crash()->kind, "xen-panic-banner");
}

TEST(CrashRecorderTest, WarningsAreRecordedNotFatal) {
  const std::string log =
      "[   20.500000] WARNING: CPU: 3 PID: 412 at kernel/dma/mapping.c:532 "
      "dma_map_page_attrs+0x1f4/0x3b0\n"
      "[   20.500100] Call trace:\n"
      "[   20.500200]  dma_map_page_attrs+0x1f4/0x3b0\n"
      "[   20.500300] ---[ end trace 0000000000000000 ]---\n"
      "dmahil-agent: dom0 ready\n";
  CrashRecorder r = Feed(log);
  EXPECT_FALSE(r.crash().has_value());
  ASSERT_EQ(r.warnings().size(), 1u);
  EXPECT_EQ(r.warnings()[0].kind, "linux-warning");
  EXPECT_EQ(r.warnings()[0].line.number, 1u);
  EXPECT_EQ(r.warning_count(), 1u);

  for (size_t i = 0; i < CrashRecorder::kMaxWarnings + 5; ++i) {
    r.Add(ConsoleLine{100 + i, 0, "(XEN) Xen WARN at common/page_alloc.c:100"});
  }
  EXPECT_EQ(r.warnings().size(), CrashRecorder::kMaxWarnings);
  EXPECT_EQ(r.warning_count(), CrashRecorder::kMaxWarnings + 6);

  r.Add(ConsoleLine{1000, 0, "[   99.000000] BUG: soft lockup - CPU#0 stuck for 22s!"});
  ASSERT_TRUE(r.crash().has_value());
  r.Clear();
  EXPECT_FALSE(r.crash().has_value());
  EXPECT_TRUE(r.warnings().empty());
  EXPECT_EQ(r.warning_count(), 0u);
}

}  // namespace
}  // namespace dmahil::lab
