// The linux-xen backend's ioctl argument handling, against a fake kernel behind the
// DeviceFile seam: the structs it hands gntalloc, gntdev and dmahil.ko, how it reads their
// answers back, how each errno becomes a status, and that a refused request reaches no
// ioctl and leaves nothing mapped. The real devices are exercised under QEMU.
#include "agent/linux_xen/linux_xen_backend.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "agent/agent_service.h"
#include "agent/linux_xen/engine_port.h"
#include "common/xen_page.h"

typedef uint32_t grant_ref_t;
typedef uint16_t domid_t;
#include <xen/gntalloc.h>
#include <xen/gntdev.h>

namespace dmahil::agent::linux_xen {
namespace {

/// One fake character device: every ioctl goes to `on_ioctl`; Map hands out anonymous
/// memory unless `map_errno` is set. Records every call.
class FakeFile final : public DeviceFile {
 public:
  explicit FakeFile(std::string path) : path_(std::move(path)) {}
  int Ioctl(unsigned long request, void* arg) override {
    requests.push_back(request);
    return on_ioctl ? on_ioctl(request, arg) : ENOTTY;
  }
  void* Map(size_t bytes, uint64_t offset, int* err) override {
    maps.emplace_back(bytes, offset);
    if (map_errno != 0) {
      *err = map_errno;
      return nullptr;
    }
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return nullptr;
    mapped_at.push_back(static_cast<uint8_t*>(p));
    return p;
  }
  int Unmap(void* addr, size_t bytes) override {
    unmaps.push_back(bytes);
    return ::munmap(addr, bytes) < 0 ? errno : 0;
  }
  const std::string& path() const override { return path_; }

  std::function<int(unsigned long, void*)> on_ioctl;
  int map_errno = 0;
  std::vector<unsigned long> requests;
  std::vector<std::pair<size_t, uint64_t>> maps;
  std::vector<uint8_t*> mapped_at;  // what each successful Map returned
  std::vector<size_t> unmaps;

 private:
  std::string path_;
};

/// A fake dmahil.ko: pfns from 0x68000 up, foreign bfns = pfn + 0x52000 (as a domU frame
/// would be), dma_addr = bfn << 12 (+ offset), one CLEAN hypercall per segment on map.
struct FakeKmod {
  FakeFile* file = nullptr;
  dmahil_map last_map{};
  std::vector<dmahil_xfer> xfers;
  uint32_t next = 1;
  uint32_t abi = DMAHIL_ABI_VERSION;
  bool foreign = true;
  bool arch_probe = true;  // the arch_sync_dma_* kprobes armed
  int xfer_errno = 0;
  // dmahil.ko with faults=1 (bypass): segments at pfn << 12, which the module's
  // seg_write_safe() marks DMAHIL_SEG_WRITE_REFUSED; XFER WRITE there is EACCES.
  bool bypass = false;
  std::vector<dmahil_seg> live;       // the segments of the mappings made
  std::map<uint32_t, uint32_t> pins;  // pin -> pages
  dmahil_pin last_pin{};
  uint32_t page_size = 4096;        // the PAGE_SIZE PIN reports
  std::string watched;              // DMAHIL_IOC_WATCH's device, "" if none
  std::vector<dmahil_dev_op> ring;  // what WATCH_READ hands out, oldest first
  uint32_t ring_dropped = 0;
  int watch_errno = 0;  // e.g. ENODEV, EOPNOTSUPP
  bool direct = false;  // the device has no DMA-mapping ops

