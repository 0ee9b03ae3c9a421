#include "sim/faults.h"

#include <cstdint>
#include <string>

#include <gtest/gtest.h>

#include "sim/error.h"

namespace dmahil::sim {
namespace {

TEST(FaultCatalogue, EveryFaultNamesItsTreeAndOnlyTheGrantIommuFaultIsXen) {
  for (const FaultInfo& f : FaultCatalogue())
    EXPECT_EQ(f.tree, f.id == FaultId::kGrantNotInIommu ? FaultTree::kXen : FaultTree::kLinux)
        << f.name;
  ASSERT_NE(FindFault("grant-not-in-iommu"), nullptr);
  EXPECT_EQ(FaultTreeName(FindFault("grant-not-in-iommu")->tree), "xen");
}

TEST(FaultSet, ParsesTextIdsToTheTypedIdsAndRefusesUnknownOnesListingTheCatalogue) {
  const FaultSet set = FaultSet::Parse({"cache-flush-local-addr", "bounce-no-copy-back"});
  EXPECT_TRUE(set.Has(FaultId::kCacheFlushLocalAddr));
  EXPECT_TRUE(set.Has(FaultId::kBounceNoCopyBack));
  EXPECT_FALSE(set.Has(FaultId::kDmaOpsBypassXen));
  EXPECT_EQ(set.ToString(), "bounce-no-copy-back,cache-flush-local-addr");
  EXPECT_EQ(FaultSet().ToString(), "none");
  try {
    FaultSet::Parse({"cache-flush-local-address"});
    FAIL() << "an unknown id was accepted";
  } catch (const SimError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("\"cache-flush-local-address\""), std::string::npos) << what;
    for (const FaultInfo& f : FaultCatalogue())
      EXPECT_NE(what.find(std::string(f.name)), std::string::npos) << what;
  }
}

TEST(FaultTakenThisBoot, RateOneIsEveryBootAndZeroNone) {
  for (uint64_t seed = 0; seed < 500; ++seed) {
    EXPECT_TRUE(FaultTakenThisBoot(seed, "cache-flush-local-addr", 1.0)) << seed;
    EXPECT_FALSE(FaultTakenThisBoot(seed, "cache-flush-local-addr", 0.0)) << seed;
  }
}

TEST(FaultTakenThisBoot, FractionOfBootsFollowsTheRate) {
  constexpr int kBoots = 2000;
  for (const double rate : {0.3, 0.05, 0.9}) {
    int taken = 0;
    for (uint64_t seed = 1; seed <= kBoots; ++seed)
      taken += FaultTakenThisBoot(seed, "cache-flush-local-addr", rate) ? 1 : 0;
    EXPECT_NEAR(static_cast<double>(taken) / kBoots, rate, 0.04) << "rate " << rate;
  }
}

TEST(FaultTakenThisBoot, SameSeedSameDecisionAndFaultsDrawIndependently) {
  int same = 0;
  int differ = 0;
  for (uint64_t seed = 0; seed < 2000; ++seed) {
    const bool a = FaultTakenThisBoot(seed * 7919, "cache-flush-local-addr", 0.5);
    EXPECT_EQ(a, FaultTakenThisBoot(seed * 7919, "cache-flush-local-addr", 0.5)) << seed;
    // Another fault id at the same seed is a different draw, not the same coin.
    const bool b = FaultTakenThisBoot(seed * 7919, "unmap-no-invalidate-foreign", 0.5);
    (a == b ? same : differ) += 1;
  }
  EXPECT_NEAR(static_cast<double>(same) / (same + differ), 0.5, 0.05);
}

}  // namespace
}  // namespace dmahil::sim
