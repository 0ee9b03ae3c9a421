// Pump over socketpair-backed channels: bytes intact both ways (far more than a 64 KiB
// vchan ring), close propagation in either direction, stop.
#include "agent/transport/pump.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <thread>

#include "agent/transport/fd_channel.h"
#include "agent/transport/test_support.h"

namespace dmahil::agent::transport {
namespace {

using testing::PatternBytes;
using testing::ReadToEof;
using testing::WriteAllFd;

// outer_a <-> [inner_a | Pump | inner_b] <-> outer_b. The pump thread closes both inner
// channels when Pump returns, as the relay and the guest loop do.
struct PumpFixture {
  int outer_a = -1;
  int outer_b = -1;
  std::future<PumpResult> result;
  StopSignal stop;

  explicit PumpFixture(std::size_t buffer_bytes = 64 * 1024, int sndbuf = 0) {
    auto [oa, ia] = MakeSocketPair();
    auto [ib, ob] = MakeSocketPair();
    outer_a = oa;
    outer_b = ob;
    if (sndbuf > 0) {
      for (int fd : {oa, ia, ib, ob}) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    }
    result = std::async(std::launch::async, [ia, ib, buffer_bytes, this] {
      FdChannel a(ia);
      FdChannel b(ib);
      return Pump(a, b, PumpOptions{.buffer_bytes = buffer_bytes, .stop = &stop});
    });
  }
  ~PumpFixture() {
    stop.Set();
    if (result.valid()) result.wait();
    if (outer_a >= 0) close(outer_a);
    if (outer_b >= 0) close(outer_b);
  }
  void CloseA() { close(std::exchange(outer_a, -1)); }
  void CloseB() { close(std::exchange(outer_b, -1)); }
};

// Both directions at once, so both pump buffers fill and drain while
// the other direction is blocked: the case a blocking write-all pump would deadlock.
void BothWaysIntact(std::size_t buffer_bytes, int sndbuf, std::size_t to_b_bytes,
                    std::size_t to_a_bytes) {
  PumpFixture f(buffer_bytes, sndbuf);
  const auto to_b = PatternBytes(to_b_bytes, 1);
  const auto to_a = PatternBytes(to_a_bytes, 2);
  auto write_a = std::async(std::launch::async, [&] { WriteAllFd(f.outer_a, to_b); });
  auto write_b = std::async(std::launch::async, [&] { WriteAllFd(f.outer_b, to_a); });
  auto read_b = std::async(std::launch::async, [&] { return ReadToEof(f.outer_b, to_b.size()); });
  const auto got_a = ReadToEof(f.outer_a, to_a.size());
  write_a.get();
  write_b.get();
  EXPECT_TRUE(read_b.get() == to_b) << "a -> b bytes differ";
  EXPECT_TRUE(got_a == to_a) << "b -> a bytes differ";

  f.CloseA();
  const PumpResult r = f.result.get();
  EXPECT_EQ(r.end, PumpResult::End::kAClosed);
  EXPECT_EQ(r.a_to_b_bytes, to_b.size());
  EXPECT_EQ(r.b_to_a_bytes, to_a.size());
  EXPECT_TRUE(ReadToEof(f.outer_b).empty()) << "b must see end of stream after a closed";
}

TEST(PumpTest, LargeTransfersBothWaysArriveIntact) {
  BothWaysIntact(64 * 1024, 0, 4 << 20, 3 << 20);  // 64 and 48 times a 64 KiB ring
}

// 7-byte pump buffers and 4 KiB socket buffers: every read and write is short.
TEST(PumpTest, TinyBuffersAndSocketBuffersStillIntact) { BothWaysIntact(7, 4096, 300000, 200000); }

TEST(PumpTest, CloseAfterWriteDeliversEverythingThenEof) {
  PumpFixture f;
  const auto data = PatternBytes(1 << 20, 3);
  auto writer = std::async(std::launch::async, [&] {
    WriteAllFd(f.outer_a, data);
    f.CloseA();  // close right behind the data: the pump must still deliver all of it
  });
  const auto got = ReadToEof(f.outer_b);  // returns at the end of stream
  writer.get();
  EXPECT_TRUE(got == data) << "got " << got.size() << " of " << data.size() << " bytes";
  EXPECT_EQ(f.result.get().end, PumpResult::End::kAClosed);
}

TEST(PumpTest, CloseOfBPropagatesToA) {
  PumpFixture f;
  const auto data = PatternBytes(100000, 4);
  WriteAllFd(f.outer_b, data);
  f.CloseB();
  EXPECT_TRUE(ReadToEof(f.outer_a) == data);
  EXPECT_EQ(f.result.get().end, PumpResult::End::kBClosed);
}

TEST(PumpTest, StopEndsAnIdlePump) {
  PumpFixture f;
  f.stop.Set();
  EXPECT_EQ(f.result.get().end, PumpResult::End::kStopped);
  EXPECT_TRUE(ReadToEof(f.outer_a).empty());
}

TEST(PumpTest, ZeroBufferIsRefused) {
  auto [x, y] = MakeSocketPair();
  FdChannel a(x);
  FdChannel b(y);
  EXPECT_THROW(Pump(a, b, PumpOptions{.buffer_bytes = 0}), TransportError);
}

}  // namespace
}  // namespace dmahil::agent::transport
