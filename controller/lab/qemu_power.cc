#include "controller/lab/qemu_power.h"

#include <fcntl.h>
#include <pty.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <fmt/format.h>

#include <openssl/evp.h>
#include <bit>
#include <boost/process/args.hpp>
#include <boost/process/extend.hpp>
#include <boost/process/io.hpp>
#include <boost/process/search_path.hpp>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <system_error>
#include <thread>
#include <tuple>

#include "controller/lab/child_process.h"
#include "controller/lab/lab_error.h"
#include "controller/lab/log_tail.h"

namespace dmahil::lab {

namespace bp = boost::process;
namespace fs = std::filesystem;

namespace {

// QEMU's option parser (util/qemu-option.c) splits "a=b,c=d" at commas; a literal comma
// in a value is written ",,".
std::string OptValue(const std::string& s) {
  std::string out;
  for (char c : s) {
    out += c;
    if (c == ',') out += ',';
  }
  return out;
}

std::string Hex(uint64_t v) { return fmt::format("{:#x}", v); }

std::string UtcNow() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

// One shell-like word per argument, for the log (so the command can be pasted).
std::string ShellJoin(const fs::path& exe, const std::vector<std::string>& args) {
  const auto quote = [](const std::string& a) {
    if (!a.empty() && a.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                          "0123456789-_=.,:/@+") == std::string::npos)
      return a;
    std::string q = "'";
    for (char c : a) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  };
  std::string s = quote(exe.string());
  for (const std::string& a : args) s += " " + quote(a);
  return s;
}

// A program given as a path (contains '/') or a name on PATH; "" if not found.
fs::path FindProgram(const std::string& program) {
  if (program.find('/') != std::string::npos)
    return access(program.c_str(), X_OK) == 0 ? fs::path(program) : fs::path();
  return fs::path(bp::search_path(program).string());
}

// Starts `exe args` (SpawnChild) with stdout and stderr appended to `log`.
std::unique_ptr<bp::child> Spawn(const fs::path& exe, const std::vector<std::string>& args,
                                 const fs::path& log, bp::group& group) {
  FILE* out = std::fopen(log.c_str(), "a");
  if (out == nullptr)
    throw LabError(
        fmt::format("{}: cannot open for QEMU's output: {}", log.string(), std::strerror(errno)));
  try {
    auto child = SpawnChild(exe, args, out, group);
    std::fclose(out);
    return child;
  } catch (...) {
    std::fclose(out);
    throw;
  }
}

// The SHA-256 of `file` in lower-case hex (OpenSSL EVP); nullopt (errno set) if it cannot
// be read.
std::optional<std::string> FileSha256(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return std::nullopt;
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(),
                                                                    &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) return std::nullopt;
  std::vector<char> buf(1 << 16);
  while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0)
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(in.gcount()));
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), md, &len) != 1) return std::nullopt;
  std::string hex;
  for (unsigned int i = 0; i < len; ++i) hex += fmt::format("{:02x}", md[i]);
  return hex;
}

}  // namespace

std::map<std::string, std::string> ReadEnvFile(const fs::path& file) {
  std::ifstream in(file);
  if (!in) throw LabError(fmt::format("{}: cannot read: {}", file.string(), std::strerror(errno)));
  std::map<std::string, std::string> env;
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    if (line.empty() || line[0] == '#') continue;
    const size_t eq = line.find('=');
    if (eq == std::string::npos || eq == 0)
      throw LabError(fmt::format("{}:{}: not KEY=VALUE: \"{}\"", file.string(), number, line));
    env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return env;
}

