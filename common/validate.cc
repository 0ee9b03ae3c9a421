#include "common/validate.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "common/dma_ranges.h"

namespace dmahil {
namespace {

constexpr uint64_t kXenPage = 4096;

// A half-open address range [base, end) with its field path, end computed without wrap.
struct Range {
  std::string path;
  uint64_t base = 0;
  uint64_t end = 0;
};

std::string Show(uint64_t base, uint64_t end) { return fmt::format("[{:#x}, {:#x})", base, end); }
std::string Show(const Range& r) { return Show(r.base, r.end); }

bool Overlap(const Range& a, const Range& b) { return a.base < b.end && b.base < a.end; }

// Checks one bank: nonzero, 4 KiB aligned, no wrap past 2^64. Returns its range if usable.
std::optional<Range> CheckBank(Problems& p, const std::string& path, const v1::MemoryBank& b) {
  bool ok = true;
  if (b.size() == 0) {
    p.Add(path + ".size", "{} has size 0; give its size in bytes", path);
    ok = false;
  } else if (b.size() % kXenPage != 0) {
    p.Add(path + ".size", "{} size {:#x} is not a multiple of 4 KiB", path, b.size());
    ok = false;
  }
  if (b.base() % kXenPage != 0) {
    p.Add(path + ".base", "{} base {:#x} is not 4 KiB aligned", path, b.base());
    ok = false;
  }
  if (b.size() != 0 && b.base() + b.size() < b.base()) {
    p.Add(path + ".size", "{} base {:#x} + size {:#x} wraps past 2^64", path, b.base(), b.size());
    ok = false;
  }
  if (!ok) return std::nullopt;
  return Range{path, b.base(), b.base() + b.size()};
}

// Checks every bank of a repeated field and that they are pairwise disjoint: sorted by
// base, each bank is compared with the one reaching furthest before it (n log n, so a
// board file with many banks validates in time proportional to its size).
std::vector<Range> CheckBanks(Problems& p, const std::string& field,
                              const google::protobuf::RepeatedPtrField<v1::MemoryBank>& banks) {
  std::vector<Range> ranges;
  for (int i = 0; i < banks.size(); ++i) {
    auto r = CheckBank(p, fmt::format("{}[{}]", field, i), banks[i]);
    if (r) ranges.push_back(*r);
  }
  std::vector<const Range*> sorted;
  for (const Range& r : ranges) sorted.push_back(&r);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Range* a, const Range* b) { return a->base < b->base; });
  const Range* furthest = nullptr;
  for (const Range* r : sorted) {
    if (furthest != nullptr && Overlap(*r, *furthest)) {
      const bool r_later = r > furthest;  // (same vector: index order) name the later one
      const Range& later = r_later ? *r : *furthest;
      const Range& first = r_later ? *furthest : *r;
      p.Add(later.path, "{} {} overlaps {} {}", later.path, Show(later), first.path, Show(first));
    }
    if (furthest == nullptr || r->end > furthest->end) furthest = r;
  }
  return ranges;
}

// The first address of `r` not inside any of `banks`, or nullopt if `r` is covered.
std::optional<uint64_t> FirstUncovered(const Range& r, std::vector<Range> banks) {
  std::sort(banks.begin(), banks.end(),
            [](const Range& a, const Range& b) { return a.base < b.base; });
  uint64_t cur = r.base;
  for (const Range& b : banks) {
    if (cur >= r.end) break;
    if (b.base > cur) break;  // sorted: no later bank starts at or before cur
    cur = std::max(cur, b.end);
  }
  if (cur < r.end) return cur;
  return std::nullopt;
}

void CheckInside(Problems& p, const Range& r, const std::vector<Range>& banks,
                 std::string_view banks_name) {
  if (auto hole = FirstUncovered(r, banks))
    p.Add(r.path, "{} {} is not inside {}: address {:#x} is in none of its banks", r.path, Show(r),
          banks_name, *hole);
}

