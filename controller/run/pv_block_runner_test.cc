// The PV block fixture runner against a stand-in domU agent over real gRPC: its "disk" is a
// file the controller reads and writes as the device side (FileDiskBacking, or a second
// stand-in agent as dom0 doing block I/O on it: AgentDiskBacking, a lab board's way), its
// buffer a small write-back cache over memory, so a missing clean before the device reads, a
// missing invalidate after the device writes, a shifted transfer and an overrun show as
// they would on a board with caches. Each fault must be caught with its diagnosis, on
// the path it breaks.
#include "controller/run/pv_block_runner.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/pattern.h"
#include "common/validate.h"
#include "controller/run/applicability.h"
#include "controller/run/disk_backing.h"
#include "controller/run/fixture_kinds.h"
#include "dmahil/v1/agent.grpc.pb.h"

namespace dmahil::controller {
namespace {

namespace fs = std::filesystem;
using grpc::Status;

constexpr uint32_t kLine = 64;

enum class Fault {
  kNone,
  kWriteNoClean,      // the device reads memory under the CPU's dirty lines
  kReadNoInvalidate,  // the CPU keeps the lines it cached before the device wrote
  kWriteShifted,      // the device takes the buffer one line further on
  kReadOverrun,       // the device writes one sector more than asked
};

/// The domU's agent: AllocLocal'ed memory behind a per-line write-back cache, and BlockIo
/// moving bytes between memory and `disk` (the same file the controller checks).
class FakeGuest final : public v1::Agent::Service {
 public:
  FakeGuest(fs::path disk, uint64_t disk_bytes, Fault fault)
      : disk_(std::move(disk)), disk_bytes_(disk_bytes), fault_(fault) {}

  std::string block_device = "/dev/xvdb";
  std::string signature;  // AgentInfo.block_signature
  std::string grants;     // AgentInfo.block_grants
  int allocs = 0;
  int live = 0;

