#include "common/problems.h"

#include <algorithm>

#include <fmt/ranges.h>

namespace dmahil {

void Problems::AddText(std::string_view field_path, std::string_view what) {
  const SourceLocation at = source_.Locate(field_path);
  lines_.push_back({at.line, at.column, fmt::format("{}: {}", source_.Where(field_path), what)});
}

void Problems::ThrowIfAny() {
  if (lines_.empty()) return;
  throw ConfigError(Text());
}

std::string Problems::Text() {
  std::stable_sort(lines_.begin(), lines_.end(), [](const Line& a, const Line& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  });
  std::vector<std::string_view> texts;
  texts.reserve(lines_.size());
  for (const Line& line : lines_) texts.push_back(line.text);
  return fmt::format("{}", fmt::join(texts, "\n"));
}

void Claims::Claim(Problems& problems, std::string_view kind, std::string_view what,
                   std::string_view field_path) {
  auto [it, fresh] =
      used_.emplace(std::pair(std::string(kind), std::string(what)), std::string(field_path));
  if (!fresh)
    problems.Add(field_path, "{} {} is already used by {} at {}", kind, what, it->second,
                 source_.Where(it->second));
}

}  // namespace dmahil
