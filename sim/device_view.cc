#include "sim/device_view.h"

#include <algorithm>

#include "common/dma_ranges.h"
#include "sim/chunks.h"

namespace dmahil::sim {

DeviceView::DeviceView(const v1::DmaEngineDesc& dev, MachineMemory& memory, Cache& cache,
                       std::function<uint32_t()> mask_bits, const Xen* xen)
    : dev_(dev), memory_(memory), cache_(cache), mask_bits_(std::move(mask_bits)), xen_(xen) {}

uint64_t DeviceView::Decode(uint64_t bus, uint64_t len) const {
  const uint64_t driven = bus & DmaMask(mask_bits_());
  uint64_t machine = DmaToPhys(dev_, driven);
  if (machine == kNoTranslation || DmaToPhys(dev_, driven + len - 1) != machine + len - 1)
    return kNoTranslation;
  if (xen_ != nullptr) {  // len never crosses a 4 KiB page here
    const std::optional<uint64_t> mfn = xen_->IommuTranslate(machine >> kXenPageShift);
    if (!mfn) return kNoTranslation;
    machine = (*mfn << kXenPageShift) | (machine & (kXenPageSize - 1));
  }
  if (!memory_.Contains(machine, len)) return kNoTranslation;
  return machine;
}

bool DeviceView::Read(uint64_t bus, uint8_t* dst, uint64_t len, uint64_t* fault_addr) {
  return ForEachChunk(bus, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t machine = Decode(at, n);
    if (machine == kNoTranslation) {
      *fault_addr = at;
      return false;
    }
    if (dev_.coherent()) {
      cache_.SnoopRead(machine, dst + done, n);
    } else {
      memory_.Read(machine, dst + done, n);
    }
    return true;
  });
}

bool DeviceView::Write(uint64_t bus, const uint8_t* src, uint64_t len, uint64_t* fault_addr) {
  return ForEachChunk(bus, len, kXenPageSize, [&](uint64_t at, uint64_t done, uint64_t n) {
    const uint64_t machine = Decode(at, n);
    if (machine == kNoTranslation) {
      *fault_addr = at;
      return false;
    }
    if (dev_.coherent()) {
      cache_.SnoopWrite(machine, src + done, n);
    } else {
      memory_.Write(machine, src + done, n);
    }
    return true;
  });
}

}  // namespace dmahil::sim