  Status GetInfo(grpc::ServerContext*, const v1::GetInfoRequest*, v1::AgentInfo* r) override {
    r->set_role(v1::ROLE_GUEST);
    r->set_domid(1);
    r->set_line_size(kLine);
    r->set_block_device(block_device);
    r->set_block_bytes(disk_bytes_);
    r->set_block_sector_size(512);
    r->set_block_signature(signature);
    r->set_block_grants(grants);
    return Status::OK;
  }
  Status AllocLocal(grpc::ServerContext*, const v1::AllocLocalRequest* q,
                    v1::BufferInfo* r) override {
    ++allocs;
    ++live;
    // One page more than asked: memory past the buffer exists, as on a board, so a
    // shifted transfer reads it instead of running off the end.
    mem_.assign((uint64_t{q->pages()} + 1) * 4096, '\0');
    cache_ = mem_;
    cached_.assign(mem_.size() / kLine, false);
    dirty_.assign(mem_.size() / kLine, false);
    r->set_buffer(7);
    return Status::OK;
  }
  Status ReleaseBuffer(grpc::ServerContext*, const v1::ReleaseBufferRequest*,
                       v1::ReleaseBufferResponse*) override {
    --live;
    return Status::OK;
  }
  Status Fill(grpc::ServerContext*, const v1::FillRequest* q, v1::FillResponse*) override {
    std::string bytes(q->length(), '\0');
    pattern::Fill(Spec(q->pattern()), reinterpret_cast<uint8_t*>(bytes.data()), bytes.size());
    for (uint64_t l = 0; l < q->length() / kLine; ++l) {
      const uint64_t at = q->offset() + l * kLine;
      cache_.replace(at, kLine, bytes, l * kLine, kLine);
      cached_[at / kLine] = dirty_[at / kLine] = true;
    }
    return Status::OK;
  }
  Status Prime(grpc::ServerContext*, const v1::PrimeRequest* q, v1::PrimeResponse*) override {
    for (uint64_t at = q->offset(); at < q->offset() + q->length(); at += kLine) {
      if (q->op() == v1::PRIME_CLEAN_INVALIDATE) {
        Clean(at);
        cached_[at / kLine] = false;
      } else if (!cached_[at / kLine]) {
        cache_.replace(at, kLine, mem_, at, kLine);
        cached_[at / kLine] = true;
      }
    }
    return Status::OK;
  }
  Status Verify(grpc::ServerContext*, const v1::VerifyRequest* q, v1::CheckSummary* r) override {
    std::string view(q->length(), '\0');
    for (uint64_t l = 0; l < q->length() / kLine; ++l) {
      const uint64_t at = q->offset() + l * kLine;
      view.replace(l * kLine, kLine, cached_[at / kLine] ? cache_ : mem_, at, kLine);
    }
    uint64_t total = 0;
    pattern::Check(Spec(q->pattern()), reinterpret_cast<const uint8_t*>(view.data()), view.size(),
                   [&](const pattern::Finding& f) {
                     if (total++ >= q->max_findings()) return;
                     v1::LineFinding* out = r->add_mismatches();
                     out->set_line(f.line);
                     out->set_cls(static_cast<v1::LineClass>(f.cls));
                     out->set_found_buffer(f.found_buffer);
                     out->set_found_generation(f.found_generation);
                     out->set_found_line(f.found_line);
                   });
    r->set_lines_checked(q->length() / kLine);
    r->set_mismatches_total(total);
    return Status::OK;
  }
  Status BlockIo(grpc::ServerContext*, const v1::BlockIoRequest* q, v1::BlockIoResponse*) override {
    std::fstream disk(disk_, std::ios::in | std::ios::out | std::ios::binary);
    disk.seekp(static_cast<std::streamoff>(q->disk_offset()));
    if (q->op() == v1::BLOCK_WRITE) {
      // The kernel cleans the buffer for DMA_TO_DEVICE, unless it is the fault.
      for (uint64_t at = q->offset();
           at < q->offset() + q->length() && fault_ != Fault::kWriteNoClean; at += kLine)
        Clean(at);
      const uint64_t from = q->offset() + (fault_ == Fault::kWriteShifted ? kLine : 0);
      disk.write(mem_.data() + from, static_cast<std::streamsize>(q->length()));
    } else {
      const uint64_t length = q->length() + (fault_ == Fault::kReadOverrun ? 512 : 0);
      disk.read(mem_.data() + q->offset(), static_cast<std::streamsize>(length));
      // The kernel invalidates the buffer for DMA_FROM_DEVICE, unless it is the fault.
      for (uint64_t at = q->offset();
           at < q->offset() + length && fault_ != Fault::kReadNoInvalidate; at += kLine)
        cached_[at / kLine] = dirty_[at / kLine] = false;
    }
    return disk ? Status::OK : Status(grpc::StatusCode::INTERNAL, "disk I/O failed");
  }

 private:
  static pattern::Spec Spec(const v1::PatternSpec& p) {
    return pattern::Spec{p.seed(), p.buffer_id(), p.generation(), p.first_line(), p.line_size()};
  }
  void Clean(uint64_t at) {
    if (!dirty_[at / kLine]) return;
    mem_.replace(at, kLine, cache_, at, kLine);
    dirty_[at / kLine] = false;
  }

  fs::path disk_;
  uint64_t disk_bytes_;
  Fault fault_;
  std::string mem_, cache_;
  std::vector<bool> cached_, dirty_;
};

/// An engine that must not be asked anything: PV block fixtures never drive it.
class NoDevice final : public DeviceClient {
 public:
  v1::DeviceResponse Transact(const v1::DeviceRequest&) override {
    ADD_FAILURE() << "the engine was driven";
    return {};
  }
};

class PvBlockRunner : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("dmahil-pv-block-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
    disk_ = dir_ / "nvme.img";
    std::ofstream(disk_, std::ios::binary).write(std::string(kDiskBytes, '\0').data(), kDiskBytes);
  }
  void TearDown() override { fs::remove_all(dir_); }

