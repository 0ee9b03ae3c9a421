// The agents over real gRPC on loopback, with the sim backend: the happy path and every
// refusal of bad input (unknown gref, zero / oversized length, DMA window outside the
// mapping, wrong role, wrong pattern geometry), with no crash and nothing half-done.
#include <chrono>
#include <future>

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>

#include "agent/grpc_server.h"
#include "agent/vboard.h"
#include "common/pattern.h"
#include "common/validate.h"

namespace dmahil::agent {
namespace {

class AgentOverGrpc : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* root = std::getenv("DMAHIL_SOURCE_DIR");
    board_ = LoadBoard(std::string(root ? root : ".") + "/boards/zcu102-virtual.textproto");
    server_ = std::make_unique<VirtualBoardServer>(board_, std::vector<std::string>{}, 5);
    dom0_ = v1::Agent::NewStub(
        grpc::CreateChannel(server_->endpoints().dom0, grpc::InsecureChannelCredentials()));
    guest_ = v1::Agent::NewStub(
        grpc::CreateChannel(server_->endpoints().guest, grpc::InsecureChannelCredentials()));
  }

  v1::AllocGrantsResponse Grant(uint32_t pages) {
    grpc::ClientContext ctx;
    v1::AllocGrantsRequest req;
    req.set_pages(pages);
    v1::AllocGrantsResponse resp;
    EXPECT_TRUE(guest_->AllocGrants(&ctx, req, &resp).ok());
    return resp;
  }
  v1::BufferInfo MapAll(const v1::AllocGrantsResponse& g) {
    grpc::ClientContext ctx;
    v1::MapForeignRequest req;
    req.set_domid(1);
    *req.mutable_grefs() = g.grefs();
    v1::BufferInfo resp;
    EXPECT_TRUE(dom0_->MapForeign(&ctx, req, &resp).ok());
    return resp;
  }
  grpc::Status DmaMap(uint32_t buffer, uint64_t offset, uint64_t length, v1::DmaMapping* out) {
    grpc::ClientContext ctx;
    v1::DmaMapRequest req;
    req.set_buffer(buffer);
    req.set_offset(offset);
    req.set_length(length);
    req.set_direction(v1::DMA_TO_DEVICE);
    return dom0_->DmaMap(&ctx, req, out);
  }

  v1::Board board_;
  std::unique_ptr<VirtualBoardServer> server_;
  std::unique_ptr<v1::Agent::Stub> dom0_;
  std::unique_ptr<v1::Agent::Stub> guest_;
};

TEST_F(AgentOverGrpc, InfoSaysRoleAndBoard) {
  grpc::ClientContext ctx;
  v1::AgentInfo info;
  ASSERT_TRUE(guest_->GetInfo(&ctx, {}, &info).ok());
  EXPECT_EQ(info.role(), v1::ROLE_GUEST);
  EXPECT_EQ(info.domid(), 1u);
  EXPECT_EQ(info.board(), "zcu102-virtual");
  EXPECT_EQ(info.line_size(), 64u);
}

TEST_F(AgentOverGrpc, ForeignMapReportsPfnAndMachineFrame) {
  const auto g = Grant(4);
  ASSERT_EQ(g.grefs_size(), 4);
  const auto b = MapAll(g);
  v1::DmaMapping m;
  ASSERT_TRUE(DmaMap(b.buffer(), 0, 4 * 4096, &m).ok());
  ASSERT_EQ(m.segments_size(), 4);
  for (const auto& s : m.segments()) {
    EXPECT_TRUE(s.foreign());
    EXPECT_NE(s.pfn(), s.bfn());
    EXPECT_EQ(s.dma_addr(), s.bfn() << 12) << "no dma-ranges on this board";
  }
}

TEST_F(AgentOverGrpc, UnknownGrefIsRefusedAndNothingStaysMapped) {
  const auto g = Grant(2);
  grpc::ClientContext ctx;
  v1::MapForeignRequest req;
  req.set_domid(1);
  req.add_grefs(g.grefs(0));
  req.add_grefs(4000);
  v1::BufferInfo resp;
  const grpc::Status s = dom0_->MapForeign(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("gref 4000"), std::string::npos) << s.error_message();
  // The first gref was rolled back: it can be mapped again and the guest can end it.
  EXPECT_EQ(MapAll(g).pfns_size(), 2);
}

