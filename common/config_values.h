// The checks every configuration file gets after parsing, whatever its message type
// (board, fixture, farm, lab wiring): values the text-format parser accepts but nothing
// downstream can use. Run by ParseTextProto (common/config.h), so no loader can skip them.
#pragma once

#include <string_view>

#include <google/protobuf/message.h>

#include "common/config.h"

namespace dmahil {

/// Largest configuration file read (bytes): far above any real board, fixture or farm
/// file (the largest in boards/ and ci/farms/ is a few KiB), small enough that a wrong
/// path (a log, a disk image) is refused at once instead of parsed.
inline constexpr uint64_t kMaxConfigFileBytes = 4u << 20;

/// Checks every set field of `msg`, parsed from `text` with the locations in `source`:
/// - a string is valid UTF-8 (reports and junit.xml carry it) and has no control
///   character other than tab and newline;
/// - an enum value is one its type defines, given by name: protobuf's text format takes a
///   number for an enum field and, for proto3's open enums, keeps an undefined one, which
///   would otherwise reach an agent or a report far from its file and line.
/// Throws ConfigError with one "<file>:<line>:<col>: <field path>: <what>" line per
/// problem (file order) if any is found.
void CheckConfigValues(const google::protobuf::Message& msg, std::string_view text,
                       const SourceMap& source);

}  // namespace dmahil
