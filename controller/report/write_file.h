// Writing into the output folder (--out): report files that a crash never leaves half
// written, and folders named after a board that never leave the output folder.
#pragma once

#include <filesystem>
#include <string_view>

namespace dmahil::report {

/// Writes `contents` to `path` through a temporary file in the same folder, then renames
/// it over `path` (atomic on POSIX). Throws std::runtime_error naming the path on failure.
void WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

/// `out` / `name`, for a name from a configuration file (a farm's board). Loading already
/// refuses such names (common/validate.h IsFileName); this keeps every caller honest, as
/// "..", "/x" or "a/b" would leave `out`. Throws std::runtime_error naming `name` unless
/// IsFileName(name).
std::filesystem::path OutputChild(const std::filesystem::path& out, std::string_view name);

}  // namespace dmahil::report
