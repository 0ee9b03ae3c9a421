// `dmahil faults [--json]`: the fault catalogue (common/fault_catalogue.h) as a person or a
// script reads it: each fault's id, where it lives, the diagnosis per board class and the
// layers that implement it (model switch, dmahil.ko bit, kernel regression patch).
// ci/kernel-table.sh takes the expected diagnosis of each regression patch from --json.
#pragma once

#include <ostream>

namespace CLI {
class App;
}

namespace dmahil::run {

/// The command line of `dmahil faults`.
struct FaultsCommandLine {
  bool json = false;  // JSON (nlohmann-json, 2-space indent) instead of a table
};

/// Adds the `faults` subcommand to `app`, filling `cl`; returns it.
CLI::App* AddFaultsCommand(CLI::App& app, FaultsCommandLine& cl);

/// Prints the catalogue in catalogue order. Table: one row per fault (id, tree, diagnosis
/// with caches / without, implementations). JSON: [{"id", "tree", "reproduces", "mechanism",
/// "symptom", "diagnosis": {"cached", "cacheless"}, "model" (bool), "kmod_bit" (0: none),
/// "kernel_patch" (path in the repository, "" if none), "driver_wrapper"}]. Returns 0.
int FaultsCommand(const FaultsCommandLine& cl, std::ostream& out);

}  // namespace dmahil::run
