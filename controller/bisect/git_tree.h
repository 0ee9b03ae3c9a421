// The git side of a bisection: the revisions between good and bad, and a private worktree
// to check them out in, so the user's own checkout is never touched.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace dmahil::bisect {

/// One git repository (a Linux or Xen tree). Every call runs `git -C <repo>`; each throws
/// BisectError with git's own message when git fails.
class GitTree {
 public:
  /// Throws BisectError if `repo` is not inside a git work tree.
  explicit GitTree(std::filesystem::path repo);

  const std::filesystem::path& repo() const { return repo_; }

  /// The full commit id of `rev` (a sha, tag, branch, HEAD~3...).
  std::string Resolve(const std::string& rev) const;

  /// [good, c1, ..., bad]: bad's first-parent line back to good, oldest first. Throws if
  /// good is not on that line (not an ancestor of bad, or only through a merged branch).
  /// A first-parent bisection names the merge when the culprit came in a merged branch.
  std::vector<std::string> FirstParentPath(const std::string& good, const std::string& bad) const;

  /// The commit's subject line.
  std::string Subject(const std::string& rev) const;

  /// Checks `rev` out (detached, --force) in the worktree at `path`, adding the worktree on
  /// first use. Untracked files (build output) stay, for incremental builds.
  void CheckoutWorktree(const std::filesystem::path& path, const std::string& rev) const;

 private:
  std::string Git(const std::vector<std::string>& args) const;

  std::filesystem::path repo_;
};

}  // namespace dmahil::bisect
