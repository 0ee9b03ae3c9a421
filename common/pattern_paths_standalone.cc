// The path comparison of common/pattern_paths_test.cc without GoogleTest, for targets
// that have none (ci/pattern-aarch64.sh cross-compiles it for aarch64 and runs it under
// qemu-aarch64): every available path against the scalar engine on the cases of
// common/pattern_paths_cases.h. Prints one line per path; exit status 1 on any
// difference or if the cases miss a line class.
#include <cstdio>
#include <set>
#include <string>

#include "common/pattern.h"
#include "common/pattern_fast.h"
#include "common/pattern_paths_cases.h"

int main() {
  using namespace dmahil::pattern;
  const std::vector<testing::PathCase> cases = testing::MakeCases(7, 400);
  int failures = 0;
  std::set<LineClass> seen;
  for (const testing::PathCase& c : cases)
    for (const Finding& f : testing::ScalarCheck(c).findings) seen.insert(f.cls);
  if (seen.size() != 5) {
    std::printf("FAIL: the cases produce %zu of the 5 line classes\n", seen.size());
    ++failures;
  }
  for (Path path : AvailablePaths()) {
    int bad = 0;
    for (const testing::PathCase& c : cases) {
      const std::string diff = testing::CompareWithScalar(c, path);
      if (diff.empty()) continue;
      if (++bad <= 5)
        std::printf("FAIL %s: %s: %s\n", PathName(path).data(), c.name.c_str(), diff.c_str());
    }
    std::printf("%-7s %zu cases, %d differ from scalar%s\n", PathName(path).data(), cases.size(),
                bad, path == BestPath() ? " (default path)" : "");
    failures += bad;
  }
  std::printf("%s\n", failures == 0 ? "PASS" : "FAIL");
  return failures == 0 ? 0 : 1;
}
