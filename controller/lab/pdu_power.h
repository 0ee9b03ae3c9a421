// Board power through pdudaemon (docs/architecture.md §10; lab.proto PduPower), the PDU daemon
// LAVA and labgrid use, over its HTTP listener with Boost.Beast:
//   GET /power/control/{on,off,reboot}?hostname=<pdu>&port=<n>[&delay=<s>]
// pdudaemon answers 200 "OK - accepted request" and runs the job (pdudaemon 0.0.8, as in
// Debian 12, answers once the job ran; other versions answer first), or 500
// "Invalid request" (e.g. an unknown PDU).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/problems.h"
#include "controller/lab/power.h"
#include "dmahil/v1/lab.pb.h"

namespace dmahil::lab {

/// PowerSwitch on one pdudaemon outlet. Cycle() and Reset() are pdudaemon's `reboot`
/// (off, delay_s seconds, on; delay_s 0 leaves pdudaemon's default, 5 s); a PDU has no
/// reset line. Every request is bounded by the timeout; a failure (no connection, timeout,
/// a status other than 200, a body not starting "OK") throws LabError naming pdudaemon's
/// URL, the PDU and the port, with the status and body.
class PduPowerSwitch final : public PowerSwitch {
 public:
  /// The default bound on one request, ms.
  static constexpr uint32_t kDefaultTimeoutMs = 10000;

  /// `config.url` is "http://host[:port][/prefix]" (port 80 if absent; pdudaemon's own
  /// default is 16421); `config.hostname` must be set. `timeout_ms` bounds each request
  /// as a whole (resolve, connect, send, response); a reboot gets delay_s more, since
  /// pdudaemon may answer only after the off time. Throws LabError for a bad URL or an
  /// empty hostname. Does not connect.
  explicit PduPowerSwitch(const v1::PduPower& config, uint32_t timeout_ms = kDefaultTimeoutMs);

  void On() override;
  void Off() override;
  void Cycle() override;
  void Reset() override;
  /// "pdudaemon http://127.0.0.1:16421 pdu lab-pdu port 3".
  std::string Describe() const override;

  /// The request target of `command` ("on", "off", "reboot"), e.g.
  /// "/power/control/on?hostname=lab-pdu&port=3" (the hostname percent-encoded).
  std::string Target(std::string_view command) const;

 private:
  void Request(std::string_view command, uint32_t timeout_ms);

  v1::PduPower config_;
  uint32_t timeout_ms_;
  std::string host_;    // as in the URL, without IPv6 brackets
  std::string port_;    // decimal
  std::string prefix_;  // path prefix without a trailing '/', usually empty
};

/// Checks a farm's pdudaemon power wiring; `path` is its field path in the farm file (e.g.
/// "board[1].wiring.power.pdu"): url must be http:// or https:// (pdudaemon's listener),
/// hostname (the PDU's name in pdudaemon's config) non-empty. The outlet (url, hostname,
/// port) is claimed in `claims` as "PDU outlet ..." at `path`.port (two boards cannot
/// share one). Adds each problem to `problems` (the farm file's), at the offending field.
void ValidatePduPower(const v1::PduPower& pdu, const std::string& path, Problems& problems,
                      Claims& claims);

}  // namespace dmahil::lab
