#include "common/revision.h"

#include <map>
#include <string>
#include <system_error>
#include <utility>

#include <fmt/format.h>

namespace dmahil {
namespace {

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

}  // namespace

const std::vector<std::string>& RevisionTrees() {
  static const std::vector<std::string> trees = {"linux", "xen"};
  return trees;
}

void ValidateRevision(const v1::Revision& revision, std::string_view tree, const SourceMap& source,
                      const FaultCatalogueLookup& lookup) {
  std::vector<std::string> problems;
  const auto add = [&](std::string_view field, const std::string& what) {
    problems.push_back(fmt::format("{}: {}", source.Where(field), what));
  };
  if (revision.tree().empty())
    add("tree", fmt::format("tree is not set; set tree: \"{}\" (the file's name)", tree));
  else if (revision.tree() != tree)
    add("tree", fmt::format("tree \"{}\" does not match the file name {}.textproto; set tree: "
                            "\"{}\" or move the file",
                            revision.tree(), tree, tree));
  std::map<std::string, int> seen;
  for (int i = 0; i < revision.fault_size(); ++i) {
    const v1::FaultSwitch& f = revision.fault(i);
    const std::string path = fmt::format("fault[{}]", i);
    if (f.id().empty()) {
      add(path, fmt::format("fault: fault[{}] has no id; set id: \"<catalogue id>\"", i));
    } else if (auto [it, fresh] = seen.emplace(f.id(), i); !fresh) {
      add(path + ".id", fmt::format("fault: {} is listed twice (also at {})", f.id(),
                                    source.Where(fmt::format("fault[{}].id", it->second))));
    } else if (lookup) {
      const CatalogueFault c = lookup(f.id());
      if (!c.known)
        add(path + ".id", fmt::format("fault: unknown fault \"{}\" (not in the catalogue, "
                                      "common/fault_catalogue.cc)",
                                      f.id()));
      else if (!c.modelled)
        add(path + ".id",
            fmt::format("fault: {} is catalogued but not modelled yet, so no revision can "
                        "have it",
                        f.id()));
      else if (c.tree != tree)
        add(path + ".id", fmt::format("fault: {} is a {} fault, not {}; it belongs in "
                                      "{}.textproto",
                                      f.id(), c.tree, tree, c.tree));
    }
    if (f.has_boot_rate() && !(f.boot_rate() > 0.0 && f.boot_rate() <= 1.0))
      add(path + ".boot_rate",
          fmt::format("fault: {} boot_rate {} must be in (0, 1] (the probability that one "
                      "boot takes the faulty path; leave it out for every boot, remove the "
                      "switch for none)",
                      f.id(), f.boot_rate()));
  }
  if (!problems.empty()) throw ConfigError(Join(problems));
}

std::vector<LoadedRevision> LoadRevisionDir(const std::filesystem::path& dir,
                                            const FaultCatalogueLookup& lookup) {
  std::error_code ec;
  const std::filesystem::file_status st = std::filesystem::status(dir, ec);
  if (!std::filesystem::exists(st))
    throw ConfigError(
        fmt::format("revision folder {} does not exist: did the deploy hook run?", dir.string()));
  if (!std::filesystem::is_directory(st))
    throw ConfigError(fmt::format("{}: revision folder is not a folder", dir.string()));
  std::vector<LoadedRevision> out;
  std::vector<std::string> errors;
  for (const std::string& tree : RevisionTrees()) {
    LoadedRevision r;
    r.file = dir / (tree + ".textproto");
    const bool present = std::filesystem::exists(r.file, ec);
    if (ec) {  // cannot tell: never take an unreadable revision for a clean one
      errors.push_back(fmt::format("{}: {}", r.file.string(), ec.message()));
      continue;
    }
    if (!present) continue;
    try {
      LoadTextProtoFile(r.file, r.revision, &r.source);
      ValidateRevision(r.revision, tree, r.source, lookup);
    } catch (const ConfigError& e) {
      errors.emplace_back(e.what());
      continue;
    }
    out.push_back(std::move(r));
  }
  if (!errors.empty()) throw ConfigError(Join(errors));
  return out;
}

}  // namespace dmahil
