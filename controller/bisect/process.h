// Child processes of a bisection: git, and the user's build and deploy hooks. Boost.Process
// (with Boost.Asio for the captured output), so no fork/exec or pipe code of our own.
#pragma once

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace dmahil::bisect {

/// What a finished child gave.
struct ProcessOutput {
  int exit_code = 0;  // the child's exit status; 128 + N when killed by signal N
  std::string out;    // everything it wrote to stdout
  std::string err;    // everything it wrote to stderr
};

/// Runs `program` (found on PATH) with `args` in `cwd` (empty: ours), stdin closed, and
/// captures its output. Throws BisectError if it cannot be started.
ProcessOutput RunCapture(const std::string& program, const std::vector<std::string>& args,
                         const std::filesystem::path& cwd = {});

/// Runs `command` with /bin/sh -c in `cwd`, with our environment plus `env`, stdin closed
/// and stdout and stderr both written to `log` (created or truncated). Returns the exit
/// status (128 + N when killed by signal N). Throws BisectError if it cannot be started.
int RunLogged(const std::string& command, const std::filesystem::path& cwd,
              const std::map<std::string, std::string>& env, const std::filesystem::path& log);

}  // namespace dmahil::bisect
