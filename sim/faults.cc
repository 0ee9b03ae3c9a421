#include "sim/faults.h"

#include <algorithm>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "sim/error.h"
#include "sim/rng.h"

namespace dmahil::sim {

bool FaultTakenThisBoot(uint64_t board_seed, std::string_view id, double boot_rate) {
  if (!(boot_rate < 1.0)) return true;   // 1 (and above, NaN): every boot
  if (!(boot_rate > 0.0)) return false;  // 0 and below: never
  uint64_t h = 0xcbf29ce484222325ULL;    // FNV-1a of the id
  for (unsigned char c : id) h = (h ^ c) * 0x100000001b3ULL;
  // A stream of its own: the board seed through one splitmix64 step, xor the id's hash.
  Rng rng(Rng(board_seed ^ 0x626f6f742d726576ULL).Next() ^ h);         // "boot-rev"
  const double u = static_cast<double>(rng.Next() >> 11) * 0x1.0p-53;  // uniform [0, 1)
  return u < boot_rate;
}

FaultSet FaultSet::Parse(const std::vector<std::string>& ids) {
  FaultSet set;
  for (const std::string& id : ids) {
    const FaultInfo* f = FindFault(id);
    if (f == nullptr)
      throw SimError(
          ErrorCode::kInvalidArgument,
          fmt::format("unknown fault \"{}\"; the catalogue has: {}", id, KnownFaultNames()));
    if (!f->modelled())
      throw SimError(ErrorCode::kInvalidArgument,
                     fmt::format("fault \"{}\" is catalogued but not modelled yet", id));
    set.ids_.set(static_cast<size_t>(f->id));
  }
  return set;
}

std::string FaultSet::ToString() const {
  std::vector<std::string_view> names;
  for (const FaultInfo& f : FaultCatalogue())
    if (Has(f.id)) names.push_back(f.name);
  if (names.empty()) return "none";
  std::sort(names.begin(), names.end());
  return fmt::format("{}", fmt::join(names, ","));
}

}  // namespace dmahil::sim
