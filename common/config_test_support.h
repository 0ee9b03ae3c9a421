// Tests only: the board, fixture and farm texts the configuration tests load
// (common/config_test.cc, controller/run/farm_wiring_test.cc), and a substring assertion.
#pragma once

#include <string>

#include <gtest/gtest.h>

namespace dmahil::testing {

// Whether `text` contains `part` (gtest only; no gmock matchers).
inline ::testing::AssertionResult Contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\"\n  does not contain\n\"" << part << "\"";
}

inline constexpr const char* kBoard = R"(name: "virtual-rpi4"
soc: "bcm2711"
kind: BOARD_KIND_VIRTUAL
ram { name: "low" base: 0x0 size: 0x40000000 }
ram { name: "high" base: 0x100000000 size: 0x40000000 }
cache {
  line_size: 64
  sets: 256
  ways: 4
  eviction_ppm: 1000
}
dma {
  mask_bits: 32
  dma_ranges { bus_base: 0xc0000000 cpu_base: 0x0 size: 0x3c000000 }
}
xen {
  dom0_ram { base: 0x0 size: 0x20000000 }
  domu_ram { base: 0x100000000 size: 0x10000000 }
  domu_gfn_base: 0x40000000
  grant_map_region { base: 0x10000000 size: 0x1000000 }
  swiotlb_pool { base: 0x4000000 size: 0x4000000 }
}
linux_page_size: 4096
)";

inline constexpr const char* kFixture = R"(name: "grant-from-device"
description: "domU pages granted to dom0, device writes them"
direction: DMA_FROM_DEVICE
source: BUFFER_FOREIGN_GRANT
pages: 16
iterations: 4
canary_pages: 1
)";

inline constexpr const char* kFarm = R"(name: "nightly"
board {
  name: "rpi4-clean"
  board_file: "../boards/rpi4.textproto"
}
board {
  name: "rpi4-bad"
  board_file: "../boards/rpi4.textproto"
  faults: "bus-addr-no-dma-offset"
  faults: "no-such-fault"
  expect: "wrong-bus-address"
}
fixture_file: "../fixtures/grant.textproto"
seed: 42
)";

inline constexpr const char* kHwBoard = R"(name: "hw"
soc: "test SoC"
kind: BOARD_KIND_HARDWARE
ram { name: "low" base: 0x40000000 size: 0x40000000 }
ram { name: "high" base: 0x100000000 size: 0x40000000 }
cache { line_size: 64 sets: 1024 ways: 16 }
l1 { line_size: 64 sets: 128 ways: 4 }
cpus: 4
port {
  name: "pcie0"
  coherent: false
  dma_ranges { bus_base: 0x0 cpu_base: 0x40000000 size: 0x40000000 }
}
port { name: "acp" coherent: true }
dma {
  mask_bits: 64
  coherent: false
  port: "pcie0"
  dma_ranges { bus_base: 0x0 cpu_base: 0x40000000 size: 0x40000000 }
}
console { uart: "UART0" baud: 115200 }
xen_support { status: XEN_SUPPORT_UPSTREAM since_xen: "4.17" }
linux_page_size: 4096
)";

}  // namespace dmahil::testing
