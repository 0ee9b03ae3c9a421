// The fault catalogue (docs/architecture.md): every bug class dmahil reproduces, one entry
// per fault, shared by every layer that can inject it. Each entry says which tree the bug
// lives in, which historical change or thread it reproduces, how it is reproduced, in
// which implementations it exists (the virtual board's model switch, a dmahil.ko `faults`
// bit, a kernel patch, a driver-path wrapper), on which boards it can manifest, and the
// diagnosis the harness must give for it on each class of board.
//
// Configuration files name faults by their text id ("cache-flush-local-addr"); code names
// them by FaultId, which the compiler checks. Parsing a text id that is not in the
// catalogue is an error that lists the known ids.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dmahil/v1/board.pb.h"
#include "dmahil/v1/result.pb.h"

namespace dmahil {

/// Every fault of the catalogue, in catalogue order.
enum class FaultId {
  kDmaOpsBypassXen,
  kBusAddrNoDmaOffset,
  kCacheFlushLocalAddr,
  kUnmapNoInvalidateForeign,
  kSyncForDeviceCpuOp,
  kNoBounceAboveMask,
  kBounceNoCopyBack,
  kGrant64kOffset,
  kGrantNotInIommu,
  kDoubleMapWrongFrame,
};
inline constexpr size_t kFaultCount = 10;

/// The source tree a fault's bug lives in.
enum class FaultTree { kLinux, kXen };

/// "linux" or "xen" (the tree names of revision.proto).
std::string_view FaultTreeName(FaultTree tree);

/// How a board shows a cache-maintenance fault.
enum class BoardClass {
  /// The CPU caches are real or modelled (virtual and hardware boards): a
  /// missing or misaddressed clean/invalidate leaves stale lines the pattern checker sees.
  kCached,
  /// No CPU caches to observe (qemu-xen boards: QEMU models none): maintenance faults
  /// show only in the maintenance audit of what dmahil.ko recorded
  /// (controller/run/maintenance_audit.h), as missing-maintenance or
  /// misaddressed-maintenance.
  kCacheless,
};

/// The class of a board; the controller's board-kind registry knows it
/// (controller/run/board_kind.h BoardClassOf, from BoardKindTraits::stale_lines_observable).
using BoardClassFn = std::function<BoardClass(const v1::Board& board)>;

/// Where a fault is implemented. A field left empty (0) means "not in that layer yet".
struct FaultImplementations {
  bool model = false;  // a switch of the virtual board's model (sim/linux_dma.cc, sim/xen.cc)
  /// The DMAHIL_FAULT_* bit of dmahil.ko's `faults` parameter that reproduces it
  /// (agent/kmod/dmahil_uapi.h), 0 if none.
  uint32_t kmod_bit = 0;
  /// Note on how the module switch differs from the historical bug, "" if it does not.
  std::string_view kmod_note;
  /// Kernel patch re-introducing the bug in a real tree (path in this repository), "" if none.
  std::string_view kernel_patch;
  /// Wrapper around a real driver's DMA path that reproduces it, "" if none.
  std::string_view driver_wrapper;
};

/// One catalogue entry.
struct FaultInfo {
  FaultId id;
  std::string_view name;        // the user-facing text id, e.g. "cache-flush-local-addr"
  FaultTree tree;               // where the bug lives
  std::string_view reproduces;  // the Linux/Xen change or thread (title, version)
  std::string_view mechanism;   // what the reproduction does differently
  std::string_view symptom;     // what the harness must report, in words
  FaultImplementations implementations;
  /// The diagnosis the harness must give on a board of each class (BoardClass order:
  /// kCached, kCacheless).
  v1::Diagnosis diagnosis_cached;
  v1::Diagnosis diagnosis_cacheless;
  /// Why the fault cannot manifest on `board` ("" if it can): e.g. the offset fault on a
  /// board without a dma-ranges offset. Such a fault/board pair is "cannot manifest",
  /// never a pass.
  std::string (*cannot_manifest)(const v1::Board& board);

  /// Whether the model can inject it (a virtual board refuses it otherwise).
  bool modelled() const { return implementations.model; }
  /// The diagnosis to expect on a board of `cls`.
  v1::Diagnosis Diagnosis(BoardClass cls) const {
    return cls == BoardClass::kCached ? diagnosis_cached : diagnosis_cacheless;
  }
};

/// The whole catalogue, indexed by FaultId (entry i has id FaultId(i)).
const std::array<FaultInfo, kFaultCount>& FaultCatalogue();

/// The entry of `id`.
const FaultInfo& Fault(FaultId id);

/// The entry whose text id is `name`, or nullptr.
const FaultInfo* FindFault(std::string_view name);

/// The text ids of the catalogue in order, comma-separated ("dma-ops-bypass-xen, ...").
std::string KnownFaultNames();

/// The FaultId of text id `name`. Throws std::invalid_argument naming `name` and listing
/// every known id when it is not in the catalogue.
FaultId ParseFaultId(std::string_view name);

/// The catalogue faults whose dmahil.ko bit is set in `kmod_faults` (a DMAHIL_FAULT_* mask,
/// the module's `faults` parameter), in catalogue order; `unknown_bits` (if non-null)
/// receives the bits no entry claims.
std::vector<FaultId> FaultsOfKmodBits(uint32_t kmod_faults, uint32_t* unknown_bits = nullptr);

/// The report's name of a diagnosis: the proto enum name without "DIAGNOSIS_", lower
/// case, '_' -> '-' ("stale-line", "misaddressed-maintenance"; "none" for DIAGNOSIS_NONE).
/// The same names controller/report/names.h DiagnosisName gives.
std::string DiagnosisKebabName(v1::Diagnosis diagnosis);

/// The diagnosis named `name` (DiagnosisKebabName), DIAGNOSIS_NONE excluded; nullopt if
/// `name` names none.
std::optional<v1::Diagnosis> ParseDiagnosis(std::string_view name);

/// Every diagnosis name a failing fixture can carry, comma-separated, in enum order.
std::string KnownDiagnosisNames();

/// The report's name of an I/O path (result.proto IoPath): "write", "read",
/// "write-and-read"; "" for IO_PATH_UNSPECIFIED and any value this build does not know.
std::string_view IoPathName(v1::IoPath path);

/// The IoPath named `name` (IoPathName), IO_PATH_UNSPECIFIED excluded; nullopt if none.
std::optional<v1::IoPath> ParseIoPath(std::string_view name);

}  // namespace dmahil
