// Real gRPC over loopback through the whole transport, with socketpairs standing in for
// the vchan: client -> TCP -> VchanRelay -> Pump -> fake vchan -> Pump (guest loop) ->
// socketpair -> grpc::AddInsecureChannelFromFd -> server.
#include <grpc/grpc.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <vector>

#include "agent/transport/fd_channel.h"
#include "agent/transport/grpc_over_channel.h"
#include "agent/transport/test_support.h"
#include "agent/transport/vchan_relay.h"
#include "dmahil/v1/agent.grpc.pb.h"

namespace dmahil::agent::transport {
namespace {

namespace v1 = dmahil::v1;
using testing::PatternBytes;

// Just enough of the agent service: GetInfo names the session; ReadBytes returns `length`
// pattern bytes (no 64 KiB cap here: the point is a response far larger than a ring);
// MapForeign echoes each gref * 3 as a pfn (a request far larger than a ring).
class TestAgent final : public v1::Agent::Service {
 public:
  grpc::Status GetInfo(grpc::ServerContext*, const v1::GetInfoRequest*,
                       v1::AgentInfo* info) override {
    info->set_backend("transport-test");
    info->set_domid(7);
    return grpc::Status::OK;
  }
  grpc::Status ReadBytes(grpc::ServerContext*, const v1::ReadBytesRequest* req,
                         v1::ReadBytesResponse* resp) override {
    const auto bytes = PatternBytes(req->length(), req->buffer());
    resp->set_data(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return grpc::Status::OK;
  }
  grpc::Status MapForeign(grpc::ServerContext*, const v1::MapForeignRequest* req,
                          v1::BufferInfo* info) override {
    for (uint32_t g : req->grefs()) info->add_pfns(uint64_t{g} * 3);
    info->set_buffer(static_cast<uint32_t>(req->grefs_size()));
    return grpc::Status::OK;
  }
};

// The fake vchan: each relay connect makes a socketpair; the guest loop's acceptor gets
// one end, the relay the other.
class FakeVchan {
 public:
  std::unique_ptr<ByteChannel> Connect(const StopSignal&) {
    auto [guest_end, dom0_end] = MakeSocketPair();
    {
      std::lock_guard lock(mutex_);
      pending_.push_back(guest_end);
      ++connects_;
    }
    cv_.notify_all();
    return std::make_unique<FdChannel>(dom0_end);
  }
  std::unique_ptr<ByteChannel> Accept(const StopSignal& stop) {
    std::unique_lock lock(mutex_);
    while (pending_.empty()) {
      if (stop.IsSet()) return nullptr;
      cv_.wait_for(lock, std::chrono::milliseconds(20));
    }
    const int fd = pending_.front();
    pending_.pop_front();
    return std::make_unique<FdChannel>(fd);
  }
  int connects() {
    std::lock_guard lock(mutex_);
    return connects_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<int> pending_;
  int connects_ = 0;
};

// gRPC stays initialised for the whole binary: otherwise each test's last ~Server runs
// grpc_shutdown, which (gRPC 1.51) joins an executor thread that can sit up to 10 s in
// epoll_wait (seen with gdb in grpc_core::Executor::SetThreading).
const bool kGrpcInitialised = [] {
  grpc_init();
  return true;
}();

class RelayGrpcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;  // no listening port: connections come only via fds
    builder.RegisterService(&service_);
    builder.SetMaxReceiveMessageSize(16 << 20);
    builder.SetMaxSendMessageSize(16 << 20);
    server_ = builder.BuildAndStart();
    ASSERT_TRUE(server_);
    guest_ = std::async(std::launch::async, [this] {
      return ServeGrpcOverChannels(
          *server_, [this](const StopSignal& s) { return vchan_.Accept(s); }, guest_stop_);
    });
    relay_ = std::make_unique<VchanRelay>(
        "127.0.0.1", 0, [this](const StopSignal& s) { return vchan_.Connect(s); });
    relay_thread_ = std::async(std::launch::async, [this] { relay_->Run(); });
  }
  void TearDown() override {
    relay_->Stop();
    relay_thread_.get();
    guest_stop_.Set();
    sessions_ = guest_.get();
    server_->Shutdown();
  }

  std::unique_ptr<v1::Agent::Stub> NewStub() {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(16 << 20);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a fresh TCP connection per channel
    return v1::Agent::NewStub(grpc::CreateCustomChannel(
        "127.0.0.1:" + std::to_string(relay_->port()), grpc::InsecureChannelCredentials(), args));
  }

  static grpc::Status GetInfo(v1::Agent::Stub& stub, v1::AgentInfo* info) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    return stub.GetInfo(&ctx, v1::GetInfoRequest(), info);
  }