  int Handle(unsigned long req, void* arg) {
    switch (req) {
      case DMAHIL_IOC_INFO: {
        auto* i = static_cast<dmahil_info*>(arg);
        i->abi_version = abi;
        i->audit_hypercall = 1;
        i->audit_arch_sync = arch_probe ? 1 : 0;
        i->faults = DMAHIL_FAULT_SKIP_CPU_SYNC;
        std::strcpy(i->engine, "edu 0000:00:02.0");
        return 0;
      }
      case DMAHIL_IOC_PIN: {
        auto* p = static_cast<dmahil_pin*>(arg);
        last_pin = *p;
        p->page_size = page_size;
        auto* pfns = reinterpret_cast<uint64_t*>(p->pfns_ptr);
        auto* bfns = reinterpret_cast<uint64_t*>(p->bfns_ptr);
        for (uint32_t i = 0; i < p->pages; ++i) {
          pfns[i] = 0x68000 + i;
          bfns[i] = foreign ? pfns[i] + 0x52000 : pfns[i];
        }
        p->pin = next++;
        pins[p->pin] = p->pages;
        return 0;
      }
      case DMAHIL_IOC_UNPIN:
        return pins.erase(*static_cast<uint32_t*>(arg)) ? 0 : ENOENT;
      case DMAHIL_IOC_MAP: {
        auto* m = static_cast<dmahil_map*>(arg);
        last_map = *m;
        auto* segs = reinterpret_cast<dmahil_seg*>(m->segs_ptr);
        auto* ops = reinterpret_cast<dmahil_cache_op*>(m->ops.ptr);
        const uint64_t first = m->offset / kXenPageSize,
                       last = (m->offset + m->length - 1) / kXenPageSize;
        uint32_t n = 0;
        for (uint64_t pg = first; pg <= last; ++pg, ++n) {
          const uint64_t lo = std::max<uint64_t>(m->offset, pg * kXenPageSize);
          const uint64_t hi = std::min<uint64_t>(m->offset + m->length, (pg + 1) * kXenPageSize);
          const uint64_t pfn = 0x68000 + pg, bfn = foreign ? pfn + 0x52000 : pfn;
          segs[n] =
              dmahil_seg{lo,  (bfn << 12) + lo % kXenPageSize, pfn,
                         bfn, static_cast<uint32_t>(hi - lo),  foreign ? DMAHIL_SEG_FOREIGN : 0u};
          if (bypass && foreign) {
            segs[n].dma_addr = (pfn << 12) + lo % kXenPageSize;
            segs[n].flags |= DMAHIL_SEG_WRITE_REFUSED;
          }
          live.push_back(segs[n]);
          if (n < m->ops.cap)
            ops[n] = dmahil_cache_op{segs[n].dma_addr, segs[n].length, DMAHIL_CACHE_CLEAN,
                                     DMAHIL_OP_HYPERCALL, 0};
        }
        m->nsegs = n;
        m->ops.count = std::min(n, m->ops.cap);
        m->mapping = 100 + next++;
        return 0;
      }
      case DMAHIL_IOC_SYNC:
      case DMAHIL_IOC_UNMAP: {
        // One INVAL hypercall: what sync for cpu / unmap of FROM_DEVICE issue.
        dmahil_ops_out* o = req == DMAHIL_IOC_SYNC ? &static_cast<dmahil_sync*>(arg)->ops
                                                   : &static_cast<dmahil_unmap*>(arg)->ops;
        auto* ops = reinterpret_cast<dmahil_cache_op*>(o->ptr);
        ops[0] = dmahil_cache_op{0xba842000, 4096, DMAHIL_CACHE_INVAL, DMAHIL_OP_HYPERCALL, 0};
        o->count = 1;
        return 0;
      }
      case DMAHIL_IOC_XFER: {
        const auto* x = static_cast<dmahil_xfer*>(arg);
        xfers.push_back(*x);
        for (const dmahil_seg& s : live)
          if (x->op == DMAHIL_XFER_WRITE && (s.flags & DMAHIL_SEG_WRITE_REFUSED) &&
              x->dma_addr >= s.dma_addr && x->dma_addr - s.dma_addr < s.length)
            return EACCES;
        return xfer_errno;
      }
      case DMAHIL_IOC_WATCH: {
        auto* w = static_cast<dmahil_watch*>(arg);
        if (watch_errno) return watch_errno;
        if (!w->on) {
          watched.clear();
          return 0;
        }
        if (!watched.empty()) return EBUSY;
        watched = w->device;
        w->direct = direct ? 1 : 0;
        return 0;
      }
      case DMAHIL_IOC_WATCH_READ: {
        auto* r = static_cast<dmahil_watch_read*>(arg);
        if (watched.empty()) return ENOENT;
        r->count = std::min<uint32_t>(r->cap, static_cast<uint32_t>(ring.size()));
        std::copy(ring.begin(), ring.begin() + r->count, reinterpret_cast<dmahil_dev_op*>(r->ptr));
        ring.erase(ring.begin(), ring.begin() + r->count);
        r->dropped = std::exchange(ring_dropped, 0);
        return 0;
      }
      default:
        return ENOTTY;
    }
  }
};

/// /dev/dmahil answered by `k` (which must outlive the file).
std::unique_ptr<FakeFile> KmodFile(FakeKmod& k) {
  auto f = std::make_unique<FakeFile>("/dev/dmahil");
  k.file = f.get();
  f->on_ioctl = [&k](unsigned long r, void* a) { return k.Handle(r, a); };
  return f;
}

class LinuxXenBackendTest : public ::testing::Test {
 protected:
  std::unique_ptr<LinuxXenBackend> Dom0() {
    LinuxXenDevices d;
    auto gntdev = std::make_unique<FakeFile>("/dev/xen/gntdev");
    gntdev_ = gntdev.get();
    gntdev_->on_ioctl = [this](unsigned long req, void* arg) {
      if (req == IOCTL_GNTDEV_MAP_GRANT_REF) {
        auto* a = static_cast<ioctl_gntdev_map_grant_ref*>(arg);
        for (uint32_t i = 0; i < a->count; ++i) mapped_refs_.push_back(a->refs[i]);
        a->index = 0x3000;
      } else if (req == IOCTL_GNTDEV_UNMAP_GRANT_REF) {
        unmapped_index_ = static_cast<ioctl_gntdev_unmap_grant_ref*>(arg)->index;
      }
      return 0;
    };
    d.gntdev = std::move(gntdev);
    d.kmod = std::make_shared<Kmod>(KmodFile(kmod_));
    d.page_size = page_size_;
    kmod_.page_size = static_cast<uint32_t>(page_size_);
    dmahil_info info{};
    EXPECT_TRUE(d.kmod->Info(&info).ok());
    kmod_ptr_ = d.kmod;
    return std::make_unique<LinuxXenBackend>(v1::ROLE_DOM0, 0, "qemu-xen-arm64", std::move(d));
  }
  std::unique_ptr<LinuxXenBackend> Guest(std::unique_ptr<BlockDevice> block = nullptr) {
    LinuxXenDevices d;
    d.block = std::move(block);
    auto f = std::make_unique<FakeFile>("/dev/xen/gntalloc");
    gntalloc_ = f.get();
    gntalloc_->on_ioctl = [this](unsigned long req, void* arg) {
      if (req == IOCTL_GNTALLOC_ALLOC_GREF) {
        auto* a = static_cast<ioctl_gntalloc_alloc_gref*>(arg);
        alloc_ = *a;
        for (uint32_t i = 0; i < a->count; ++i) a->gref_ids[i] = 8 + i;
        a->index = 0x5000;
      } else if (req == IOCTL_GNTALLOC_DEALLOC_GREF) {
        dealloc_ = *static_cast<ioctl_gntalloc_dealloc_gref*>(arg);
      }
      return 0;
    };
    d.gntalloc = std::move(f);
    d.pfns_of = [](const void*, size_t pages, uint64_t* pfns) {
      for (size_t i = 0; i < pages; ++i) pfns[i] = 0x40100 + i;
      return pages;
    };
    d.page_size = page_size_;
    return std::make_unique<LinuxXenBackend>(v1::ROLE_GUEST, 3, "qemu-xen-arm64", std::move(d));
  }
  uint32_t MapTwoGrefs(LinuxXenBackend& b) {
    v1::MapForeignRequest req;
    req.set_domid(3);
    req.add_grefs(8);
    req.add_grefs(9);
    v1::BufferInfo info;
    EXPECT_TRUE(b.MapForeign(req, &info).ok());
    return info.buffer();
  }

