// Metadata of one `dmahil run` that every report carries (docs/architecture.md §11).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace dmahil::report {

/// What one board boots, as its reports name it (controller/run/board_kind.h SoftwareOf).
struct BoardSoftware {
  std::string board;       // the farm's board name
  std::string kernel;      // e.g. "Linux debian/6.1.192-3 (tree ..., commit ..., config ...)"
  std::string hypervisor;  // e.g. "Xen /path/xen-4.17-arm64 (sha256 0123456789abcdef)"
};

/// What identifies a run in its reports. No timestamps: the same run gives the same bytes.
struct RunInfo {
  uint64_t seed = 0;  // the run seed; rerunning with it reproduces a virtual-board run
  std::string farm;   // the farm's name (Farm.name)
  // The summary lists every result's pages (dom0 pfn, bus frame, the bus address the
  // device used), passing ones too: on for farms with qemu-xen or hardware boards, where
  // those frames come from the real Xen and kernel.
  bool segments = false;
  std::vector<BoardSoftware> software = {};  // per board, in farm order
};

}  // namespace dmahil::report
