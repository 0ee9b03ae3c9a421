// The end of a log file (a board's console.log, QEMU's qemu.log), for error messages that
// must show a person why a board went offline.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

namespace dmahil::lab {

/// The last `n` lines of `file`, joined with '\n' (no trailing newline); "" if the file
/// cannot be read or is empty.
std::string TailLines(const std::filesystem::path& file, size_t n);

}  // namespace dmahil::lab
