#include "agent/linux_xen/engine_port.h"

#include <algorithm>

#include <spdlog/spdlog.h>

namespace dmahil::agent::linux_xen {

firmware::BusResult KmodEnginePort::Move(uint64_t bus_addr, uint8_t* buf, size_t len,
                                         bool device_writes) {
  size_t done = 0;
  while (done < len) {
    const auto piece = static_cast<uint32_t>(std::min<size_t>(len - done, DMAHIL_MAX_XFER_BYTES));
    const grpc::Status s = kmod_->Xfer(bus_addr + done, buf + done, piece, device_writes);
    if (!s.ok()) {
      spdlog::warn("engine: {}", s.error_message());
      return firmware::BusResult::Fault(bus_addr + done);
    }
    done += piece;
  }
  return firmware::BusResult::Ok();
}

firmware::BusResult KmodEnginePort::Read(uint64_t bus_addr, uint8_t* dst, size_t len) {
  return Move(bus_addr, dst, len, false);
}

firmware::BusResult KmodEnginePort::Write(uint64_t bus_addr, const uint8_t* src, size_t len) {
  // XFER WRITE only reads the user buffer; the ioctl ABI has one pointer type.
  return Move(bus_addr, const_cast<uint8_t*>(src), len, true);
}

}  // namespace dmahil::agent::linux_xen