TEST_F(AgentOverGrpc, ZeroAndOversizedLengthsAreRefused) {
  const auto b = MapAll(Grant(2));
  v1::DmaMapping m;
  grpc::Status s = DmaMap(b.buffer(), 0, 0, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("length is 0"), std::string::npos);
  s = DmaMap(b.buffer(), 4096, 8192, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << "window past the mapping";
  EXPECT_NE(s.error_message().find("exceeds buffer"), std::string::npos);
  s = DmaMap(b.buffer(), ~uint64_t{0} - 10, 20, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE) << "overflowing window";
  grpc::ClientContext ctx;
  v1::AllocGrantsRequest big;
  big.set_pages(100000);
  v1::AllocGrantsResponse r;
  s = guest_->AllocGrants(&ctx, big, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("1..1024"), std::string::npos);
  grpc::ClientContext ctx2;
  v1::AllocGrantsRequest thrice;
  thrice.set_pages(1);
  thrice.set_grants_per_page(3);
  s = guest_->AllocGrants(&ctx2, thrice, &r);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("grants_per_page 3"), std::string::npos);
}

TEST_F(AgentOverGrpc, SameFrameGrantedTwiceMapsAtTwoPfnsToOneFrame) {
  grpc::ClientContext ctx;
  v1::AllocGrantsRequest req;
  req.set_pages(2);
  req.set_grants_per_page(2);
  v1::AllocGrantsResponse g;
  ASSERT_TRUE(guest_->AllocGrants(&ctx, req, &g).ok());
  ASSERT_EQ(g.grefs_size(), 4);
  v1::AllocGrantsResponse first = g;
  first.mutable_grefs()->Truncate(2);
  v1::AllocGrantsResponse second;
  second.add_grefs(g.grefs(2));
  second.add_grefs(g.grefs(3));
  const auto a = MapAll(first);
  const auto b = MapAll(second);
  v1::DmaMapping ma, mb;
  ASSERT_TRUE(DmaMap(a.buffer(), 0, 8192, &ma).ok());
  ASSERT_TRUE(DmaMap(b.buffer(), 0, 8192, &mb).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_NE(ma.segments(i).pfn(), mb.segments(i).pfn());
    EXPECT_EQ(ma.segments(i).bfn(), mb.segments(i).bfn());
  }
}