  uint64_t page_size_ = 4096;  // the kernel's PAGE_SIZE the backend is given
  FakeFile* gntdev_ = nullptr;
  FakeFile* gntalloc_ = nullptr;
  FakeKmod kmod_;
  std::shared_ptr<Kmod> kmod_ptr_;
  std::vector<ioctl_gntdev_grant_ref> mapped_refs_;
  uint64_t unmapped_index_ = 0;
  ioctl_gntalloc_alloc_gref alloc_{};
  ioctl_gntalloc_dealloc_gref dealloc_{};
};

TEST_F(LinuxXenBackendTest, MapForeignHandsGntdevEveryGrefWithTheDomidAndMmapsItsIndex) {
  auto b = Dom0();
  v1::MapForeignRequest req;
  req.set_domid(3);
  req.add_grefs(8);
  req.add_grefs(9);
  req.add_grefs(77);
  v1::BufferInfo info;
  ASSERT_TRUE(b->MapForeign(req, &info).ok());
  ASSERT_EQ(mapped_refs_.size(), 3u);
  EXPECT_EQ(mapped_refs_[2].domid, 3);
  EXPECT_EQ(mapped_refs_[2].ref, 77u);
  ASSERT_EQ(gntdev_->maps.size(), 1u);
  EXPECT_EQ(gntdev_->maps[0], std::make_pair(size_t{3 * kXenPageSize}, uint64_t{0x3000}));
  ASSERT_EQ(info.pfns_size(), 3);
  EXPECT_EQ(info.pfns(1), 0x68001u);
  EXPECT_EQ(b->BufferBytes(info.buffer()), 3 * kXenPageSize);
}

TEST_F(LinuxXenBackendTest, RefusedGrantsAreNotFoundAndLeaveNothingMapped) {
  auto b = Dom0();
  gntdev_->map_errno = EINVAL;  // GNTTABOP_map_grant_ref failed inside gntdev's mmap
  v1::MapForeignRequest req;
  req.set_domid(3);
  req.add_grefs(4242);
  v1::BufferInfo info;
  const grpc::Status s = b->MapForeign(req, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_NE(s.error_message().find("4242"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("domain 3"), std::string::npos) << s.error_message();
  EXPECT_EQ(unmapped_index_, 0x3000u);  // the gntdev slot was given back
  EXPECT_TRUE(kmod_.pins.empty());
}

// A request refused after the kernel gave it something gives all of it back, and says so.
TEST_F(LinuxXenBackendTest, GrantsWhosePagesCannotBeMappedAreDeallocatedAndNothingIsKept) {
  auto g = Guest();
  gntalloc_->map_errno = ENOMEM;
  v1::AllocGrantsRequest req;
  req.set_pages(3);
  v1::AllocGrantsResponse resp;
  const grpc::Status s = g->AllocGrants(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("nothing was kept"), std::string::npos) << s.error_message();
  EXPECT_EQ(dealloc_.index, 0x5000u) << "the 3 grefs ALLOC_GREF made are ended";
  EXPECT_EQ(dealloc_.count, 3u);
  EXPECT_EQ(resp.grefs_size(), 0);

  // The gfns cannot be read: the mmap and the grefs both go back.
  gntalloc_->map_errno = 0;
  dealloc_ = {};
  LinuxXenDevices d;
  auto f = std::make_unique<FakeFile>("/dev/xen/gntalloc");
  FakeFile* file = f.get();
  ioctl_gntalloc_dealloc_gref dealloc{};
  file->on_ioctl = [&dealloc](unsigned long r, void* a) {
    if (r == IOCTL_GNTALLOC_ALLOC_GREF) static_cast<ioctl_gntalloc_alloc_gref*>(a)->index = 0x7000;
    if (r == IOCTL_GNTALLOC_DEALLOC_GREF) dealloc = *static_cast<ioctl_gntalloc_dealloc_gref*>(a);
    return 0;
  };
  d.gntalloc = std::move(f);
  d.pfns_of = [](const void*, size_t, uint64_t*) { return size_t{1}; };  // page 1 hidden
  d.page_size = kXenPageSize;
  LinuxXenBackend hidden(v1::ROLE_GUEST, 3, "b", std::move(d));
  const grpc::Status h = hidden.AllocGrants(req, &resp);
  EXPECT_EQ(h.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(h.error_message().find("granted page 1"), std::string::npos) << h.error_message();
  EXPECT_NE(h.error_message().find("nothing was kept"), std::string::npos) << h.error_message();
  ASSERT_EQ(file->unmaps.size(), 1u);
  EXPECT_EQ(file->unmaps[0], 3 * kXenPageSize);
  EXPECT_EQ(dealloc.index, 0x7000u);
}

TEST_F(LinuxXenBackendTest, ARollbackThatFailsTooSaysWhatWasKept) {
  auto g = Guest();
  gntalloc_->map_errno = ENOMEM;
  gntalloc_->on_ioctl = [](unsigned long r, void* a) {
    if (r == IOCTL_GNTALLOC_ALLOC_GREF) static_cast<ioctl_gntalloc_alloc_gref*>(a)->index = 0x5000;
    return r == IOCTL_GNTALLOC_DEALLOC_GREF ? EINVAL : 0;
  };
  v1::AllocGrantsRequest req;
  req.set_pages(2);
  v1::AllocGrantsResponse resp;
  const grpc::Status s = g->AllocGrants(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << "the first failure's code";
  EXPECT_EQ(s.error_message().find("nothing was kept"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("DEALLOC_GREF"), std::string::npos) << s.error_message();
}

TEST_F(LinuxXenBackendTest, AForeignMapOrLocalAllocWhosePinFailsGivesEverythingBack) {
  auto b = Dom0();
  kmod_.file->on_ioctl = [this](unsigned long r, void* a) {
    return r == DMAHIL_IOC_PIN ? ENOMEM : kmod_.Handle(r, a);
  };
  v1::MapForeignRequest req;
  req.set_domid(3);
  req.add_grefs(8);
  req.add_grefs(9);
  v1::BufferInfo info;
  const grpc::Status s = b->MapForeign(req, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("PIN"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("nothing was kept"), std::string::npos) << s.error_message();
  ASSERT_EQ(gntdev_->unmaps.size(), 1u) << "the gntdev mmap is undone";
  EXPECT_EQ(gntdev_->unmaps[0], 2 * kXenPageSize);
  EXPECT_EQ(unmapped_index_, 0x3000u) << "and the grants unmapped";
  EXPECT_FALSE(b->BufferBytes(1).has_value());

  v1::AllocLocalRequest local;
  local.set_pages(2);
  const grpc::Status l = b->AllocLocal(local, &info);
  EXPECT_EQ(l.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(l.error_message().find("nothing was kept"), std::string::npos) << l.error_message();
  EXPECT_FALSE(b->BufferBytes(1).has_value());
  EXPECT_FALSE(b->BufferBytes(2).has_value());
}

// dmahil.ko refuses the unpin (a mapping of the pin it still holds): the buffer stays whole,
// its mmap and grants untouched, so a later release can finish the job.
TEST_F(LinuxXenBackendTest, AReleaseWhoseUnpinIsRefusedKeepsTheBufferWholeForARetry) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  kmod_.file->on_ioctl = [this](unsigned long r, void* a) {
    return r == DMAHIL_IOC_UNPIN ? EBUSY : kmod_.Handle(r, a);
  };
  const grpc::Status s = b->ReleaseBuffer(buf);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("UNPIN"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("nothing was released"), std::string::npos) << s.error_message();
  EXPECT_TRUE(gntdev_->unmaps.empty()) << "the mapping of pinned pages stays";
  EXPECT_EQ(unmapped_index_, 0u) << "the grants stay mapped";
  EXPECT_EQ(b->BufferBytes(buf), 2 * kXenPageSize);
  uint8_t byte = 0;
  EXPECT_TRUE(b->CpuRead(buf, 0, &byte, 1).ok());

  kmod_.file->on_ioctl = [this](unsigned long r, void* a) { return kmod_.Handle(r, a); };
  ASSERT_TRUE(b->ReleaseBuffer(buf).ok());
  EXPECT_TRUE(kmod_.pins.empty());
  EXPECT_EQ(unmapped_index_, 0x3000u);
  EXPECT_FALSE(b->BufferBytes(buf).has_value());
}

TEST_F(LinuxXenBackendTest, DmaMapPassesTheKernelDirectionRangeSgAndMask) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  struct Case {
    v1::DmaDirection dir;
    uint32_t kernel;
  };
  for (const Case c :
       {Case{v1::DMA_BIDIRECTIONAL, 0}, Case{v1::DMA_TO_DEVICE, 1}, Case{v1::DMA_FROM_DEVICE, 2}}) {
    v1::DmaMapRequest req;
    req.set_buffer(buf);
    req.set_offset(0x800);
    req.set_length(0x1000);
    req.set_direction(c.dir);
    req.set_sg(true);
    req.set_dma_mask_bits(32);
    v1::DmaMapping m;
    ASSERT_TRUE(b->DmaMap(req, &m).ok());
    EXPECT_EQ(kmod_.last_map.direction, c.kernel);
    EXPECT_EQ(kmod_.last_map.offset, 0x800u);
    EXPECT_EQ(kmod_.last_map.length, 0x1000u);
    EXPECT_EQ(kmod_.last_map.sg, 1u);
    EXPECT_EQ(kmod_.last_map.mask_bits, 32u);
    EXPECT_EQ(kmod_.last_map.nsegs, DMAHIL_MAX_SEGMENTS);  // the capacity handed in
    ASSERT_EQ(m.segments_size(), 2);
    EXPECT_EQ(m.segments(0).offset(), 0x800u);
    EXPECT_EQ(m.segments(0).length(), 0x800u);
    EXPECT_EQ(m.segments(1).pfn(), 0x68001u);
    EXPECT_EQ(m.segments(1).bfn(), 0x68001u + 0x52000u);
    EXPECT_EQ(m.segments(1).dma_addr(), (0x68001ull + 0x52000) << 12);
    EXPECT_TRUE(m.segments(1).foreign());
    EXPECT_FALSE(m.segments(1).bounced());
    ASSERT_TRUE(m.maintenance().audited());
    ASSERT_EQ(m.maintenance().ops_size(), 2);
    EXPECT_EQ(m.maintenance().ops(0).kind(), v1::CACHE_OP_HYPERCALL);
    EXPECT_TRUE(m.maintenance().ops(0).clean());
    EXPECT_FALSE(m.maintenance().ops(0).invalidate());
    EXPECT_EQ(m.maintenance().ops(0).addr(), m.segments(0).dma_addr());
    v1::DmaUnmapResponse u;
    ASSERT_TRUE(b->DmaUnmap(m.mapping(), &u).ok());
    ASSERT_EQ(u.maintenance().ops_size(), 1);
    EXPECT_TRUE(u.maintenance().ops(0).invalidate());
  }
}

TEST_F(LinuxXenBackendTest, BadDirectionLengthOrMaskIsRefusedBeforeAnyIoctl) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  const size_t before = kmod_.file->requests.size();
  auto map = [&](v1::DmaDirection dir, uint64_t off, uint64_t len, uint32_t mask) {
    v1::DmaMapRequest req;
    req.set_buffer(buf);
    req.set_offset(off);
    req.set_length(len);
    req.set_direction(dir);
    req.set_dma_mask_bits(mask);
    v1::DmaMapping m;
    return b->DmaMap(req, &m);
  };
  const grpc::Status dir = map(v1::DMA_DIRECTION_UNSPECIFIED, 0, kXenPageSize, 0);
  EXPECT_EQ(dir.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(dir.error_message().find("direction"), std::string::npos);
  EXPECT_EQ(map(v1::DMA_TO_DEVICE, 0, 0, 0).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(map(v1::DMA_TO_DEVICE, kXenPageSize, 2 * kXenPageSize, 0).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  const grpc::Status mask = map(v1::DMA_TO_DEVICE, 0, kXenPageSize, 31);
  EXPECT_EQ(mask.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(mask.error_message().find("31 bits"), std::string::npos);
  EXPECT_EQ(kmod_.file->requests.size(), before);
}

TEST_F(LinuxXenBackendTest, EachKernelErrnoBecomesAStatusNamingTheCall) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  kmod_.file->on_ioctl = [](unsigned long, void*) { return ENOSPC; };  // swiotlb full
  v1::DmaMapRequest req;
  req.set_buffer(buf);
  req.set_length(kXenPageSize);
  req.set_direction(v1::DMA_FROM_DEVICE);
  v1::DmaMapping m;
  const grpc::Status s = b->DmaMap(req, &m);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("/dev/dmahil MAP"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("DMA_FROM_DEVICE"), std::string::npos) << s.error_message();
  EXPECT_EQ(ErrnoStatus(EBUSY, "x").error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(ErrnoStatus(ENOENT, "x").error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(ErrnoStatus(EACCES, "x").error_code(), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(ErrnoStatus(EIO, "x").error_code(), grpc::StatusCode::INTERNAL);
}

TEST_F(LinuxXenBackendTest, AMappedBufferCannotBeReleasedAndUnknownHandlesAreNotFound) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  v1::DmaMapRequest req;
  req.set_buffer(buf);
  req.set_length(kXenPageSize);
  req.set_direction(v1::DMA_TO_DEVICE);
  v1::DmaMapping m;
  ASSERT_TRUE(b->DmaMap(req, &m).ok());
  EXPECT_EQ(b->ReleaseBuffer(buf).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  v1::DmaSyncResponse sr;
  EXPECT_EQ(b->DmaSync(m.mapping() + 1, v1::SYNC_FOR_CPU, &sr).error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(b->DmaSync(m.mapping(), v1::SYNC_FOR_UNSPECIFIED, &sr).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
  v1::DmaUnmapResponse ur;
  ASSERT_TRUE(b->DmaUnmap(m.mapping(), &ur).ok());
  EXPECT_EQ(b->DmaUnmap(m.mapping(), &ur).error_code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(b->ReleaseBuffer(buf).ok());
  EXPECT_TRUE(kmod_.pins.empty());
  EXPECT_EQ(unmapped_index_, 0x3000u);
  EXPECT_EQ(b->ReleaseBuffer(buf).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(LinuxXenBackendTest, AnUnmapThatFailsAfterUnmappingStillFreesTheBuffer) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  v1::DmaMapRequest req;
  req.set_buffer(buf);
  req.set_length(kXenPageSize);
  req.set_direction(v1::DMA_TO_DEVICE);
  v1::DmaMapping m;
  ASSERT_TRUE(b->DmaMap(req, &m).ok());
  // The records could not be copied out (EFAULT), after dma_unmap_page.
  kmod_.file->on_ioctl = [this](unsigned long r, void* a) {
    return r == DMAHIL_IOC_UNMAP ? EFAULT : kmod_.Handle(r, a);
  };
  v1::DmaUnmapResponse ur;
  EXPECT_EQ(b->DmaUnmap(m.mapping(), &ur).error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(b->ReleaseBuffer(buf).ok());
}

// Audit: a MAP whose reply was malformed (mapping 0, or a segment count of 0 or above
// DMAHIL_MAX_SEGMENTS) was refused with its mapping left live in dmahil.ko, which then
// refused the pin's UNPIN (EBUSY) for good.
TEST_F(LinuxXenBackendTest, AMalformedMapReplyIsUnmappedSoNothingStaysMapped) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  std::map<uint32_t, uint32_t> live;  // mapping -> pin, as dmahil.ko holds them
  std::vector<uint32_t> unmap_calls;
  uint32_t reply_nsegs = 0;
  bool reply_mapping_0 = false;
  int unmap_errno = 0;
  kmod_.file->on_ioctl = [&](unsigned long r, void* a) {
    if (r == DMAHIL_IOC_UNPIN) {
      for (const auto& [mapping, pin] : live)
        if (pin == *static_cast<uint32_t*>(a)) return EBUSY;
    }
    if (r == DMAHIL_IOC_UNMAP) {
      const uint32_t mapping = static_cast<dmahil_unmap*>(a)->mapping;
      unmap_calls.push_back(mapping);
      if (unmap_errno != 0) return unmap_errno;
      if (live.erase(mapping) == 0) return ENOENT;
    }
    const int err = kmod_.Handle(r, a);
    if (r == DMAHIL_IOC_MAP && err == 0) {
      auto* m = static_cast<dmahil_map*>(a);
      if (reply_mapping_0) {
        m->mapping = 0;
      } else {
        live[m->mapping] = m->pin;
      }
      m->nsegs = reply_nsegs;
    }
    return err;
  };
  v1::DmaMapRequest req;
  req.set_buffer(buf);
  req.set_length(kXenPageSize);
  req.set_direction(v1::DMA_TO_DEVICE);

  for (const uint32_t nsegs : {0u, DMAHIL_MAX_SEGMENTS + 1}) {
    SCOPED_TRACE(nsegs);
    reply_nsegs = nsegs;
    unmap_calls.clear();
    v1::DmaMapping m;
    const grpc::Status s = b->DmaMap(req, &m);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INTERNAL);
    EXPECT_NE(s.error_message().find(fmt::format("with {} segments", nsegs)), std::string::npos)
        << s.error_message();
    EXPECT_NE(s.error_message().find("was unmapped, nothing stays mapped"), std::string::npos)
        << s.error_message();
    EXPECT_EQ(unmap_calls.size(), 1u);  // the mapping the refused MAP made
    EXPECT_TRUE(live.empty()) << live.size() << " mappings left in dmahil.ko";
    EXPECT_EQ(m.mapping(), 0u);
    EXPECT_EQ(m.segments_size(), 0);
  }

  // Mapping 0 is no handle: nothing is unmapped (UNMAP of 0 would name no mapping).
  reply_nsegs = 1;
  reply_mapping_0 = true;
  unmap_calls.clear();
  v1::DmaMapping m0;
  const grpc::Status s0 = b->DmaMap(req, &m0);
  EXPECT_EQ(s0.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_NE(s0.error_message().find("returned mapping 0"), std::string::npos) << s0.error_message();
  EXPECT_TRUE(unmap_calls.empty());

  // An UNMAP that fails too: the message names the mapping that may still hold the pin.
  reply_mapping_0 = false;
  reply_nsegs = 0;
  unmap_errno = EIO;
  v1::DmaMapping m1;
  const grpc::Status s1 = b->DmaMap(req, &m1);
  EXPECT_EQ(s1.error_code(), grpc::StatusCode::INTERNAL);
  ASSERT_EQ(live.size(), 1u);
  EXPECT_NE(
      s1.error_message().find(fmt::format("mapping {} may still hold pin", live.begin()->first)),
      std::string::npos)
      << s1.error_message();
  EXPECT_NE(s1.error_message().find("UNMAP"), std::string::npos) << s1.error_message();
  EXPECT_EQ(b->ReleaseBuffer(buf).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  unmap_errno = 0;
  live.clear();  // the module let go of it after all

  // Nothing the refused maps made is left: the pin goes, the buffer is released.
  ASSERT_TRUE(b->ReleaseBuffer(buf).ok());
  EXPECT_TRUE(kmod_.pins.empty());
}

TEST_F(LinuxXenBackendTest, GuestGrantsThroughGntallocAndRefusesWhatGntallocCannotDo) {
  auto g = Guest();
  v1::AllocGrantsRequest req;
  req.set_pages(2);
  req.set_to_domid(0);
  v1::AllocGrantsResponse resp;
  ASSERT_TRUE(g->AllocGrants(req, &resp).ok());
  EXPECT_EQ(alloc_.domid, 0);
  EXPECT_EQ(alloc_.flags, GNTALLOC_FLAG_WRITABLE);
  EXPECT_EQ(alloc_.count, 2u);
  ASSERT_EQ(resp.grefs_size(), 2);
  EXPECT_EQ(resp.grefs(1), 9u);
  EXPECT_EQ(resp.gfns(1), resp.gfns(0) + 1);
  EXPECT_EQ(gntalloc_->maps.at(0).second, 0x5000u);

  const size_t before = gntalloc_->requests.size();
  req.set_grants_per_page(2);
  EXPECT_EQ(g->AllocGrants(req, &resp).error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_EQ(gntalloc_->requests.size(), before);

  v1::DmaMapping m;
  EXPECT_EQ(g->DmaMap(v1::DmaMapRequest(), &m).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // a dom0 call

  ASSERT_TRUE(g->ReleaseBuffer(resp.buffer()).ok());
  EXPECT_EQ(dealloc_.index, 0x5000u);
  EXPECT_EQ(dealloc_.count, 2u);
}

TEST_F(LinuxXenBackendTest, AModuleOfAnotherAbiIsRefusedByName) {
  FakeKmod k;
  k.abi = DMAHIL_ABI_VERSION + 1;
  Kmod kmod(KmodFile(k));
  dmahil_info info{};
  const grpc::Status s = kmod.Info(&info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("ABI"), std::string::npos);
}

TEST_F(LinuxXenBackendTest, WithoutEveryMaintenanceProbeNothingClaimsToBeAudited) {
  FakeKmod k;
  k.arch_probe = false;  // only the GNTTABOP_cache_flush probe armed
  Kmod kmod(KmodFile(k));
  dmahil_info info{};
  ASSERT_TRUE(kmod.Info(&info).ok());
  EXPECT_FALSE(kmod.audited());
  v1::Maintenance m;
  ASSERT_TRUE(kmod.Unmap(5, &m).ok());
  EXPECT_FALSE(m.audited());  // so the audit is skipped and the lab health check refuses
}

// The DMA-API audit of a real device: what dmahil.ko recorded, grouped per call with the
// maintenance the kprobes saw inside it, however other CPUs' calls interleave.
TEST_F(LinuxXenBackendTest, AWatchedDevicesOpsComeBackWithTheMaintenanceOfTheirCall) {
  auto b = Dom0();
  v1::WatchDeviceResponse resp;
  v1::DeviceOps none;
  EXPECT_EQ(b->ReadDeviceOps(&none).error_code(), grpc::StatusCode::NOT_FOUND);  // not watching
  ASSERT_TRUE(b->WatchDevice("0000:00:03.0", &resp).ok());
  EXPECT_EQ(kmod_.watched, "0000:00:03.0");
  EXPECT_FALSE(resp.dma_direct());
  EXPECT_EQ(b->WatchDevice("0000:00:04.0", &resp).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);  // EBUSY: one device at a time
  const auto maint = [](uint64_t call, uint64_t addr, uint32_t op, uint32_t kind) {
    return dmahil_dev_op{call, addr, 0, 0, 0, 4096, DMAHIL_DEV_MAINT, op, kind};
  };
  // call 1: a map_sg of two foreign pages (its clean first, as the kernel records it);
  // call 2 on another CPU: an unmap whose invalidate lands in between.
  kmod_.ring = {
      maint(1, 0xba842000, DMAHIL_CACHE_CLEAN, DMAHIL_OP_HYPERCALL),
      maint(2, 0x68010000, DMAHIL_CACHE_INVAL, DMAHIL_OP_ARCH_SYNC),
      maint(1, 0xba843000, DMAHIL_CACHE_CLEAN, DMAHIL_OP_HYPERCALL),
      dmahil_dev_op{1, 0xba842000, 0x68042, 0xba842, 0xba842000, 4096, DMAHIL_DEV_MAP,
                    DMAHIL_DMA_TO_DEVICE, DMAHIL_SEG_FOREIGN},
      dmahil_dev_op{1, 0xba843000, 0x68043, 0xba843, 0xba843000, 4096, DMAHIL_DEV_MAP,
                    DMAHIL_DMA_TO_DEVICE, DMAHIL_SEG_FOREIGN},
      dmahil_dev_op{2, 0x68010000, 0, 0, 0, 512, DMAHIL_DEV_UNMAP, DMAHIL_DMA_FROM_DEVICE, 0},
  };
  // More than one WATCH_READ's worth: the backend reads until the ring is empty.
  for (uint32_t i = 0; i < DMAHIL_DEV_RECORDS; ++i)
    kmod_.ring.push_back(dmahil_dev_op{3 + i, 0x50000000, 0x50000, 0x50000, 0x50000000, 64,
                                       DMAHIL_DEV_MAP, DMAHIL_DMA_FROM_DEVICE, 0});
  kmod_.ring_dropped = 7;
  v1::DeviceOps ops;
  ASSERT_TRUE(b->ReadDeviceOps(&ops).ok());
  ASSERT_EQ(ops.ops_size(), 3 + static_cast<int>(DMAHIL_DEV_RECORDS));
  EXPECT_EQ(ops.dropped(), 7u);
  EXPECT_TRUE(ops.maintenance_audited());
  const v1::DeviceOp& first = ops.ops(0);
  EXPECT_EQ(first.kind(), v1::DEVICE_OP_MAP);
  EXPECT_EQ(first.direction(), v1::DMA_TO_DEVICE);
  EXPECT_EQ(first.pfn(), 0x68042u);
  EXPECT_EQ(first.bfn(), 0xba842u);
  EXPECT_EQ(first.expected_dma_addr(), 0xba842000u);
  EXPECT_TRUE(first.foreign());
  ASSERT_EQ(first.maintenance_size(), 2);  // both of call 1's cleans, not call 2's
  EXPECT_EQ(first.maintenance(1).addr(), 0xba843000u);
  EXPECT_TRUE(first.maintenance(1).clean());
  EXPECT_EQ(first.maintenance(1).kind(), v1::CACHE_OP_HYPERCALL);
  EXPECT_EQ(ops.ops(1).maintenance_size(), 0);  // a call's maintenance goes to its first op
  const v1::DeviceOp& unmap = ops.ops(2);
  EXPECT_EQ(unmap.kind(), v1::DEVICE_OP_UNMAP);
  EXPECT_EQ(unmap.direction(), v1::DMA_FROM_DEVICE);
  ASSERT_EQ(unmap.maintenance_size(), 1);
  EXPECT_TRUE(unmap.maintenance(0).invalidate());
  EXPECT_EQ(unmap.maintenance(0).kind(), v1::CACHE_OP_ARCH_SYNC);
  ASSERT_TRUE(b->WatchDevice("", &resp).ok());
  EXPECT_EQ(kmod_.watched, "");

  kmod_.direct = true;  // a device on dma-direct: held, nothing to interpose on
  ASSERT_TRUE(b->WatchDevice("0000:00:05.0", &resp).ok());
  EXPECT_TRUE(resp.dma_direct());
  ASSERT_TRUE(b->WatchDevice("", &resp).ok());
  kmod_.watch_errno = EOPNOTSUPP;  // ops without map_page: nothing to wrap
  const grpc::Status s = b->WatchDevice("0000:00:03.0", &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  EXPECT_NE(s.error_message().find("WATCH 0000:00:03.0"), std::string::npos) << s.error_message();
  EXPECT_EQ(b->WatchDevice(std::string(32, 'x'), &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);  // refused before the ioctl
}

// Audit: when a WATCH_READ after the first failed, the records the earlier ones had taken
// from dmahil.ko (which removes what it hands out) were thrown away.
TEST_F(LinuxXenBackendTest, RecordsTakenBeforeAFailedWatchReadComeWithTheNextRead) {
  auto b = Dom0();
  v1::WatchDeviceResponse resp;
  ASSERT_TRUE(b->WatchDevice("0000:00:03.0", &resp).ok());
  const auto map_op = [](uint64_t call) {
    return dmahil_dev_op{call,           0x50000000 + call * 64, 0x50000, 0x50000, 0x50000000, 64,
                         DMAHIL_DEV_MAP, DMAHIL_DMA_FROM_DEVICE, 0};
  };
  // More than one WATCH_READ's worth; the second WATCH_READ fails (ENOMEM).
  const uint32_t total = DMAHIL_DEV_RECORDS + 5;
  for (uint32_t i = 1; i <= total; ++i) kmod_.ring.push_back(map_op(i));
  kmod_.ring_dropped = 3;
  int reads = 0;
  kmod_.file->on_ioctl = [&](unsigned long r, void* a) {
    if (r == DMAHIL_IOC_WATCH_READ && ++reads == 2) return ENOMEM;
    return kmod_.Handle(r, a);
  };
  v1::DeviceOps ops;
  const grpc::Status s = b->ReadDeviceOps(&ops);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_NE(s.error_message().find("WATCH_READ"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find(fmt::format(
                "the {} records (and 3 dropped) read before it are kept for the next read",
                DMAHIL_DEV_RECORDS)),
            std::string::npos)
      << s.error_message();
  EXPECT_EQ(ops.ops_size(), 0);
  EXPECT_EQ(kmod_.ring.size(), 5u);  // the module handed out (and removed) the rest

  // The next read returns every record once, oldest first, and the dropped count.
  ASSERT_TRUE(b->ReadDeviceOps(&ops).ok());
  ASSERT_EQ(ops.ops_size(), static_cast<int>(total));
  for (uint32_t i = 0; i < total; ++i) {
    if (ops.ops(static_cast<int>(i)).call() != i + 1) {
      ADD_FAILURE() << "op " << i << " is call " << ops.ops(static_cast<int>(i)).call();
      break;
    }
  }
  EXPECT_EQ(ops.dropped(), 3u);
  v1::DeviceOps again;
  ASSERT_TRUE(b->ReadDeviceOps(&again).ok());
  EXPECT_EQ(again.ops_size(), 0);
  EXPECT_EQ(again.dropped(), 0u);

  // Kept records belong to their watch: a new one (the module discards its records when a
  // watch starts) does not report them.
  for (uint32_t i = 1; i <= DMAHIL_DEV_RECORDS; ++i) kmod_.ring.push_back(map_op(i));
  reads = 0;
  ASSERT_FALSE(b->ReadDeviceOps(&ops).ok());
  ASSERT_TRUE(b->WatchDevice("", &resp).ok());
  kmod_.ring.clear();
  ASSERT_TRUE(b->WatchDevice("0000:00:03.0", &resp).ok());
  v1::DeviceOps fresh;
  ASSERT_TRUE(b->ReadDeviceOps(&fresh).ok());
  EXPECT_EQ(fresh.ops_size(), 0);
}

TEST_F(LinuxXenBackendTest, ADomidXenReservesIsRefusedBeforeGntdev) {
  auto b = Dom0();
  v1::MapForeignRequest req;
  req.set_domid(0x10001);  // would be domain 1 once cut to domid_t
  req.add_grefs(8);
  v1::BufferInfo info;
  const grpc::Status s = b->MapForeign(req, &info);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(s.error_message().find("65537"), std::string::npos) << s.error_message();
  EXPECT_TRUE(mapped_refs_.empty());
}

TEST_F(LinuxXenBackendTest, InfoReportsTheEngineAndTheModulesFaultSwitches) {
  auto b = Dom0();
  const v1::AgentInfo info = b->Info();
  EXPECT_TRUE(info.maintenance_audited());
  EXPECT_EQ(info.backend(), "linux-xen");
  EXPECT_EQ(info.engine(), "edu 0000:00:02.0");
  ASSERT_EQ(info.module_faults_size(), 1);
  // DMAHIL_FAULT_SKIP_CPU_SYNC reproduces the catalogue's unmap-no-invalidate-foreign.
  EXPECT_EQ(info.module_faults(0), "unmap-no-invalidate-foreign");
  EXPECT_FALSE(info.dma_coherent());
}

TEST(PagemapPfns, GivesEachPresentPagesFrameAndStopsAtTheFirstMissingOne) {
  const size_t pages = 4;
  void* p = ::mmap(nullptr, pages * kXenPageSize, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  auto* bytes = static_cast<uint8_t*>(p);
  for (size_t i = 0; i < 3; ++i) bytes[i * kXenPageSize] = 1;  // page 3 is never touched
  uint64_t pfns[pages] = {};
  const size_t got = PagemapPfns(p, pages, pfns);
  if (::geteuid() == 0) {
    EXPECT_EQ(got, 3u);  // the untouched page has no frame
    EXPECT_NE(pfns[0], 0u);
    EXPECT_NE(pfns[0], pfns[1]);
    EXPECT_NE(pfns[1], pfns[2]);
  } else {
    EXPECT_EQ(got, 0u);  // without CAP_SYS_ADMIN the kernel hides every frame
  }
  ::munmap(p, pages * kXenPageSize);
}

TEST_F(LinuxXenBackendTest, TheEnginePortSplitsTransfersAndTurnsARefusalIntoABusFault) {
  auto b = Dom0();
  KmodEnginePort port(kmod_ptr_);
  std::vector<uint8_t> buf(DMAHIL_MAX_XFER_BYTES + 100);
  ASSERT_TRUE(port.Read(0xba842000, buf.data(), buf.size()).ok);
  ASSERT_EQ(kmod_.xfers.size(), 2u);
  EXPECT_EQ(kmod_.xfers[0].op, DMAHIL_XFER_READ);
  EXPECT_EQ(kmod_.xfers[1].dma_addr, 0xba842000u + DMAHIL_MAX_XFER_BYTES);
  EXPECT_EQ(kmod_.xfers[1].length, 100u);
  kmod_.xfer_errno = EACCES;  // outside every mapped window
  const firmware::BusResult r = port.Write(0x1000, buf.data(), 64);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.fault_addr, 0x1000u);
  EXPECT_EQ(kmod_.xfers.back().op, DMAHIL_XFER_WRITE);
}

TEST_F(LinuxXenBackendTest, ASegmentTheModuleRefusesToWriteIsReportedAndOnlyRead) {
  kmod_.bypass = true;
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  v1::DmaMapRequest req;
  req.set_buffer(buf);
  req.set_length(2 * kXenPageSize);
  req.set_direction(v1::DMA_BIDIRECTIONAL);
  v1::DmaMapping m;
  ASSERT_TRUE(b->DmaMap(req, &m).ok());
  ASSERT_EQ(m.segments_size(), 2);
  KmodEnginePort port(kmod_ptr_);
  std::vector<uint8_t> bytes(64);
  for (const v1::DmaSegment& s : m.segments()) {
    EXPECT_EQ(s.dma_addr(), s.pfn() << 12);
    EXPECT_TRUE(s.foreign());
    EXPECT_TRUE(s.write_refused()) << "DMAHIL_SEG_WRITE_REFUSED must reach the controller";
    EXPECT_TRUE(port.Read(s.dma_addr(), bytes.data(), bytes.size()).ok) << "a read goes ahead";
    const firmware::BusResult w = port.Write(s.dma_addr(), bytes.data(), bytes.size());
    EXPECT_FALSE(w.ok);
    EXPECT_EQ(w.fault_addr, s.dma_addr());
  }
  kmod_.bypass = false;
  req.set_length(kXenPageSize);
  v1::DmaMapping right;
  ASSERT_TRUE(b->DmaMap(req, &right).ok());
  ASSERT_EQ(right.segments_size(), 1);
  EXPECT_FALSE(right.segments(0).write_refused()) << "a right segment";
}

TEST_F(LinuxXenBackendTest, CacheMaintenanceFromUserSpaceIsArm64Only) {
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  const grpc::Status s = b->CpuCleanInvalidate(buf, 0, kXenPageSize);
#if defined(__aarch64__)
  EXPECT_TRUE(s.ok());
#else
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("arm64"), std::string::npos);
#endif
}

TEST_F(LinuxXenBackendTest, OnA64KiBKernelEachForeignGrantIsTheStartOfItsOwnLinuxPage) {
  page_size_ = 65536;  // CONFIG_ARM64_64K_PAGES: gntdev maps one 4 KiB grant per 64 KiB page
  auto b = Dom0();
  const uint32_t buf = MapTwoGrefs(*b);
  ASSERT_EQ(gntdev_->maps.size(), 1u);
  EXPECT_EQ(gntdev_->maps[0].first, size_t{2 * 65536}) << "gntdev_mmap wants count pages";
  EXPECT_EQ(kmod_.last_pin.pages, 2u);
  EXPECT_EQ(kmod_.last_pin.flags, DMAHIL_PIN_SPARSE);
  EXPECT_EQ(b->BufferBytes(buf), 2 * kXenPageSize) << "the buffer is two 4 KiB grants";

  // bytes 4090..4101 of the buffer: the end of grant 0 and the start of grant 1, which
  // lies 64 KiB further on in the mapping
  std::vector<uint8_t> in(12);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<uint8_t>(0xa0 + i);
  ASSERT_TRUE(b->CpuWrite(buf, 4090, in.data(), in.size()).ok());
  const uint8_t* m = gntdev_->mapped_at.at(0);
  EXPECT_EQ(m[4095], 0xa5);
  EXPECT_EQ(m[4096], 0x00) << "past grant 0: not the buffer's";
  EXPECT_EQ(m[65536], 0xa6);
  EXPECT_EQ(m[65541], 0xab);
  std::vector<uint8_t> out(in.size());
  ASSERT_TRUE(b->CpuRead(buf, 4090, out.data(), out.size()).ok());
  EXPECT_EQ(out, in);
  ASSERT_TRUE(b->ReleaseBuffer(buf).ok());
  EXPECT_EQ(gntdev_->unmaps.back(), size_t{2 * 65536});
}

TEST_F(LinuxXenBackendTest, OnA64KiBKernelLocalPagesStayContiguousAndGuestGfnsAre4KiBFrames) {
  page_size_ = 65536;
  auto b = Dom0();
  v1::AllocLocalRequest local;
  local.set_pages(3);
  v1::BufferInfo info;
  ASSERT_TRUE(b->AllocLocal(local, &info).ok());
  EXPECT_EQ(kmod_.last_pin.pages, 3u);
  EXPECT_EQ(kmod_.last_pin.flags, 0u) << "anonymous memory: 16 of its 4 KiB pages per page";

  auto g = Guest();
  v1::AllocGrantsRequest req;
  req.set_pages(2);
  v1::AllocGrantsResponse resp;
  ASSERT_TRUE(g->AllocGrants(req, &resp).ok());
  ASSERT_EQ(gntalloc_->maps.size(), 1u);
  EXPECT_EQ(gntalloc_->maps[0].first, size_t{2 * 65536});
  // Linux pfns 0x40100, 0x40101: the grants are their first 4 KiB frames
  EXPECT_EQ(resp.gfns(0), 0x40100u * 16);
  EXPECT_EQ(resp.gfns(1), 0x40101u * 16);
}

// The guest agent: AllocLocal (mlock'ed, no dmahil.ko) + BlockIo through the service,
// which checks every field before the device sees it.
TEST_F(LinuxXenBackendTest, TheGuestAgentMovesALocalBufferThroughTheServiceAndRefusesBadRequests) {
  namespace fs = std::filesystem;
  char tmpl[] = "/var/tmp/dmahil-blockio-XXXXXX";  // a disk file system: tmpfs has no O_DIRECT
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path disk = fs::path(tmpl) / "disk.img";
  std::ofstream(disk, std::ios::binary).close();
  fs::resize_file(disk, 1 << 20);
  const auto Slurp = [&](uint64_t offset, uint64_t n) {
    std::ifstream f(disk, std::ios::binary);
    f.seekg(static_cast<std::streamoff>(offset));
    std::string s(n, '\0');
    f.read(s.data(), static_cast<std::streamsize>(n));
    return s;
  };
  auto backend_ptr = Guest(BlockDevice::Open(disk.string()));
  LinuxXenBackend& backend = *backend_ptr;
  AgentService service(backend);
  v1::AgentInfo info;
  ASSERT_TRUE(service.GetInfo(nullptr, nullptr, &info).ok());
  EXPECT_EQ(info.block_device(), disk.string());
  EXPECT_EQ(info.block_bytes(), 1u << 20);
  EXPECT_EQ(info.block_sector_size(), 4096u);

  v1::AllocLocalRequest alloc;
  alloc.set_pages(4);
  v1::BufferInfo buf;
  ASSERT_TRUE(service.AllocLocal(nullptr, &alloc, &buf).ok());
  EXPECT_EQ(buf.pfns_size(), 0);  // no dmahil.ko in a domU

  // The CPU writes bytes into the buffer; BlockIo puts pages 1..2 at 0x3000 on the disk.
  std::string bytes(2 * 4096, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i % 251);
  ASSERT_TRUE(backend
                  .CpuWrite(buf.buffer(), 4096, reinterpret_cast<const uint8_t*>(bytes.data()),
                            bytes.size())
                  .ok());
  v1::BlockIoRequest req;
  req.set_buffer(buf.buffer());
  req.set_offset(4096);
  req.set_length(2 * 4096);
  req.set_disk_offset(0x3000);
  req.set_op(v1::BLOCK_WRITE);
  req.set_segments(2);
  v1::BlockIoResponse resp;
  ASSERT_TRUE(service.BlockIo(nullptr, &req, &resp).ok());
  EXPECT_EQ(Slurp(0x3000, bytes.size()), bytes);

  // BLOCK_READ brings the disk's bytes back into page 0.
  req.set_offset(0);
  req.set_op(v1::BLOCK_READ);
  ASSERT_TRUE(service.BlockIo(nullptr, &req, &resp).ok());
  v1::ReadBytesRequest rb;
  rb.set_buffer(buf.buffer());
  rb.set_offset(0);
  rb.set_length(bytes.size());
  v1::ReadBytesResponse got;
  ASSERT_TRUE(service.ReadBytes(nullptr, &rb, &got).ok());
  EXPECT_EQ(got.data(), bytes);

  const auto refused = [&](v1::BlockIoRequest r, grpc::StatusCode code, const std::string& says) {
    const grpc::Status s = service.BlockIo(nullptr, &r, &resp);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_NE(s.error_message().find(says), std::string::npos) << s.error_message();
  };
  const std::string before = Slurp(0, 1 << 20);
  v1::BlockIoRequest r = req;
  r.set_op(v1::BLOCK_WRITE);
  r.set_offset(512);
  refused(r, grpc::StatusCode::INVALID_ARGUMENT, "multiples of " + disk.string() + "'s 4096-byte");
  r = req;
  r.set_op(v1::BLOCK_WRITE);
  r.set_disk_offset((1 << 20) - 4096);
  refused(r, grpc::StatusCode::OUT_OF_RANGE, "exceeds " + disk.string());
  r = req;
  r.set_op(v1::BLOCK_WRITE);
  r.set_segments(3);
  refused(r, grpc::StatusCode::INVALID_ARGUMENT, "at most the 2 sectors");
  r = req;
  r.set_op(v1::BLOCK_OP_UNSPECIFIED);
  refused(r, grpc::StatusCode::INVALID_ARGUMENT, "op must be");
  r = req;
  r.set_op(v1::BLOCK_WRITE);
  r.set_offset(3 * 4096);
  refused(r, grpc::StatusCode::OUT_OF_RANGE, "exceeds buffer");
  r = req;
  r.set_buffer(99);
  refused(r, grpc::StatusCode::NOT_FOUND, "unknown buffer 99");
  EXPECT_EQ(Slurp(0, 1 << 20), before);  // no refused request touched the disk
  fs::remove_all(tmpl);
}

TEST_F(LinuxXenBackendTest, WithoutABlockDeviceBlockIoFailsAndAGuestGetsNoLocalPages) {
  auto backend = Guest();
  AgentService service(*backend);
  v1::AllocLocalRequest alloc;
  alloc.set_pages(1);
  v1::BufferInfo buf;
  EXPECT_EQ(service.AllocLocal(nullptr, &alloc, &buf).error_code(),
            grpc::StatusCode::FAILED_PRECONDITION);
  v1::BlockIoRequest req;
  req.set_op(v1::BLOCK_WRITE);
  req.set_length(4096);
  v1::BlockIoResponse resp;
  const grpc::Status s = service.BlockIo(nullptr, &req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(s.error_message().find("--block-device"), std::string::npos);
}

}  // namespace
}  // namespace dmahil::agent::linux_xen