  /// Runs the shipped fixture `name` against a FakeGuest with `fault`.
  v1::FixtureResult Run(const std::string& name, Fault fault, bool disk_visible = true,
                        const std::string& block_device = "/dev/xvdb") {
    guest_ = std::make_unique<FakeGuest>(disk_, kDiskBytes, fault);
    guest_->block_device = block_device;
    guest_->grants = grants_;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(guest_.get());
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    // dom0 serves the same disk without faults; without through_dom0_ nothing listens
    // there: the fixture itself never asks dom0.
    dom0_ = std::make_unique<FakeGuest>(disk_, kDiskBytes, Fault::kNone);
    dom0_->block_device = "/dev/nvme0n1";
    grpc::ServerBuilder dom0_builder;
    int dom0_port = 1;
    if (through_dom0_) {
      dom0_builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &dom0_port);
      dom0_builder.RegisterService(dom0_.get());
    }
    std::unique_ptr<grpc::Server> dom0_server =
        through_dom0_ ? dom0_builder.BuildAndStart() : nullptr;
    AgentClient dom0("127.0.0.1:" + std::to_string(dom0_port));
    AgentClient guest("127.0.0.1:" + std::to_string(port));
    NoDevice none;
    GuardedDeviceClient device(none);
    v1::Board board;
    board.mutable_dma()->set_coherent(true);
    if (through_dom0_) *board.mutable_test_disk() = TestDisk();
    DiskSide side = ChooseDiskSide(
        disk_visible && !through_dom0_ ? std::make_unique<FileDiskBacking>(disk_) : nullptr, board,
        dom0, through_dom0_ ? dom0.GetInfo() : v1::AgentInfo());
    BoardLink link{dom0, guest, device, kLine, side.backing.get(), side.unseen};
    const v1::Fixture f = LoadFixture(fs::path(std::getenv("DMAHIL_SOURCE_DIR")) / "fixtures" /
                                      (name + ".textproto"));
    v1::FixtureResult r = RunFixtureOfKind(link, board, "qemu-xen-arm64", f, 99, 40);
    server->Shutdown();
    if (dom0_server) dom0_server->Shutdown();
    return r;
  }

  static v1::TestDisk TestDisk() {
    v1::TestDisk t;
    t.set_dom0_device("/dev/nvme0n1");
    t.set_controller("0000:00:03.0");
    t.set_driver("nvme");
    return t;
  }

  static constexpr uint64_t kDiskBytes = 8 << 20;
  fs::path dir_, disk_;
  bool through_dom0_ = false;  // the device side through dom0's agent, not the file
  std::string grants_;         // the guest's AgentInfo.block_grants
  std::unique_ptr<FakeGuest> guest_, dom0_;
};

TEST_F(PvBlockRunner, EveryShippedShapePassesAndLeavesNothingAllocated) {
  for (const char* name :
       {"pv-block-sector", "pv-block-4k", "pv-block-64k-sg", "pv-block-256k-indirect"}) {
    const v1::FixtureResult r = Run(name, Fault::kNone);
    EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << name << ": " << r.detail();
    EXPECT_GT(r.lines_checked(), 0u) << name;
    EXPECT_EQ(r.mismatching_lines(), 0u) << name;
    EXPECT_NE(r.detail().find("device side (" + disk_.string() + ")"), std::string::npos)
        << r.detail();
    EXPECT_EQ(guest_->live, 0) << name;
  }
}

TEST_F(PvBlockRunner, ADeviceThatReadsUnderDirtyLinesIsAStaleWrite) {
  const v1::FixtureResult r = Run("pv-block-4k", Fault::kWriteNoClean);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STALE_LINE);
  EXPECT_EQ(r.detail().rfind("write path", 0), 0u) << r.detail();
  EXPECT_NE(r.detail().find("missing clean before DMA_TO_DEVICE"), std::string::npos) << r.detail();
  EXPECT_EQ(r.failed_iteration(), 1u);
  EXPECT_EQ(guest_->live, 0);
}