QemuSoftware DescribeQemuSoftware(const v1::QemuPower& power) {
  std::map<std::string, std::string> env;
  std::string env_error;
  if (!power.fetch_env().empty()) {
    try {
      env = ReadEnvFile(power.fetch_env());
    } catch (const LabError& e) {
      env_error = e.what();
    }
  }
  const auto get = [&](const char* key) {
    const auto it = env.find(key);
    return it == env.end() ? std::string() : it->second;
  };
  QemuSoftware out;
  if (!power.kernel().empty()) {
    out.kernel = power.kernel();
  } else if (!get("KERNEL_DESCRIBE").empty()) {
    out.kernel =
        fmt::format("Linux {} (tree {}, commit {}, config {} {}, {} KiB pages)",
                    get("KERNEL_DESCRIBE"), get("KERNEL_TREE"), get("KERNEL_REV").substr(0, 12),
                    get("KERNEL_CONFIG"), get("KERNEL_CONFIG_SHA"), get("KERNEL_PAGE_KIB"));
  } else if (!get("ABI").empty()) {
    out.kernel = fmt::format("Debian linux-image-{} ({})", get("ABI"), get("KERNEL"));
  } else {
    out.kernel = fmt::format("unknown: {}", env_error.empty() ? "no kernel named" : env_error);
  }
  const std::string xen = power.xen().empty() ? get("XEN") : power.xen();
  if (xen.empty()) {
    out.hypervisor =
        fmt::format("unknown: {}", env_error.empty() ? "no Xen image named" : env_error);
  } else {
    const std::optional<std::string> digest = FileSha256(xen);
    out.hypervisor = digest ? fmt::format("Xen {} (sha256 {})", xen, digest->substr(0, 16))
                            : fmt::format("Xen {} (unreadable: {})", xen, std::strerror(errno));
  }
  return out;
}

QemuImages ResolveQemuImages(const v1::QemuPower& power) {
  std::map<std::string, std::string> env;
  if (!power.fetch_env().empty() && (power.xen().empty() || power.kernel().empty()))
    env = ReadEnvFile(power.fetch_env());
  const auto pick = [&](const std::string& given, const char* key, const char* field) {
    if (!given.empty()) return fs::path(given);
    if (power.fetch_env().empty())
      throw LabError(
          fmt::format("qemu power: {} is not set and there is no fetch_env to take "
                      "{}= from",
                      field, key));
    const auto it = env.find(key);
    if (it == env.end() || it->second.empty())
      throw LabError(fmt::format("{}: no {}= line for qemu power's {} (run qemu/fetch.sh)",
                                 power.fetch_env(), key, field));
    return fs::path(it->second);
  };
  QemuImages images{pick(power.xen(), "XEN", "xen"),
                    pick(power.kernel(), "KERNEL", "kernel"),
                    power.initrd(),
                    {}};
  if (images.initrd.empty()) throw LabError("qemu power: initrd is not set");
  const std::pair<const char*, const fs::path*> all[] = {
      {"Xen image", &images.xen}, {"dom0 kernel", &images.kernel}, {"dom0 initrd", &images.initrd}};
  for (const auto& [what, path] : all) {
    std::error_code ec;
    if (!fs::is_regular_file(*path, ec))
      throw LabError(
          fmt::format("{}: the {} does not exist (qemu/fetch.sh fetches Xen and the "
                      "kernel; the initrd is built for the board)",
                      path->string(), what));
  }
  return images;
}

