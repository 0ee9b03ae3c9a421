#include "controller/lab/serial_console.h"

#include <fmt/format.h>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>
#include <ctime>
#include <future>
#include <memory>
#include <regex>
#include <system_error>

#include <unistd.h>

#include "common/validate.h"
#include "controller/lab/lab_error.h"

namespace dmahil::lab {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {

std::string UtcNow() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm tm{};
  gmtime_r(&t, &tm);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

}  // namespace

SerialConsole::SerialConsole(const v1::SerialConsole& config, const std::filesystem::path& log)
    : config_(config), log_path_(log), work_(io_.get_executor()), port_(io_) {
  const std::string& dev = config_.device();
  if (dev.empty()) throw LabError("serial console: no device");
  const uint32_t baud = config_.baud() == 0 ? 115200 : config_.baud();
  const uint32_t data_bits = config_.data_bits() == 0 ? 8 : config_.data_bits();
  const uint32_t stop_bits = config_.stop_bits() == 0 ? 1 : config_.stop_bits();
  if (data_bits < 5 || data_bits > 8) {
    throw LabError(fmt::format("{}: data_bits {} (must be 5..8)", dev, data_bits));
  }
  if (stop_bits != 1 && stop_bits != 2) {
    throw LabError(fmt::format("{}: stop_bits {} (must be 1 or 2)", dev, stop_bits));
  }
  using Base = asio::serial_port_base;
  Base::parity::type parity = Base::parity::none;
  char parity_char = 'N';
  switch (config_.parity()) {
    case v1::SerialConsole::PARITY_NONE:
      break;
    case v1::SerialConsole::PARITY_ODD:
      parity = Base::parity::odd;
      parity_char = 'O';
      break;
    case v1::SerialConsole::PARITY_EVEN:
      parity = Base::parity::even;
      parity_char = 'E';
      break;
    default:
      throw LabError(fmt::format("{}: unknown parity {}", dev, static_cast<int>(config_.parity())));
  }

  error_code ec;
  port_.open(dev, ec);
  if (ec) throw LabError(fmt::format("{}: cannot open: {}", dev, ec.message()));
  auto set = [&](const auto& option, const std::string& what) {
    error_code e;
    port_.set_option(option, e);
    if (e) throw LabError(fmt::format("{}: cannot set {}: {}", dev, what, e.message()));
  };
  set(Base::baud_rate(baud), fmt::format("baud {}", baud));
  set(Base::character_size(data_bits), fmt::format("{} data bits", data_bits));
  set(Base::parity(parity), fmt::format("parity {}", parity_char));
  set(Base::stop_bits(stop_bits == 2 ? Base::stop_bits::two : Base::stop_bits::one),
      fmt::format("{} stop bits", stop_bits));
  set(Base::flow_control(config_.rts_cts() ? Base::flow_control::hardware
                                           : Base::flow_control::none),
      config_.rts_cts() ? "rts/cts flow control" : "no flow control");

  OpenLog(fmt::format("{} {}{}{}{}", baud, data_bits, parity_char, stop_bits,
                      config_.rts_cts() ? " rts/cts" : ""));
}

SerialConsole::SerialConsole(const v1::SerialConsole& config, int fd, const std::string& name,
                             const std::filesystem::path& log)
    : config_(config), log_path_(log), work_(io_.get_executor()), port_(io_) {
  config_.set_device(name);
  error_code ec;
  port_.assign(fd, ec);
  if (ec) {
    ::close(fd);
    throw LabError(fmt::format("{}: cannot use descriptor {}: {}", name, fd, ec.message()));
  }
  OpenLog("(pty)");
}

void SerialConsole::OpenLog(const std::string& settings) {
  const std::string& dev = config_.device();
  std::error_code fs_ec;
  if (log_path_.has_parent_path())
    std::filesystem::create_directories(log_path_.parent_path(), fs_ec);
  log_.open(log_path_, std::ios::app);
  if (!log_) {
    throw LabError(fmt::format("{}: cannot open the console log for {}", log_path_.string(), dev));
  }
  opened_ = Clock::now();
  log_ << fmt::format("# dmahil console {} {}, opened {} (line times: ms since open)\n", dev,
                      settings, UtcNow());
  log_.flush();

  StartRead();
  thread_ = std::thread([this] { io_.run(); });
}

SerialConsole::~SerialConsole() { Close(); }

uint64_t SerialConsole::MsSinceOpen(Clock::time_point t) const {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(t - opened_).count());
}