TEST_F(PvBlockRunner, ACpuThatKeepsItsLinesAfterTheDeviceWroteIsAStaleReadNotAWrite) {
  const v1::FixtureResult r = Run("pv-block-64k-sg", Fault::kReadNoInvalidate);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STALE_LINE);
  EXPECT_EQ(r.detail().rfind("read path", 0), 0u) << r.detail();
  EXPECT_NE(r.detail().find("missing invalidate"), std::string::npos) << r.detail();
  EXPECT_EQ(r.io_path(), v1::IO_PATH_READ);
  // Every line of the 64 KiB read, none of the write.
  EXPECT_EQ(r.mismatching_lines(), 65536u / kLine);
}

// Whether the device DMA'd blkfront's persistent grant pages or the domU's own buffer is
// part of every result, as the domU's kernel reported it.
TEST_F(PvBlockRunner, ResultsSayHowBlkfrontConnectedTheDisk) {
  grants_ = "persistent grants: disabled";
  v1::FixtureResult r = Run("pv-block-4k", Fault::kNone);
  EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << r.detail();
  EXPECT_NE(r.detail().find("in the domU (/dev/xvdb, persistent grants: disabled)"),
            std::string::npos)
      << r.detail();
  r = Run("pv-block-4k", Fault::kReadNoInvalidate);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
  EXPECT_NE(r.detail().find("; domU /dev/xvdb, persistent grants: disabled"), std::string::npos)
      << r.detail();
}

TEST_F(PvBlockRunner, AShiftedTransferIsAWrongAddressWithItsDisplacement) {
  const v1::FixtureResult r = Run("pv-block-64k-sg", Fault::kWriteShifted);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS);
  EXPECT_EQ(r.displacement(), static_cast<int64_t>(kLine));
  EXPECT_EQ(r.detail().rfind("write path", 0), 0u) << r.detail();
}

TEST_F(PvBlockRunner, ASectorWrittenPastTheReadIsStrayDmaOnTheCanary) {
  const v1::FixtureResult r = Run("pv-block-4k", Fault::kReadOverrun);
  EXPECT_EQ(r.verdict(), v1::VERDICT_FAIL) << r.detail();
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STRAY_DMA);
}

TEST_F(PvBlockRunner, WithoutAPvDiskOrItsDeviceSideTheFixtureIsNotApplicableAndTakesNothing) {
  v1::FixtureResult r = Run("pv-block-4k", Fault::kNone, true, "");
  EXPECT_EQ(r.verdict(), v1::VERDICT_NOT_APPLICABLE);
  EXPECT_NE(r.detail().find("no block device"), std::string::npos) << r.detail();
  EXPECT_EQ(guest_->allocs, 0);
  r = Run("pv-block-4k", Fault::kNone, false);
  EXPECT_EQ(r.verdict(), v1::VERDICT_NOT_APPLICABLE);
  EXPECT_NE(r.detail().find("cannot see the device side"), std::string::npos) << r.detail();
  EXPECT_EQ(guest_->allocs, 0);
}

TEST_F(PvBlockRunner, ThroughDom0sAgentEveryShapePassesAndDom0KeepsNoBuffer) {
  through_dom0_ = true;
  for (const char* name :
       {"pv-block-sector", "pv-block-4k", "pv-block-64k-sg", "pv-block-256k-indirect"}) {
    const v1::FixtureResult r = Run(name, Fault::kNone);
    EXPECT_EQ(r.verdict(), v1::VERDICT_PASS) << name << ": " << r.detail();
    EXPECT_EQ(r.mismatching_lines(), 0u) << name;
    EXPECT_NE(r.detail().find("device side (/dev/nvme0n1, nvme at 0000:00:03.0, through dom0's "
                              "agent)"),
              std::string::npos)
        << r.detail();
    // One dom0 buffer per device-side fill and check, each released.
    EXPECT_GE(dom0_->allocs, 2) << name;
    EXPECT_EQ(dom0_->live, 0) << name;
  }
}