// Checks that every CPU address of `pool`, translated to a bus address through the
// dma-ranges (identity if none), is within the device's mask.
void CheckReachable(Problems& p, const Range& pool, const v1::DmaEngineDesc& dma) {
  const uint64_t mask = DmaMask(dma.mask_bits());
  uint64_t cur = pool.base;
  while (cur < pool.end) {
    uint64_t seg_end = pool.end;
    uint64_t bus_last = pool.end - 1;
    if (dma.dma_ranges_size() > 0) {
      const auto& ranges = dma.dma_ranges();
      auto it = std::find_if(ranges.begin(), ranges.end(), [cur](const v1::DmaRange& r) {
        return r.cpu_base() <= cur && cur - r.cpu_base() < r.size();
      });
      if (it == ranges.end()) {
        p.Add(pool.path,
              "{} {} is not reachable by the device: CPU address {:#x} is in no "
              "dma.dma_ranges window",
              pool.path, Show(pool), cur);
        return;
      }
      const uint64_t room = ~uint64_t{0} - it->cpu_base();  // window end, saturated
      seg_end = std::min(pool.end, it->size() > room ? ~uint64_t{0} : it->cpu_base() + it->size());
      bus_last = it->bus_base() + (seg_end - 1 - it->cpu_base());
    }
    if (bus_last > mask) {
      p.Add(pool.path,
            "{} {} is not reachable by the device: bus address {:#x} is above the "
            "{}-bit DMA mask {:#x}, so bounced buffers could not be reached either",
            pool.path, Show(pool), bus_last, dma.mask_bits(), mask);
      return;
    }
    cur = seg_end;
  }
}

// One cache level's geometry; `field` is its path in the board ("cache" or "l1").
void CheckCache(Problems& p, const std::string& field, const v1::CacheGeometry& c) {
  const auto pow2 = [](uint32_t v) { return v != 0 && (v & (v - 1)) == 0; };
  if (!pow2(c.line_size()) || c.line_size() < 16 || c.line_size() > 4096)
    p.Add(field + ".line_size", "{}.line_size {} must be a power of two from 16 to 4096 bytes",
          field, c.line_size());
  if (!pow2(c.sets()))
    p.Add(field + ".sets", "{}.sets {} must be a power of two, at least 1", field, c.sets());
  if (c.ways() < 1) p.Add(field + ".ways", "{}.ways must be at least 1", field);
  if (c.eviction_ppm() > 1000000)
    p.Add(field + ".eviction_ppm", "{}.eviction_ppm {} is more than 1000000 (one per access)",
          field, c.eviction_ppm());
  if (c.prefetch_ppm() > 1000000)
    p.Add(field + ".prefetch_ppm", "{}.prefetch_ppm {} is more than 1000000 (one per access)",
          field, c.prefetch_ppm());
}

// The cache hierarchy: the shared level, the optional per-CPU L1 (present when
// l1.line_size is set) and the CPU count. The model (kinds whose rules need the Xen layout)
// has one line size for every level (sim/cache.h), as the Arm cores of the shipped boards
// have (64 B L1 and L2).
void CheckCaches(Problems& p, const v1::Board& board, bool one_line_size) {
  CheckCache(p, "cache", board.cache());
  if (board.has_l1() && board.l1().line_size() != 0) {
    CheckCache(p, "l1", board.l1());
    if (one_line_size && board.l1().line_size() != board.cache().line_size())
      p.Add("l1.line_size",
            "l1.line_size {} differs from cache.line_size {}; the virtual board needs the same "
            "line size in every cache level",
            board.l1().line_size(), board.cache().line_size());
  }
  if (board.cpus() > 64)
    p.Add("cpus", "cpus {} must be 0..64 (CPUs sharing the point of coherency; 0 means 1)",
          board.cpus());
}

// A repeated DmaRange field (`field`: "dma.dma_ranges" or "port[i].dma_ranges"): every
// window non-empty and without wrap, bus windows pairwise disjoint, CPU windows too.
// Returns the usable windows' CPU ranges.
std::vector<Range> CheckDmaRanges(Problems& p, const std::string& field,
                                  const google::protobuf::RepeatedPtrField<v1::DmaRange>& ranges) {
  std::vector<Range> bus, cpu;
  for (int i = 0; i < ranges.size(); ++i) {
    const auto& r = ranges[i];
    const std::string path = fmt::format("{}[{}]", field, i);
    if (r.size() == 0) {
      p.Add(path + ".size", "{} has size 0", path);
      continue;
    }
    if (r.bus_base() + r.size() < r.bus_base() || r.cpu_base() + r.size() < r.cpu_base()) {
      p.Add(path + ".size", "{} wraps past 2^64", path);
      continue;
    }
    bus.push_back({path, r.bus_base(), r.bus_base() + r.size()});
    cpu.push_back({path, r.cpu_base(), r.cpu_base() + r.size()});
  }
  for (size_t i = 0; i < bus.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      if (Overlap(bus[i], bus[j]))
        p.Add(bus[i].path, "{} bus window {} overlaps {} bus window {}", bus[i].path, Show(bus[i]),
              bus[j].path, Show(bus[j]));
      if (Overlap(cpu[i], cpu[j]))
        p.Add(cpu[i].path, "{} CPU window {} overlaps {} CPU window {}", cpu[i].path, Show(cpu[i]),
              cpu[j].path, Show(cpu[j]));
    }
  return cpu;
}

