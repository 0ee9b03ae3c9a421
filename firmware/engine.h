// The DMA engine's command processor (docs/architecture.md §3, §5, §8): executes the ops of
// proto/dmahil/v1/device.proto against a MemoryPort.
//
// Freestanding: no exceptions, no heap, no iostream; only <cstdint>/<cstddef> and the
// pattern engine. Commands and results are plain structs; Read/Write data and Check
// findings live in caller-provided buffers. Fill and Check stream through a fixed
// scratch buffer of kScratchBytes inside the processor.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/pattern.h"
#include "firmware/hal.h"

namespace dmahil::firmware {

/// Largest Read or Write, bytes (device.proto: 1..1 MiB).
inline constexpr uint32_t kMaxDataBytes = 1u << 20;
/// Largest Fill or Check, bytes (device.proto: up to 16 MiB).
inline constexpr uint32_t kMaxPatternBytes = 16u << 20;
/// Findings a Check returns when it asks for 0 (device.proto).
inline constexpr uint32_t kDefaultMaxFindings = 256;
/// Most findings one Check may ask for.
inline constexpr uint32_t kMaxFindings = 4096;
/// Fill/Check scratch buffer, bytes: one bus access moves up to this many bytes.
inline constexpr uint32_t kScratchBytes = pattern::kMaxLineSize;

/// Outcome of a command; values equal dmahil.v1.DeviceStatus.
enum class Status : uint8_t {
  kOk = 1,
  kBusError = 2,    // an address did not decode
  kBadRequest = 3,  // malformed: size, alignment, line size, pattern ids
};

/// Why a command was refused (kBadRequest). Lets a host codec say it in detail.
enum class Reject : uint8_t {
  kNone = 0,
  kZeroLength,         // length is 0
  kTooLong,            // above kMaxDataBytes (Read/Write) or kMaxPatternBytes (Fill/Check)
  kBadLineSize,        // not a power of two in [16, 4096]
  kNotLineMultiple,    // length not a multiple of the line size
  kUnaligned,          // bus_addr not aligned to the line size
  kAddressWraps,       // bus_addr + length passes 2^64
  kLineIndexOverflow,  // first_line + lines passes 2^32
  kBadPatternId,       // buffer_id or generation above 65535
  kTooManyFindings,    // max_findings above kMaxFindings
  kBufferTooSmall,     // the caller's data or findings buffer is smaller than needed
};

/// Engine identity reported by Info (dmahil.v1.DeviceInfo).
struct EngineInfo {
  const char* engine = "dmahil-engine";   // static string
  uint32_t max_transfer = kMaxDataBytes;  // bytes per Read/Write (Fill/Check: kMaxPatternBytes)
  uint32_t address_bits = 64;             // bus address width the engine drives
};

/// Reads `length` bytes at `bus_addr` into the caller's buffer.
struct ReadCmd {
  uint64_t bus_addr = 0;
  uint32_t length = 0;  // bytes, 1..kMaxDataBytes
};

/// Writes `length` bytes from `data` to `bus_addr`.
struct WriteCmd {
  uint64_t bus_addr = 0;
  const uint8_t* data = nullptr;  // `length` bytes
  uint32_t length = 0;            // bytes, 1..kMaxDataBytes
};

/// Writes pattern lines first_line, first_line+1, ... of `pattern` over the range.
struct FillCmd {
  uint64_t bus_addr = 0;  // aligned to pattern.line_size
  uint32_t length = 0;    // bytes, multiple of pattern.line_size, 1..kMaxPatternBytes
  pattern::Spec pattern;
};

/// Reads the range back and classifies every line against `pattern`.
struct CheckCmd {
  uint64_t bus_addr = 0;  // aligned to pattern.line_size
  uint32_t length = 0;    // bytes, multiple of pattern.line_size, 1..kMaxPatternBytes
  pattern::Spec pattern;
  uint32_t max_findings = 0;  // findings returned at most; 0 means kDefaultMaxFindings
};

/// Outcome of any command.
struct Result {
  Status status = Status::kOk;
  Reject reject = Reject::kNone;  // why, when status is kBadRequest
  const char* message = "";       // static, never null; "" when nothing to say
  /// First bus address that failed: for kBusError, and for a Check whose status is kOk
  /// but some lines were unreachable (has_fault tells whether it is set).
  uint64_t fault_addr = 0;
  bool has_fault = false;
  // Check only.
  uint64_t lines_checked = 0;     // lines examined (unreachable ones included)
  uint64_t lines_ok = 0;          // lines equal to the expected pattern
  uint64_t mismatches_total = 0;  // lines not ok, all of them
  uint32_t findings_count = 0;    // findings written to the caller's array, in line order
};

/// Executes device commands against a MemoryPort. Not thread-safe: one command at a
/// time. Every method validates its command first and returns kBadRequest (with
/// `reject` and a static `message`) without touching the bus if it is malformed.
class CommandProcessor {
 public:
  /// `port` must outlive the processor.
  explicit CommandProcessor(MemoryPort& port, const EngineInfo& info = EngineInfo{});

  CommandProcessor(const CommandProcessor&) = delete;
  CommandProcessor& operator=(const CommandProcessor&) = delete;

  /// The engine's identity and limits. Never fails.
  const EngineInfo& Info() const { return info_; }

  /// Reads cmd.length bytes into `dst`, which holds `dst_capacity` bytes (at least
  /// cmd.length, else kBufferTooSmall). A bus error → kBusError with fault_addr; `dst`
  /// contents are then unspecified.
  Result Read(const ReadCmd& cmd, uint8_t* dst, size_t dst_capacity);

  /// Writes cmd.data. A bus error → kBusError with fault_addr.
  Result Write(const WriteCmd& cmd);

  /// Fills the range with pattern lines, in chunks of up to kScratchBytes. A bus error
  /// stops the fill at that chunk → kBusError with fault_addr (earlier chunks are
  /// written).
  Result Fill(const FillCmd& cmd);

  /// Checks every line of the range. A line that is not the expected one becomes a
  /// pattern::Finding; a line whose read fails becomes a finding of class kBusError
  /// (status stays kOk, has_fault/fault_addr record the first fault) and the check goes
  /// on with the next line. The first min(max_findings, mismatches_total) findings are
  /// written to `findings`, which holds `findings_capacity` entries (at least the
  /// effective max_findings, else kBufferTooSmall).
  Result Check(const CheckCmd& cmd, pattern::Finding* findings, uint32_t findings_capacity);

 private:
  // Checks `len` bytes (whole lines) at `bus_addr`, whose first line is index `line`.
  void CheckChunk(const CheckCmd& cmd, uint64_t bus_addr, uint32_t len, uint32_t line,
                  pattern::Finding* findings, uint32_t cap, Result& r);
  void AddFinding(const pattern::Finding& f, pattern::Finding* findings, uint32_t cap, Result& r);

  MemoryPort& port_;
  EngineInfo info_;
  alignas(8) uint8_t scratch_[kScratchBytes];
};

}  // namespace dmahil::firmware
