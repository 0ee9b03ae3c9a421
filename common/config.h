// Loading protobuf text-format configuration files (boards, fixtures, farms; docs/architecture.md
// §3) with errors a person can act on: every error is "<file>:<line>:<col>: <what>".
#pragma once

#include <filesystem>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <google/protobuf/message.h>
#include <google/protobuf/text_format.h>

namespace dmahil {

/// A configuration file that cannot be used: unreadable, not valid text format, or
/// semantically wrong. what() is one or more lines, each "<file>:<line>:<col>: <what>"
/// (1-based line and column), or "<file>: <what>" when no line applies (missing file).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A 1-based position in a text file; line == 0 means "unknown".
struct SourceLocation {
  int line = 0;
  int column = 0;
};

/// Where each field of a message parsed from text format came from, so semantic
/// validation can point at the line of the offending field. Cheap to copy (the parse
/// tree is shared). A default-constructed SourceMap knows no locations.
class SourceMap {
 public:
  SourceMap() = default;
  /// `tree` describes a message of type `type` parsed from `file`.
  SourceMap(std::filesystem::path file, const google::protobuf::Descriptor* type,
            std::shared_ptr<const google::protobuf::TextFormat::ParseInfoTree> tree);

  /// The file the message was parsed from, as given to the loader.
  const std::filesystem::path& file() const { return file_; }

  /// Location of the field at `field_path`: dot-separated field names with an optional
  /// [index] on repeated fields, e.g. "cache.line_size", "ram[1].base", "board[0].faults[2]".
  /// A path naming a field absent from the file resolves to its nearest present
  /// ancestor; if none is present the result has line 0. Throws std::invalid_argument if
  /// the path does not name a field of the message type (a programming error).
  SourceLocation Locate(std::string_view field_path) const;

  /// "<file>:<line>:<col>" for `field_path` (see Locate); "<file>:1:1" when the field and
  /// all its ancestors are absent from the file.
  std::string Where(std::string_view field_path) const;

  /// A ConfigError "<Where(field_path)>: <what>".
  ConfigError Error(std::string_view field_path, std::string_view what) const;

 private:
  std::filesystem::path file_;
  const google::protobuf::Descriptor* type_ = nullptr;
  std::shared_ptr<const google::protobuf::TextFormat::ParseInfoTree> tree_;
};

/// Parses `text` (text format) into `out` (cleared first). `file` names the text in
/// error messages. If `source` is non-null it receives the field locations.
/// Throws ConfigError on any syntax error, unknown field (with a "did you mean" hint),
/// unknown enum value (listing the valid ones), out-of-range value or repeated
/// singular field; every error line is "<file>:<line>:<col>: <what>".
void ParseTextProto(std::string_view text, const std::filesystem::path& file,
                    google::protobuf::Message& out, SourceMap* source = nullptr);

/// Reads `file` and parses it as ParseTextProto does. Throws ConfigError
/// "<file>: cannot read: <reason>" if the file cannot be opened or read.
void LoadTextProtoFile(const std::filesystem::path& file, google::protobuf::Message& out,
                       SourceMap* source = nullptr);

/// Typed form of LoadTextProtoFile: returns the parsed message of type Msg.
template <class Msg>
Msg LoadTextProto(const std::filesystem::path& file, SourceMap* source = nullptr) {
  Msg msg;
  LoadTextProtoFile(file, msg, source);
  return msg;
}

}  // namespace dmahil