void CheckDma(Problems& p, const v1::DmaEngineDesc& dma) {
  if (dma.mask_bits() < 32 || dma.mask_bits() > 64)
    p.Add("dma.mask_bits", "dma.mask_bits {} must be 32..64", dma.mask_bits());
  CheckDmaRanges(p, "dma.dma_ranges", dma.dma_ranges());
}

bool SameRanges(const google::protobuf::RepeatedPtrField<v1::DmaRange>& a,
                const google::protobuf::RepeatedPtrField<v1::DmaRange>& b) {
  if (a.size() != b.size()) return false;
  for (int i = 0; i < a.size(); ++i)
    if (std::tuple(a[i].bus_base(), a[i].cpu_base(), a[i].size()) !=
        std::tuple(b[i].bus_base(), b[i].cpu_base(), b[i].size()))
      return false;
  return true;
}

std::string ShowRanges(const google::protobuf::RepeatedPtrField<v1::DmaRange>& ranges) {
  if (ranges.empty()) return "none (bus address == CPU physical address)";
  std::vector<std::string> shown;
  for (const auto& r : ranges)
    shown.push_back(
        fmt::format("bus {:#x} -> cpu {:#x} size {:#x}", r.bus_base(), r.cpu_base(), r.size()));
  return fmt::format("{}", fmt::join(shown, ", "));
}

// The SoC's DMA ports and the engine's port: unique names, sane windows that
// reach RAM, and an engine description that agrees with its port.
void CheckPorts(Problems& p, const v1::Board& board, const std::vector<Range>& ram) {
  std::map<std::string, int> names;
  for (int i = 0; i < board.port_size(); ++i) {
    const v1::DmaPort& port = board.port(i);
    const std::string path = fmt::format("port[{}]", i);
    if (port.name().empty()) {
      p.Add(path, "{} has no name; set name: \"<port>\" (e.g. \"pcie0\")", path);
    } else if (auto [it, fresh] = names.emplace(port.name(), i); !fresh) {
      p.Add(path + ".name", "{}.name \"{}\" is also the name of port[{}]", path, port.name(),
            it->second);
    }
    if (port.address_bits() != 0 && (port.address_bits() < 32 || port.address_bits() > 64))
      p.Add(path + ".address_bits", "{}.address_bits {} must be 0 (not limited) or 32..64", path,
            port.address_bits());
    for (const Range& w : CheckDmaRanges(p, path + ".dma_ranges", port.dma_ranges())) {
      const bool reaches_ram =
          std::any_of(ram.begin(), ram.end(), [&](const Range& r) { return Overlap(w, r); });
      if (!reaches_ram && !ram.empty())
        p.Add(w.path, "{} CPU window {} reaches no ram bank; the port could reach no memory",
              w.path, Show(w));
    }
  }
  const v1::DmaEngineDesc& dma = board.dma();
  if (dma.port().empty()) return;
  const auto it = names.find(dma.port());
  if (it == names.end()) {
    std::vector<std::string_view> declared;
    for (const auto& [name, index] : names) declared.push_back(name);
    p.Add("dma.port", "dma.port \"{}\" names no declared port (declared: {})", dma.port(),
          declared.empty() ? "none; add port { name: ... }"
                           : fmt::format("{}", fmt::join(declared, ", ")));
    return;
  }
  const v1::DmaPort& port = board.port(it->second);
  if (dma.coherent() != port.coherent())
    p.Add("dma.coherent",
          "dma.coherent is {} but the engine's port \"{}\" (port[{}]) has coherent: {}; the "
          "engine is as coherent as its port",
          dma.coherent(), port.name(), it->second, port.coherent());
  if (!SameRanges(dma.dma_ranges(), port.dma_ranges()))
    p.Add(dma.dma_ranges_size() > 0 ? "dma.dma_ranges" : "dma.port",
          "dma.dma_ranges ({}) differ from the dma_ranges of the engine's port \"{}\" "
          "(port[{}]: {}); repeat the port's windows",
          ShowRanges(dma.dma_ranges()), port.name(), it->second, ShowRanges(port.dma_ranges()));
}