std::vector<std::string> QemuArgs(const v1::QemuPower& power, const QemuImages& images,
                                  const std::string& serial, const fs::path& dtb,
                                  const fs::path& dump_dtb) {
  const uint32_t mem = power.memory_mib() != 0 ? power.memory_mib() : kQemuDefaultMemoryMib;
  const uint32_t dom0 = power.dom0_mem_mib() != 0 ? power.dom0_mem_mib() : kQemuDefaultDom0MemMib;
  const uint32_t cpus = power.cpus() != 0 ? power.cpus() : kQemuDefaultCpus;
  const uint64_t mask = power.edu_dma_mask() != 0 ? power.edu_dma_mask() : kQemuDefaultEduDmaMask;
  // Xen on the virt machine's first PL011 (hw/arm/virt.c: VIRT_UART at 0x09000000).
  std::string xen_cmdline = fmt::format(
      "dom0_mem={0}M,max:{0}M console=dtuart dtuart=/pl011@9000000 loglvl=all guest_loglvl=all",
      dom0);
  for (const std::string& a : power.xen_args()) xen_cmdline += " " + a;
  // pci=nomsi: Debian's Xen 4.17 has no GICv3 ITS support, so dom0 has no MSI controller;
  // without it virtio_net's probe warns (qemu/README.md).
  // dmahil.dma_bits: dmahil.ko gives edu the mask QEMU clamps its addresses to (dom0's
  // /init passes it to insmod), so the DMA API bounces what the device cannot reach.
  std::string bootargs =
      fmt::format("console=hvc0 earlycon=xenboot rdinit=/init pci=nomsi dmahil.dma_bits={}",
                  std::bit_width(mask));
  for (const std::string& a : power.dom0_args()) bootargs += " " + a;
  std::string machine = "virt,virtualization=on,gic-version=3";
  if (!dump_dtb.empty()) machine += ",dumpdtb=" + OptValue(dump_dtb.string());
  const auto fwd = [](uint32_t host, uint16_t guest) {
    return fmt::format("hostfwd=tcp:127.0.0.1:{}-{}:{}", host, kQemuDom0Address, guest);
  };
  std::vector<std::string> args = {
      "-machine", machine, "-cpu", "cortex-a57", "-smp", std::to_string(cpus), "-m",
      std::to_string(mem),
      // No display; the serial port goes to the pty; no monitor (nothing may read stdin).
      "-display", "none", "-no-reboot", "-serial", serial, "-monitor", "none", "-parallel", "none",
      "-kernel", images.xen.string(), "-append", xen_cmdline,
      // guest-loader (hw/core/guest-loader.c) writes the /chosen multiboot,module nodes
      // Xen's boot finds dom0's kernel and initrd by.
      "-device",
      fmt::format("guest-loader,addr=0x49000000,kernel={},bootargs={}",
                  OptValue(images.kernel.string()), OptValue(bootargs)),
      "-device",
      fmt::format("guest-loader,addr=0x4d000000,initrd={}", OptValue(images.initrd.string())),
      "-netdev",
      fmt::format("user,id=n0,{},{},{}", fwd(power.dom0_agent_port(), kQemuDom0AgentGuestPort),
                  fwd(power.guest_agent_port(), kQemuGuestRelayGuestPort),
                  fwd(power.engine_port(), kQemuEngineGuestPort)),
      // romfile= (empty): QEMU 7.2 otherwise stops for want of efi-virtio.rom.
      "-device", "virtio-net-pci,netdev=n0,romfile=", "-device",
      fmt::format("edu,dma_mask={}", Hex(mask))};
  if (!images.nvme.empty())  // hw/nvme/ctrl.c: one namespace from drive=, 512-byte LBAs
    args.insert(args.end(),
                {"-drive",
                 fmt::format("file={},if=none,id=nvme0,format=raw", OptValue(images.nvme.string())),
                 "-device", "nvme,serial=dmahil-nvme0,drive=nvme0"});
  if (!dtb.empty()) args.insert(args.end(), {"-dtb", dtb.string()});
  for (const std::string& a : power.qemu_args()) args.push_back(a);
  return args;
}

QemuPowerSwitch::QemuPowerSwitch(const v1::QemuPower& power, const fs::path& dir)
    : power_(power), dir_(dir) {
  images_ = ResolveQemuImages(power_);
  const std::string program = power_.qemu().empty() ? "qemu-system-aarch64" : power_.qemu();
  qemu_ = FindProgram(program);
  if (qemu_.empty())
    throw LabError(
        fmt::format("{}: not found or not executable (Debian: apt-get install "
                    "qemu-system-arm)",
                    program));
  if (power_.non_coherent()) {
    fdtput_ = FindProgram("fdtput");
    if (fdtput_.empty())
      throw LabError("fdtput: not on PATH (Debian: apt-get install device-tree-compiler)");
  }
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw LabError(fmt::format("{}: cannot create: {}", dir_.string(), ec.message()));
  // QEMU's tty chardev sets its own raw mode when it opens the slave
  // (chardev/char-serial.c tty_serial_init).
  pty_ = std::make_unique<PtyPair>("QEMU's serial port");
  if (power_.nvme_disk_mib() != 0) images_.nvme = nvme_image_path();
}

void QemuPowerSwitch::CreateNvmeImage() const {
  if (images_.nvme.empty()) return;
  std::error_code ec;
  fs::remove(images_.nvme, ec);
  std::ofstream(images_.nvme, std::ios::binary | std::ios::trunc);  // empty, then sparse
  fs::resize_file(images_.nvme, uint64_t{power_.nvme_disk_mib()} << 20, ec);
  if (ec)
    throw LabError(fmt::format("{}: cannot create the NVMe disk's {} MiB backing file: {}",
                               images_.nvme.string(), power_.nvme_disk_mib(), ec.message()));
}

