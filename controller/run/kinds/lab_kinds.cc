#include "controller/run/kinds/lab_kinds.h"

#include <fmt/format.h>

#include "common/host_port.h"
#include "controller/device/tcp_device_client.h"
#include "controller/device/usb_device_client.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/power.h"
#include "controller/lab/qemu_power.h"
#include "controller/lab/serial_console.h"

namespace dmahil::controller::kinds {
namespace fs = std::filesystem;
namespace {

/// TcpDeviceClient, connected at the first Transact.
class LazyTcpDeviceClient final : public DeviceClient {
 public:
  explicit LazyTcpDeviceClient(HostPort endpoint) : endpoint_(std::move(endpoint)) {}
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    if (!client_) client_ = std::make_unique<TcpDeviceClient>(endpoint_.host, endpoint_.port);
    return client_->Transact(request);
  }

 private:
  HostPort endpoint_;
  std::unique_ptr<TcpDeviceClient> client_;
};

/// What both wired kinds share: the timeout and the agents come from the wiring.
class WiredKind : public BoardKind {
 public:
  explicit WiredKind(const LoadedBoard& board) : wiring_(board.entry.wiring()) {}
  uint32_t BootTimeoutMs() const override {
    return wiring_.boot_timeout_ms() != 0 ? wiring_.boot_timeout_ms() : kDefaultLabBootTimeoutMs;
  }
  AgentEndpoints Agents(const std::string&) override {
    return {wiring_.dom0_agent(), wiring_.guest_agent()};
  }

 protected:
  const v1::BoardWiring& wiring_;
};

/// A real board: libgpiod or pdudaemon power (lab::MakePowerSwitch), a Boost.Asio serial
/// console, the USB engine (libusb).
class HardwareKind final : public WiredKind {
 public:
  using WiredKind::WiredKind;
  BoardKindTraits traits() const override { return Traits(); }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path& dir) override {
    return lab::MakePowerSwitch(wiring_.power(), dir);
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    return std::make_unique<lab::SerialConsole>(wiring_.console(), log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    return MakeUsbDeviceClient(wiring_.engine());
  }
  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "hardware";
    t.stale_lines_observable = true;
    t.shows_segments = true;
    t.wiring = BoardKindTraits::Wiring::kLab;
    return t;
  }
};

/// Real Xen and Linux under qemu-system-aarch64 (lab::QemuPowerSwitch); the engine is
/// dmahil.ko driving QEMU's edu device, served by the dom0 agent over TCP.
class QemuXenKind final : public WiredKind {
 public:
  using WiredKind::WiredKind;
  BoardKindTraits traits() const override { return Traits(); }
  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path& dir) override {
    auto power = std::make_unique<lab::QemuPowerSwitch>(wiring_.power().qemu(), dir);
    qemu_ = power.get();
    return power;
  }
  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    if (qemu_ == nullptr)
      throw lab::LabError(
          "no console device (a qemu board's console comes with its qemu power, which did not "
          "open)");
    return qemu_->OpenConsole(wiring_.console(), log);
  }
  std::unique_ptr<DeviceClient> OpenEngine() override {
    return MakeLazyTcpDeviceClient(wiring_.engine_tcp());
  }
  bool EngineMayLagAgents() const override { return true; }
  /// QEMU's NVMe controller reads and writes its raw backing file through the host's page
  /// cache; the domU's PV disk is that namespace (qemu/mkinitramfs.sh). With
  /// nvme_side_through_dom0, none: the runner then goes through dom0's agent.
  std::unique_ptr<DiskBacking> OpenDiskBacking() override {
    const v1::QemuPower& q = wiring_.power().qemu();
    if (qemu_ == nullptr || q.nvme_disk_mib() == 0 || q.nvme_side_through_dom0()) return nullptr;
    return std::make_unique<FileDiskBacking>(qemu_->nvme_image_path());
  }
  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "qemu-xen";
    t.stale_lines_observable = false;  // TCG models no caches
    t.shows_segments = true;
    t.wiring = BoardKindTraits::Wiring::kQemu;
    return t;
  }

 private:
  lab::QemuPowerSwitch* qemu_ = nullptr;  // owned by the runner, which outlives our use
};

// ---- What the wired kinds need of their board files and farm entries ----