// A board's test disk (board.proto TestDisk): a dom0 device path and the controller and
// driver a report names; whole paths only, since dom0's agent opens exactly that.
void CheckTestDisk(Problems& p, const v1::TestDisk& disk) {
  if (disk.dom0_device().rfind("/dev/", 0) != 0 || disk.dom0_device().size() <= 5)
    p.Add("test_disk.dom0_device",
          "test_disk.dom0_device \"{}\" must be a path under /dev/ in dom0, e.g. "
          "\"/dev/disk/by-partlabel/dmahil-test\"",
          disk.dom0_device());
  if (disk.controller().empty())
    p.Add("test_disk.controller",
          "test_disk.controller is empty; name the storage controller's device-tree node "
          "(\"/soc/mmc@fe320000\") or PCI address (\"0000:00:03.0\")");
  if (disk.driver().empty())
    p.Add("test_disk.driver",
          "test_disk.driver is empty; name the Linux driver that DMA-maps its pages "
          "(\"nvme\", \"sdhci-of-dwcmshc\", \"ahci\")");
}

void CheckConsole(Problems& p, const v1::ConsoleDesc& console) {
  if (console.uart().empty())
    p.Add("console", "console.uart is empty; name the SoC's debug UART (e.g. \"UART0\")");
  if (!StandardBaud(console.baud()))
    p.Add("console.baud", "console.baud {} is not a standard serial rate ({})", console.baud(),
          StandardBauds());
}

void CheckXenSupport(Problems& p, const v1::XenSupport& xen) {
  static const std::regex kVersion(R"(^[0-9]+\.[0-9]+$)");
  if (xen.status() == v1::XEN_SUPPORT_UNSPECIFIED)
    p.Add("xen_support.status",
          "xen_support.status is not set; set XEN_SUPPORT_UPSTREAM, XEN_SUPPORT_PARTIAL or "
          "XEN_SUPPORT_OUT_OF_TREE");
  if (!xen.since_xen().empty() && !std::regex_match(xen.since_xen(), kVersion))
    p.Add("xen_support.since_xen",
          "xen_support.since_xen \"{}\" must be MAJOR.MINOR, e.g. \"4.14\"", xen.since_xen());
  if (!xen.min_dom0_linux().empty() && !std::regex_match(xen.min_dom0_linux(), kVersion))
    p.Add("xen_support.min_dom0_linux",
          "xen_support.min_dom0_linux \"{}\" must be MAJOR.MINOR, e.g. \"5.9\"",
          xen.min_dom0_linux());
}

// The Xen layout (docs/architecture.md §7); `who` names the board in "needs" messages ("a
// virtual board" where its kind needs the layout, else "a xen layout").
void CheckXen(Problems& p, const v1::Board& board, const std::vector<Range>& ram,
              std::string_view who) {
  const v1::XenLayout& xen = board.xen();
  if (xen.dom0_ram_size() == 0) p.Add("xen", "{} needs xen.dom0_ram (dom0's 1:1 RAM banks)", who);
  if (xen.domu_ram_size() == 0)
    p.Add("xen", "{} needs xen.domu_ram (machine RAM for the domU's frames)", who);
  const std::vector<Range> dom0 = CheckBanks(p, "xen.dom0_ram", xen.dom0_ram());
  const std::vector<Range> domu = CheckBanks(p, "xen.domu_ram", xen.domu_ram());
  for (const auto& r : dom0) CheckInside(p, r, ram, "ram");
  for (const auto& r : domu) CheckInside(p, r, ram, "ram");
  // dom0 Linux decides "local or foreign" with pfn_valid() (drivers/xen/swiotlb-xen.c).
  // Linux 6.1's generic pfn_valid() (include/linux/mmzone.h, CONFIG_SPARSEMEM) is true for
  // every pfn of an early (boot-time) memory section that holds any RAM: the whole section
  // span, SECTION_SIZE_BITS 27 (128 MiB) with 4 KiB pages, 29 (512 MiB) with 64 KiB pages
  // (arch/arm64/include/asm/sparsemem.h). A domU frame in a section with dom0 RAM would be
  // taken for dom0's own page and miss its GNTTABOP_cache_flush: refuse such a layout. The
  // model follows the same rule (sim/linux_dma.h LinuxDma::PfnValid).
  const uint64_t section = MemorySectionBytes(board.linux_page_size());
  for (const auto& u : domu)
    for (const auto& d : dom0) {
      const uint64_t lo = std::max(u.base / section, d.base / section);
      const uint64_t hi = std::min((u.end - 1) / section, (d.end - 1) / section);
      if (lo <= hi && !Overlap(u, d))
        p.Add(u.path,
              "{} {} shares the {} MiB memory section {} with {} {}: dom0 Linux's pfn_valid() "
              "is true across a whole section holding RAM (include/linux/mmzone.h), so it "
              "would take the domU's frames for its own; put the banks in different sections",
              u.path, Show(u), section >> 20, Show(lo * section, (lo + 1) * section), d.path,
              Show(d));
    }
  for (const auto& u : domu)
    for (const auto& d : dom0)
      if (Overlap(u, d))
        p.Add(u.path, "{} {} overlaps {} {}; dom0 and domU RAM must be disjoint", u.path, Show(u),
              d.path, Show(d));
  if (xen.domu_gfn_base() % kXenPage != 0)
    p.Add("xen.domu_gfn_base", "xen.domu_gfn_base {:#x} is not 4 KiB aligned", xen.domu_gfn_base());
  const auto grant = CheckBank(p, "xen.grant_map_region", xen.grant_map_region());
  const auto pool = CheckBank(p, "xen.swiotlb_pool", xen.swiotlb_pool());
  if (grant && !dom0.empty()) CheckInside(p, *grant, dom0, "xen.dom0_ram");
  if (pool && !dom0.empty()) CheckInside(p, *pool, dom0, "xen.dom0_ram");
  if (grant && pool && Overlap(*grant, *pool))
    p.Add(pool->path, "xen.swiotlb_pool {} overlaps xen.grant_map_region {}", Show(*pool),
          Show(*grant));
  if (pool && board.dma().mask_bits() >= 32 && board.dma().mask_bits() <= 64)
    CheckReachable(p, *pool, board.dma());
}

