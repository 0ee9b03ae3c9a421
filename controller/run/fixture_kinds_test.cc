#include "controller/run/fixture_kinds.h"

#include <gtest/gtest.h>

namespace dmahil::controller {
namespace {

/// An engine that must not be asked anything.
class NoDevice final : public DeviceClient {
 public:
  v1::DeviceResponse Transact(const v1::DeviceRequest&) override {
    ADD_FAILURE() << "the engine was driven";
    return {};
  }
};

TEST(FixtureKinds, TheEngineKindIsRunFixture) {
  const FixtureKindEntry* engine = FindFixtureKind(v1::FIXTURE_KIND_ENGINE);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->name, "engine");
  EXPECT_EQ(engine->run, &RunFixture);
}

TEST(FixtureKinds, AKindWithoutARunnerIsAnErrorAndTouchesNothing) {
  AgentClient dom0("127.0.0.1:1");  // nothing listens: any call would fail
  AgentClient guest("127.0.0.1:2");
  NoDevice none;
  GuardedDeviceClient device(none);
  BoardLink link{dom0, guest, device, 64};
  v1::Fixture f;
  f.set_name("from-the-future");
  f.set_kind(static_cast<v1::FixtureKind>(42));
  EXPECT_EQ(FindFixtureKind(f.kind()), nullptr);
  const v1::FixtureResult r = RunFixtureOfKind(link, v1::Board(), "b", f, 1, 1);
  EXPECT_EQ(r.verdict(), v1::VERDICT_ERROR);
  EXPECT_EQ(r.board(), "b");
  EXPECT_EQ(r.fixture(), "from-the-future");
  EXPECT_EQ(r.detail(), "fixture kind 42 has no runner in this controller");
}

}  // namespace
}  // namespace dmahil::controller
