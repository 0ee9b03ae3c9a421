// Metadata of one `dmahil run` that every report carries (docs/architecture.md §11).
#pragma once

#include <cstdint>
#include <string>

namespace dmahil::report {

/// What identifies a run in its reports. No timestamps: the same run gives the same bytes.
struct RunInfo {
  uint64_t seed = 0;  // the run seed; rerunning with it reproduces a virtual-board run
  std::string farm;   // the farm's name (Farm.name)
  // The summary lists every result's pages (dom0 pfn, bus frame, the bus address the
  // device used), passing ones too: on for farms with qemu-xen or hardware boards, where
  // those frames come from the real Xen and kernel.
  bool segments = false;
};

}  // namespace dmahil::report