// "A, B or C": the kinds a board file may set (board.proto BoardKind but its unset zero).
std::string KindChoices() {
  const google::protobuf::EnumDescriptor* kinds = v1::BoardKind_descriptor();
  std::vector<std::string> names;
  for (int i = 0; i < kinds->value_count(); ++i)
    if (kinds->value(i)->number() != 0) names.push_back(kinds->value(i)->name());
  if (names.size() < 2) return fmt::format("{}", fmt::join(names, ""));
  return fmt::format("{} or {}", fmt::join(names.begin(), names.end() - 1, ", "), names.back());
}

}  // namespace

std::string FarmBoardContext::Field(std::string_view sub) const {
  return fmt::format("board[{}]{}", index, sub);
}

std::string FarmBoardContext::Note(std::string_view field_path, std::string_view what) const {
  return fmt::format("{}: note: {}", problems.source().Where(field_path), what);
}

bool IsFileName(std::string_view name) {
  if (name.empty() || name.size() > kMaxNameBytes || name[0] == '.' || name[0] == '-') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '+' || c == '-';
  });
}

namespace {

// A name that becomes a file or folder name under --out (a farm's board: <out>/<board>/;
// a board file's: `dmahil matrix` runs/seed-N/<board>/), and a fixture's, held to the same
// rule so that a report may name a file after it: one path component inside --out.
void CheckFileName(Problems& p, const std::string& field, std::string_view noun,
                   const std::string& name) {
  if (!name.empty() && !IsFileName(name))
    p.Add(field,
          "{} name \"{}\" must be usable as a file name under --out: 1..{} letters, digits, "
          "'.', '_', '+' or '-', not starting with '.' or '-'",
          noun, name, kMaxNameBytes);
}

}  // namespace

bool StandardBaud(uint32_t baud) {
  static const std::set<uint32_t> kRates = {
      1200,   2400,   4800,    9600,    19200,   38400,   57600,   115200,  230400,  460800, 500000,
      576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000};
  return kRates.count(baud) > 0;
}

std::string_view StandardBauds() { return "e.g. 9600, 38400, 57600, 115200, 230400, 921600"; }

namespace {

// Entries of one repeated field of a board file (banks, windows, ports) validated at most:
// a real SoC has a handful; the limit keeps the pairwise checks below (overlaps, sections,
// windows x banks) small whatever file is given.
constexpr int kMaxBoardEntries = 64;

void CheckCount(Problems& p, const std::string& field, int count) {
  if (count > kMaxBoardEntries)
    p.Add(fmt::format("{}[{}]", field, kMaxBoardEntries),
          "{} has {} entries; a board file gives at most {} (a SoC has a handful)", field, count,
          kMaxBoardEntries);
}

// Throws ConfigError if a repeated field of `board` has more than kMaxBoardEntries entries,
// before the checks whose time grows with their product.
void CheckCounts(const v1::Board& board, const SourceMap& source) {
  Problems p(source);
  CheckCount(p, "ram", board.ram_size());
  CheckCount(p, "dma.dma_ranges", board.dma().dma_ranges_size());
  CheckCount(p, "port", board.port_size());
  for (int i = 0; i < std::min(board.port_size(), kMaxBoardEntries); ++i)
    CheckCount(p, fmt::format("port[{}].dma_ranges", i), board.port(i).dma_ranges_size());
  CheckCount(p, "xen.dom0_ram", board.xen().dom0_ram_size());
  CheckCount(p, "xen.domu_ram", board.xen().domu_ram_size());
  p.ThrowIfAny();
}

}  // namespace