TEST_F(PvBlockRunner, ThroughDom0sAgentEachPathsFaultKeepsItsDiagnosis) {
  through_dom0_ = true;
  v1::FixtureResult r = Run("pv-block-4k", Fault::kWriteNoClean);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STALE_LINE) << r.detail();
  EXPECT_EQ(r.detail().rfind("write path", 0), 0u) << r.detail();
  r = Run("pv-block-64k-sg", Fault::kReadNoInvalidate);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_STALE_LINE) << r.detail();
  EXPECT_EQ(r.detail().rfind("read path", 0), 0u) << r.detail();
  r = Run("pv-block-64k-sg", Fault::kWriteShifted);
  EXPECT_EQ(r.diagnosis(), v1::DIAGNOSIS_WRONG_BUS_ADDRESS) << r.detail();
  EXPECT_EQ(r.displacement(), static_cast<int64_t>(kLine));
  EXPECT_EQ(dom0_->live, 0);
}

// ChooseDiskSide against a stand-in dom0 agent: the board file's test_disk must be the
// device dom0's agent serves, and a device with a signature needs destructive: true.
TEST_F(PvBlockRunner, Dom0sDiskIsUsedOnlyAsTheBoardFileDeclaresIt) {
  FakeGuest fake(disk_, kDiskBytes, Fault::kNone);
  fake.block_device = "/dev/nvme0n1";
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&fake);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  AgentClient dom0("127.0.0.1:" + std::to_string(port));
  v1::Board board;
  const auto choose = [&] { return ChooseDiskSide(nullptr, board, dom0, dom0.GetInfo()); };

  DiskSide side = choose();  // no test_disk
  EXPECT_EQ(side.backing, nullptr);
  EXPECT_NE(side.unseen.find("dom0's agent serves /dev/nvme0n1, but the board file names no "
                             "test_disk"),
            std::string::npos)
      << side.unseen;
  *board.mutable_test_disk() = TestDisk();
  board.mutable_test_disk()->set_dom0_device("/dev/disk/by-partlabel/dmahil-test");
  side = choose();
  EXPECT_EQ(side.backing, nullptr);
  EXPECT_NE(side.unseen.find("start it with --block-device /dev/disk/by-partlabel/dmahil-test"),
            std::string::npos)
      << side.unseen;
  board.mutable_test_disk()->set_dom0_device("/dev/nvme0n1");
  fake.signature = "ext4";
  side = choose();
  EXPECT_EQ(side.backing, nullptr);
  EXPECT_NE(side.unseen.find("carries a \"ext4\" signature"), std::string::npos) << side.unseen;
  board.mutable_test_disk()->set_destructive(true);
  side = choose();
  ASSERT_NE(side.backing, nullptr) << side.unseen;
  EXPECT_EQ(side.backing->Describe(), "/dev/nvme0n1, nvme at 0000:00:03.0, through dom0's agent");
  // The kind's own view of the disk wins over dom0's.
  side = ChooseDiskSide(std::make_unique<FileDiskBacking>(disk_), board, dom0, dom0.GetInfo());
  EXPECT_EQ(side.backing->Describe(), disk_.string());
  server->Shutdown();
}

TEST(PvBlockApplicability, SectorsLinesAndDiskSizeAreCheckedAgainstTheDisk) {
  v1::Fixture f;
  f.set_kind(v1::FIXTURE_KIND_PV_BLOCK);
  f.set_pages(2);
  f.mutable_block()->set_buffer_offset(512);
  f.mutable_block()->set_disk_offset(4096);
  v1::AgentInfo g;
  g.set_block_device("/dev/xvdb");
  g.set_block_bytes(1 << 20);
  g.set_block_sector_size(512);
  EXPECT_EQ(PvBlockNotApplicableReason(f, g, true, 64), "");
  g.set_block_sector_size(4096);
  EXPECT_NE(PvBlockNotApplicableReason(f, g, true, 64).find("4096-byte sectors"),
            std::string::npos);
  g.set_block_sector_size(512);
  EXPECT_NE(PvBlockNotApplicableReason(f, g, true, 1024).find("1024-byte cache lines"),
            std::string::npos);
  g.set_block_bytes(8192);
  EXPECT_EQ(PvBlockNotApplicableReason(f, g, true, 64),
            "/dev/xvdb holds 8192 bytes; this fixture's I/O ends at byte 11776");
}

}  // namespace
}  // namespace dmahil::controller
