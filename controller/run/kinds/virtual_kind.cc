#include "controller/run/kinds/virtual_kind.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include <unistd.h>
#include <boost/process/io.hpp>

#include <csignal>
#include <cstdio>
#include <cstring>

#include "common/host_port.h"
#include "controller/device/tcp_device_client.h"
#include "controller/lab/lab_error.h"
#include "controller/run/campaign.h"

namespace dmahil::controller::kinds {

namespace bp = boost::process;
namespace fs = std::filesystem;

VboardEndpoints ParseVboardReady(const std::string& line) {
  const size_t at = line.find(kVboardReadyPrefix);
  if (at == std::string::npos)
    throw BoardError(fmt::format("not a ready line of dmahil-vboard: \"{}\"", line));
  try {
    const nlohmann::json j =
        nlohmann::json::parse(line.substr(at + std::strlen(kVboardReadyPrefix)));
    VboardEndpoints e;
    e.agents.dom0 = j.at("dom0").get<std::string>();
    e.agents.guest = j.at("guest").get<std::string>();
    e.device = j.at("device").get<std::string>();
    e.revision = j.value("revision", "");
    return e;
  } catch (const nlohmann::json::exception& e) {
    throw BoardError(fmt::format("bad ready line from dmahil-vboard: \"{}\": {}", line, e.what()));
  }
}

VboardPowerSwitch::VboardPowerSwitch(fs::path vboard, std::vector<std::string> args)
    : vboard_(std::move(vboard)), args_(std::move(args)), pty_("dmahil-vboard's console") {}

VboardPowerSwitch::~VboardPowerSwitch() { Off(); }

void VboardPowerSwitch::On() {
  if (child_) {
    std::error_code ec;
    if (child_->running(ec)) return;
    Off();
  }
  FILE* out = pty_.OpenSlaveForWriting();
  auto in = std::make_unique<bp::pipe>();
  auto group = std::make_unique<bp::group>();
  try {
    child_ = lab::SpawnChild(vboard_, args_, out, *group, in.get());
  } catch (...) {
    std::fclose(out);
    throw;
  }
  std::fclose(out);
  ::close(in->native_source());  // ours is the write end only
  in->assign_source(-1);
  stdin_ = std::move(in);
  group_ = std::move(group);
}

void VboardPowerSwitch::Off() {
  if (stdin_) stdin_.reset();  // EOF on the board's stdin: it stops by itself
  if (!child_) return;
  std::error_code ec;
  if (child_->running(ec)) {
    ::kill(child_->id(), SIGTERM);
    if (!lab::WaitExit(*child_, 2000)) group_->terminate(ec);
  }
  child_->wait(ec);
  child_.reset();
  group_.reset();
}

void VboardPowerSwitch::Cycle() {
  Off();
  On();
}

void VboardPowerSwitch::Reset() { Cycle(); }

std::string VboardPowerSwitch::Describe() const {
  return fmt::format("{} {}", vboard_.filename().string(), fmt::join(args_, " "));
}

std::string VboardPowerSwitch::Failure() {
  if (!child_) return "";
  std::error_code ec;
  if (child_->running(ec)) return "";
  return fmt::format("{} (pid {}) exited on its own, {}", vboard_.filename().string(), child_->id(),
                     lab::HowEnded(child_->native_exit_code()));
}

std::unique_ptr<lab::SerialConsole> VboardPowerSwitch::OpenConsole(const fs::path& log) const {
  v1::SerialConsole config;
  config.set_agent_ready(fmt::format("^{}", kVboardReadyPrefix));
  return pty_.OpenConsole(config, pty_.slave_path() + " (dmahil-vboard)", log);
}

namespace {

/// The engine of a virtual board: TCP to the port its ready line named, connected at the
/// first request.
class VboardEngine final : public DeviceClient {
 public:
  explicit VboardEngine(const std::string& endpoint) : endpoint_(endpoint) {}
  v1::DeviceResponse Transact(const v1::DeviceRequest& request) override {
    if (!client_) {
      if (endpoint_.empty()) throw DeviceError("virtual engine: the board is not up yet");
      const HostPort hp = ParseHostPort(endpoint_);
      client_ = std::make_unique<TcpDeviceClient>(hp.host, hp.port);
    }
    return client_->Transact(request);
  }

 private:
  const std::string& endpoint_;  // filled in by VirtualKind::Agents
  std::unique_ptr<TcpDeviceClient> client_;
};

class VirtualKind final : public BoardKind {
 public:
  VirtualKind(const LoadedBoard& board, const CampaignOptions& options)
      : board_(board), options_(options) {}

  BoardKindTraits traits() const override { return Traits(); }
  uint32_t BootTimeoutMs() const override { return options_.boot_timeout_ms; }

  std::unique_ptr<lab::PowerSwitch> OpenPower(const fs::path&) override {
    std::vector<std::string> args = {"--board", board_.file.string(), "--seed",
                                     std::to_string(BoardSeed(options_.seed, board_.entry.name()))};
    if (board_.entry.faults_size() > 0)
      args.insert(args.end(),
                  {"--faults", fmt::format("{}", fmt::join(board_.entry.faults(), ","))});
    if (!board_.revision_dir.empty())
      args.insert(args.end(), {"--revision-dir", board_.revision_dir.string()});
    auto power = std::make_unique<VboardPowerSwitch>(options_.vboard, std::move(args));
    power_ = power.get();
    return power;
  }

  std::unique_ptr<lab::SerialConsole> OpenConsole(const fs::path& log) override {
    if (power_ == nullptr) throw lab::LabError("no console: dmahil-vboard's power did not open");
    return power_->OpenConsole(log);
  }

  std::unique_ptr<DeviceClient> OpenEngine() override {
    return std::make_unique<VboardEngine>(device_);
  }

  AgentEndpoints Agents(const std::string& ready_line) override {
    const VboardEndpoints e = ParseVboardReady(ready_line);
    device_ = e.device;
    return e.agents;
  }

  static BoardKindTraits Traits() {
    BoardKindTraits t;
    t.name = "virtual";
    t.runs_model = true;
    t.stale_lines_observable = true;
    t.shows_segments = false;
    return t;
  }

 private:
  const LoadedBoard& board_;
  const CampaignOptions& options_;
  VboardPowerSwitch* power_ = nullptr;  // owned by the runner, which outlives our use
  std::string device_;
};

}  // namespace

BoardKindEntry VirtualKindEntry() {
  BoardKindEntry entry;
  entry.traits = VirtualKind::Traits();
  entry.make = [](const LoadedBoard& board, const CampaignOptions& options) {
    return std::make_unique<VirtualKind>(board, options);
  };
  // The model is its Xen: the layout is required and checked (common/validate.cc), and the
  // model's caches have one line size (sim/cache.h). Its farm entry needs nothing beyond
  // what runs_model allows (faults, revision_dir) and no wiring.
  entry.rules.needs_xen_layout = true;
  entry.rules.noun = "a virtual board";
  // The model is the code under test: its Linux and Xen are the faults injected into it.
  entry.software = [](const LoadedBoard& b) {
    const std::string faults =
        b.entry.faults().empty() ? "none" : fmt::format("{}", fmt::join(b.entry.faults(), ", "));
    return report::BoardSoftware{
        b.entry.name(),
        fmt::format("model of Linux 6.1 (sim/linux_dma.cc; faults: {}{})", faults,
                    b.entry.revision_dir().empty() ? "" : ", plus the revision files at power-on"),
        "model of Xen 4.17 (sim/xen.cc)"};
  };
  return entry;
}

}  // namespace dmahil::controller::kinds
