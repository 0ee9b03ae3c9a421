// The virtual board's fault catalogue (DESIGN §6): each fault is a named switch on the
// model that reproduces one real Linux or Xen regression. A virtual board's
// "kernel/Xen revision" is its set of faults.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "dmahil/v1/board.pb.h"

namespace dmahil::sim {

/// One catalogue entry: what it reproduces, how the model does it, what must be seen.
struct FaultInfo {
  std::string_view id;
  std::string_view tree;        // the source tree the bug lives in: "linux" or "xen"
  std::string_view reproduces;  // the Linux/Xen change (title, version)
  std::string_view mechanism;   // what the model does differently
  std::string_view symptom;     // what the harness must report
  bool modelled;                // false: catalogued, not yet modelled (refused at boot)
  std::string_view diagnosis;   // the report's diagnosis name (report::DiagnosisName)
  /// Why the fault cannot manifest on `board` ("" if it can): e.g. the offset fault on a
  /// board without a dma-ranges offset. Such a fault/board pair is shown as "cannot
  /// manifest", never as a pass.
  std::string (*cannot_manifest)(const v1::Board& board);
};

/// The whole catalogue, in DESIGN §6 order.
const std::vector<FaultInfo>& FaultCatalogue();

/// The entry for id, or nullptr.
const FaultInfo* FindFault(std::string_view id);

/// Whether one boot of a virtual board takes the faulty path of revision fault switch `id`
/// (revision.proto FaultSwitch) that fires with probability `boot_rate`: always when
/// boot_rate >= 1 (a switch without boot_rate passes 1), never when <= 0; otherwise one
/// uniform draw in [0, 1) from a sim::Rng seeded with `board_seed` (the board's --seed)
/// mixed with a hash of `id`, so the decision is reproducible from the seed, independent
/// of the model's own PRNG stream and of the other switches.
bool FaultTakenThisBoot(uint64_t board_seed, std::string_view id, double boot_rate);

/// A set of injected faults. Parse() refuses unknown and unmodelled ids.
class FaultSet {
 public:
  FaultSet() = default;

  /// ids: catalogue ids. Throws SimError(kInvalidArgument) naming the bad id and the
  /// known ones.
  static FaultSet Parse(const std::vector<std::string>& ids);

  bool Has(std::string_view id) const { return ids_.count(std::string(id)) != 0; }
  /// Comma-separated ids, sorted; "none" if empty (the board's "revision").
  std::string ToString() const;

 private:
  std::set<std::string> ids_;
};

}  // namespace dmahil::sim