TEST_F(AgentOverGrpc, WrongRoleAndUnknownHandlesAreRefused) {
  grpc::ClientContext c1;
  v1::MapForeignRequest req;
  req.set_domid(0);
  req.add_grefs(8);
  v1::BufferInfo resp;
  EXPECT_EQ(guest_->MapForeign(&c1, req, &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext c2;
  v1::DmaUnmapRequest un;
  un.set_mapping(77);
  v1::DmaUnmapResponse ur;
  EXPECT_EQ(dom0_->DmaUnmap(&c2, un, &ur).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::DmaMapping m;
  EXPECT_EQ(DmaMap(99, 0, 4096, &m).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AgentOverGrpc, FillAndVerifyRoundTripAndBadPatternIsRefused) {
  const auto g = Grant(1);
  v1::PatternSpec p;
  p.set_seed(9);
  p.set_buffer_id(3);
  p.set_generation(1);
  p.set_line_size(64);
  {
    grpc::ClientContext ctx;
    v1::FillRequest f;
    f.set_buffer(g.buffer());
    f.set_length(4096);
    *f.mutable_pattern() = p;
    v1::FillResponse r;
    ASSERT_TRUE(guest_->Fill(&ctx, f, &r).ok());
  }
  {
    grpc::ClientContext ctx;
    v1::VerifyRequest v;
    v.set_buffer(g.buffer());
    v.set_length(4096);
    *v.mutable_pattern() = p;
    v1::CheckSummary sum;
    ASSERT_TRUE(guest_->Verify(&ctx, v, &sum).ok());
    EXPECT_EQ(sum.lines_checked(), 64u);
    EXPECT_EQ(sum.lines_ok(), 64u);
  }
  {
    grpc::ClientContext ctx;
    v1::VerifyRequest v;
    v.set_buffer(g.buffer());
    v.set_length(4096);
    *v.mutable_pattern() = p;
    v.mutable_pattern()->set_generation(2);  // what a device write would have produced
    v1::CheckSummary sum;
    ASSERT_TRUE(guest_->Verify(&ctx, v, &sum).ok());
    EXPECT_EQ(sum.mismatches_total(), 64u);
    ASSERT_GT(sum.mismatches_size(), 0);
    EXPECT_EQ(sum.mismatches(0).cls(), v1::LINE_STALE);
    EXPECT_EQ(sum.mismatches(0).found_generation(), 1u);
  }
  {
    grpc::ClientContext ctx;
    v1::FillRequest f;
    f.set_buffer(g.buffer());
    f.set_length(4096);
    *f.mutable_pattern() = p;
    f.mutable_pattern()->set_line_size(128);
    v1::FillResponse r;
    const grpc::Status s = guest_->Fill(&ctx, f, &r);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(s.error_message().find("line_size 128"), std::string::npos);
  }
}

TEST_F(AgentOverGrpc, ReleaseWhileMappedIsRefused) {
  const auto b = MapAll(Grant(1));
  v1::DmaMapping m;
  ASSERT_TRUE(DmaMap(b.buffer(), 0, 4096, &m).ok());
  grpc::ClientContext ctx;
  v1::ReleaseBufferRequest rel;
  rel.set_buffer(b.buffer());
  v1::ReleaseBufferResponse rr;
  EXPECT_EQ(dom0_->ReleaseBuffer(&ctx, rel, &rr).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
}

}  // namespace
}  // namespace dmahil::agent

namespace dmahil::agent {
namespace {

TEST_F(AgentOverGrpc, GuestReleaseWhileDom0MapsIsRefusedWholeAndWorksLater) {
  const auto g = Grant(3);
  v1::AllocGrantsResponse last;
  last.add_grefs(g.grefs(2));
  const auto d = MapAll(last);  // dom0 maps only the third grant
  auto release = [](v1::Agent::Stub* stub, uint32_t buffer) {
    grpc::ClientContext ctx;
    v1::ReleaseBufferRequest rel;
    rel.set_buffer(buffer);
    v1::ReleaseBufferResponse rr;
    return stub->ReleaseBuffer(&ctx, rel, &rr);
  };
  const grpc::Status refused = release(guest_.get(), g.buffer());
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(refused.error_message().find("nothing was released"), std::string::npos);
  ASSERT_TRUE(release(dom0_.get(), d.buffer()).ok());
  EXPECT_TRUE(release(guest_.get(), g.buffer()).ok()) << "the retry succeeds whole";
}

}  // namespace
}  // namespace dmahil::agent

namespace dmahil::agent {
namespace {

TEST_F(AgentOverGrpc, ScatterlistMixingForeignAndLocalPagesCrossesPages) {
  const auto f = MapAll(Grant(2));
  grpc::ClientContext c1;
  v1::AllocLocalRequest lreq;
  lreq.set_pages(2);
  v1::BufferInfo l;
  ASSERT_TRUE(dom0_->AllocLocal(&c1, lreq, &l).ok());
  v1::ComposeBufferRequest creq;
  for (const auto& [buf, page] :
       {std::pair{f.buffer(), 0u}, {f.buffer(), 1u}, {l.buffer(), 0u}, {l.buffer(), 1u}}) {
    v1::PageRef* r = creq.add_pages();
    r->set_buffer(buf);
    r->set_page(page);
  }
  grpc::ClientContext c2;
  v1::BufferInfo mixed;
  ASSERT_TRUE(dom0_->ComposeBuffer(&c2, creq, &mixed).ok());
  grpc::ClientContext c3;
  v1::DmaMapRequest m;
  m.set_buffer(mixed.buffer());
  m.set_offset(0x800);
  m.set_length(0x3000);
  m.set_direction(v1::DMA_FROM_DEVICE);
  m.set_sg(true);
  v1::DmaMapping mapping;
  ASSERT_TRUE(dom0_->DmaMap(&c3, m, &mapping).ok());
  ASSERT_EQ(mapping.segments_size(), 2) << "pfn-contiguous pages merge into one entry each";
  EXPECT_EQ(mapping.segments(0).length(), 0x1800u);
  EXPECT_TRUE(mapping.segments(0).foreign());
  // The domU's frames are scattered in machine memory (seeded), so the two foreign pages'
  // bus frames are not contiguous: range_straddles_page_boundary bounces the entry.
  EXPECT_TRUE(mapping.segments(0).bounced()) << "an entry whose bus frames are not contiguous";
  EXPECT_FALSE(mapping.segments(1).foreign());
  EXPECT_FALSE(mapping.segments(1).bounced()) << "dom0's own contiguous pages map directly";
  EXPECT_EQ(mapping.segments(1).dma_addr(), mapping.segments(1).pfn() << 12);

  grpc::ClientContext c4;
  v1::ReleaseBufferRequest rel;
  rel.set_buffer(l.buffer());
  v1::ReleaseBufferResponse rr;
  EXPECT_EQ(dom0_->ReleaseBuffer(&c4, rel, &rr).error_code(), grpc::StatusCode::FAILED_PRECONDITION)
      << "a composed buffer still uses its pages";

  v1::ComposeBufferRequest bad;
  v1::PageRef* r = bad.add_pages();
  r->set_buffer(l.buffer());
  r->set_page(7);
  grpc::ClientContext c5;
  v1::BufferInfo out;
  const grpc::Status s = dom0_->ComposeBuffer(&c5, bad, &out);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::OUT_OF_RANGE);
  EXPECT_NE(s.error_message().find("page 7"), std::string::npos) << s.error_message();
  r->set_buffer(999);
  grpc::ClientContext c6;
  EXPECT_EQ(dom0_->ComposeBuffer(&c6, bad, &out).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace dmahil::agent

namespace dmahil::agent {
namespace {

TEST_F(AgentOverGrpc, ReadBytesReturnsWhatFillWroteAndRefusesTooMuch) {
  const auto g = Grant(1);
  v1::PatternSpec p;
  p.set_seed(3);
  p.set_buffer_id(1);
  p.set_generation(1);
  p.set_line_size(64);
  grpc::ClientContext c1;
  v1::FillRequest f;
  f.set_buffer(g.buffer());
  f.set_length(4096);
  *f.mutable_pattern() = p;
  v1::FillResponse fr;
  ASSERT_TRUE(guest_->Fill(&c1, f, &fr).ok());
  grpc::ClientContext c2;
  v1::ReadBytesRequest r;
  r.set_buffer(g.buffer());
  r.set_offset(24);
  r.set_length(40);
  v1::ReadBytesResponse rr;
  ASSERT_TRUE(guest_->ReadBytes(&c2, r, &rr).ok());
  std::string line(64, '\0');
  pattern::FillLine(pattern::Spec{3, 1, 1, 0, 64}, 0, reinterpret_cast<uint8_t*>(line.data()));
  EXPECT_EQ(rr.data(), line.substr(24, 40));
  grpc::ClientContext c3;
  r.set_length(65 * 1024);
  EXPECT_EQ(guest_->ReadBytes(&c3, r, &rr).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

}  // namespace
}  // namespace dmahil::agent

namespace dmahil::agent {
namespace {

// The write fence of the virtual board, as dmahil.ko's on a real one (docs/architecture.md
// §12): with the dma-ops-bypass-xen fault the DMA API hands out the foreign pages' pfn
// addresses; the backend marks those segments write_refused and the virtual engine reads
// them but never writes them. Right segments stay writable.
class EngineFence : public ::testing::Test {
 protected:
  void Start(const std::vector<std::string>& faults) {
    const char* root = std::getenv("DMAHIL_SOURCE_DIR");
    Start(faults, LoadBoard(std::string(root ? root : ".") + "/boards/zcu102-virtual.textproto"));
  }
  void Start(const std::vector<std::string>& faults, const v1::Board& b) {
    board_ = std::make_unique<sim::VirtualBoard>(b, sim::FaultSet::Parse(faults), 5);
    dom0_ = std::make_unique<SimBackend>(*board_, v1::ROLE_DOM0);
    guest_ = std::make_unique<SimBackend>(*board_, v1::ROLE_GUEST);
    port_ = std::make_unique<SimMemoryPort>(*board_, dom0_.get());
  }
  /// Grants and maps `pages` foreign pages, then DMA-maps them BIDIRECTIONAL.
  v1::DmaMapping MapForeign(uint32_t pages) {
    v1::AllocGrantsRequest g;
    g.set_pages(pages);
    g.set_to_domid(0);
    v1::AllocGrantsResponse gr;
    EXPECT_TRUE(guest_->AllocGrants(g, &gr).ok());
    v1::MapForeignRequest mf;
    mf.set_domid(1);
    *mf.mutable_grefs() = gr.grefs();
    v1::BufferInfo b;
    EXPECT_TRUE(dom0_->MapForeign(mf, &b).ok());
    v1::DmaMapRequest req;
    req.set_buffer(b.buffer());
    req.set_length(pages * 4096ull);
    req.set_direction(v1::DMA_BIDIRECTIONAL);
    v1::DmaMapping m;
    EXPECT_TRUE(dom0_->DmaMap(req, &m).ok());
    return m;
  }
  std::unique_ptr<sim::VirtualBoard> board_;
  std::unique_ptr<SimBackend> dom0_, guest_;
  std::unique_ptr<SimMemoryPort> port_;
};

TEST_F(EngineFence, AWrongBusAddressIsReadButNeverWritten) {
  Start({"dma-ops-bypass-xen"});
  const v1::DmaMapping m = MapForeign(2);
  ASSERT_EQ(m.segments_size(), 2);
  uint8_t buf[64] = {};
  for (const v1::DmaSegment& s : m.segments()) {
    EXPECT_EQ(s.dma_addr(), s.pfn() << 12) << "the fault: the pfn's address, not the bfn's";
    EXPECT_TRUE(s.write_refused()) << s.ShortDebugString();
    EXPECT_TRUE(port_->Read(s.dma_addr(), buf, sizeof buf).ok) << "a read goes ahead";
    const firmware::BusResult w = port_->Write(s.dma_addr(), buf, sizeof buf);
    EXPECT_FALSE(w.ok) << "a write to a wrong bus address reached the bus";
    EXPECT_EQ(w.fault_addr, s.dma_addr());
  }
}

TEST_F(EngineFence, RightSegmentsAreWritableAndNothingOutsideAMappingIsTouched) {
  Start({});
  const v1::DmaMapping m = MapForeign(2);
  ASSERT_EQ(m.segments_size(), 2);
  uint8_t buf[64] = {};
  for (const v1::DmaSegment& s : m.segments()) {
    EXPECT_FALSE(s.write_refused()) << s.ShortDebugString();
    EXPECT_TRUE(port_->Write(s.dma_addr(), buf, sizeof buf).ok);
    EXPECT_FALSE(port_->Write(s.dma_addr() + 4096 - 32, buf, sizeof buf).ok)
        << "across the segment's end";
  }
  EXPECT_FALSE(port_->Read(0x1000, buf, sizeof buf).ok) << "no mapping there";
  EXPECT_TRUE(dom0_->DmaUnmap(m.mapping(), nullptr).ok());
  EXPECT_FALSE(port_->Write(m.segments(0).dma_addr(), buf, sizeof buf).ok) << "after unmap";
}

}  // namespace
}  // namespace dmahil::agent

// A refused request keeps nothing it took before refusing (the board stays clean for the
// next request), and every refusal carries a message, also for requests the server cannot
// decode.
namespace dmahil::agent {
namespace {

v1::Board ZcuBoard() {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  return LoadBoard(std::string(root ? root : ".") + "/boards/zcu102-virtual.textproto");
}

grpc::Status AllocGrants(v1::Agent::Stub& guest, uint32_t pages, uint32_t grants_per_page,
                         v1::AllocGrantsResponse* out) {
  grpc::ClientContext ctx;
  v1::AllocGrantsRequest req;
  req.set_pages(pages);
  req.set_grants_per_page(grants_per_page);
  req.set_to_domid(0);
  return guest.AllocGrants(&ctx, req, out);
}

grpc::Status Release(v1::Agent::Stub& stub, uint32_t buffer) {
  grpc::ClientContext ctx;
  v1::ReleaseBufferRequest req;
  req.set_buffer(buffer);
  v1::ReleaseBufferResponse resp;
  return stub.ReleaseBuffer(&ctx, req, &resp);
}

// The audit's case: 1000 pages granted twice need 2000 grants; the table (1024 entries)
// runs out mid-request. Every grant it made and every frame it populated goes back.
TEST_F(AgentOverGrpc, AnAllocGrantsThatRunsOutOfGrantsKeepsNoGrant) {
  v1::AllocGrantsResponse r;
  const grpc::Status refused = AllocGrants(*guest_, 1000, 2, &r);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("grant table full (1024 entries)"), std::string::npos)
      << refused.error_message();
  EXPECT_NE(refused.error_message().find("nothing was kept"), std::string::npos)
      << refused.error_message();

  v1::AllocGrantsResponse few;
  const grpc::Status next = AllocGrants(*guest_, 4, 1, &few);
  ASSERT_TRUE(next.ok()) << "a few pages on a clean board: " << next.error_message();
  EXPECT_EQ(few.grefs_size(), 4);
  ASSERT_TRUE(Release(*guest_, few.buffer()).ok());

  // Every one of the 1024 grant entries is free again: 512 pages granted twice fit
  // exactly, and one grant more does not.
  v1::AllocGrantsResponse whole;
  const grpc::Status all = AllocGrants(*guest_, 512, 2, &whole);
  ASSERT_TRUE(all.ok()) << all.error_message();
  EXPECT_EQ(whole.grefs_size(), 1024);
  v1::AllocGrantsResponse one;
  EXPECT_EQ(AllocGrants(*guest_, 1, 1, &one).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
      << "the table holds 1024 grants";
}

// A board whose domU has exactly 1024 frames: a refused AllocGrants must give back the
// frames it populated, or the next request finds too few.
TEST(AgentOverGrpcSmallDomU, AnAllocGrantsRefusedMidwayGivesItsDomUFramesBack) {
  v1::Board board = ZcuBoard();
  board.mutable_xen()->clear_domu_ram();
  v1::MemoryBank* bank = board.mutable_xen()->add_domu_ram();
  bank->set_name("domu-4m");
  bank->set_base(0x40000000);
  bank->set_size(1024 * 4096);
  ValidateBoard(board, SourceMap());
  VirtualBoardServer server(board, {}, 5);
  auto guest = v1::Agent::NewStub(
      grpc::CreateChannel(server.endpoints().guest, grpc::InsecureChannelCredentials()));

  v1::AllocGrantsResponse r;
  const grpc::Status refused = AllocGrants(*guest, 1000, 2, &r);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("nothing was kept"), std::string::npos)
      << refused.error_message();

  // All 1024 frames and all 1024 grants: only if the refusal kept none of either.
  v1::AllocGrantsResponse whole;
  const grpc::Status all = AllocGrants(*guest, 1024, 1, &whole);
  ASSERT_TRUE(all.ok()) << all.error_message();
  EXPECT_EQ(whole.gfns_size(), 1024);
  v1::AllocGrantsResponse one;
  const grpc::Status more = AllocGrants(*guest, 1, 1, &one);
  EXPECT_EQ(more.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << "the domU has 1024 frames";
  EXPECT_NE(more.error_message().find("only 0 free frames"), std::string::npos)
      << more.error_message();
}

// swiotlb full mid-request: every page of a 32-bit mapping of domU frames above 4 GiB
// bounces, and a 64 KiB pool holds 16 pages. The pages the refused DmaMap bounced are
// unmapped, so exactly what was free before it is free after it.
TEST(AgentOverGrpcSmallSwiotlb, ADmaMapThatFillsTheSwiotlbMidwayKeepsNoBounceSlot) {
  v1::Board board = ZcuBoard();
  board.mutable_xen()->mutable_swiotlb_pool()->set_size(64 * 1024);
  ValidateBoard(board, SourceMap());
  VirtualBoardServer server(board, {}, 5);
  auto guest = v1::Agent::NewStub(
      grpc::CreateChannel(server.endpoints().guest, grpc::InsecureChannelCredentials()));
  auto dom0 = v1::Agent::NewStub(
      grpc::CreateChannel(server.endpoints().dom0, grpc::InsecureChannelCredentials()));
  grpc::ClientContext c1;
  v1::AllocGrantsRequest greq;
  greq.set_pages(16);
  greq.set_placement(v1::PLACEMENT_NEEDS_BOUNCE);
  greq.set_dma_mask_bits(32);
  v1::AllocGrantsResponse g;
  ASSERT_TRUE(guest->AllocGrants(&c1, greq, &g).ok());
  grpc::ClientContext c2;
  v1::MapForeignRequest mreq;
  mreq.set_domid(1);
  *mreq.mutable_grefs() = g.grefs();
  v1::BufferInfo f;
  ASSERT_TRUE(dom0->MapForeign(&c2, mreq, &f).ok());
  auto map = [&](uint64_t pages, v1::DmaMapping* m) {
    grpc::ClientContext ctx;
    v1::DmaMapRequest req;
    req.set_buffer(f.buffer());
    req.set_length(pages * 4096);
    req.set_direction(v1::DMA_TO_DEVICE);
    req.set_dma_mask_bits(32);
    return dom0->DmaMap(&ctx, req, m);
  };
  v1::DmaMapping m10;
  ASSERT_TRUE(map(10, &m10).ok());  // 10 of the pool's 16 pages in use: 6 free
  ASSERT_TRUE(m10.segments(0).bounced());

  v1::DmaMapping refused_mapping;
  const grpc::Status refused = map(16, &refused_mapping);  // bounces 6, then the pool is full
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_NE(refused.error_message().find("nothing stays mapped"), std::string::npos)
      << refused.error_message();

  v1::DmaMapping m6;
  const grpc::Status again = map(6, &m6);
  ASSERT_TRUE(again.ok()) << "the 6 pages' slots the refusal took are free again: "
                          << again.error_message();
  v1::DmaMapping m1;
  EXPECT_EQ(map(1, &m1).error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << "and no more";
  EXPECT_EQ(server.board().dma().swiotlb_slots_used(), 32u);
}

// The device drives as many address bits as the last dma_set_mask() said (sim/device_view.h).
// A refused DmaMap with a 32-bit mask must not leave the device on 32 bits under the live
// 64-bit mapping of a page above 4 GiB, or the engine reads an alias of it.
TEST_F(EngineFence, ARefusedDmaMapLeavesTheDeviceMaskAsItWas) {
  v1::Board b = ZcuBoard();
  b.mutable_xen()->mutable_swiotlb_pool()->set_size(8 * 1024);  // 2 bounced pages
  ValidateBoard(b, SourceMap());
  Start({}, b);
  v1::AllocGrantsRequest g;
  g.set_pages(4);
  g.set_placement(v1::PLACEMENT_NEEDS_BOUNCE);
  g.set_dma_mask_bits(32);
  v1::AllocGrantsResponse gr;
  ASSERT_TRUE(guest_->AllocGrants(g, &gr).ok());
  std::vector<uint8_t> bytes(64);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(0x5a ^ i);
  ASSERT_TRUE(guest_->CpuWrite(gr.buffer(), 0, bytes.data(), bytes.size()).ok());
  ASSERT_TRUE(guest_->CpuCleanInvalidate(gr.buffer(), 0, 4096).ok());
  v1::MapForeignRequest mf;
  mf.set_domid(1);
  *mf.mutable_grefs() = gr.grefs();
  v1::BufferInfo buf;
  ASSERT_TRUE(dom0_->MapForeign(mf, &buf).ok());
  v1::DmaMapRequest req;
  req.set_buffer(buf.buffer());
  req.set_length(4096);
  req.set_direction(v1::DMA_BIDIRECTIONAL);
  req.set_dma_mask_bits(64);
  v1::DmaMapping wide;
  ASSERT_TRUE(dom0_->DmaMap(req, &wide).ok());
  ASSERT_FALSE(wide.segments(0).bounced());
  ASSERT_GE(wide.segments(0).dma_addr(), uint64_t{1} << 32) << "a page above 4 GiB";
  ASSERT_EQ(board_->dma().mask_bits(), 64u);

  req.set_length(4 * 4096);  // 4 bounced pages; the pool holds 2
  req.set_dma_mask_bits(32);
  v1::DmaMapping narrow;
  const grpc::Status refused = dom0_->DmaMap(req, &narrow);
  ASSERT_EQ(refused.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << refused.error_message();
  EXPECT_EQ(board_->dma().mask_bits(), 64u) << "the refused request's dma_set_mask(32) undone";
  EXPECT_EQ(board_->dma().swiotlb_slots_used(), 0u);

  std::vector<uint8_t> seen(bytes.size());
  ASSERT_TRUE(port_->Read(wide.segments(0).dma_addr(), seen.data(), seen.size()).ok);
  EXPECT_EQ(seen, bytes) << "the engine reads the page itself, not an alias below 4 GiB";
}

TEST_F(AgentOverGrpc, AMapForeignRefusedMidwaySaysNoGrefStaysMapped) {
  const auto g = Grant(2);
  grpc::ClientContext ctx;
  v1::MapForeignRequest req;
  req.set_domid(1);
  req.add_grefs(g.grefs(0));
  req.add_grefs(g.grefs(1));
  req.add_grefs(4000);
  v1::BufferInfo resp;
  const grpc::Status s = dom0_->MapForeign(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("gref 4000"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("nothing stays mapped"), std::string::npos) << s.error_message();
  // The guest can end both grants: dom0 kept no mapping of them.
  EXPECT_TRUE(Release(*guest_, g.buffer()).ok());
}

/// Sends `bytes` as the whole request of `method` ("/dmahil.v1.Agent/DmaMap") to `endpoint`.
grpc::Status CallRaw(const std::string& endpoint, const std::string& method,
                     const std::string& bytes) {
  grpc::GenericStub stub(grpc::CreateChannel(endpoint, grpc::InsecureChannelCredentials()));
  grpc::Slice slice(bytes);
  grpc::ByteBuffer req(&slice, 1);
  grpc::ByteBuffer resp;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, method, grpc::StubOptions(), &req, &resp,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  return done.get_future().get();
}

TEST_F(AgentOverGrpc, ARequestThatDoesNotDecodeIsRefusedWithAMessageNamingTheMethod) {
  const std::string garbage = "\xff\xff\xff\xff";  // a truncated varint tag
  const grpc::Status s = CallRaw(server_->endpoints().dom0, "/dmahil.v1.Agent/DmaMap", garbage);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(s.error_message().find("/dmahil.v1.Agent/DmaMap"), std::string::npos)
      << "\"" << s.error_message() << "\"";
  EXPECT_NE(s.error_message().find("could not be decoded as a dmahil.v1.DmaMapRequest"),
            std::string::npos)
      << "\"" << s.error_message() << "\"";
  const grpc::Status g =
      CallRaw(server_->endpoints().guest, "/dmahil.v1.Agent/AllocGrants", garbage);
  EXPECT_EQ(g.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(g.error_message().find("/dmahil.v1.Agent/AllocGrants"), std::string::npos)
      << "\"" << g.error_message() << "\"";
  EXPECT_NE(g.error_message().find("dmahil.v1.AllocGrantsRequest"), std::string::npos)
      << "\"" << g.error_message() << "\"";
  // A well-formed request on the same servers still works, and a refusal that has a
  // message keeps it as it is.
  const auto b = MapAll(Grant(1));
  ASSERT_EQ(b.pfns_size(), 1);
  v1::DmaMapping m;
  EXPECT_EQ(DmaMap(b.buffer(), 0, 0, &m).error_message(), "length is 0");
}

TEST_F(AgentOverGrpc, ARequestLargerThanAnyRealOneIsRefusedUndecoded) {
  grpc::ClientContext ctx;
  v1::MapForeignRequest req;
  req.set_domid(1);
  for (int i = 0; i < 300000; ++i) req.add_grefs(0x7fffffff);  // about 1.5 MiB
  ASSERT_GT(req.ByteSizeLong(), static_cast<size_t>(kMaxAgentRequestBytes));
  v1::BufferInfo resp;
  const grpc::Status s = dom0_->MapForeign(&ctx, req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << s.error_message();
  EXPECT_NE(s.error_message().find("larger than max"), std::string::npos) << s.error_message();
  // The same server goes on serving requests of a real size.
  const auto b = MapAll(Grant(2));
  EXPECT_EQ(b.pfns_size(), 2);
}

TEST_F(AgentOverGrpc, AMethodTheServerDoesNotHaveIsRefusedWithAMessage) {
  const grpc::Status s = CallRaw(server_->endpoints().dom0, "/dmahil.v1.Agent/NoSuchCall", "");
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_FALSE(s.error_message().empty());
  EXPECT_NE(s.error_message().find("not one this agent serves"), std::string::npos)
      << s.error_message();
}

// Any handler's refusal without a message gets one on a server built with
// AddAgentServerOptions (as dmahil-agent's and dmahil-vboard's are): the generated base
// service answers every method UNIMPLEMENTED with an empty message.
TEST(AgentServerOptions, ARefusalWithoutAMessageGetsOneNamingTheMethod) {
  v1::Agent::Service bare;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  AddAgentServerOptions(builder);
  builder.RegisterService(&bare);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_TRUE(server && port != 0);
  auto stub = v1::Agent::NewStub(
      grpc::CreateChannel(fmt::format("127.0.0.1:{}", port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  v1::AgentInfo info;
  const grpc::Status s = stub->GetInfo(&ctx, {}, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(s.error_message().find("/dmahil.v1.Agent/GetInfo"), std::string::npos)
      << "\"" << s.error_message() << "\"";
  EXPECT_NE(s.error_message().find("does not serve"), std::string::npos) << s.error_message();
  // The other shapes of the message.
  EXPECT_EQ(RefusalMessage("/dmahil.v1.Agent/Fill", grpc::StatusCode::ABORTED, false),
            "/dmahil.v1.Agent/Fill: refused with ABORTED and no message from the server");
  EXPECT_NE(RefusalMessage("/dmahil.v1.Agent/Fill", grpc::StatusCode::INTERNAL, true)
                .find("could not be decoded as a dmahil.v1.FillRequest"),
            std::string::npos);
  server->Shutdown();
}

}  // namespace
}  // namespace dmahil::agent