// What only a real board's file must give: where the engine sits, the console, Xen's
// status, and the whole cache hierarchy (docs/architecture.md §10).
void CheckHardwareBoard(const v1::Board& board, Problems& p) {
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

// The board.proto names of the kinds whose wiring is QEMU's, for messages.
std::string QemuKinds() {
  return KindNames(
      [](const BoardKindTraits& t) { return t.wiring == BoardKindTraits::Wiring::kQemu; }, "or");
}

// A hardware board's wiring at `path` ("board[i].wiring"): relay or PDU power, a UART, the
// USB engine.
void CheckLabWiring(const v1::BoardWiring& w, const v1::Board& board, const std::string& path,
                    Problems& p, Claims& claims) {
  if (!w.has_power())
    p.Add(path, "{} needs power {}", path, "{ gpio { ... } } or power { pdu { ... } }");
  else if (w.power().has_qemu())
    p.Add(path + ".power.qemu", "{}.power.qemu is only for {} boards (this board is {})", path,
          QemuKinds(), v1::BoardKind_Name(board.kind()));
  else
    lab::ValidatePowerControl(w.power(), path + ".power", p, claims);
  if (!w.has_console())
    p.Add(path, "{} needs console {}", path, "{ device baud }");
  else
    lab::ValidateSerialConsole(w.console(), board, path + ".console", p, claims);
  if (w.engine_link_case() == v1::BoardWiring::kEngineTcp)
    p.Add(path + ".engine_tcp",
          "{}.engine_tcp is only for {} boards; a {} board's engine is engine {{ vid pid ep_out "
          "ep_in }} (USB)",
          path, QemuKinds(), v1::BoardKind_Name(board.kind()));
  else if (!w.has_engine())
    p.Add(path, "{} needs engine {{ vid pid ep_out ep_in }} (the USB DMA engine)", path);
  else
    ValidateUsbEngine(w.engine(), path + ".engine", p, claims);
}

// A qemu-xen board's wiring at `path`: QEMU power, its pty console, engine_tcp.
void CheckQemuWiring(const v1::BoardWiring& w, const v1::Board& board, const std::string& path,
                     Problems& p, Claims& claims) {
  if (!w.has_power())
    p.Add(path, "{} needs power {}", path, "{ qemu { ... } }");
  else if (!w.power().has_qemu())
    p.Add(path + ".power",
          "{}.power must be qemu {{ ... }}: a {} board's power is its QEMU process", path,
          v1::BoardKind_Name(board.kind()));
  if (!w.has_console())
    p.Add(path, "{} needs console {}", path, "{ agent_ready }");
  else
    lab::ValidateQemuConsole(w.console(), path + ".console", p);
  if (w.has_engine())
    p.Add(path + ".engine",
          "{}.engine (USB) cannot drive a {} board; give engine_tcp: "
          "\"127.0.0.1:<power.qemu.engine_port>\"",
          path, v1::BoardKind_Name(board.kind()));
  else if (const std::string why = HostPortProblem(w.engine_tcp()); !why.empty())
    p.Add(path + ".engine_tcp", "{}.engine_tcp \"{}\" {}; give the engine's host:port", path,
          w.engine_tcp(), why);
  if (w.power().has_qemu()) lab::ValidateQemuWiring(w, board, path, p, claims);
}

// The agents' gRPC endpoints of a wired board, each used by one board only.
void CheckAgents(const v1::BoardWiring& w, const std::string& path, Problems& p, Claims& claims) {
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

using WiringCheck = void (*)(const v1::BoardWiring&, const v1::Board&, const std::string&,
                             Problems&, Claims&);

// A wired kind's farm entry: the wiring is there and passes `check`, the agents, and the
// health fixture loads (relative to the farm file; errors in it name its own lines).
// `engine_field` is what the kind's wiring calls its engine ("engine", "engine_tcp").
void CheckWiredEntry(LoadedBoard& b, FarmBoardContext& ctx, WiringCheck check,
                     std::string_view engine_field) {
  const v1::FarmBoard& entry = b.entry;
  if (!entry.has_wiring()) {
    ctx.errors.push_back(
        fmt::format("{}: board \"{}\" is {} ({}) and needs wiring {{ power console {} dom0_agent "
                    "guest_agent }}",
                    ctx.problems.source().Where(ctx.Field()), entry.name(),
                    v1::BoardKind_Name(b.board.kind()), b.file.string(), engine_field));
    return;
  }
  const std::string path = ctx.Field(".wiring");
  check(entry.wiring(), b.board, path, ctx.problems, ctx.claims);
  CheckAgents(entry.wiring(), path, ctx.problems, ctx.claims);
  if (entry.wiring().health_fixture().empty()) return;
  const fs::path health = (ctx.dir / entry.wiring().health_fixture()).lexically_normal();
  try {
    b.health_fixture = LoadFixture(health);
  } catch (const ConfigError& e) {
    ctx.errors.push_back(
        fmt::format("{}\n{}", e.what(),
                    ctx.Note(path + ".health_fixture",
                             fmt::format("board \"{}\" names this health fixture", entry.name()))));
  }
}

}  // namespace

std::unique_ptr<DeviceClient> MakeLazyTcpDeviceClient(const std::string& endpoint) {
  if (std::string why = HostPortProblem(endpoint); !why.empty())
    throw DeviceError(fmt::format("device {}: not host:port ({})", endpoint, why));
  return std::make_unique<LazyTcpDeviceClient>(ParseHostPort(endpoint));
}

BoardKindEntry HardwareKindEntry() {
  BoardKindEntry entry;
  entry.traits = HardwareKind::Traits();
  entry.make = [](const LoadedBoard& board, const CampaignOptions&) {
    return std::make_unique<HardwareKind>(board);
  };
  entry.rules.noun = "a hardware board";
  entry.rules.check_board = CheckHardwareBoard;
  entry.rules.check_farm_entry = [](LoadedBoard& b, FarmBoardContext& ctx) {
    CheckWiredEntry(b, ctx, CheckLabWiring, "engine");
  };
  return entry;
}

BoardKindEntry QemuXenKindEntry() {
  BoardKindEntry entry;
  entry.traits = QemuXenKind::Traits();
  entry.make = [](const LoadedBoard& board, const CampaignOptions&) {
    return std::make_unique<QemuXenKind>(board);
  };
  entry.rules.noun = "a qemu-xen board";
  entry.rules.check_farm_entry = [](LoadedBoard& b, FarmBoardContext& ctx) {
    CheckWiredEntry(b, ctx, CheckQemuWiring, "engine_tcp");
    // QemuPower's files, like every path in a farm file, are relative to its folder.
    if (b.entry.wiring().power().has_qemu())
      lab::ResolveQemuPaths(*b.entry.mutable_wiring()->mutable_power()->mutable_qemu(), ctx.dir);
  };
  entry.software = [](const LoadedBoard& b) {
    const lab::QemuSoftware sw = lab::DescribeQemuSoftware(b.entry.wiring().power().qemu());
    return report::BoardSoftware{b.entry.name(), sw.kernel, sw.hypervisor};
  };
  return entry;
}

}  // namespace dmahil::controller::kinds