void ValidateBoard(const v1::Board& board, const SourceMap& source, const BoardRules* rules) {
  Problems p(source);
  CheckCounts(board, source);
  if (board.name().empty()) p.Add("name", "board name is empty; set name: \"<board>\"");
  CheckFileName(p, "name", "board", board.name());  // dmahil matrix names runs after it
  if (board.kind() == v1::BoardKind{})              // proto3: the zero value is "not set"
    p.Add("kind", "board kind is not set; set kind: {}", KindChoices());
  if (board.ram_size() == 0) p.Add("ram", "a board needs at least one ram {{ base size }} bank");
  const std::vector<Range> ram = CheckBanks(p, "ram", board.ram());
  const bool needs_xen = rules != nullptr && rules->needs_xen_layout;
  CheckCaches(p, board, needs_xen);
  CheckDma(p, board.dma());
  if (board.linux_page_size() != 4096 && board.linux_page_size() != 65536)
    p.Add("linux_page_size", "linux_page_size {} must be 4096 or 65536", board.linux_page_size());
  CheckPorts(p, board, ram);
  if (board.has_console()) CheckConsole(p, board.console());
  if (board.has_xen_support()) CheckXenSupport(p, board.xen_support());
  if (board.has_test_disk()) CheckTestDisk(p, board.test_disk());
  // The model needs the layout (it is its Xen); elsewhere the real Xen decides and a
  // layout, if given, is checked by the same rules.
  if (needs_xen || board.has_xen())
    CheckXen(p, board, ram, needs_xen ? rules->noun : std::string_view("a xen layout"));
  if (rules != nullptr && rules->check_board) rules->check_board(board, p);
  p.ThrowIfAny();
}

namespace {

// A PV block fixture (fixture.proto PvBlock): the domU's own pages through blkfront, so
// none of the engine's mapping options apply; the I/O lies inside the buffer in whole
// 512-byte sectors (the disk's own sector size is checked when the fixture runs).
void CheckPvBlock(const v1::Fixture& f, Problems& p) {
  constexpr uint32_t kSector = 512;
  if (f.source() != v1::BUFFER_FOREIGN_GRANT && f.source() != v1::BUFFER_SOURCE_UNSPECIFIED)
    p.Add("source",
          "source must be BUFFER_FOREIGN_GRANT for FIXTURE_KIND_PV_BLOCK: dom0's driver DMAs "
          "the domU's pages that blkfront granted");
  const std::pair<const char*, bool> engine_only[] = {
      {"double_map", f.double_map()},
      {"reuse_mapping", f.reuse_mapping()},
      {"partial_bytes", f.partial_bytes() != 0},
      {"expect_bounce", f.expect_bounce()},
      {"dma_mask_bits", f.dma_mask_bits() != 0},
      {"placement", f.placement() != v1::PLACEMENT_ANY}};
  for (const auto& [field, set] : engine_only)
    if (set)
      p.Add(field,
            "{} is not for FIXTURE_KIND_PV_BLOCK: blkback and the disk's driver decide how the "
            "domU's pages are mapped",
            field);
  const v1::PvBlock& b = f.block();
  const uint64_t buffer_bytes = uint64_t{f.pages()} * 4096;
  const uint64_t bytes = PvBlockBytes(f);
  if (b.buffer_offset() >= 4096 || b.buffer_offset() % kSector != 0)
    p.Add("block.buffer_offset", "block.buffer_offset {} must be a multiple of 512 below 4096",
          b.buffer_offset());
  if (b.disk_offset() % kSector != 0)
    p.Add("block.disk_offset", "block.disk_offset {} must be a multiple of 512 (whole sectors)",
          b.disk_offset());
  if (b.bytes() % kSector != 0)
    p.Add("block.bytes", "block.bytes {} must be a multiple of 512 (whole sectors)", b.bytes());
  else if (b.buffer_offset() + bytes > buffer_bytes || bytes == 0)
    p.Add("block.bytes", "block.buffer_offset {} + block.bytes {} must lie inside the {} pages",
          b.buffer_offset(), bytes, f.pages());
  if (b.segments() > 64)
    p.Add("block.segments", "block.segments {} must be 0..64 (iovecs of one request)",
          b.segments());
  else if (uint64_t{std::max<uint32_t>(1, b.segments())} * kSector > bytes)
    p.Add("block.segments", "block.segments {} needs at least as many 512-byte sectors ({} bytes)",
          b.segments(), bytes);
}

}  // namespace

