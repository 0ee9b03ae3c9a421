// Loading a virtual board's revision folder (docs/architecture.md §7): linux.textproto and/or
// xen.textproto, each a dmahil.v1.Revision naming the catalogue faults the tree's code has.
// A deploy hook writes the folder; dmahil-vboard reads it at every power-on.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config.h"
#include "dmahil/v1/revision.pb.h"

namespace dmahil {

/// What the fault catalogue (common/fault_catalogue.h) says about one fault id.
struct CatalogueFault {
  bool known = false;     // the id is in the catalogue
  bool modelled = false;  // the model can inject it (only then may a revision name it)
  std::string tree;       // the tree the bug lives in: "linux" or "xen"
};

/// Looks a fault id up in the catalogue, e.g. "grant-not-in-iommu" -> {true, true, "xen"};
/// an id not in the catalogue gives known == false. Keeps common/ free of sim/.
using FaultCatalogueLookup = std::function<CatalogueFault(std::string_view id)>;

/// One revision file of a revision folder, parsed and validated.
struct LoadedRevision {
  std::filesystem::path file;  // <dir>/linux.textproto or <dir>/xen.textproto
  v1::Revision revision;       // tree equals the file's stem
  SourceMap source;            // locations in `file`
};

/// The trees a revision folder may describe, in load order: "linux", "xen". The file of
/// tree T is "<T>.textproto".
const std::vector<std::string>& RevisionTrees();

/// Checks one revision of tree `tree` ("linux" or "xen"): `tree` field equal to it, every
/// fault id non-empty, in the catalogue, modelled and of that tree, boot_rate in [0, 1],
/// no id twice. `source` locates fields. Throws ConfigError listing every violation, one
/// "<file>:<line>:<col>: <what>" per line, e.g.
/// "r/linux.textproto:4:3: fault: grant-not-in-iommu is a xen fault, not linux ...".
void ValidateRevision(const v1::Revision& revision, std::string_view tree, const SourceMap& source,
                      const FaultCatalogueLookup& lookup);

/// Loads the revision folder `dir`: <dir>/linux.textproto and <dir>/xen.textproto, each
/// optional (any other file is ignored), each parsed with the text-format loader and
/// checked with ValidateRevision. Returns the files present, linux first; empty if
/// neither is (a clean revision).
/// Throws ConfigError: "revision folder <dir> does not exist: did the deploy hook run?"
/// when `dir` is missing, "<dir>: revision folder is not a folder" when it is something
/// else, and file:line:col errors for an unreadable, malformed or invalid file (every
/// problem of every file, linux first).
std::vector<LoadedRevision> LoadRevisionDir(const std::filesystem::path& dir,
                                            const FaultCatalogueLookup& lookup);

}  // namespace dmahil
