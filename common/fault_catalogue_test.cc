#include "common/fault_catalogue.h"

#include <set>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>

#include "agent/kmod/dmahil_uapi.h"

namespace dmahil {
namespace {

TEST(FaultCatalogue, EntryIOfTheTableIsFaultIdIAndTextIdsAreUnique) {
  std::set<std::string_view> names;
  for (size_t i = 0; i < FaultCatalogue().size(); ++i) {
    const FaultInfo& f = FaultCatalogue()[i];
    EXPECT_EQ(static_cast<size_t>(f.id), i) << f.name;
    EXPECT_EQ(&Fault(f.id), &f) << f.name;
    EXPECT_TRUE(names.insert(f.name).second) << f.name << " twice";
    EXPECT_EQ(FindFault(f.name), &f);
    EXPECT_EQ(ParseFaultId(f.name), f.id);
    EXPECT_FALSE(f.reproduces.empty() || f.mechanism.empty() || f.symptom.empty()) << f.name;
    EXPECT_NE(f.cannot_manifest, nullptr) << f.name;
  }
}

TEST(FaultCatalogue, AnUnknownTextIdIsRefusedWithEveryKnownId) {
  EXPECT_EQ(FindFault("cache-flush-local"), nullptr);
  try {
    ParseFaultId("cache-flush-local");
    FAIL() << "accepted";
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("\"cache-flush-local\""), std::string::npos) << what;
    for (const FaultInfo& f : FaultCatalogue())
      EXPECT_NE(what.find(std::string(f.name)), std::string::npos) << what;
  }
}

// The dmahil.ko switches (agent/kmod/dmahil_uapi.h) each reproduce one catalogue fault,
// and the C++ side learns the bit from the entry, not from a copy of the number.
TEST(FaultCatalogue, DmahilKoSwitchesMapToTheirCatalogueFaults) {
  EXPECT_EQ(Fault(FaultId::kDmaOpsBypassXen).implementations.kmod_bit, DMAHIL_FAULT_BYPASS);
  EXPECT_EQ(Fault(FaultId::kUnmapNoInvalidateForeign).implementations.kmod_bit,
            DMAHIL_FAULT_SKIP_CPU_SYNC);
  EXPECT_EQ(Fault(FaultId::kCacheFlushLocalAddr).implementations.kmod_bit,
            DMAHIL_FAULT_SYNC_MISADDRESS);
  EXPECT_EQ(Fault(FaultId::kBounceNoCopyBack).implementations.kmod_bit, DMAHIL_FAULT_NO_COPY_BACK);
  uint32_t claimed = 0;
  for (const FaultInfo& f : FaultCatalogue()) {
    const uint32_t bit = f.implementations.kmod_bit;
    if (bit == 0) continue;
    EXPECT_EQ(bit & (bit - 1), 0u) << f.name << ": one bit per fault";
    EXPECT_EQ(claimed & bit, 0u) << f.name << ": bit claimed twice";
    claimed |= bit;
  }
  uint32_t unknown = 0;
  EXPECT_EQ(FaultsOfKmodBits(DMAHIL_FAULT_SKIP_CPU_SYNC | 0x40, &unknown),
            std::vector<FaultId>{FaultId::kUnmapNoInvalidateForeign});
  EXPECT_EQ(unknown, 0x40u);
  EXPECT_EQ(FaultsOfKmodBits(7).size(), 3u);
  EXPECT_EQ(FaultsOfKmodBits(15).size(), 4u);
}

// Every dmahil.ko switch also acts on a watched device's real driver traffic
// (agent/kmod/dev_audit.c), and the catalogue says how.
TEST(FaultCatalogue, EveryDmahilKoSwitchHasItsDriverPathWrapper) {
  for (const FaultInfo& f : FaultCatalogue()) {
    if (f.implementations.kmod_bit == 0) continue;
    EXPECT_NE(f.implementations.driver_wrapper.find("dev_audit.c"), std::string_view::npos)
        << f.name;
  }
}

TEST(FaultCatalogue, MaintenanceFaultsShowInTheAuditOnABoardWithoutCaches) {
  constexpr BoardClass virt = BoardClass::kCached;
  constexpr BoardClass qemu = BoardClass::kCacheless;
  const FaultInfo& flush = Fault(FaultId::kCacheFlushLocalAddr);
  EXPECT_EQ(flush.Diagnosis(virt), v1::DIAGNOSIS_STALE_LINE);
  EXPECT_EQ(flush.Diagnosis(qemu), v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE);
  EXPECT_EQ(Fault(FaultId::kUnmapNoInvalidateForeign).Diagnosis(qemu),
            v1::DIAGNOSIS_MISSING_MAINTENANCE);
  for (const FaultInfo& f : FaultCatalogue()) {
    // A stale line needs caches; where there are none the audit names the class. Every
    // other class is seen the same way on both.
    if (f.diagnosis_cached == v1::DIAGNOSIS_STALE_LINE) {
      EXPECT_TRUE(f.diagnosis_cacheless == v1::DIAGNOSIS_MISSING_MAINTENANCE ||
                  f.diagnosis_cacheless == v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE)
          << f.name;
    } else {
      EXPECT_EQ(f.diagnosis_cached, f.diagnosis_cacheless) << f.name;
    }
  }
}

TEST(FaultCatalogue, AGrantOffsetIn64KiBPagesManifestsInTheModelButNotOnQemuXensLinux) {
  const FaultInfo& f = Fault(FaultId::kGrant64kOffset);
  v1::Board b;
  b.set_kind(v1::BOARD_KIND_VIRTUAL);
  b.set_linux_page_size(65536);
  EXPECT_EQ(f.cannot_manifest(b), "") << "the model packs 16 grants per 64 KiB page";
  b.set_linux_page_size(4096);
  EXPECT_NE(f.cannot_manifest(b).find("4 KiB pages"), std::string::npos);
  b.set_kind(v1::BOARD_KIND_QEMU_XEN);
  b.set_linux_page_size(65536);
  // Linux 6.1's gntdev maps one grant per Linux page: none sits past the first Xen frame
  EXPECT_NE(f.cannot_manifest(b).find("gntdev"), std::string::npos) << f.cannot_manifest(b);
}

TEST(FaultCatalogue, DiagnosisNamesRoundTrip) {
  EXPECT_EQ(DiagnosisKebabName(v1::DIAGNOSIS_MISADDRESSED_MAINTENANCE), "misaddressed-maintenance");
  EXPECT_EQ(DiagnosisKebabName(v1::DIAGNOSIS_NONE), "none");
  EXPECT_EQ(ParseDiagnosis("stale-line"), v1::DIAGNOSIS_STALE_LINE);
  EXPECT_EQ(ParseDiagnosis("none"), std::nullopt);
  EXPECT_EQ(ParseDiagnosis("stale-lines"), std::nullopt);
  EXPECT_NE(KnownDiagnosisNames().find("wrong-bus-address"), std::string::npos);
}

}  // namespace
}  // namespace dmahil
