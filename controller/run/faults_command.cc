#include "controller/run/faults_command.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <fmt/ostream.h>
#include <fmt/ranges.h>
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "common/fault_catalogue.h"

namespace dmahil::run {
namespace {

// The layers that implement `f`, e.g. "model, dmahil.ko bit 0x1, kernel patch".
std::string Layers(const FaultInfo& f) {
  std::vector<std::string> out;
  if (f.implementations.model) out.emplace_back("model");
  if (f.implementations.kmod_bit != 0)
    out.push_back(fmt::format("dmahil.ko bit {:#x}", f.implementations.kmod_bit));
  if (!f.implementations.kernel_patch.empty())
    out.push_back(fmt::format("patch {}", f.implementations.kernel_patch));
  if (!f.implementations.driver_wrapper.empty())
    out.push_back(fmt::format("driver wrapper {}", f.implementations.driver_wrapper));
  return fmt::format("{}", fmt::join(out, ", "));
}

}  // namespace

CLI::App* AddFaultsCommand(CLI::App& app, FaultsCommandLine& cl) {
  CLI::App* faults = app.add_subcommand(
      "faults", "the fault catalogue: ids, expected diagnosis per board class, implementations");
  faults->add_flag("--json", cl.json, "print JSON instead of a table");
  return faults;
}

int FaultsCommand(const FaultsCommandLine& cl, std::ostream& out) {
  if (cl.json) {
    nlohmann::ordered_json all = nlohmann::ordered_json::array();
    for (const FaultInfo& f : FaultCatalogue()) {
      nlohmann::ordered_json j;
      j["id"] = f.name;
      j["tree"] = FaultTreeName(f.tree);
      j["reproduces"] = f.reproduces;
      j["mechanism"] = f.mechanism;
      j["symptom"] = f.symptom;
      j["diagnosis"] = {{"cached", DiagnosisKebabName(f.diagnosis_cached)},
                        {"cacheless", DiagnosisKebabName(f.diagnosis_cacheless)}};
      j["model"] = f.implementations.model;
      j["kmod_bit"] = f.implementations.kmod_bit;
      j["kernel_patch"] = f.implementations.kernel_patch;
      j["driver_wrapper"] = f.implementations.driver_wrapper;
      all.push_back(std::move(j));
    }
    out << all.dump(2) << "\n";
    return 0;
  }
  fmt::print(out, "{:<28} {:<6} {:<25} {:<25} {}\n", "FAULT", "TREE", "WITH CACHES",
             "WITHOUT CACHES", "IMPLEMENTED IN");
  for (const FaultInfo& f : FaultCatalogue())
    fmt::print(out, "{:<28} {:<6} {:<25} {:<25} {}\n", f.name, FaultTreeName(f.tree),
               DiagnosisKebabName(f.diagnosis_cached), DiagnosisKebabName(f.diagnosis_cacheless),
               Layers(f));
  return 0;
}

}  // namespace dmahil::run