QemuPowerSwitch::~QemuPowerSwitch() {
  try {
    Off();
  } catch (...) {  // a destructor must not throw; Off() only logs
  }
}

void QemuPowerSwitch::Log(const std::string& line) const {
  std::ofstream(log_path(), std::ios::app) << line << "\n";
}

void QemuPowerSwitch::DumpDtb() {
  const fs::path dtb = dtb_path();
  std::error_code ec;
  fs::remove(dtb, ec);
  // The same arguments as the boot (the DTB records the initrd's size and the guest-loader
  // nodes), so QEMU writes the tree it would have booted with (hw/arm/virt.c: dumpdtb
  // exits right after machine init).
  const std::vector<std::string> args = QemuArgs(power_, images_, serial_path(), {}, dtb);
  Log(fmt::format("# dmahil dtb dump {}: {}", UtcNow(), ShellJoin(qemu_, args)));
  bp::group group;
  std::unique_ptr<bp::child> child = Spawn(qemu_, args, log_path(), group);
  if (!WaitExit(*child, kDumpTimeoutMs)) {
    std::error_code ignored;
    group.terminate(ignored);
    child->wait(ignored);
    throw LabError(fmt::format("{}: dumping the DTB did not finish within {} ms", qemu_.string(),
                               kDumpTimeoutMs));
  }
  const int status = child->native_exit_code();
  if (!fs::is_regular_file(dtb, ec) || WIFSIGNALED(status) || WEXITSTATUS(status) != 0)
    throw LabError(fmt::format("{}: dumping the DTB to {} failed ({}); see {}:\n{}", qemu_.string(),
                               dtb.string(), HowEnded(status), log_path().string(),
                               TailLines(log_path(), kFailureLogLines)));
  // The virt machine's PCIe host bridge node is "/pcie@<VIRT_PCIE_MMIO base>" =
  // /pcie@10000000 and create_pcie() gives it `dma-coherent` (QEMU 7.2 hw/arm/virt.c);
  // without it, Linux's of_dma_is_coherent() makes the edu device non-coherent.
  const std::vector<std::string> put = {"-d", dtb.string(), "/pcie@10000000", "dma-coherent"};
  Log(fmt::format("# dmahil dtb edit: {}", ShellJoin(fdtput_, put)));
  bp::group put_group;
  std::unique_ptr<bp::child> editor = Spawn(fdtput_, put, log_path(), put_group);
  if (!WaitExit(*editor, 10000)) {
    std::error_code ignored;
    put_group.terminate(ignored);
    editor->wait(ignored);
    throw LabError(fmt::format("{}: did not finish within 10000 ms", fdtput_.string()));
  }
  const int put_status = editor->native_exit_code();
  if (WIFSIGNALED(put_status) || WEXITSTATUS(put_status) != 0)
    throw LabError(fmt::format("{} -d {} /pcie@10000000 dma-coherent failed ({}); see {}:\n{}",
                               fdtput_.string(), dtb.string(), HowEnded(put_status),
                               log_path().string(), TailLines(log_path(), kFailureLogLines)));
}

void QemuPowerSwitch::On() {
  if (child_) {
    std::error_code ec;
    if (child_->running(ec)) return;  // on already
    Off();                            // exited on its own: reap, then start afresh
  }
  CreateNvmeImage();
  if (power_.non_coherent()) DumpDtb();
  last_args_ = QemuArgs(power_, images_, serial_path(), power_.non_coherent() ? dtb_path() : "");
  Log(fmt::format("# dmahil power on {}: {}", UtcNow(), ShellJoin(qemu_, last_args_)));
  auto group = std::make_unique<bp::group>();
  child_ = Spawn(qemu_, last_args_, log_path(), *group);
  group_ = std::move(group);
  exited_.reset();
}