uint64_t FixtureGrants(const v1::Fixture& fixture) {
  const uint64_t pages = uint64_t{fixture.pages()} + 2 * uint64_t{fixture.canary_pages()};
  return fixture.double_map() ? 2 * pages : pages;
}

uint64_t PvBlockBytes(const v1::Fixture& fixture) {
  const v1::PvBlock& b = fixture.block();
  const uint64_t buffer_bytes = uint64_t{fixture.pages()} * 4096;
  return b.bytes() != 0 ? b.bytes()
                        : buffer_bytes - std::min<uint64_t>(buffer_bytes, b.buffer_offset());
}

void ValidateFixture(const v1::Fixture& f, const SourceMap& source) {
  Problems p(source);
  if (f.name().empty()) p.Add("name", "fixture name is empty; set name: \"<fixture>\"");
  CheckFileName(p, "name", "fixture", f.name());
  if (f.direction() == v1::DMA_DIRECTION_UNSPECIFIED)
    p.Add("direction",
          "direction is not set; set direction: DMA_TO_DEVICE, DMA_FROM_DEVICE "
          "or DMA_BIDIRECTIONAL");
  if (f.source() == v1::BUFFER_SOURCE_UNSPECIFIED)
    p.Add("source",
          "source is not set; set source: BUFFER_FOREIGN_GRANT, BUFFER_LOCAL or "
          "BUFFER_MIXED_SG");
  if (f.pages() < 1 || f.pages() > 1024)
    p.Add("pages", "pages {} must be 1..1024 (4 KiB Xen pages per buffer)", f.pages());
  else if (const uint64_t grants = FixtureGrants(f); grants > 1024)
    p.Add("pages",
          "pages {} plus 2 x canary_pages {}{} need {} grants; one grant table has 1024 "
          "(the domU grants every page once, twice with double_map)",
          f.pages(), f.canary_pages(), f.double_map() ? ", granted twice (double_map)," : "",
          grants);
  if (f.source() == v1::BUFFER_MIXED_SG && f.pages() % 4 != 0)
    p.Add("pages",
          "pages {} must be a multiple of 4 for BUFFER_MIXED_SG (pairs of foreign "
          "and local pages)",
          f.pages());
  if (f.partial_bytes() % 8 != 0 || f.partial_bytes() >= 4096)
    p.Add("partial_bytes", "partial_bytes {} must be a multiple of 8 below the line size",
          f.partial_bytes());
  if (f.expect_bounce() && f.placement() != v1::PLACEMENT_NEEDS_BOUNCE)
    p.Add("expect_bounce",
          "expect_bounce needs placement: PLACEMENT_NEEDS_BOUNCE (pages beyond the device's "
          "reach), else nothing makes swiotlb-xen bounce them");
  if (f.double_map() && f.source() != v1::BUFFER_FOREIGN_GRANT)
    p.Add("double_map", "double_map needs source: BUFFER_FOREIGN_GRANT");
  if (f.iterations() > 20000)
    p.Add("iterations", "iterations {} must be at most 20000 (16-bit pattern generations)",
          f.iterations());
  if (f.iterations() < 1)
    p.Add("iterations", "iterations must be at least 1; set iterations: 1 or more");
  if (f.dma_mask_bits() != 0 && (f.dma_mask_bits() < 32 || f.dma_mask_bits() > 64))
    p.Add("dma_mask_bits", "dma_mask_bits {} must be 0 (the board's mask) or 32..64",
          f.dma_mask_bits());
  if (f.canary_pages() > 4)
    p.Add("canary_pages", "canary_pages {} must be 0..4 (4 KiB pages on each side of the buffer)",
          f.canary_pages());
  if (f.kind() == v1::FIXTURE_KIND_PV_BLOCK)
    CheckPvBlock(f, p);
  else if (f.has_block())
    p.Add("block", "block {{ ... }} is for kind: FIXTURE_KIND_PV_BLOCK only");
  p.ThrowIfAny();
}

