#include "firmware/host/codec.h"

#include <gtest/gtest.h>

#include "firmware/host/ram_port.h"

namespace dmahil::device_host {
namespace {

constexpr uint64_t kBase = 0x4000'0000;

class CodecTest : public ::testing::Test {
 protected:
  firmware::RamPort mem{kBase, 16 * 1024};
  firmware::CommandProcessor engine{mem, {"codec-test", 1u << 20, 48}};

  static v1::DeviceRequest FillReq(uint64_t addr, uint32_t len, uint32_t line_size) {
    v1::DeviceRequest req;
    req.set_tag(5);
    req.mutable_fill()->set_bus_addr(addr);
    req.mutable_fill()->set_length(len);
    req.mutable_fill()->mutable_pattern()->set_line_size(line_size);
    return req;
  }
  v1::DeviceResponse Bad(const v1::DeviceRequest& req) {
    v1::DeviceResponse resp = Execute(engine, req);
    EXPECT_EQ(resp.status(), v1::DEVICE_BAD_REQUEST);
    EXPECT_EQ(resp.tag(), req.tag());
    return resp;
  }
};

TEST_F(CodecTest, UnsetOpIsABadRequest) {
  v1::DeviceRequest req;
  req.set_tag(77);
  EXPECT_EQ(Bad(req).message(), "request has no op (expected info, read, write, fill or check)");
}

TEST_F(CodecTest, BadRequestMessagesSayWhy) {
  EXPECT_EQ(Bad(FillReq(kBase, 100, 64)).message(),
            "fill length 100 is not a multiple of line size 64");
  EXPECT_EQ(Bad(FillReq(kBase + 8, 128, 64)).message(),
            "fill bus address 0x40000008 is not aligned to line size 64");
  EXPECT_EQ(Bad(FillReq(kBase, 128, 48)).message(),
            "fill line size 48 is not a power of two in 16..4096");
  EXPECT_EQ(Bad(FillReq(kBase, 0, 64)).message(), "fill length is 0");
  EXPECT_EQ(Bad(FillReq(kBase, 32u << 20, 64)).message(),
            "fill length 33554432 exceeds the 16777216-byte limit");

  v1::DeviceRequest read;
  read.mutable_read()->set_bus_addr(kBase);
  read.mutable_read()->set_length(0xFFFFFFFFu);  // must not allocate 4 GiB either
  EXPECT_EQ(Bad(read).message(), "read length 4294967295 exceeds the 1048576-byte limit");

  v1::DeviceRequest check;
  check.mutable_check()->set_bus_addr(kBase);
  check.mutable_check()->set_length(64);
  check.mutable_check()->mutable_pattern()->set_line_size(64);
  check.mutable_check()->set_max_findings(5000);
  EXPECT_EQ(Bad(check).message(), "check max_findings 5000 exceeds 4096");
  check.mutable_check()->set_max_findings(1);
  check.mutable_check()->mutable_pattern()->set_buffer_id(70000);
  EXPECT_EQ(Bad(check).message(),
            "check pattern buffer_id 70000 / generation 0: both must be at most 65535");
}

TEST_F(CodecTest, InfoReportsTheEngine) {
  v1::DeviceRequest req;
  req.mutable_info();
  const v1::DeviceResponse resp = Execute(engine, req);
  EXPECT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.info().engine(), "codec-test");
  EXPECT_EQ(resp.info().max_transfer(), 1u << 20);
  EXPECT_EQ(resp.info().address_bits(), 48u);
}

TEST_F(CodecTest, BusErrorNamesTheFaultingAddress) {
  v1::DeviceRequest req;
  req.mutable_read()->set_bus_addr(kBase + 16 * 1024 - 4);
  req.mutable_read()->set_length(8);
  const v1::DeviceResponse resp = Execute(engine, req);
  EXPECT_EQ(resp.status(), v1::DEVICE_BUS_ERROR);
  EXPECT_EQ(resp.fault_addr(), kBase + 16 * 1024);
  EXPECT_EQ(resp.message(),
            "read of 8 bytes at 0x40003ffc: bus error at 0x40004000 (address did not decode)");
  EXPECT_TRUE(resp.data().empty());
}

TEST_F(CodecTest, CheckSummaryCarriesFindings) {
  v1::DeviceRequest req;
  auto* check = req.mutable_check();
  check->set_bus_addr(kBase + 16 * 1024 - 128);
  check->set_length(256);  // two lines inside (never written: zero), two outside
  check->mutable_pattern()->set_line_size(64);
  check->mutable_pattern()->set_first_line(10);
  const v1::DeviceResponse resp = Execute(engine, req);
  ASSERT_EQ(resp.status(), v1::DEVICE_OK);
  EXPECT_EQ(resp.fault_addr(), kBase + 16 * 1024);
  EXPECT_NE(resp.message().find("some lines did not decode"), std::string::npos);
  EXPECT_EQ(resp.check().lines_checked(), 4u);
  EXPECT_EQ(resp.check().lines_ok(), 0u);
  EXPECT_EQ(resp.check().mismatches_total(), 4u);
  ASSERT_EQ(resp.check().mismatches_size(), 4);
  EXPECT_EQ(resp.check().mismatches(0).line(), 10u);
  EXPECT_EQ(resp.check().mismatches(0).cls(), v1::LINE_ZERO);
  EXPECT_EQ(resp.check().mismatches(3).line(), 13u);
  EXPECT_EQ(resp.check().mismatches(3).cls(), v1::LINE_BUS_ERROR);
}

}  // namespace
}  // namespace dmahil::device_host
