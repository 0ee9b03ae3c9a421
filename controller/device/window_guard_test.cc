#include "controller/device/window_guard.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace dmahil::controller {
namespace {

// Records what reaches "the device".
class CountingDevice final : public DeviceClient {
 public:
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    seen.push_back(request);
    v1::DeviceResponse resp;
    resp.set_tag(request.tag());
    resp.set_status(v1::DEVICE_OK);
    return resp;
  }
  std::vector<v1::DeviceRequest> seen;
};

v1::PatternSpec Spec() {
  v1::PatternSpec s;
  s.set_line_size(64);
  return s;
}

std::string WindowErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const WindowError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no WindowError";
  return "";
}

class GuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    guarded.guard().Set({
        {0x1000, 0x1000, BusWindow::Kind::kBuffer, "buf0"},
        {0x2000, 0x1000, BusWindow::Kind::kBuffer, "buf1"},  // adjacent to buf0
        {0x3000, 0x40, BusWindow::Kind::kGuard, "canary"},
    });
  }
  CountingDevice device;
  GuardedDeviceClient guarded{device};
};

TEST_F(GuardTest, RequestsInsideOneWindowPass) {
  EXPECT_EQ(guarded.Fill(0x1000, 0x1000, Spec()).status(), v1::DEVICE_OK);
  EXPECT_EQ(guarded.Check(0x2000, 0x1000, Spec()).status(), v1::DEVICE_OK);
  EXPECT_EQ(guarded.Read(0x3000, 0x40).status(), v1::DEVICE_OK);  // a guard region
  EXPECT_EQ(guarded.Write(0x2FFF, "x").status(), v1::DEVICE_OK);
  EXPECT_EQ(device.seen.size(), 4u);
}

TEST_F(GuardTest, OutOfWindowRequestsNeverReachTheDevice) {
  const std::string msg = WindowErrorOf([&] { guarded.Fill(0x8000, 0x1000, Spec()); });
  EXPECT_NE(msg.find("fill of 4096 bytes at [0x8000, 0x9000)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0x1000, 0x2000) buffer 'buf0'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[0x3000, 0x3040) guard 'canary'"), std::string::npos) << msg;
  WindowErrorOf([&] { guarded.Read(0x0FFF, 2); });              // starts below
  WindowErrorOf([&] { guarded.Check(0x3000, 0x80, Spec()); });  // runs past the end
  WindowErrorOf([&] { guarded.Write(0x4000, "x"); });
  EXPECT_TRUE(device.seen.empty());
}

TEST_F(GuardTest, ReadOnlyWindowIsReadButNeverWritten) {
  BusWindow wrong{0x9000, 0x1000, BusWindow::Kind::kBuffer, "pfn 0x9"};
  wrong.writable = false;
  guarded.guard().Add(wrong);
  EXPECT_EQ(guarded.Read(0x9000, 0x40).status(), v1::DEVICE_OK);
  EXPECT_EQ(guarded.Check(0x9000, 0x1000, Spec()).status(), v1::DEVICE_OK);
  const std::string msg = WindowErrorOf([&] { guarded.Fill(0x9000, 0x1000, Spec()); });
  EXPECT_NE(msg.find("fill of 4096 bytes at [0x9000, 0xa000): its window is read-only"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("'pfn 0x9' read-only"), std::string::npos) << msg;
  WindowErrorOf([&] { guarded.Write(0x9040, "x"); });
  EXPECT_EQ(device.seen.size(), 2u) << "a refused write reached the device";
}

TEST_F(GuardTest, StraddlingTwoWindowsIsRefused) {
  // buf0 and buf1 are adjacent, but a request must lie inside ONE window.
  const std::string msg = WindowErrorOf([&] { guarded.Fill(0x1F00, 0x200, Spec()); });
  EXPECT_NE(msg.find("[0x1f00, 0x2100)"), std::string::npos) << msg;
  EXPECT_TRUE(device.seen.empty());
}

TEST_F(GuardTest, WrappingRangeIsRefused) {
  guarded.guard().Add({0xFFFF'FFFF'FFFF'F000, 0x1000, BusWindow::Kind::kBuffer, "top"});
  EXPECT_EQ(guarded.Read(0xFFFF'FFFF'FFFF'FFC0, 0x40).status(), v1::DEVICE_OK);
  WindowErrorOf([&] { guarded.Read(0xFFFF'FFFF'FFFF'FFC0, 0x80); });
  EXPECT_EQ(device.seen.size(), 1u);
}

TEST_F(GuardTest, ClearedGuardRefusesEverythingButInfo) {
  guarded.guard().Clear();
  const std::string msg = WindowErrorOf([&] { guarded.Read(0x1000, 4); });
  EXPECT_NE(msg.find("windows: none"), std::string::npos) << msg;
  EXPECT_EQ(guarded.Info().status(), v1::DEVICE_OK);
  ASSERT_EQ(device.seen.size(), 1u);
  EXPECT_TRUE(device.seen[0].has_info());
}

TEST(WindowGuard, InvalidWindowsAreRefusedAndSetIsAllOrNothing) {
  WindowGuard g;
  WindowErrorOf([&] { g.Add({0x1000, 0, BusWindow::Kind::kBuffer, "empty"}); });
  WindowErrorOf([&] { g.Add({~uint64_t{0}, 2, BusWindow::Kind::kBuffer, "wraps"}); });
  g.Add({0x1000, 0x100, BusWindow::Kind::kBuffer, "a"});
  WindowErrorOf([&] {
    g.Set({{0x5000, 0x100, BusWindow::Kind::kBuffer, "b"},
           {0x6000, 0, BusWindow::Kind::kBuffer, "bad"}});
  });
  ASSERT_EQ(g.windows().size(), 1u);
  EXPECT_EQ(g.windows()[0].label, "a");
}

TEST(WindowGuard, FindEdges) {
  WindowGuard g;
  g.Add({0x1000, 0x100, BusWindow::Kind::kBuffer, "a"});
  ASSERT_NE(g.Find(0x1000, 0x100), nullptr);
  EXPECT_EQ(g.Find(0x1000, 0x100)->label, "a");
  EXPECT_NE(g.Find(0x10FF, 1), nullptr);
  EXPECT_EQ(g.Find(0x10FF, 2), nullptr);
  EXPECT_EQ(g.Find(0x1100, 0), nullptr);  // one past the end holds nothing
  EXPECT_NE(g.Find(0x1080, 0), nullptr);
  EXPECT_EQ(g.Find(0x0FFF, 1), nullptr);
  // Ends exactly at 2^64.
  g.Add({0xFFFF'FFFF'FFFF'FF00, 0x100, BusWindow::Kind::kGuard, "top"});
  EXPECT_NE(g.Find(0xFFFF'FFFF'FFFF'FF00, 0x100), nullptr);
  EXPECT_NE(g.Describe().find("[0xffffffffffffff00, 2^64) guard 'top'"), std::string::npos);
}

}  // namespace
}  // namespace dmahil::controller