void QemuPowerSwitch::Off() {
  if (!child_) return;
  std::error_code ec;
  const bool was_running = child_->running(ec);
  if (was_running) {
    // SIGKILL to the whole group: QEMU and anything it started (bp::group on POSIX is a
    // process group; terminate() is kill(-pgid, SIGKILL)).
    group_->terminate(ec);
    if (ec) ::kill(child_->id(), SIGKILL);
  }
  child_->wait(ec);
  const std::string how =
      was_running ? "killed by power off" : "had exited: " + HowEnded(child_->native_exit_code());
  Log(fmt::format("# dmahil power off {}: qemu pid {} {}", UtcNow(), child_->id(), how));
  child_.reset();
  group_.reset();
}

void QemuPowerSwitch::Cycle() {
  Off();
  On();
}

void QemuPowerSwitch::Reset() { Cycle(); }

std::string QemuPowerSwitch::Describe() const {
  return fmt::format("{} (Xen {}, dom0 {}, initrd {}{})", qemu_.filename().string(),
                     images_.xen.string(), images_.kernel.string(), images_.initrd.string(),
                     power_.non_coherent() ? ", non-coherent" : "");
}

std::string QemuPowerSwitch::Failure() {
  if (!child_) return "";
  if (!exited_) {
    std::error_code ec;
    if (child_->running(ec)) return "";
    exited_ =
        fmt::format("{} (pid {}) exited on its own, {}; the end of {}:\n{}",
                    qemu_.filename().string(), child_->id(), HowEnded(child_->native_exit_code()),
                    log_path().string(), TailLines(log_path(), kFailureLogLines));
  }
  return *exited_;
}

pid_t QemuPowerSwitch::pid() {
  std::error_code ec;
  return child_ && child_->running(ec) ? child_->id() : -1;
}

std::unique_ptr<SerialConsole> QemuPowerSwitch::OpenConsole(const v1::SerialConsole& config,
                                                            const fs::path& log) const {
  return pty_->OpenConsole(config, serial_path() + " (QEMU serial)", log);
}

namespace {

// Why `endpoint` is not 127.0.0.1:<port> (QEMU's hostfwd listens on the host loopback
// address only); "" if it is.
std::string LoopbackProblem(const std::string& endpoint, uint32_t port) {
  const std::string want = fmt::format("127.0.0.1:{}", port);
  if (endpoint == want) return "";
  return fmt::format("must be \"{}\" (QEMU forwards that host port into dom0)", want);
}

}  // namespace

