#include "controller/lab/log_tail.h"

#include <deque>
#include <fstream>

namespace dmahil::lab {

std::string TailLines(const std::filesystem::path& file, size_t n) {
  std::ifstream in(file);
  std::deque<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > n) lines.pop_front();
  }
  std::string out;
  for (const std::string& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

}  // namespace dmahil::lab
