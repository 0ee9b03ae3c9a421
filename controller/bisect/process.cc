#include "controller/bisect/process.h"

#include <sys/wait.h>

#include <future>

#include <fmt/format.h>
#include <boost/asio/io_context.hpp>
#include <boost/process.hpp>

#include "controller/bisect/bisection.h"

namespace dmahil::bisect {
namespace bp = boost::process;
namespace {

int ExitStatus(const bp::child& child) {
  const int status = child.native_exit_code();
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}

boost::filesystem::path Dir(const std::filesystem::path& cwd) {
  return cwd.empty() ? boost::filesystem::current_path() : boost::filesystem::path(cwd.string());
}

}  // namespace

ProcessOutput RunCapture(const std::string& program, const std::vector<std::string>& args,
                         const std::filesystem::path& cwd) {
  const boost::filesystem::path exe = bp::search_path(program);
  if (exe.empty()) throw BisectError(fmt::format("{} is not on PATH", program));
  boost::asio::io_context io;
  std::future<std::string> out;
  std::future<std::string> err;
  ProcessOutput result;
  try {
    bp::child child(exe, bp::args(args), bp::start_dir(Dir(cwd)),
                    bp::std_in<bp::null, bp::std_out> out, bp::std_err > err, io);
    io.run();
    child.wait();
    result.exit_code = ExitStatus(child);
  } catch (const bp::process_error& e) {
    throw BisectError(fmt::format("cannot run {}: {}", program, e.what()));
  }
  result.out = out.get();
  result.err = err.get();
  return result;
}

int RunLogged(const std::string& command, const std::filesystem::path& cwd,
              const std::map<std::string, std::string>& env, const std::filesystem::path& log) {
  bp::environment child_env = boost::this_process::environment();
  for (const auto& [key, value] : env) child_env[key] = value;
  try {
    bp::child child("/bin/sh", bp::args({"-c", command}), bp::start_dir(Dir(cwd)),
                    bp::std_in<bp::null, (bp::std_out & bp::std_err)> log.string(), child_env);
    child.wait();
    return ExitStatus(child);
  } catch (const bp::process_error& e) {
    throw BisectError(fmt::format("cannot run hook \"{}\": {}", command, e.what()));
  }
}

}  // namespace dmahil::bisect