void SerialConsole::StartRead() {
  port_.async_read_some(asio::buffer(read_buf_), [this](const error_code& ec, size_t n) {
    if (n > 0) OnBytes(read_buf_.data(), n);
    if (ec) {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;
      if (ec != asio::error::operation_aborted) {  // aborted: a Send timed out; keep reading
        read_error_ = ec == asio::error::eof ? "end of file (hang-up)" : ec.message();
        log_ << fmt::format("# read error at {} ms: {}\n", MsSinceOpen(Clock::now()), *read_error_);
        log_.flush();
        cv_.notify_all();
        return;
      }
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (closing_) return;  // Close() cancels only the read pending when it runs
    }
    StartRead();
  });
}

void SerialConsole::OnBytes(const char* data, size_t n) {
  std::lock_guard<std::mutex> lock(mu_);
  for (size_t i = 0; i < n; ++i) {
    const char c = data[i];
    if (c == '\n') {
      CompleteLine();
      continue;
    }
    if (c == '\r' || c == '\0') continue;
    if (partial_.empty()) partial_start_ = Clock::now();
    partial_ += c;
    if (partial_.size() >= kMaxLineBytes) CompleteLine();
  }
}

void SerialConsole::CompleteLine() {
  ConsoleLine line;
  line.number = ++lines_;
  line.ms = MsSinceOpen(partial_.empty() ? Clock::now() : partial_start_);
  line.text = std::move(partial_);
  partial_.clear();
  log_ << fmt::format("[{:>10} ms] {}\n", line.ms, line.text);
  log_.flush();
  recorder_.Add(line);
  pending_.push_back(std::move(line));
  if (pending_.size() > kMaxPendingLines) pending_.pop_front();
  cv_.notify_all();
}

bool SerialConsole::WaitFor(const std::string& regex, uint32_t timeout_ms, std::string* line) {
  std::regex re;
  try {
    re.assign(regex, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw LabError(fmt::format("{}: bad regex \"{}\": {}", device(), regex, e.what()));
  }
  const Clock::time_point deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    while (!pending_.empty()) {
      const std::optional<ConsoleCrash>& crash = recorder_.crash();
      if (crash && pending_.front().number >= crash->line.number) return false;
      ConsoleLine next = std::move(pending_.front());
      pending_.pop_front();
      if (std::regex_search(next.text, re)) {
        if (line != nullptr) *line = std::move(next.text);
        return true;
      }
    }
    if (recorder_.crash() || closing_ || closed_) return false;
    if (read_error_) {
      throw LabError(fmt::format("{}: reading the console failed: {}", device(), *read_error_));
    }
    const bool woken = cv_.wait_until(lock, deadline, [&] {
      return !pending_.empty() || recorder_.crash() || closing_ || closed_ || read_error_;
    });
    if (!woken) return false;
  }
}

bool SerialConsole::WaitForAgentReady(uint32_t timeout_ms, std::string* line) {
  if (config_.agent_ready().empty()) {
    throw LabError(fmt::format("{}: no agent_ready regex configured", device()));
  }
  return WaitFor(config_.agent_ready(), timeout_ms, line);
}

