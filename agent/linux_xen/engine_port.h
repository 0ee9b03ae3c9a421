// The qemu-xen board's DMA engine as the firmware sees it: a MemoryPort whose reads and
// writes are dmahil.ko XFER ioctls, which drive QEMU's edu device (hw/misc/edu.c) on the
// bus addresses the module mapped. The dom0 agent serves the device protocol over this
// port (firmware/host/device_server.h), so the controller drives the edu engine exactly
// as it drives the virtual engine or the FPGA.
#pragma once

#include <memory>

#include "agent/linux_xen/kmod_client.h"
#include "firmware/hal.h"

namespace dmahil::agent::linux_xen {

class KmodEnginePort final : public firmware::MemoryPort {
 public:
  explicit KmodEnginePort(std::shared_ptr<Kmod> kmod) : kmod_(std::move(kmod)) {}

  /// Reads in pieces of at most DMAHIL_MAX_XFER_BYTES. A refused or failed piece is a bus
  /// fault at its first address (logged with the module's reason: e.g. EACCES, outside
  /// every mapped window).
  firmware::BusResult Read(uint64_t bus_addr, uint8_t* dst, size_t len) override;
  firmware::BusResult Write(uint64_t bus_addr, const uint8_t* src, size_t len) override;

 private:
  firmware::BusResult Move(uint64_t bus_addr, uint8_t* buf, size_t len, bool device_writes);
  std::shared_ptr<Kmod> kmod_;
};

}  // namespace dmahil::agent::linux_xen
