#include "firmware/engine.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "common/pattern.h"
#include "firmware/host/ram_port.h"

namespace dmahil::firmware {
namespace {

using pattern::LineClass;

constexpr uint64_t kBase = 0x8000'0000;
constexpr size_t kWindow = 64 * 1024;

pattern::Spec MakeSpec(uint32_t generation = 2, uint32_t line_size = 64, uint32_t buffer = 3) {
  pattern::Spec s;
  s.seed = 0x1234;
  s.buffer_id = buffer;
  s.generation = generation;
  s.first_line = 0;
  s.line_size = line_size;
  return s;
}

class EngineTest : public ::testing::Test {
 protected:
  RamPort mem{kBase, kWindow};
  CommandProcessor engine{mem};
  std::vector<pattern::Finding> findings = std::vector<pattern::Finding>(kMaxFindings);

  Result Fill(uint64_t addr, uint32_t len, const pattern::Spec& spec) {
    return engine.Fill({addr, len, spec});
  }
  Result Check(uint64_t addr, uint32_t len, const pattern::Spec& spec, uint32_t max = 0) {
    return engine.Check({addr, len, spec, max}, findings.data(),
                        static_cast<uint32_t>(findings.size()));
  }
  // The bytes of line `line` of `spec` as FillLine writes them.
  static std::vector<uint8_t> Line(const pattern::Spec& spec, uint32_t line) {
    std::vector<uint8_t> out(spec.line_size);
    pattern::FillLine(spec, line, out.data());
    return out;
  }
};

TEST_F(EngineTest, InfoReportsTheConfiguredEngine) {
  CommandProcessor named(mem, {"test-engine", 1234, 40});
  EXPECT_STREQ(named.Info().engine, "test-engine");
  EXPECT_EQ(named.Info().max_transfer, 1234u);
  EXPECT_EQ(named.Info().address_bits, 40u);
}

TEST_F(EngineTest, FillThenCheckPassesForEveryLineSize) {
  for (uint32_t ls = pattern::kMinLineSize; ls <= pattern::kMaxLineSize; ls *= 2) {
    const pattern::Spec spec = MakeSpec(2, ls);
    const uint32_t len = 4 * pattern::kMaxLineSize;  // several scratch chunks
    ASSERT_EQ(Fill(kBase, len, spec).status, Status::kOk) << ls;
    const Result r = Check(kBase, len, spec);
    EXPECT_EQ(r.status, Status::kOk) << ls;
    EXPECT_EQ(r.lines_checked, len / ls);
    EXPECT_EQ(r.lines_ok, len / ls);
    EXPECT_EQ(r.mismatches_total, 0u);
    EXPECT_EQ(r.findings_count, 0u);
    EXPECT_FALSE(r.has_fault);
  }
}

TEST_F(EngineTest, FillWritesTheSameBytesAsThePatternEngine) {
  pattern::Spec spec = MakeSpec();
  spec.first_line = 100;
  const uint32_t len = 3 * kScratchBytes + 192;  // a partial last chunk
  ASSERT_EQ(Fill(kBase + 0x1000, len, spec).status, Status::kOk);
  std::vector<uint8_t> expect(len);
  pattern::Fill(spec, expect.data(), len);
  EXPECT_EQ(mem.Peek(kBase + 0x1000, len), expect);
}

TEST_F(EngineTest, CheckFindsAStaleLine) {
  const pattern::Spec old_gen = MakeSpec(1), new_gen = MakeSpec(2);
  ASSERT_EQ(Fill(kBase, 4096, new_gen).status, Status::kOk);
  mem.Poke(kBase + 5 * 64, Line(old_gen, 5));
  const Result r = Check(kBase, 4096, new_gen);
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_EQ(r.lines_ok, 63u);
  ASSERT_EQ(r.findings_count, 1u);
  EXPECT_EQ(findings[0].line, 5u);
  EXPECT_EQ(findings[0].cls, LineClass::kStale);
  EXPECT_EQ(findings[0].found_generation, 1u);
  EXPECT_EQ(findings[0].found_line, 5u);
}

TEST_F(EngineTest, CheckFindsMisplacedLines) {
  const pattern::Spec spec = MakeSpec();
  ASSERT_EQ(Fill(kBase, 4096, spec).status, Status::kOk);
  mem.Poke(kBase + 7 * 64, mem.Peek(kBase + 2 * 64, 64));            // line 2 copied onto line 7
  mem.Poke(kBase + 9 * 64, Line(MakeSpec(2, 64, /*buffer=*/4), 9));  // another buffer
  const Result r = Check(kBase, 4096, spec);
  ASSERT_EQ(r.findings_count, 2u);
  EXPECT_EQ(findings[0].line, 7u);
  EXPECT_EQ(findings[0].cls, LineClass::kMisplaced);
  EXPECT_EQ(findings[0].found_line, 2u);
  EXPECT_EQ(findings[0].found_buffer, 3u);
  EXPECT_EQ(findings[1].line, 9u);
  EXPECT_EQ(findings[1].cls, LineClass::kMisplaced);
  EXPECT_EQ(findings[1].found_buffer, 4u);
}

TEST_F(EngineTest, CheckFindsAZeroLine) {
  const pattern::Spec spec = MakeSpec();
  ASSERT_EQ(Fill(kBase, 4096, spec).status, Status::kOk);
  mem.Poke(kBase + 3 * 64, std::vector<uint8_t>(64, 0));
  const Result r = Check(kBase, 4096, spec);
  ASSERT_EQ(r.findings_count, 1u);
  EXPECT_EQ(findings[0].line, 3u);
  EXPECT_EQ(findings[0].cls, LineClass::kZero);
}

TEST_F(EngineTest, FirstLineNumbersTheFindings) {
  pattern::Spec spec = MakeSpec();
  spec.first_line = 64;  // the second 4 KiB of a buffer
  ASSERT_EQ(Fill(kBase + 4096, 4096, spec).status, Status::kOk);
  mem.Poke(kBase + 4096 + 64, std::vector<uint8_t>(64, 0));
  const Result r = Check(kBase + 4096, 4096, spec);
  ASSERT_EQ(r.findings_count, 1u);
  EXPECT_EQ(findings[0].line, 65u);
}

TEST_F(EngineTest, CheckTurnsUnreachableLinesIntoBusErrorFindings) {
  const uint64_t end = kBase + kWindow;
  ASSERT_EQ(Fill(end - 4096, 4096, MakeSpec()).status, Status::kOk);  // lines 0..63
  // From line 2 on: 62 reachable lines, then 2 + 64 lines past the end of the window.
  pattern::Spec spec = MakeSpec();
  spec.first_line = 2;
  const Result r = Check(end - 4096 + 128, 2 * 4096, spec);
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_TRUE(r.has_fault);
  EXPECT_EQ(r.fault_addr, end);
  EXPECT_EQ(r.lines_checked, 128u);
  EXPECT_EQ(r.lines_ok, 62u);
  EXPECT_EQ(r.mismatches_total, 66u);
  ASSERT_EQ(r.findings_count, 66u);
  for (uint32_t i = 0; i < 66; ++i) {
    EXPECT_EQ(findings[i].cls, LineClass::kBusError) << i;
    EXPECT_EQ(findings[i].line, 64u + i);
  }
}

TEST_F(EngineTest, CheckGoesOnAfterAnUnreachableFirstLine) {
  pattern::Spec spec = MakeSpec();
  spec.first_line = 1;
  ASSERT_EQ(Fill(kBase, 4096, spec).status, Status::kOk);  // lines 1..64 at kBase
  spec.first_line = 0;
  const Result r = Check(kBase - 64, 4096 + 64, spec);  // line 0 lies below the window
  ASSERT_EQ(r.status, Status::kOk);
  EXPECT_TRUE(r.has_fault);
  EXPECT_EQ(r.fault_addr, kBase - 64);
  EXPECT_EQ(r.lines_ok, 64u);
  ASSERT_EQ(r.findings_count, 1u);
  EXPECT_EQ(findings[0].line, 0u);
  EXPECT_EQ(findings[0].cls, LineClass::kBusError);
}

TEST_F(EngineTest, FillStopsAtABusError) {
  const Result over_end = Fill(kBase + kWindow - 128, 256, MakeSpec());
  EXPECT_EQ(over_end.status, Status::kBusError);
  EXPECT_TRUE(over_end.has_fault);
  EXPECT_EQ(over_end.fault_addr, kBase + kWindow);
  const Result below = Fill(kBase - 4096, 4096, MakeSpec());
  EXPECT_EQ(below.status, Status::kBusError);
  EXPECT_EQ(below.fault_addr, kBase - 4096);
}

TEST_F(EngineTest, FindingsAreCappedButAllCounted) {
  const pattern::Spec spec = MakeSpec();
  ASSERT_EQ(Fill(kBase, 4096, spec).status, Status::kOk);
  for (uint32_t line : {4u, 8u, 15u, 16u, 23u, 42u}) {
    mem.Poke(kBase + line * 64, std::vector<uint8_t>(64, 0xAB));
  }
  const Result r = Check(kBase, 4096, spec, 3);
  EXPECT_EQ(r.mismatches_total, 6u);
  EXPECT_EQ(r.lines_ok, 58u);
  ASSERT_EQ(r.findings_count, 3u);
  EXPECT_EQ(findings[0].line, 4u);
  EXPECT_EQ(findings[1].line, 8u);
  EXPECT_EQ(findings[2].line, 15u);
  EXPECT_EQ(findings[0].cls, LineClass::kCorrupt);
}

TEST_F(EngineTest, ZeroMaxFindingsMeansTheDefault) {
  // Never-written memory: every line is a zero line.
  const Result r = Check(kBase, 300 * 64, MakeSpec());
  EXPECT_EQ(r.mismatches_total, 300u);
  EXPECT_EQ(r.findings_count, kDefaultMaxFindings);
}

TEST_F(EngineTest, ReadWriteRoundTripAndBusErrors) {
  std::vector<uint8_t> data(1000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  ASSERT_EQ(engine.Write({kBase + 3, data.data(), 1000}).status, Status::kOk);
  std::vector<uint8_t> back(1000);
  ASSERT_EQ(engine.Read({kBase + 3, 1000}, back.data(), back.size()).status, Status::kOk);
  EXPECT_EQ(back, data);

  const Result rd = engine.Read({kBase + kWindow - 10, 20}, back.data(), back.size());
  EXPECT_EQ(rd.status, Status::kBusError);
  EXPECT_EQ(rd.fault_addr, kBase + kWindow);
  const Result wr = engine.Write({0x1000, data.data(), 16});
  EXPECT_EQ(wr.status, Status::kBusError);
  EXPECT_EQ(wr.fault_addr, 0x1000u);
}

struct BadCase {
  const char* name;
  Result (*run)(CommandProcessor&, pattern::Finding*);
  Reject why;
};

TEST_F(EngineTest, BadRequestsAreRefusedWithoutTouchingTheBus) {
  static uint8_t buf[16];
  const BadCase cases[] = {
      {"read zero",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Read({kBase, 0}, buf, 16);
       },
       Reject::kZeroLength},
      {"read too long",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Read({kBase, kMaxDataBytes + 1}, buf, 16);
       },
       Reject::kTooLong},
      {"read small buffer",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Read({kBase, 17}, buf, 16);
       },
       Reject::kBufferTooSmall},
      {"write wraps",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Write({~uint64_t{0} - 3, buf, 16});
       },
       Reject::kAddressWraps},
      {"fill zero",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, 0, MakeSpec()});
       },
       Reject::kZeroLength},
      {"fill not multiple",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, 100, MakeSpec()});
       },
       Reject::kNotLineMultiple},
      {"fill unaligned",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase + 32, 128, MakeSpec()});
       },
       Reject::kUnaligned},
      {"fill line size 48",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, 96, MakeSpec(2, 48)});
       },
       Reject::kBadLineSize},
      {"fill line size 8192",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, 8192, MakeSpec(2, 8192)});
       },
       Reject::kBadLineSize},
      {"fill too long",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, kMaxPatternBytes + 64, MakeSpec()});
       },
       Reject::kTooLong},
      {"fill generation 65536",
       [](CommandProcessor& e, pattern::Finding*) {
         return e.Fill({kBase, 64, MakeSpec(65536)});
       },
       Reject::kBadPatternId},
      {"fill line index overflow",
       [](CommandProcessor& e, pattern::Finding*) {
         pattern::Spec s = MakeSpec();
         s.first_line = 0xFFFFFFFFu;
         return e.Fill({kBase, 128, s});
       },
       Reject::kLineIndexOverflow},
      {"check unaligned",
       [](CommandProcessor& e, pattern::Finding* f) {
         return e.Check({kBase + 8, 64, MakeSpec(), 0}, f, kMaxFindings);
       },
       Reject::kUnaligned},
      {"check too many findings",
       [](CommandProcessor& e, pattern::Finding* f) {
         return e.Check({kBase, 64, MakeSpec(), kMaxFindings + 1}, f, kMaxFindings);
       },
       Reject::kTooManyFindings},
      {"check findings buffer too small",
       [](CommandProcessor& e, pattern::Finding* f) {
         return e.Check({kBase, 64, MakeSpec(), 10}, f, 9);
       },
       Reject::kBufferTooSmall},
  };
  for (const BadCase& c : cases) {
    const Result r = c.run(engine, findings.data());
    EXPECT_EQ(r.status, Status::kBadRequest) << c.name;
    EXPECT_EQ(r.reject, c.why) << c.name;
    EXPECT_GT(std::strlen(r.message), 0u) << c.name;
  }
  EXPECT_EQ(mem.reads(), 0u);
  EXPECT_EQ(mem.writes(), 0u);
}

}  // namespace
}  // namespace dmahil::firmware