void SerialConsole::Send(std::string_view bytes) {
  std::lock_guard<std::mutex> send_lock(send_mu_);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_ || closed_) throw LabError(fmt::format("{}: send after close", device()));
  }
  auto data = std::make_shared<std::string>(bytes);
  auto done = std::make_shared<std::promise<error_code>>();
  std::future<error_code> result = done->get_future();
  asio::post(io_, [this, data, done] {
    asio::async_write(port_, asio::buffer(*data),
                      [data, done](const error_code& ec, size_t) { done->set_value(ec); });
  });
  if (result.wait_for(std::chrono::milliseconds(kSendTimeoutMs)) != std::future_status::ready) {
    asio::post(io_, [this] {
      error_code ignored;
      port_.cancel(ignored);
    });
    throw LabError(fmt::format("{}: sending {} bytes timed out after {} ms", device(), bytes.size(),
                               kSendTimeoutMs));
  }
  const error_code ec = result.get();
  if (ec) {
    throw LabError(
        fmt::format("{}: sending {} bytes failed: {}", device(), bytes.size(), ec.message()));
  }
}

std::optional<ConsoleCrash> SerialConsole::crash() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorder_.crash();
}

std::vector<ConsoleCrash> SerialConsole::warnings() const {
  std::lock_guard<std::mutex> lock(mu_);
  return recorder_.warnings();
}

void SerialConsole::ClearCrash() {
  std::lock_guard<std::mutex> lock(mu_);
  recorder_.Clear();
  pending_.clear();
}

uint64_t SerialConsole::line_count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

void SerialConsole::Close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard<std::mutex> lock(mu_);
      closing_ = true;
      cv_.notify_all();
    }
    asio::post(io_, [this] {
      error_code ignored;
      port_.cancel(ignored);
    });
    work_.reset();
    if (thread_.joinable()) thread_.join();
    error_code ignored;
    port_.close(ignored);
    std::lock_guard<std::mutex> lock(mu_);
    if (!partial_.empty()) CompleteLine();
    log_ << fmt::format("# closed at {} ms\n", MsSinceOpen(Clock::now()));
    log_.close();
    closed_ = true;
    cv_.notify_all();
  });
}

void ValidateConsoleSettings(const v1::SerialConsole& c, const std::string& path,
                             Problems& problems) {
  if (c.data_bits() != 0 && (c.data_bits() < 5 || c.data_bits() > 8))
    problems.Add(path + ".data_bits", "{}.data_bits {} must be 0 (8) or 5..8", path, c.data_bits());
  if (c.stop_bits() > 2)
    problems.Add(path + ".stop_bits", "{}.stop_bits {} must be 0 (1), 1 or 2", path, c.stop_bits());
  if (!c.agent_ready().empty()) {
    try {
      std::regex re(c.agent_ready(), std::regex::ECMAScript);
    } catch (const std::regex_error& e) {
      problems.Add(path + ".agent_ready", "{}.agent_ready \"{}\" is not an ECMAScript regex: {}",
                   path, c.agent_ready(), e.what());
    }
  }
}

void ValidateSerialConsole(const v1::SerialConsole& c, const v1::Board& board,
                           const std::string& path, Problems& problems, Claims& claims) {
  if (c.device().empty())
    problems.Add(path + ".device",
                 "{}.device is empty; give the serial device (e.g. /dev/serial/by-id/...)", path);
  else
    claims.Claim(problems, "serial device", c.device(), path + ".device");
  if (!StandardBaud(c.baud()))
    problems.Add(path + ".baud", "{}.baud {} is not a standard serial rate ({})", path, c.baud(),
                 StandardBauds());
  else if (board.has_console() && StandardBaud(board.console().baud()) &&
           board.console().baud() != c.baud())
    problems.Add(path + ".baud",
                 "{}.baud {} differs from the board's console.baud {} (the rate its firmware "
                 "sets and Xen keeps)",
                 path, c.baud(), board.console().baud());
  ValidateConsoleSettings(c, path, problems);
}

}  // namespace dmahil::lab
