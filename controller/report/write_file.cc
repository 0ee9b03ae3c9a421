#include "controller/report/write_file.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>
#include <system_error>

#include <fmt/format.h>

#include "common/validate.h"

namespace dmahil::report {

void WriteFileAtomically(const std::filesystem::path& path, std::string_view contents) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw std::runtime_error(
          fmt::format("{}: cannot write: {}", tmp.string(), std::strerror(errno)));
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.flush();
    if (!out) throw std::runtime_error(fmt::format("{}: write failed", tmp.string()));
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    throw std::runtime_error(
        fmt::format("{}: cannot rename {} over it: {}", path.string(), tmp.string(), ec.message()));
}

std::filesystem::path OutputChild(const std::filesystem::path& out, std::string_view name) {
  if (!IsFileName(name))
    throw std::runtime_error(fmt::format(
        "\"{}\" is not a file name (1..{} of [A-Za-z0-9._+-], not starting with '.' or '-'); "
        "nothing is written for it outside {}",
        name, kMaxNameBytes, out.string()));
  return out / name;
}

}  // namespace dmahil::report
