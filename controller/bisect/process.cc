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
  // The variables go in through env(1), not bp::environment: Boost 1.74's
  // basic_environment_impl::find reads past the end of shorter entries (ASan
  // heap-buffer-overflow in environment.hpp:266).
  std::vector<std::string> args;
  for (const auto& [key, value] : env) args.push_back(key + "=" + value);
  args.insert(args.end(), {"/bin/sh", "-c", command});
  try {
    bp::child child("/usr/bin/env", bp::args(args), bp::start_dir(Dir(cwd)),
                    bp::std_in<bp::null, (bp::std_out & bp::std_err)> log.string());
    child.wait();
    return ExitStatus(child);
  } catch (const bp::process_error& e) {
    throw BisectError(fmt::format("cannot run hook \"{}\": {}", command, e.what()));
  }
}

}  // namespace dmahil::bisect