void ValidateFarm(const v1::Farm& farm, const SourceMap& source, const KnownFault& known_fault) {
  Problems p(source);
  if (farm.board_size() == 0)
    p.Add("board", "a farm needs at least one board {{ name board_file }}");
  std::map<std::string, int> seen;
  for (int i = 0; i < farm.board_size(); ++i) {
    const auto& b = farm.board(i);
    const std::string path = fmt::format("board[{}]", i);
    CheckFileName(p, path + ".name", "board", b.name());
    if (b.name().empty()) {
      p.Add(path, "board[{}] has no name", i);
    } else if (auto [it, fresh] = seen.emplace(b.name(), i); !fresh) {
      p.Add(path + ".name", "board name \"{}\" is used twice (also board[{}] at {})", b.name(),
            it->second, source.Where(fmt::format("board[{}].name", it->second)));
    }
    if (b.board_file().empty())
      p.Add(path + ".board_file", "board \"{}\" has no board_file", b.name());
    if (!known_fault) continue;
    for (int k = 0; k < b.faults_size(); ++k)
      if (!known_fault(b.faults(k)))
        p.Add(fmt::format("{}.faults[{}]", path, k), "unknown fault \"{}\" for board \"{}\"",
              b.faults(k), b.name());
  }
  if (farm.fixture_file_size() == 0)
    p.Add("fixture_file", "a farm needs at least one fixture_file");
  std::map<std::string, int> files;
  for (int i = 0; i < farm.fixture_file_size(); ++i) {
    const std::string path = fmt::format("fixture_file[{}]", i);
    if (farm.fixture_file(i).empty())
      p.Add(path, "fixture_file is empty");
    else if (!files.emplace(farm.fixture_file(i), i).second)
      p.Add(path, "fixture_file \"{}\" is listed twice", farm.fixture_file(i));
  }
  p.ThrowIfAny();
}

v1::Board LoadBoard(const std::filesystem::path& file, SourceMap* source,
                    const BoardRulesOf& rules) {
  SourceMap map;
  auto board = LoadTextProto<v1::Board>(file, &map);
  ValidateBoard(board, map, rules ? rules(board.kind()) : nullptr);
  if (source != nullptr) *source = std::move(map);
  return board;
}

v1::Fixture LoadFixture(const std::filesystem::path& file, SourceMap* source) {
  SourceMap map;
  auto fixture = LoadTextProto<v1::Fixture>(file, &map);
  ValidateFixture(fixture, map);
  if (source != nullptr) *source = std::move(map);
  return fixture;
}

LoadedFarm LoadFarm(const std::filesystem::path& file, const KnownFault& known_fault,
                    const BoardRulesOf& rules) {
  LoadedFarm out;
  out.file = file;
  out.farm = LoadTextProto<v1::Farm>(file, &out.source);
  ValidateFarm(out.farm, out.source, known_fault);
  const std::filesystem::path dir = file.parent_path();
  std::vector<std::string> errors;
  const auto note = [&](const std::string& field, const std::string& what) {
    return fmt::format("{}: note: {}", out.source.Where(field), what);
  };
  Problems entries(out.source);  // problems the kinds find in the farm's board entries
  Claims claims(out.source);     // resources the boards' wiring uses
  for (int i = 0; i < out.farm.board_size(); ++i) {
    const auto& entry = out.farm.board(i);
    LoadedBoard b;
    b.entry = entry;
    b.file = (dir / entry.board_file()).lexically_normal();
    const std::string field = fmt::format("board[{}].board_file", i);
    try {
      b.board = LoadBoard(b.file, &b.source, rules);
    } catch (const ConfigError& e) {
      errors.push_back(
          fmt::format("{}\n{}", e.what(),
                      note(field, fmt::format("board \"{}\" uses this board file", entry.name()))));
      continue;
    }
    if (!entry.revision_dir().empty())
      b.revision_dir = (dir / entry.revision_dir()).lexically_normal();
    if (const BoardRules* kind = rules ? rules(b.board.kind()) : nullptr;
        kind != nullptr && kind->check_farm_entry) {
      FarmBoardContext ctx{i, dir, entries, claims, errors};
      kind->check_farm_entry(b, ctx);
    }
    out.boards.push_back(std::move(b));
  }
  if (!entries.empty()) errors.push_back(entries.Text());
  std::map<std::string, std::filesystem::path> names;
  for (int i = 0; i < out.farm.fixture_file_size(); ++i) {
    LoadedFixture f;
    f.file = (dir / out.farm.fixture_file(i)).lexically_normal();
    const std::string field = fmt::format("fixture_file[{}]", i);
    try {
      f.fixture = LoadFixture(f.file, &f.source);
    } catch (const ConfigError& e) {
      errors.push_back(fmt::format("{}\n{}", e.what(), note(field, "the farm names this fixture")));
      continue;
    }
    if (auto [it, fresh] = names.emplace(f.fixture.name(), f.file); !fresh)
      errors.push_back(
          fmt::format("{}: fixture name \"{}\" is also used by {}; fixture names "
                      "must be unique in a farm",
                      f.source.Where("name"), f.fixture.name(), it->second.string()));
    out.fixtures.push_back(std::move(f));
  }
  if (!errors.empty()) throw ConfigError(fmt::format("{}", fmt::join(errors, "\n")));
  return out;
}

}  // namespace dmahil