  TestAgent service_;
  std::unique_ptr<grpc::Server> server_;
  FakeVchan vchan_;
  StopSignal guest_stop_;
  std::future<int> guest_;
  std::unique_ptr<VchanRelay> relay_;
  std::future<void> relay_thread_;
  int sessions_ = 0;
};

TEST_F(RelayGrpcTest, UnaryCallsAndLargeMessagesBothWays) {
  auto stub = NewStub();
  v1::AgentInfo info;
  const grpc::Status st = GetInfo(*stub, &info);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(info.backend(), "transport-test");
  EXPECT_EQ(info.domid(), 7u);

  // 1 MiB response: 16 rings' worth.
  grpc::ClientContext read_ctx;
  v1::ReadBytesRequest read_req;
  read_req.set_buffer(5);
  read_req.set_length(1 << 20);
  v1::ReadBytesResponse read_resp;
  ASSERT_TRUE(stub->ReadBytes(&read_ctx, read_req, &read_resp).ok());
  const auto want = PatternBytes(1 << 20, 5);
  ASSERT_EQ(read_resp.data().size(), want.size());
  EXPECT_EQ(0, std::memcmp(read_resp.data().data(), want.data(), want.size()));

  // A request of 300000 grefs (~1 MiB of varints) and its 300000-pfn answer.
  grpc::ClientContext map_ctx;
  v1::MapForeignRequest map_req;
  for (uint32_t i = 0; i < 300000; ++i) map_req.add_grefs(i * 4099u);
  v1::BufferInfo map_resp;
  ASSERT_TRUE(stub->MapForeign(&map_ctx, map_req, &map_resp).ok());
  ASSERT_EQ(map_resp.pfns_size(), 300000);
  for (int i = 0; i < map_resp.pfns_size(); ++i)
    ASSERT_EQ(map_resp.pfns(i), uint64_t{static_cast<uint32_t>(i) * 4099u} * 3) << i;
}

TEST_F(RelayGrpcTest, ReconnectGetsAFreshConnection) {
  for (int round = 0; round < 3; ++round) {
    auto stub = NewStub();
    v1::AgentInfo info;
    const grpc::Status st = GetInfo(*stub, &info);
    ASSERT_TRUE(st.ok()) << "round " << round << ": " << st.error_message();
    // stub (and its channel, with its own subchannel pool) goes away here: TCP closes,
    // the relay closes the fake vchan, the guest loop ends that session.
  }
  EXPECT_EQ(vchan_.connects(), 3);
}

// A raw TCP connection to the relay (the fd), or -1.
int ConnectTcp(uint16_t port) {
  const int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(s);
    return -1;
  }
  return s;
}

// Waits up to timeout_ms for the socket to become readable; returns recv's result
// (> 0 data, 0 closed) or -2 on timeout.
ssize_t RecvWithin(int s, char* buf, std::size_t len, int timeout_ms) {
  pollfd p{s, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) == 0) return -2;
  return recv(s, buf, len, 0);
}

TEST_F(RelayGrpcTest, SecondConnectionWaitsThenIsServed) {
  auto stub = NewStub();
  v1::AgentInfo info;
  ASSERT_TRUE(GetInfo(*stub, &info).ok());  // the channel's connection is now relayed

  const int s = ConnectTcp(relay_->port());
  ASSERT_GE(s, 0);
  char buf[64];
  EXPECT_EQ(RecvWithin(s, buf, sizeof buf, 200), -2) << "a waiting connection gets nothing";
  EXPECT_EQ(vchan_.connects(), 1);
  ASSERT_TRUE(GetInfo(*stub, &info).ok()) << "the first connection must be unaffected";

  stub.reset();  // the first connection closes; the waiting one is relayed
  // The guest's gRPC server speaks first: an HTTP/2 SETTINGS frame (type 4 at byte 3).
  const ssize_t n = RecvWithin(s, buf, sizeof buf, 10000);
  ASSERT_GE(n, 9) << "no HTTP/2 frame from the guest's gRPC server";
  EXPECT_EQ(buf[3], 4);
  EXPECT_EQ(vchan_.connects(), 2);
  close(s);
}

TEST_F(RelayGrpcTest, ConnectionsBeyondTheWaitQueueAreRefused) {
  auto stub = NewStub();
  v1::AgentInfo info;
  ASSERT_TRUE(GetInfo(*stub, &info).ok());

  std::vector<int> waiting;
  for (std::size_t i = 0; i < VchanRelay::kMaxWaiting; ++i) {
    waiting.push_back(ConnectTcp(relay_->port()));
    ASSERT_GE(waiting.back(), 0);
  }
  const int refused = ConnectTcp(relay_->port());
  ASSERT_GE(refused, 0);  // the kernel accepts it; the relay then closes it
  char buf[16];
  EXPECT_EQ(RecvWithin(refused, buf, sizeof buf, 10000), 0) << "must be closed by the relay";
  for (int fd : waiting) EXPECT_EQ(RecvWithin(fd, buf, sizeof buf, 0), -2);
  for (int fd : waiting) close(fd);
  close(refused);
  EXPECT_EQ(vchan_.connects(), 1);
}

}  // namespace
}  // namespace dmahil::agent::transport
