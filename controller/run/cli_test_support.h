// Test helpers for tests that run the `dmahil` binary as a user does (end-to-end tests).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace dmahil::testing {

/// A fresh, empty folder for one test: <temp>/<prefix>-<pid>-<test>, whatever an earlier
/// run left there removed first.
inline std::filesystem::path FreshTestDir(const std::string& prefix, const std::string& test) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    (prefix + "-" + std::to_string(getpid()) + "-" + test);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

/// The whole file at p ("" if it cannot be read).
inline std::string Slurp(const std::filesystem::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

/// Runs the built `dmahil` with args (a shell word list); its stdout and stderr go to
/// out/stdout and out/stderr. Returns its exit status, -1 if it did not exit normally.
/// DMAHIL_TEST_BINARY_DIR is defined for every test by dmahil_add_test.
inline int RunDmahil(const std::string& args, const std::filesystem::path& out) {
  std::filesystem::create_directories(out);
  const std::string cmd = std::string(DMAHIL_TEST_BINARY_DIR) + "/bin/dmahil " + args + " >" +
                          (out / "stdout").string() + " 2>" + (out / "stderr").string();
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

}  // namespace dmahil::testing
