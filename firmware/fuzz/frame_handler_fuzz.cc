// libFuzzer target: one input is one received frame for the firmware's FrameHandler
// (firmware/wire/) over a 64 KiB RAM MemoryPort. Besides crashes and sanitizer reports it
// traps on a broken protocol rule (docs/device-protocol.md): every frame gets exactly one
// well-formed response frame; a frame that is not a decodable request gets
// DEVICE_BAD_REQUEST with tag 0 and touches no bus address.
#include <pb_decode.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "dmahil/v1/device.npb.h"
#include "firmware/engine.h"
#include "firmware/hal.h"
#include "firmware/wire/frame_handler.h"

namespace {

using dmahil::firmware::BusResult;
using dmahil::firmware::CommandProcessor;
using dmahil::firmware::MemoryPort;
using dmahil::firmware::Status;
namespace wire = dmahil::firmware::wire;

// A RAM window at bus address kBase (64 KiB); other addresses are bus errors. Counts
// accesses.
class RamWindow final : public MemoryPort {
 public:
  static constexpr uint64_t kBase = 0x1000;
  static constexpr size_t kSize = 64 * 1024;

  BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override {
    ++accesses;
    if (!Decodes(bus_addr, len)) return Fault(bus_addr);
    std::memcpy(dst, mem_.data() + (bus_addr - kBase), len);
    return BusResult::Ok();
  }
  BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override {
    ++accesses;
    if (!Decodes(bus_addr, len)) return Fault(bus_addr);
    std::memcpy(mem_.data() + (bus_addr - kBase), src, len);
    return BusResult::Ok();
  }

  uint64_t accesses = 0;

 private:
  static bool Decodes(uint64_t bus_addr, size_t len) {
    return bus_addr >= kBase && len <= kSize && bus_addr - kBase <= kSize - len;
  }
  static BusResult Fault(uint64_t bus_addr) {
    return BusResult::Fault(bus_addr < kBase ? bus_addr : kBase + kSize);
  }

  std::vector<uint8_t> mem_ = std::vector<uint8_t>(kSize);
};

void Require(bool ok) {
  if (!ok) __builtin_trap();
}

// Checks one Reply and the response frame in `out` against the protocol rules.
void CheckReply(const wire::Reply& reply, const std::vector<uint8_t>& out, uint64_t accesses) {
  Require(reply.size >= wire::kFrameHeaderBytes && reply.size <= out.size());
  Require(wire::DecodeFrameLength(out.data()) == reply.size - wire::kFrameHeaderBytes);
  // Well-formed: nanopb decodes it (callback fields are skipped).
  dmahil_v1_DeviceResponse resp = dmahil_v1_DeviceResponse_init_zero;
  pb_istream_t in = pb_istream_from_buffer(out.data() + wire::kFrameHeaderBytes,
                                           reply.size - wire::kFrameHeaderBytes);
  Require(pb_decode(&in, dmahil_v1_DeviceResponse_fields, &resp));
  Require(static_cast<int>(resp.status) == static_cast<int>(reply.status));
  if (!reply.parsed) {
    Require(reply.status == Status::kBadRequest && resp.tag == 0 && accesses == 0);
  }
  if (reply.status != Status::kOk) Require(!resp.has_check && !resp.has_info);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static RamWindow port;
  static CommandProcessor engine{port};
  static auto* handler = new wire::FrameHandler(engine);  // ~1.1 MiB: not on the stack
  static std::vector<uint8_t> out(wire::kMaxResponseFrameBytes);

  // The input as a whole frame (header + payload).
  port.accesses = 0;
  wire::Reply reply = handler->HandleFrame(data, size, out.data(), out.size());
  CheckReply(reply, out, port.accesses);

  // The same bytes after the header as a payload, whatever the header said, so the
  // decoder sees every input.
  if (size >= wire::kFrameHeaderBytes) {
    port.accesses = 0;
    reply = handler->HandlePayload(data + wire::kFrameHeaderBytes, size - wire::kFrameHeaderBytes,
                                   out.data(), out.size());
    CheckReply(reply, out, port.accesses);
  }
  return 0;
}
