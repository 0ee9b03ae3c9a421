#include "controller/bisect/git_tree.h"

#include <sstream>

#include <fmt/format.h>

#include "controller/bisect/bisection.h"
#include "controller/bisect/process.h"

namespace dmahil::bisect {
namespace {

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
  return s;
}

}  // namespace

GitTree::GitTree(std::filesystem::path repo) : repo_(std::move(repo)) {
  std::error_code ec;
  if (!std::filesystem::is_directory(repo_, ec))
    throw BisectError(fmt::format("{}: no such folder", repo_.string()));
  Git({"rev-parse", "--git-dir"});
}

std::string GitTree::Git(const std::vector<std::string>& args) const {
  std::vector<std::string> all = {"-C", repo_.string()};
  all.insert(all.end(), args.begin(), args.end());
  const ProcessOutput p = RunCapture("git", all);
  if (p.exit_code != 0) {
    std::string cmd;
    for (const std::string& a : args) cmd += " " + a;
    throw BisectError(fmt::format("git -C {}{}: {}", repo_.string(), cmd, Trim(p.err)));
  }
  return p.out;
}

std::string GitTree::Resolve(const std::string& rev) const {
  try {
    return Trim(Git({"rev-parse", "--verify", "--quiet", "--end-of-options", rev + "^{commit}"}));
  } catch (const BisectError&) {
    throw BisectError(fmt::format("{}: no commit named \"{}\"", repo_.string(), rev));
  }
}

std::vector<std::string> GitTree::FirstParentPath(const std::string& good,
                                                  const std::string& bad) const {
  const std::string g = Resolve(good);
  const std::string b = Resolve(bad);
  if (g == b) throw BisectError(fmt::format("good and bad are the same commit {}", g));
  std::vector<std::string> path = {g};
  std::istringstream lines(Git({"rev-list", "--first-parent", "--reverse", b, "^" + g}));
  for (std::string line; std::getline(lines, line);)
    if (!line.empty()) path.push_back(line);
  if (path.size() < 2 || path.back() != b)
    throw BisectError(
        fmt::format("good {} is an ancestor of bad {}? git finds no commits "
                    "between them",
                    good, bad));
  const std::string base = Trim(Git({"rev-parse", path[1] + "^"}));
  if (base != g)
    throw BisectError(fmt::format(
        "good {} is not on the first-parent line of bad {} (that line leaves good's history at "
        "{}): give a good revision on it, e.g. that commit",
        good, bad, base));
  return path;
}

std::string GitTree::Subject(const std::string& rev) const {
  return Trim(Git({"log", "-1", "--format=%s", rev}));
}

void GitTree::CheckoutWorktree(const std::filesystem::path& path, const std::string& rev) const {
  std::error_code ec;
  if (!std::filesystem::exists(path / ".git", ec)) {
    // --force also takes over a stale registration of `path` (a removed --out); no
    // `worktree prune`, which would touch the user's other worktrees.
    std::filesystem::create_directories(path.parent_path(), ec);
    Git({"worktree", "add", "--detach", "--force", std::filesystem::absolute(path).string(), rev});
    return;
  }
  const std::vector<std::string> args = {"-C",      path.string(), "checkout", "--detach",
                                         "--force", "--quiet",     rev};
  const ProcessOutput p = RunCapture("git", args);
  if (p.exit_code != 0)
    throw BisectError(fmt::format("git -C {} checkout {}: {}", path.string(), rev, Trim(p.err)));
}

}  // namespace dmahil::bisect
