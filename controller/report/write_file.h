// Writing a report file so that a crash never leaves half of it behind.
#pragma once

#include <filesystem>
#include <string_view>

namespace dmahil::report {

/// Writes `contents` to `path` through a temporary file in the same folder, then renames
/// it over `path` (atomic on POSIX). Throws std::runtime_error naming the path on failure.
void WriteFileAtomically(const std::filesystem::path& path, std::string_view contents);

}  // namespace dmahil::report
