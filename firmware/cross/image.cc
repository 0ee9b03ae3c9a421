// The bare-metal firmware image (firmware/cross/, Cortex-R5F): reset code, a stub bus and
// a stub transport around the real command path: FrameHandler (firmware/wire/) →
// CommandProcessor (firmware/engine.h) → MemoryPort. It is what ci/firmware-cross.sh links
// and inspects; a board support package replaces the two dmahil_bsp_* functions (USB bulk
// endpoints, docs/device-protocol.md) and StubPort (the FPGA's PCIe DMA master).
#include <cstddef>
#include <cstdint>

#include "firmware/engine.h"
#include "firmware/hal.h"
#include "firmware/wire/frame_handler.h"

using dmahil::firmware::BusResult;
using dmahil::firmware::CommandProcessor;
using dmahil::firmware::MemoryPort;
namespace wire = dmahil::firmware::wire;

extern "C" {

/// Receives one request frame into `buf` (`capacity` bytes): the bytes of one USB bulk OUT
/// frame up to its short or zero-length packet. Returns the frame's length in bytes, or a
/// value above `capacity` if the frame did not fit (its bytes were drained and dropped).
/// Blocks until a frame has arrived. The stub returns a canned Info request.
size_t dmahil_bsp_receive_frame(uint8_t* buf, size_t capacity);

/// Sends one response frame (`len` bytes) on bulk IN, with a zero-length packet when `len`
/// is a multiple of the endpoint's wMaxPacketSize. The stub drops it.
void dmahil_bsp_send_frame(const uint8_t* frame, size_t len);

/// The image's main loop (never returns).
[[noreturn]] void dmahil_main();

/// C++ run-time hook for a call through a pure virtual function: hang (a debugger sees
/// it). Defined here so that libsupc++'s version, which reaches std::terminate and the
/// exception machinery, is not linked.
void __cxa_pure_virtual();

/// Linker-script symbols (image.ld).
extern uint8_t __bss_start[];
extern uint8_t __bss_end[];
extern void (*__init_array_start[])();
extern void (*__init_array_end[])();

/// C entry, from dmahil_reset: zeroes .bss, runs the static constructors, enters
/// dmahil_main.
[[noreturn]] void dmahil_start();

}  // extern "C"

// Exception vectors (ARM state, at address 0) and the reset handler: stack pointer, FPU
// access (CPACR cp10/cp11, FPEXC.EN), then dmahil_start in Thumb state.
asm(R"(
    .syntax unified
    .section .vectors, "ax", %progbits
    .arm
    .global dmahil_vectors
    .type dmahil_vectors, %function
dmahil_vectors:
    ldr pc, =dmahil_reset
    b .
    b .
    b .
    b .
    b .
    b .
    b .
    .ltorg

    .section .text.dmahil_reset, "ax", %progbits
    .arm
    .type dmahil_reset, %function
dmahil_reset:
    ldr sp, =__stack_top
    mrc p15, 0, r0, c1, c0, 2
    orr r0, r0, #0x00F00000
    mcr p15, 0, r0, c1, c0, 2
    isb
    mov r0, #0x40000000
    vmsr fpexc, r0
    ldr r0, =dmahil_start
    bx r0
    .ltorg
    .thumb
    .text
)");

namespace {

// Stub bus: 64 KiB of RAM (in .bss) decoding at bus addresses [kBase, kBase + 64 KiB);
// any other address is a bus error at the first address outside the window.
uint8_t g_window[64 * 1024];

class StubPort final : public MemoryPort {
 public:
  static constexpr uint64_t kBase = 0x8000'0000;

  BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override {
    if (!Decodes(bus_addr, len)) return Fault(bus_addr);
    __builtin_memcpy(dst, g_window + (bus_addr - kBase), len);
    return BusResult::Ok();
  }
  BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override {
    if (!Decodes(bus_addr, len)) return Fault(bus_addr);
    __builtin_memcpy(g_window + (bus_addr - kBase), src, len);
    return BusResult::Ok();
  }

 private:
  bool Decodes(uint64_t bus_addr, size_t len) const {
    return bus_addr >= kBase && len <= sizeof g_window && bus_addr - kBase <= sizeof g_window - len;
  }
  static BusResult Fault(uint64_t bus_addr) {
    return BusResult::Fault(bus_addr < kBase ? bus_addr : kBase + sizeof g_window);
  }
};

StubPort g_port;
CommandProcessor g_engine{g_port};
wire::FrameHandler g_handler{g_engine};
uint8_t g_rx[wire::kFrameHeaderBytes + wire::kMaxValidRequestPayload];
uint8_t g_tx[wire::kMaxResponseFrameBytes];

// A DeviceRequest {tag: 1, info: {}} frame.
constexpr uint8_t kInfoFrame[] = {4, 0, 0, 0, 0x08, 0x01, 0x12, 0x00};

}  // namespace

extern "C" {

__attribute__((weak)) size_t dmahil_bsp_receive_frame(uint8_t* buf, size_t capacity) {
  if (capacity < sizeof kInfoFrame) return capacity + 1;
  __builtin_memcpy(buf, kInfoFrame, sizeof kInfoFrame);
  return sizeof kInfoFrame;
}

__attribute__((weak)) void dmahil_bsp_send_frame(const uint8_t* frame, size_t len) {
  (void)frame;
  (void)len;
}

void dmahil_main() {
  for (;;) {
    const size_t n = dmahil_bsp_receive_frame(g_rx, sizeof g_rx);
    const wire::Reply reply =
        n <= sizeof g_rx ? g_handler.HandleFrame(g_rx, n, g_tx, sizeof g_tx)
                         : g_handler.Refuse("request frame larger than the device's receive buffer",
                                            g_tx, sizeof g_tx);
    dmahil_bsp_send_frame(g_tx, reply.size);
  }
}

void __cxa_pure_virtual() {
  for (;;) {
  }
}

void dmahil_start() {
  for (uint8_t* p = __bss_start; p != __bss_end; ++p) *p = 0;
  for (void (**f)() = __init_array_start; f != __init_array_end; ++f) (*f)();
  dmahil_main();
}

}  // extern "C"