void ValidateQemuWiring(const v1::BoardWiring& w, const v1::Board& board,
                        const std::string& wiring_path, Problems& problems, Claims& claims) {
  const v1::QemuPower& q = w.power().qemu();
  const std::string path = wiring_path + ".power.qemu";
  if (q.initrd().empty())
    problems.Add(
        path, "{}.initrd is empty; give dom0's initramfs (e.g. \"../../build-qemu/board.cpio.gz\")",
        path);
  if (q.fetch_env().empty()) {
    if (q.xen().empty())
      problems.Add(path, "{}.xen is empty and there is no fetch_env to take XEN= from", path);
    if (q.kernel().empty())
      problems.Add(path, "{}.kernel is empty and there is no fetch_env to take KERNEL= from", path);
  }
  const uint32_t mem = q.memory_mib() != 0 ? q.memory_mib() : kQemuDefaultMemoryMib;
  const uint32_t dom0 = q.dom0_mem_mib() != 0 ? q.dom0_mem_mib() : kQemuDefaultDom0MemMib;
  if (mem < 256 || mem > 65536)
    problems.Add(path + ".memory_mib", "{}.memory_mib {} must be 0 ({}) or 256..65536 MiB", path,
                 mem, kQemuDefaultMemoryMib);
  else if (dom0 + 128 > mem)
    problems.Add(path + ".dom0_mem_mib",
                 "{}.dom0_mem_mib {} leaves less than 128 MiB of memory_mib {} for Xen and the "
                 "domU",
                 path, dom0, mem);
  if (q.cpus() > 8)
    problems.Add(path + ".cpus",
                 "{}.cpus {} must be 0 ({}) or 1..8 (TCG runs each vCPU on a host thread)", path,
                 q.cpus(), kQemuDefaultCpus);
  if (q.nvme_disk_mib() > 65536)
    problems.Add(path + ".nvme_disk_mib",
                 "{}.nvme_disk_mib {} must be 0 (no NVMe disk) or 1..65536 MiB (a sparse file "
                 "in the board's output folder)",
                 path, q.nvme_disk_mib());
  if (q.nvme_side_through_dom0() && q.nvme_disk_mib() == 0)
    problems.Add(path + ".nvme_side_through_dom0",
                 "{}.nvme_side_through_dom0 needs an NVMe disk: set nvme_disk_mib", path);
  if (q.edu_dma_mask() != 0 && (q.edu_dma_mask() & (q.edu_dma_mask() + 1)) != 0)
    problems.Add(path + ".edu_dma_mask", "{}.edu_dma_mask {:#x} must be 0 (64 bits) or 2^n - 1",
                 path, q.edu_dma_mask());
  // The board file is what the oracle judges by: it must describe the machine QEMU runs.
  const uint64_t mask = q.edu_dma_mask() != 0 ? q.edu_dma_mask() : kQemuDefaultEduDmaMask;
  const auto mask_bits = static_cast<uint32_t>(std::bit_width(mask));
  if (board.dma().mask_bits() != 0 && board.dma().mask_bits() != mask_bits)
    problems.Add(path + ".edu_dma_mask",
                 "{}.edu_dma_mask {:#x} is {} bits but board \"{}\" says dma.mask_bits {}", path,
                 mask, mask_bits, board.name(), board.dma().mask_bits());
  if (q.non_coherent() == board.dma().coherent())
    problems.Add(path + ".non_coherent",
                 "{}.non_coherent is {} but board \"{}\" says dma.coherent {}: boot the board "
                 "file's PCIe (non_coherent: {})",
                 path, q.non_coherent(), board.name(), board.dma().coherent(),
                 !board.dma().coherent());
  uint64_t ram = 0;
  for (const v1::MemoryBank& b : board.ram()) ram += b.size();
  if (ram != 0 && ram != uint64_t{mem} << 20)
    problems.Add(path + ".memory_mib", "{}.memory_mib {} but board \"{}\" has {} MiB of RAM", path,
                 mem, board.name(), ram >> 20);
  const std::tuple<const char*, uint32_t, const char*, const std::string*> ports[] = {
      {"dom0_agent_port", q.dom0_agent_port(), "dom0_agent", &w.dom0_agent()},
      {"guest_agent_port", q.guest_agent_port(), "guest_agent", &w.guest_agent()},
      {"engine_port", q.engine_port(), "engine_tcp", &w.engine_tcp()}};
  for (const auto& [name, port, field, endpoint] : ports) {
    const std::string f = fmt::format("{}.{}", path, name);
    if (port < 1 || port > 65535) {
      problems.Add(f, "{} {} must be a host TCP port 1..65535 (QEMU hostfwd)", f, port);
      continue;
    }
    claims.Claim(problems, "host TCP port", fmt::format("127.0.0.1:{}", port), f);
    if (const std::string why = LoopbackProblem(*endpoint, port); !why.empty())
      problems.Add(fmt::format("{}.{}", wiring_path, field), "{}.{} \"{}\" {}", wiring_path, field,
                   *endpoint, why);
  }
}

void ValidateQemuConsole(const v1::SerialConsole& c, const std::string& path, Problems& problems) {
  if (!c.device().empty())
    problems.Add(path + ".device",
                 "{}.device \"{}\" must be empty for power {{ qemu }}: the console is the pty the "
                 "controller gives QEMU",
                 path, c.device());
  if (c.agent_ready().empty())
    problems.Add(path, "{} needs agent_ready (e.g. \"dmahil-qemu: board ready\")", path);
  ValidateConsoleSettings(c, path, problems);
}

void ResolveQemuPaths(v1::QemuPower& q, const std::filesystem::path& dir) {
  for (std::string* f :
       {q.mutable_fetch_env(), q.mutable_xen(), q.mutable_kernel(), q.mutable_initrd()})
    if (!f->empty()) *f = (dir / *f).lexically_normal().string();
  if (q.qemu().find('/') != std::string::npos)  // a path; a bare name is looked up on PATH
    q.set_qemu((dir / q.qemu()).lexically_normal().string());
}

}  // namespace dmahil::lab
