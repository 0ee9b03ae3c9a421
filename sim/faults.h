// The virtual board's faults: which catalogue faults (common/fault_catalogue.h) one board
// has switched on. A virtual board's "kernel/Xen revision" is its set of faults; the model
// (sim/linux_dma.cc, sim/xen.cc) asks FaultSet::Has(FaultId) at the step each fault changes.
#pragma once

#include <bitset>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/fault_catalogue.h"

namespace dmahil::sim {

// The catalogue, under the names sim/ has always exported them by.
using dmahil::FaultCatalogue;
using dmahil::FaultId;
using dmahil::FaultInfo;
using dmahil::FindFault;

/// Whether one boot of a virtual board takes the faulty path of revision fault switch `id`
/// (revision.proto FaultSwitch) that fires with probability `boot_rate`: always when
/// boot_rate >= 1 (a switch without boot_rate passes 1), never when <= 0; otherwise one
/// uniform draw in [0, 1) from a sim::Rng seeded with `board_seed` (the board's --seed)
/// mixed with a hash of `id`, so the decision is reproducible from the seed, independent
/// of the model's own PRNG stream and of the other switches.
bool FaultTakenThisBoot(uint64_t board_seed, std::string_view id, double boot_rate);

/// A set of injected faults.
class FaultSet {
 public:
  FaultSet() = default;

  /// ids: catalogue text ids (e.g. "cache-flush-local-addr"). Throws SimError
  /// (kInvalidArgument) for an id not in the catalogue, listing the known ones, and for
  /// one the model does not implement.
  static FaultSet Parse(const std::vector<std::string>& ids);

  bool Has(FaultId id) const { return ids_.test(static_cast<size_t>(id)); }
  /// Comma-separated text ids, sorted by name; "none" if empty (the board's "revision").
  std::string ToString() const;

 private:
  std::bitset<kFaultCount> ids_;
};

}  // namespace dmahil::sim
