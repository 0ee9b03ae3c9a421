#include "common/validate.h"

#include <algorithm>
#include <bit>
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

#include "common/dma_ranges.h"
#include "common/host_port.h"

namespace dmahil {
namespace {

constexpr uint64_t kXenPage = 4096;

// Accumulates "<file>:<line>:<col>: <what>" lines; throws them all at once, in file order.
class Problems {
 public:
  explicit Problems(const SourceMap& source) : source_(source) {}

  template <class... Args>
  void Add(std::string_view field_path, fmt::format_string<Args...> what, Args&&... args) {
    const SourceLocation at = source_.Locate(field_path);
    lines_.push_back({at.line, at.column,
                      fmt::format("{}: {}", source_.Where(field_path),
                                  fmt::format(what, std::forward<Args>(args)...))});
  }

  void ThrowIfAny() {
    if (lines_.empty()) return;
    throw ConfigError(Text());
  }

  bool empty() const { return lines_.empty(); }

  // Every problem, one per line, in file order.
  std::string Text() {
    std::stable_sort(lines_.begin(), lines_.end(), [](const Line& a, const Line& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    std::string all;
    for (const auto& line : lines_) all += (all.empty() ? "" : "\n") + line.text;
    return all;
  }

 private:
  struct Line {
    int line;
    int column;
    std::string text;
  };
  const SourceMap& source_;
  std::vector<Line> lines_;
};

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

// Checks every bank of a repeated field and that they are pairwise disjoint.
std::vector<Range> CheckBanks(Problems& p, const std::string& field,
                              const google::protobuf::RepeatedPtrField<v1::MemoryBank>& banks) {
  std::vector<Range> ranges;
  for (int i = 0; i < banks.size(); ++i) {
    auto r = CheckBank(p, fmt::format("{}[{}]", field, i), banks[i]);
    if (r) ranges.push_back(*r);
  }
  for (size_t i = 0; i < ranges.size(); ++i)
    for (size_t j = 0; j < i; ++j)
      if (Overlap(ranges[i], ranges[j]))
        p.Add(ranges[i].path, "{} {} overlaps {} {}", ranges[i].path, Show(ranges[i]),
              ranges[j].path, Show(ranges[j]));
  return ranges;
}

// The first address of `r` not inside any of `banks`, or nullopt if `r` is covered.
std::optional<uint64_t> FirstUncovered(const Range& r, std::vector<Range> banks) {
  std::sort(banks.begin(), banks.end(),
            [](const Range& a, const Range& b) { return a.base < b.base; });
  uint64_t cur = r.base;
  while (cur < r.end) {
    auto it = std::find_if(banks.begin(), banks.end(),
                           [cur](const Range& b) { return b.base <= cur && cur < b.end; });
    if (it == banks.end()) return cur;
    cur = it->end;
  }
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
// l1.line_size is set) and the CPU count. The virtual board models one line size for
// every level (sim/cache.h), as the Arm cores of the shipped boards have (64 B L1 and L2).
void CheckCaches(Problems& p, const v1::Board& board) {
  CheckCache(p, "cache", board.cache());
  if (board.has_l1() && board.l1().line_size() != 0) {
    CheckCache(p, "l1", board.l1());
    if (board.kind() == v1::BOARD_KIND_VIRTUAL &&
        board.l1().line_size() != board.cache().line_size())
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
  std::string out;
  for (const auto& r : ranges)
    out += fmt::format("{}bus {:#x} -> cpu {:#x} size {:#x}", out.empty() ? "" : ", ", r.bus_base(),
                       r.cpu_base(), r.size());
  return out;
}

// The SoC's DMA ports (issue 5) and the engine's port: unique names, sane windows that
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
    std::string declared;
    for (const auto& [name, index] : names) declared += (declared.empty() ? "" : ", ") + name;
    p.Add("dma.port", "dma.port \"{}\" names no declared port (declared: {})", dma.port(),
          declared.empty() ? "none; add port { name: ... }" : declared);
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

// termios rates Linux accepts (Boost.Asio serial_port on Linux), bits per second.
bool StandardBaud(uint32_t baud) {
  static const std::set<uint32_t> kRates = {
      1200,   2400,   4800,    9600,    19200,   38400,   57600,   115200,  230400,  460800, 500000,
      576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000, 3000000, 3500000, 4000000};
  return kRates.count(baud) > 0;
}

std::string StandardBauds() { return "e.g. 9600, 38400, 57600, 115200, 230400, 921600"; }

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

// What only a real board needs: where the engine sits, the console, Xen's status, and the
// whole cache hierarchy (issue 5).
void CheckHardware(Problems& p, const v1::Board& board) {
  if (board.port_size() == 0)
    p.Add("port",
          "a hardware board needs at least one port {{ name coherent dma_ranges }} (the PCIe "
          "root port or AXI port its DMA engine sits behind)");
  else if (board.dma().port().empty())
    p.Add("dma.port", "a hardware board needs dma.port: the name of the port its engine uses");
  if (!board.has_console())
    p.Add("console", "a hardware board needs console {{ uart baud ... }} (its debug UART)");
  if (!board.has_xen_support())
    p.Add("xen_support", "a hardware board needs xen_support {{ status ... }}");
  if (!board.has_l1() || board.l1().line_size() == 0)
    p.Add("l1", "a hardware board needs l1 {{ line_size sets ways }} (each CPU's L1 data cache)");
  if (board.cpus() == 0) p.Add("cpus", "a hardware board needs cpus: the CPUs dom0 can run on");
}

// The Xen layout of a virtual board (DESIGN §6).
void CheckXen(Problems& p, const v1::Board& board, const std::vector<Range>& ram) {
  const v1::XenLayout& xen = board.xen();
  const char* who = board.kind() == v1::BOARD_KIND_VIRTUAL ? "a virtual board" : "a xen layout";
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

// ---- Lab wiring of real boards (lab.proto BoardWiring, issue 5) ----

// Things two boards of one lab host cannot share: a GPIO line, a serial device, a USB
// engine, a PDU outlet, an agent endpoint. Maps what -> the field that first used it.
class Claims {
 public:
  explicit Claims(const SourceMap& source) : source_(source) {}
  void Claim(Problems& p, const std::string& kind, const std::string& what,
             const std::string& field) {
    auto [it, fresh] = used_.emplace(kind + "\n" + what, field);
    if (!fresh)
      p.Add(field, "{} {} is already used by {} at {}", kind, what, it->second,
            source_.Where(it->second));
  }

 private:
  const SourceMap& source_;
  std::map<std::string, std::string> used_;
};

void CheckGpioLine(Problems& p, Claims& claims, const std::string& path, const v1::GpioLine& line) {
  if (line.chip().empty()) {
    p.Add(path, "{}.chip is empty; name the gpiochip (e.g. \"gpiochip0\")", path);
    return;
  }
  claims.Claim(p, "GPIO line", fmt::format("{}:{}", line.chip(), line.offset()), path);
}

void CheckPower(Problems& p, Claims& claims, const std::string& path,
                const v1::PowerControl& power) {
  switch (power.backend_case()) {
    case v1::PowerControl::kGpio: {
      const v1::GpioPower& g = power.gpio();
      if (!g.has_power())
        p.Add(path + ".gpio", "{}.gpio needs power {{ chip offset }} (the relay's line)", path);
      else
        CheckGpioLine(p, claims, path + ".gpio.power", g.power());
      if (g.has_reset() && !g.reset().chip().empty())
        CheckGpioLine(p, claims, path + ".gpio.reset", g.reset());
      for (int i = 0; i < g.boot_mode_size(); ++i) {
        const std::string b = fmt::format("{}.gpio.boot_mode[{}]", path, i);
        if (!g.boot_mode(i).has_line())
          p.Add(b, "{} needs line {{ chip offset }}", b);
        else
          CheckGpioLine(p, claims, b + ".line", g.boot_mode(i).line());
      }
      break;
    }
    case v1::PowerControl::kPdu: {
      const v1::PduPower& pdu = power.pdu();
      const std::string f = path + ".pdu";
      if (pdu.url().rfind("http://", 0) != 0 && pdu.url().rfind("https://", 0) != 0)
        p.Add(f + ".url", "{}.url \"{}\" must be pdudaemon's http:// or https:// listener", f,
              pdu.url());
      if (pdu.hostname().empty())
        p.Add(f + ".hostname", "{}.hostname is empty; give the PDU's name in pdudaemon's config",
              f);
      else
        claims.Claim(p, "PDU outlet",
                     fmt::format("{} {} port {}", pdu.url(), pdu.hostname(), pdu.port()),
                     f + ".port");
      break;
    }
    case v1::PowerControl::kQemu:
      break;  // CheckQemu, with the rest of the wiring it must agree with
    case v1::PowerControl::BACKEND_NOT_SET:
      p.Add(path, "{} has no backend; set gpio {{ ... }} (relay) or pdu {{ ... }} (pdudaemon)",
            path);
      break;
  }
}

// Why `endpoint` is not 127.0.0.1:<port> (QEMU's hostfwd listens on the host loopback
// address only); "" if it is.
std::string LoopbackProblem(const std::string& endpoint, uint32_t port) {
  const std::string want = fmt::format("127.0.0.1:{}", port);
  if (endpoint == want) return "";
  return fmt::format("must be \"{}\" (QEMU forwards that host port into dom0)", want);
}

// A qemu-xen board's power (lab.proto QemuPower) and the rest of its wiring, which must
// name the ports QEMU forwards. Files are not checked here: they are build outputs, and
// opening the power switch names any that is missing.
void CheckQemu(Problems& p, Claims& claims, const std::string& wiring_path,
               const v1::BoardWiring& w, const v1::Board& board) {
  const v1::QemuPower& q = w.power().qemu();
  const std::string path = wiring_path + ".power.qemu";
  if (q.initrd().empty())
    p.Add(path,
          "{}.initrd is empty; give dom0's initramfs (e.g. \"../../build-qemu/board.cpio.gz\")",
          path);
  if (q.fetch_env().empty()) {
    if (q.xen().empty())
      p.Add(path, "{}.xen is empty and there is no fetch_env to take XEN= from", path);
    if (q.kernel().empty())
      p.Add(path, "{}.kernel is empty and there is no fetch_env to take KERNEL= from", path);
  }
  const uint32_t mem = q.memory_mib() != 0 ? q.memory_mib() : 2048;
  const uint32_t dom0 = q.dom0_mem_mib() != 0 ? q.dom0_mem_mib() : 512;
  if (mem < 256 || mem > 65536)
    p.Add(path + ".memory_mib", "{}.memory_mib {} must be 0 (2048) or 256..65536 MiB", path, mem);
  else if (dom0 + 128 > mem)
    p.Add(path + ".dom0_mem_mib",
          "{}.dom0_mem_mib {} leaves less than 128 MiB of memory_mib {} for Xen and the domU", path,
          dom0, mem);
  if (q.cpus() > 8)
    p.Add(path + ".cpus", "{}.cpus {} must be 0 (2) or 1..8 (TCG runs each vCPU on a host thread)",
          path, q.cpus());
  if (q.edu_dma_mask() != 0 && (q.edu_dma_mask() & (q.edu_dma_mask() + 1)) != 0)
    p.Add(path + ".edu_dma_mask", "{}.edu_dma_mask {:#x} must be 0 (64 bits) or 2^n - 1", path,
          q.edu_dma_mask());
  // The board file is what the oracle judges by: it must describe the machine QEMU runs.
  const uint64_t mask = q.edu_dma_mask() != 0 ? q.edu_dma_mask() : ~uint64_t{0};
  const auto mask_bits = static_cast<uint32_t>(std::bit_width(mask));
  if (board.dma().mask_bits() != 0 && board.dma().mask_bits() != mask_bits)
    p.Add(path + ".edu_dma_mask",
          "{}.edu_dma_mask {:#x} is {} bits but board \"{}\" says dma.mask_bits {}", path, mask,
          mask_bits, board.name(), board.dma().mask_bits());
  if (q.non_coherent() == board.dma().coherent())
    p.Add(path + ".non_coherent",
          "{}.non_coherent is {} but board \"{}\" says dma.coherent {}: boot the board file's "
          "PCIe (non_coherent: {})",
          path, q.non_coherent(), board.name(), board.dma().coherent(), !board.dma().coherent());
  uint64_t ram = 0;
  for (const v1::MemoryBank& b : board.ram()) ram += b.size();
  if (ram != 0 && ram != uint64_t{mem} << 20)
    p.Add(path + ".memory_mib", "{}.memory_mib {} but board \"{}\" has {} MiB of RAM", path, mem,
          board.name(), ram >> 20);
  const std::tuple<const char*, uint32_t, const char*, const std::string*> ports[] = {
      {"dom0_agent_port", q.dom0_agent_port(), "dom0_agent", &w.dom0_agent()},
      {"guest_agent_port", q.guest_agent_port(), "guest_agent", &w.guest_agent()},
      {"engine_port", q.engine_port(), "engine_tcp", &w.engine_tcp()}};
  for (const auto& [name, port, field, endpoint] : ports) {
    const std::string f = fmt::format("{}.{}", path, name);
    if (port < 1 || port > 65535) {
      p.Add(f, "{} {} must be a host TCP port 1..65535 (QEMU hostfwd)", f, port);
      continue;
    }
    claims.Claim(p, "host TCP port", fmt::format("127.0.0.1:{}", port), f);
    if (const std::string why = LoopbackProblem(*endpoint, port); !why.empty())
      p.Add(fmt::format("{}.{}", wiring_path, field), "{}.{} \"{}\" {}", wiring_path, field,
            *endpoint, why);
  }
}

void CheckSerial(Problems& p, Claims& claims, const std::string& path, const v1::SerialConsole& c,
                 const v1::Board& board) {
  if (board.kind() == v1::BOARD_KIND_QEMU_XEN) {
    // QEMU's serial port is a pty the power switch makes: nothing to name, nothing to set.
    if (!c.device().empty())
      p.Add(path + ".device",
            "{}.device \"{}\" must be empty for power {{ qemu }}: the console is the pty the "
            "controller gives QEMU",
            path, c.device());
    if (c.agent_ready().empty())
      p.Add(path, "{} needs agent_ready (e.g. \"dmahil-qemu: board ready\")", path);
  } else if (c.device().empty())
    p.Add(path + ".device",
          "{}.device is empty; give the serial device (e.g. /dev/serial/by-id/...)", path);
  else
    claims.Claim(p, "serial device", c.device(), path + ".device");
  if (board.kind() == v1::BOARD_KIND_QEMU_XEN) {
    // no line settings on a pty
  } else if (!StandardBaud(c.baud()))
    p.Add(path + ".baud", "{}.baud {} is not a standard serial rate ({})", path, c.baud(),
          StandardBauds());
  else if (board.has_console() && StandardBaud(board.console().baud()) &&
           board.console().baud() != c.baud())
    p.Add(path + ".baud",
          "{}.baud {} differs from the board's console.baud {} (the rate its firmware sets and "
          "Xen keeps)",
          path, c.baud(), board.console().baud());
  if (c.data_bits() != 0 && (c.data_bits() < 5 || c.data_bits() > 8))
    p.Add(path + ".data_bits", "{}.data_bits {} must be 0 (8) or 5..8", path, c.data_bits());
  if (c.stop_bits() > 2)
    p.Add(path + ".stop_bits", "{}.stop_bits {} must be 0 (1), 1 or 2", path, c.stop_bits());
  if (!c.agent_ready().empty()) {
    try {
      std::regex re(c.agent_ready(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      p.Add(path + ".agent_ready", "{}.agent_ready \"{}\" is not an ECMAScript regex: {}", path,
            c.agent_ready(), e.what());
    }
  }
}

void CheckUsb(Problems& p, Claims& claims, const std::string& path, const v1::UsbEngine& e) {
  if (e.vid() == 0 || e.vid() > 0xffff)
    p.Add(path + ".vid", "{}.vid {:#06x} must be a nonzero 16-bit USB vendor id", path, e.vid());
  if (e.pid() == 0 || e.pid() > 0xffff)
    p.Add(path + ".pid", "{}.pid {:#06x} must be a nonzero 16-bit USB product id", path, e.pid());
  // bEndpointAddress: bit 7 direction (1 = IN), bits 3..0 the number (0 is control).
  const auto endpoint = [&](const char* name, uint32_t ep, bool in) {
    const std::string f = fmt::format("{}.{}", path, name);
    if (ep > 0xff || (ep & 0x70) != 0 || (ep & 0x0f) == 0)
      p.Add(f, "{} {:#04x} is not a bulk endpoint address (number 1..15 in bits 3..0)", f, ep);
    else if (in && (ep & 0x80) == 0)
      p.Add(f, "{} {:#04x} is an OUT address; an IN endpoint has bit 0x80 set (e.g. {:#04x})", f,
            ep, ep | 0x80);
    else if (!in && (ep & 0x80) != 0)
      p.Add(f, "{} {:#04x} is an IN address; an OUT endpoint has bit 0x80 clear (e.g. {:#04x})", f,
            ep, ep & 0x0f);
  };
  endpoint("ep_out", e.ep_out(), false);
  endpoint("ep_in", e.ep_in(), true);
  if (e.interface() > 0xff)
    p.Add(path + ".interface", "{}.interface {} must be 0..255", path, e.interface());
  if (e.vid() != 0 && e.pid() != 0)
    claims.Claim(p, "USB engine",
                 fmt::format("{:04x}:{:04x}{}", e.vid(), e.pid(),
                             e.serial().empty() ? " (any serial)" : " serial " + e.serial()),
                 path + (e.serial().empty() ? ".pid" : ".serial"));
}

// One hardware board's wiring (the health fixture is checked by the caller, which knows
// the farm's folder).
void CheckWiring(Problems& p, Claims& claims, const std::string& path, const v1::BoardWiring& w,
                 const v1::Board& board) {
  const bool qemu_board = board.kind() == v1::BOARD_KIND_QEMU_XEN;
  if (!w.has_power()) {
    p.Add(path, "{} needs power {}", path,
          qemu_board ? "{ qemu { ... } }" : "{ gpio { ... } } or power { pdu { ... } }");
  } else if (qemu_board && !w.power().has_qemu()) {
    p.Add(path + ".power",
          "{}.power must be qemu {{ ... }}: a BOARD_KIND_QEMU_XEN board's power is "
          "its QEMU process",
          path);
  } else if (!qemu_board && w.power().has_qemu()) {
    p.Add(path + ".power.qemu",
          "{}.power.qemu is only for BOARD_KIND_QEMU_XEN boards (this board is {})", path,
          v1::BoardKind_Name(board.kind()));
  } else {
    CheckPower(p, claims, path + ".power", w.power());
  }
  if (!w.has_console())
    p.Add(path, "{} needs console {}", path, qemu_board ? "{ agent_ready }" : "{ device baud }");
  else
    CheckSerial(p, claims, path + ".console", w.console(), board);
  if (qemu_board) {
    if (w.has_engine())
      p.Add(path + ".engine",
            "{}.engine (USB) cannot drive a BOARD_KIND_QEMU_XEN board; give engine_tcp: "
            "\"127.0.0.1:<power.qemu.engine_port>\"",
            path);
    else if (const std::string why = HostPortProblem(w.engine_tcp()); !why.empty())
      p.Add(path + ".engine_tcp", "{}.engine_tcp \"{}\" {}; give the engine's host:port", path,
            w.engine_tcp(), why);
    if (w.power().has_qemu()) CheckQemu(p, claims, path, w, board);
  } else if (w.engine_link_case() == v1::BoardWiring::kEngineTcp) {
    p.Add(path + ".engine_tcp",
          "{}.engine_tcp is only for BOARD_KIND_QEMU_XEN boards; a {} board's engine is "
          "engine {{ vid pid ep_out ep_in }} (USB)",
          path, v1::BoardKind_Name(board.kind()));
  } else if (!w.has_engine()) {
    p.Add(path, "{} needs engine {{ vid pid ep_out ep_in }} (the USB DMA engine)", path);
  } else {
    CheckUsb(p, claims, path + ".engine", w.engine());
  }
  const std::pair<const char*, const std::string*> agents[] = {{"dom0_agent", &w.dom0_agent()},
                                                               {"guest_agent", &w.guest_agent()}};
  for (const auto& [name, endpoint] : agents) {
    const std::string& value = *endpoint;
    const std::string f = fmt::format("{}.{}", path, name);
    if (const std::string why = HostPortProblem(value); !why.empty())
      p.Add(f, "{} \"{}\" {}; give the agent's gRPC endpoint as host:port", f, value, why);
    else
      claims.Claim(p, "agent endpoint", value, f);
  }
}

}  // namespace

void ValidateBoard(const v1::Board& board, const SourceMap& source) {
  Problems p(source);
  if (board.name().empty()) p.Add("name", "board name is empty; set name: \"<board>\"");
  if (board.kind() == v1::BOARD_KIND_UNSPECIFIED)
    p.Add("kind",
          "board kind is not set; set kind: BOARD_KIND_VIRTUAL, BOARD_KIND_QEMU_XEN "
          "or BOARD_KIND_HARDWARE");
  if (board.ram_size() == 0) p.Add("ram", "a board needs at least one ram {{ base size }} bank");
  const std::vector<Range> ram = CheckBanks(p, "ram", board.ram());
  CheckCaches(p, board);
  CheckDma(p, board.dma());
  if (board.linux_page_size() != 4096 && board.linux_page_size() != 65536)
    p.Add("linux_page_size", "linux_page_size {} must be 4096 or 65536", board.linux_page_size());
  CheckPorts(p, board, ram);
  if (board.has_console()) CheckConsole(p, board.console());
  if (board.has_xen_support()) CheckXenSupport(p, board.xen_support());
  if (board.kind() == v1::BOARD_KIND_HARDWARE) CheckHardware(p, board);
  // Virtual boards need the layout (it is their Xen model); elsewhere the real Xen decides
  // and a layout, if given, is checked by the same rules.
  if (board.kind() == v1::BOARD_KIND_VIRTUAL || board.has_xen()) CheckXen(p, board, ram);
  p.ThrowIfAny();
}

void ValidateFixture(const v1::Fixture& f, const SourceMap& source) {
  Problems p(source);
  if (f.name().empty()) p.Add("name", "fixture name is empty; set name: \"<fixture>\"");
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
  else if (f.pages() + 2 * f.canary_pages() > 1024)
    p.Add("pages", "pages {} plus 2 x canary_pages {} must be at most 1024 (one grant table)",
          f.pages(), f.canary_pages());
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

v1::Board LoadBoard(const std::filesystem::path& file, SourceMap* source) {
  SourceMap map;
  auto board = LoadTextProto<v1::Board>(file, &map);
  ValidateBoard(board, map);
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

LoadedFarm LoadFarm(const std::filesystem::path& file, const KnownFault& known_fault) {
  LoadedFarm out;
  out.file = file;
  out.farm = LoadTextProto<v1::Farm>(file, &out.source);
  ValidateFarm(out.farm, out.source, known_fault);
  const std::filesystem::path dir = file.parent_path();
  std::vector<std::string> errors;
  const auto note = [&](const std::string& field, const std::string& what) {
    return fmt::format("{}: note: {}", out.source.Where(field), what);
  };
  Problems wiring(out.source);  // problems in the farm's wiring blocks
  Claims claims(out.source);    // relays, UARTs, engines and endpoints in use
  for (int i = 0; i < out.farm.board_size(); ++i) {
    const auto& entry = out.farm.board(i);
    LoadedBoard b;
    b.entry = entry;
    b.file = (dir / entry.board_file()).lexically_normal();
    const std::string field = fmt::format("board[{}].board_file", i);
    try {
      b.board = LoadBoard(b.file, &b.source);
    } catch (const ConfigError& e) {
      errors.push_back(
          fmt::format("{}\n{}", e.what(),
                      note(field, fmt::format("board \"{}\" uses this board file", entry.name()))));
      continue;
    }
    if (entry.faults_size() > 0 && b.board.kind() != v1::BOARD_KIND_VIRTUAL)
      errors.push_back(fmt::format(
          "{}: board \"{}\" has faults, but faults can only be injected "
          "into virtual boards ({} is not BOARD_KIND_VIRTUAL)",
          out.source.Where(fmt::format("board[{}].faults", i)), entry.name(), b.file.string()));
    const std::string wiring_field = fmt::format("board[{}].wiring", i);
    const bool wired_kind =
        b.board.kind() == v1::BOARD_KIND_HARDWARE || b.board.kind() == v1::BOARD_KIND_QEMU_XEN;
    if (entry.has_wiring() && !wired_kind) {
      errors.push_back(fmt::format(
          "{}: board \"{}\" has wiring, but only BOARD_KIND_HARDWARE and BOARD_KIND_QEMU_XEN "
          "boards are wired ({} is {})",
          out.source.Where(wiring_field), entry.name(), b.file.string(),
          v1::BoardKind_Name(b.board.kind())));
    } else if (wired_kind && !entry.has_wiring()) {
      errors.push_back(
          fmt::format("{}: board \"{}\" is {} ({}) and needs wiring {{ power console {} dom0_agent "
                      "guest_agent }}",
                      out.source.Where(fmt::format("board[{}]", i)), entry.name(),
                      v1::BoardKind_Name(b.board.kind()), b.file.string(),
                      b.board.kind() == v1::BOARD_KIND_QEMU_XEN ? "engine_tcp" : "engine"));
    } else if (entry.has_wiring()) {
      CheckWiring(wiring, claims, wiring_field, entry.wiring(), b.board);
      if (entry.wiring().power().has_qemu()) {
        // QemuPower's files, like every path in a farm file, are relative to its folder.
        v1::QemuPower& q = *b.entry.mutable_wiring()->mutable_power()->mutable_qemu();
        for (std::string* f :
             {q.mutable_fetch_env(), q.mutable_xen(), q.mutable_kernel(), q.mutable_initrd()})
          if (!f->empty()) *f = (dir / *f).lexically_normal().string();
        if (q.qemu().find('/') != std::string::npos)  // a path; a bare name is looked up on PATH
          q.set_qemu((dir / q.qemu()).lexically_normal().string());
      }
      if (!entry.wiring().health_fixture().empty()) {
        const std::filesystem::path health =
            (dir / entry.wiring().health_fixture()).lexically_normal();
        try {
          b.health_fixture = LoadFixture(health);
        } catch (const ConfigError& e) {
          errors.push_back(fmt::format(
              "{}\n{}", e.what(),
              note(wiring_field + ".health_fixture",
                   fmt::format("board \"{}\" names this health fixture", entry.name()))));
        }
      }
    }
    if (!entry.revision_dir().empty()) {
      b.revision_dir = (dir / entry.revision_dir()).lexically_normal();
      if (b.board.kind() != v1::BOARD_KIND_VIRTUAL)
        errors.push_back(fmt::format(
            "{}: board \"{}\" has a revision_dir, but only virtual boards read revision "
            "files ({} is not BOARD_KIND_VIRTUAL)",
            out.source.Where(fmt::format("board[{}].revision_dir", i)), entry.name(),
            b.file.string()));
    }
    out.boards.push_back(std::move(b));
  }
  if (!wiring.empty()) errors.push_back(wiring.Text());
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
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    throw ConfigError(all);
  }
  return out;
}

}  // namespace dmahil
