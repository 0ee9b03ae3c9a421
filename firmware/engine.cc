#include "firmware/engine.h"

namespace dmahil::firmware {
namespace {

Result Refuse(Reject why, const char* message) {
  Result r;
  r.status = Status::kBadRequest;
  r.reject = why;
  r.message = message;
  return r;
}

Result BusFault(uint64_t addr, const char* message) {
  Result r;
  r.status = Status::kBusError;
  r.message = message;
  r.fault_addr = addr;
  r.has_fault = true;
  return r;
}

bool Wraps(uint64_t bus_addr, uint32_t length) {
  return length != 0 && bus_addr + (uint64_t{length} - 1) < bus_addr;
}

// Validation shared by Read and Write.
Result ValidateData(uint64_t bus_addr, uint32_t length) {
  if (length == 0) return Refuse(Reject::kZeroLength, "length is 0");
  if (length > kMaxDataBytes) return Refuse(Reject::kTooLong, "length exceeds 1 MiB");
  if (Wraps(bus_addr, length)) {
    return Refuse(Reject::kAddressWraps, "range wraps the bus address space");
  }
  return Result{};
}

// Validation shared by Fill and Check.
Result ValidatePattern(uint64_t bus_addr, uint32_t length, const pattern::Spec& spec) {
  if (!pattern::ValidLineSize(spec.line_size)) {
    return Refuse(Reject::kBadLineSize, "line size is not a power of two in 16..4096");
  }
  if (length == 0) return Refuse(Reject::kZeroLength, "length is 0");
  if (length > kMaxPatternBytes) return Refuse(Reject::kTooLong, "length exceeds 16 MiB");
  if (length % spec.line_size != 0) {
    return Refuse(Reject::kNotLineMultiple, "length is not a multiple of the line size");
  }
  if (bus_addr % spec.line_size != 0) {
    return Refuse(Reject::kUnaligned, "bus address is not aligned to the line size");
  }
  if (Wraps(bus_addr, length)) {
    return Refuse(Reject::kAddressWraps, "range wraps the bus address space");
  }
  const uint64_t last_line = uint64_t{spec.first_line} + length / spec.line_size - 1;
  if (last_line > 0xFFFFFFFFu) {
    return Refuse(Reject::kLineIndexOverflow, "line index passes 2^32");
  }
  if (spec.buffer_id > 0xFFFFu || spec.generation > 0xFFFFu) {
    return Refuse(Reject::kBadPatternId, "buffer id or generation exceeds 65535");
  }
  return Result{};
}

// Bytes of the next chunk: whole lines, at most kScratchBytes.
uint32_t ChunkBytes(uint32_t remaining, uint32_t line_size) {
  const uint32_t max_chunk = kScratchBytes - kScratchBytes % line_size;
  return remaining < max_chunk ? remaining : max_chunk;
}

}  // namespace

CommandProcessor::CommandProcessor(MemoryPort& port, const EngineInfo& info)
    : port_(port), info_(info), scratch_{} {}

Result CommandProcessor::Read(const ReadCmd& cmd, uint8_t* dst, size_t dst_capacity) {
  Result r = ValidateData(cmd.bus_addr, cmd.length);
  if (r.status != Status::kOk) return r;
  if (dst == nullptr || dst_capacity < cmd.length) {
    return Refuse(Reject::kBufferTooSmall, "read buffer is smaller than the length");
  }
  const BusResult b = port_.Read(cmd.bus_addr, dst, cmd.length);
  return b.ok ? r : BusFault(b.fault_addr, "read: address did not decode");
}

Result CommandProcessor::Write(const WriteCmd& cmd) {
  Result r = ValidateData(cmd.bus_addr, cmd.length);
  if (r.status != Status::kOk) return r;
  if (cmd.data == nullptr) return Refuse(Reject::kBufferTooSmall, "write data is missing");
  const BusResult b = port_.Write(cmd.bus_addr, cmd.data, cmd.length);
  return b.ok ? r : BusFault(b.fault_addr, "write: address did not decode");
}

Result CommandProcessor::Fill(const FillCmd& cmd) {
  Result r = ValidatePattern(cmd.bus_addr, cmd.length, cmd.pattern);
  if (r.status != Status::kOk) return r;
  const uint32_t ls = cmd.pattern.line_size;
  pattern::Spec chunk_spec = cmd.pattern;
  for (uint32_t done = 0; done < cmd.length;) {
    const uint32_t n = ChunkBytes(cmd.length - done, ls);
    chunk_spec.first_line = cmd.pattern.first_line + done / ls;
    pattern::Fill(chunk_spec, scratch_, n);
    const BusResult b = port_.Write(cmd.bus_addr + done, scratch_, n);
    if (!b.ok) return BusFault(b.fault_addr, "fill: address did not decode");
    done += n;
  }
  return r;
}

Result CommandProcessor::Check(const CheckCmd& cmd, pattern::Finding* findings,
                               uint32_t findings_capacity) {
  Result r = ValidatePattern(cmd.bus_addr, cmd.length, cmd.pattern);
  if (r.status != Status::kOk) return r;
  const uint32_t cap = cmd.max_findings == 0 ? kDefaultMaxFindings : cmd.max_findings;
  if (cap > kMaxFindings) return Refuse(Reject::kTooManyFindings, "max_findings exceeds 4096");
  if (findings == nullptr || findings_capacity < cap) {
    return Refuse(Reject::kBufferTooSmall, "findings buffer is smaller than max_findings");
  }
  const uint32_t ls = cmd.pattern.line_size;
  for (uint32_t done = 0; done < cmd.length;) {
    const uint32_t n = ChunkBytes(cmd.length - done, ls);
    CheckChunk(cmd, cmd.bus_addr + done, n, cmd.pattern.first_line + done / ls, findings, cap, r);
    done += n;
  }
  return r;
}

void CommandProcessor::CheckChunk(const CheckCmd& cmd, uint64_t bus_addr, uint32_t len,
                                  uint32_t line, pattern::Finding* findings, uint32_t cap,
                                  Result& r) {
  const uint32_t ls = cmd.pattern.line_size;
  const uint32_t lines = len / ls;
  pattern::Spec spec = cmd.pattern;
  spec.first_line = line;
  if (port_.Read(bus_addr, scratch_, len).ok) {
    r.lines_checked += lines;
    r.lines_ok += pattern::Check(
        spec, scratch_, len, [&](const pattern::Finding& f) { AddFinding(f, findings, cap, r); });
    return;
  }
  // Some address of the chunk did not decode: redo it line by line to know which.
  for (uint32_t i = 0; i < lines; ++i) {
    const uint64_t addr = bus_addr + uint64_t{i} * ls;
    spec.first_line = line + i;
    const BusResult b = port_.Read(addr, scratch_, ls);
    ++r.lines_checked;
    if (b.ok) {
      r.lines_ok += pattern::Check(
          spec, scratch_, ls, [&](const pattern::Finding& f) { AddFinding(f, findings, cap, r); });
      continue;
    }
    if (!r.has_fault) {
      r.has_fault = true;
      r.fault_addr = b.fault_addr;
      r.message = "check: some lines did not decode";
    }
    pattern::Finding f;
    f.line = line + i;
    f.cls = pattern::LineClass::kBusError;
    AddFinding(f, findings, cap, r);
  }
}

void CommandProcessor::AddFinding(const pattern::Finding& f, pattern::Finding* findings,
                                  uint32_t cap, Result& r) {
  if (r.findings_count < cap) findings[r.findings_count++] = f;
  ++r.mismatches_total;
}

}  // namespace dmahil::firmware
