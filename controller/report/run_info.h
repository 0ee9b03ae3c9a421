// Metadata of one `dmahil run` that every report carries (DESIGN §9).
#pragma once

#include <cstdint>
#include <string>

namespace dmahil::report {

/// What identifies a run in its reports. No timestamps: the same run gives the same bytes.
struct RunInfo {
  uint64_t seed = 0;  // the run seed; rerunning with it reproduces a virtual-board run
  std::string farm;   // the farm's name (Farm.name)
};

}  // namespace dmahil::report
