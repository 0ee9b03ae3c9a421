// `dmahil faults --json` and the kernel regression patches (regressions/): every patch
// the catalogue names exists and carries its fault's id, and every patch is named.
#include "controller/run/faults_command.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/fault_catalogue.h"

namespace dmahil::run {
namespace {

nlohmann::json CatalogueJson() {
  std::ostringstream out;
  EXPECT_EQ(FaultsCommand({.json = true}, out), 0);
  return nlohmann::json::parse(out.str());
}

TEST(FaultsCommand, JsonListsEveryFaultWithItsDiagnoses) {
  const nlohmann::json all = CatalogueJson();
  ASSERT_EQ(all.size(), FaultCatalogue().size());
  for (size_t i = 0; i < all.size(); ++i) {
    const FaultInfo& f = FaultCatalogue()[i];
    EXPECT_EQ(all[i]["id"], std::string(f.name));
    EXPECT_EQ(all[i]["diagnosis"]["cacheless"], DiagnosisKebabName(f.diagnosis_cacheless));
    EXPECT_EQ(all[i]["diagnosis"]["cached"], DiagnosisKebabName(f.diagnosis_cached));
    EXPECT_EQ(all[i]["kernel_patch"], std::string(f.implementations.kernel_patch));
  }
}

TEST(FaultsCommand, TableHasOneRowPerFault) {
  std::ostringstream out;
  ASSERT_EQ(FaultsCommand({}, out), 0);
  const std::string text = out.str();
  for (const FaultInfo& f : FaultCatalogue())
    EXPECT_NE(text.find(std::string(f.name) + " "), std::string::npos) << f.name;
}

// The patches are the catalogue's "kernel patch" layer: the folder and the catalogue agree.
TEST(RegressionPatches, EachCarriesTheFaultThatNamesIt) {
  const char* root = std::getenv("DMAHIL_SOURCE_DIR");
  if (root == nullptr) GTEST_SKIP() << "DMAHIL_SOURCE_DIR not set";
  std::set<std::string> named;
  for (const FaultInfo& f : FaultCatalogue()) {
    if (f.implementations.kernel_patch.empty()) continue;
    const std::filesystem::path p = std::filesystem::path(root) / f.implementations.kernel_patch;
    std::ifstream in(p);
    ASSERT_TRUE(in) << f.name << ": " << p << " missing";
    std::stringstream text;
    text << in.rdbuf();
    EXPECT_NE(text.str().find("\nDmahil-Fault: " + std::string(f.name) + "\n"), std::string::npos)
        << p << " lacks the trailer \"Dmahil-Fault: " << f.name << "\"";
    EXPECT_NE(text.str().find("\n--- a/"), std::string::npos) << p << " has no diff";
    named.insert(std::filesystem::canonical(p).string());
  }
  size_t patches = 0;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(std::filesystem::path(root) / "regressions")) {
    if (e.path().extension() != ".patch") continue;
    ++patches;
    EXPECT_TRUE(named.count(std::filesystem::canonical(e.path()).string()))
        << e.path() << " is not the kernel_patch of any catalogue fault";
  }
  EXPECT_GE(patches, 6u);
}

}  // namespace
}  // namespace dmahil::run
