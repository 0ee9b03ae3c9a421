#include "common/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <iterator>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>

#include "common/config_values.h"

namespace dmahil {
namespace {

namespace pb = google::protobuf;

// Levenshtein distance, for "did you mean" hints on short identifiers.
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

// The candidate closest to `word` if it is close enough to be a likely typo, else "".
std::string Closest(std::string_view word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::max<size_t>(2, word.size() / 4) + 1;
  for (const auto& c : candidates) {
    const size_t d = EditDistance(word, c);
    if (d < best_distance) {
      best_distance = d;
      best = c;
    }
  }
  return best;
}

std::string Join(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Enum types of fields named `field_name` reachable from `root`.
void FindEnumFields(const pb::Descriptor* root, const std::string& field_name,
                    std::set<const pb::Descriptor*>& seen,
                    std::set<const pb::EnumDescriptor*>& found) {
  if (!seen.insert(root).second) return;
  for (int i = 0; i < root->field_count(); ++i) {
    const pb::FieldDescriptor* f = root->field(i);
    if (f->name() == field_name && f->enum_type() != nullptr) found.insert(f->enum_type());
    if (f->message_type() != nullptr) FindEnumFields(f->message_type(), field_name, seen, found);
  }
}

// A parser message in the harness's wording, and the identifier it is about (if any).
struct Explained {
  std::string what;
  std::string token;  // the unknown field name or enum value, "" if none
};

// Rewrites protobuf's parser messages into the harness's wording, with hints.
Explained Explain(const pb::Descriptor* root, const std::string& message) {
  static const std::regex kUnknownField(
      R"re(Message type "([^"]+)" has no field named "([^"]+)")re");
  static const std::regex kUnknownEnum(
      R"re(Unknown enumeration value of "([^"]+)" for field "([^"]+)")re");
  std::smatch m;
  if (std::regex_search(message, m, kUnknownField)) {
    const std::string type_name = m[1];
    const std::string field = m[2];
    std::string out = fmt::format("unknown field \"{}\" in {}", field, type_name);
    const pb::Descriptor* type = root->file()->pool()->FindMessageTypeByName(type_name);
    if (type == nullptr) return {out, field};
    std::vector<std::string> names;
    for (int i = 0; i < type->field_count(); ++i) names.push_back(type->field(i)->name());
    const std::string hint = Closest(field, names);
    if (!hint.empty()) return {out + fmt::format("; did you mean \"{}\"?", hint), field};
    return {out + fmt::format(" (its fields: {})", Join(names, ", ")), field};
  }
  if (std::regex_search(message, m, kUnknownEnum)) {
    const std::string value = m[1];
    const std::string field = m[2];
    std::string out = fmt::format("unknown value {} for field \"{}\"", value, field);
    std::set<const pb::Descriptor*> seen;
    std::set<const pb::EnumDescriptor*> enums;
    FindEnumFields(root, field, seen, enums);
    if (enums.size() != 1) return {out, value};
    std::vector<std::string> names;
    const pb::EnumDescriptor* e = *enums.begin();
    for (int i = 0; i < e->value_count(); ++i) {
      const std::string& n = e->value(i)->name();
      if (n.size() < 12 || n.compare(n.size() - 12, 12, "_UNSPECIFIED") != 0) names.push_back(n);
    }
    const std::string hint = Closest(value, names);
    if (!hint.empty()) return {out + fmt::format("; did you mean {}?", hint), value};
    return {out + fmt::format("; valid values: {}", Join(names, ", ")), value};
  }
  return {message, ""};
}

// The field path (SourceMap::Locate syntax, e.g. "ram[1].base") whose name or value is
// before (line, column), 0-based, in `text`, a `root` message in text format; "" if none.
// Protobuf's parser reports a bad value only by position ("Expected integer, got: ..."):
// this names the field it belongs to, following the text's nesting with protobuf's own
// tokenizer and counting each repeated field's entries.
std::string FieldAt(const pb::Descriptor* root, std::string_view text, int line, int column) {
  struct Level {
    const pb::Descriptor* type;
    std::string prefix;
    std::map<std::string, int> count;  // entries of each repeated field so far
  };
  struct Quiet : pb::io::ErrorCollector {
    void AddError(int, pb::io::ColumnNumber, const std::string&) override {}
  } quiet;
  using Tokenizer = pb::io::Tokenizer;
  pb::io::ArrayInputStream in(text.data(), static_cast<int>(text.size()));
  Tokenizer tok(&in, &quiet);
  tok.set_comment_style(Tokenizer::SH_COMMENT_STYLE);
  std::vector<Level> stack{{root, "", {}}};
  std::string field;
  const pb::FieldDescriptor* fd = nullptr;
  bool expect_name = true;
  int list_depth = 0;
  while (tok.Next()) {
    const Tokenizer::Token& t = tok.current();
    if (t.line > line || (t.line == line && t.column >= column)) break;
    if (t.type == Tokenizer::TYPE_IDENTIFIER && expect_name && list_depth == 0) {
      Level& level = stack.back();
      fd = level.type != nullptr ? level.type->FindFieldByName(t.text) : nullptr;
      field = level.prefix + t.text;
      if (fd != nullptr && fd->is_repeated()) field += fmt::format("[{}]", level.count[t.text]++);
      expect_name = false;
    } else if (t.type == Tokenizer::TYPE_SYMBOL) {
      if (t.text == "{" || t.text == "<") {
        stack.push_back({fd != nullptr ? fd->message_type() : nullptr, field + ".", {}});
        expect_name = true;
      } else if (t.text == "}" || t.text == ">") {
        if (stack.size() > 1) stack.pop_back();
        field.clear();
        fd = nullptr;
        expect_name = true;
      } else if (t.text == "[") {
        ++list_depth;
      } else if (t.text == "]" && list_depth > 0 && --list_depth == 0) {
        expect_name = true;
      }
    } else if (list_depth == 0) {
      expect_name = true;  // the field's value: a name may follow
    }
  }
  return field;
}

bool IsIdentChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

// Collects parser errors as "<file>:<line>:<col>: <what>" lines (1-based). Protobuf
// reports an unknown name at the token after it; such errors are moved back to the
// start of the name itself.
class Collector : public pb::io::ErrorCollector {
 public:
  Collector(std::string file, std::string_view text, const pb::Descriptor* root)
      : file_(std::move(file)), text_(text), root_(root) {
    line_starts_.push_back(0);
    for (size_t i = 0; i < text_.size(); ++i)
      if (text_[i] == '\n') line_starts_.push_back(i + 1);
  }

  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    Explained e = Explain(root_, message);
    if (!e.token.empty()) {
      Retarget(e.token, line, column);
    } else if (const std::string field = FieldAt(root_, text_, line, column); !field.empty()) {
      e.what = fmt::format("{}: {}", field, e.what);
    }
    errors_.push_back(fmt::format("{}:{}:{}: {}", file_, line + 1, column + 1, e.what));
  }

  const std::vector<std::string>& errors() const { return errors_; }

 private:
  // Moves (line, column), 0-based, to the last whole-word `token` starting before it.
  void Retarget(const std::string& token, int& line, int& column) const {
    if (line < 0 || static_cast<size_t>(line) >= line_starts_.size()) return;
    size_t limit = std::min(text_.size(), line_starts_[static_cast<size_t>(line)] +
                                              static_cast<size_t>(std::max(column, 0)));
    while (limit > 0) {
      const size_t at = text_.rfind(token, limit - 1);
      if (at == std::string_view::npos) return;
      const size_t after = at + token.size();
      if ((at == 0 || !IsIdentChar(text_[at - 1])) &&
          (after >= text_.size() || !IsIdentChar(text_[after]))) {
        const auto next = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
        const size_t start = *(next - 1);
        line = static_cast<int>(next - line_starts_.begin() - 1);
        column = static_cast<int>(at - start);
        return;
      }
      limit = at;
    }
  }

  std::string file_;
  std::string_view text_;
  const pb::Descriptor* root_;
  std::vector<size_t> line_starts_;
  std::vector<std::string> errors_;
};

// One step of a field path: a field name and an index (-1: none given).
struct PathStep {
  std::string name;
  int index = -1;
};

std::vector<PathStep> SplitPath(std::string_view path) {
  std::vector<PathStep> steps;
  size_t pos = 0;
  while (pos <= path.size()) {
    const size_t dot = std::min(path.find('.', pos), path.size());
    std::string_view part = path.substr(pos, dot - pos);
    PathStep step;
    if (const size_t open = part.find('['); open != std::string_view::npos) {
      if (part.back() != ']' || open + 2 > part.size() - 1)
        throw std::invalid_argument(fmt::format("bad field path \"{}\"", path));
      const std::string digits(part.substr(open + 1, part.size() - open - 2));
      if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
        throw std::invalid_argument(fmt::format("bad index in field path \"{}\"", path));
      step.index = std::stoi(digits);
      part = part.substr(0, open);
    }
    if (part.empty()) throw std::invalid_argument(fmt::format("bad field path \"{}\"", path));
    step.name = std::string(part);
    steps.push_back(std::move(step));
    pos = dot + 1;
  }
  return steps;
}

// The whole text of `file`, which must be a regular file of at most kMaxConfigFileBytes
// (a FIFO would block, a character device never end). Throws ConfigError
// "<file>: cannot read: <why>".
std::string ReadConfigFile(const std::filesystem::path& file) {
  const auto fail = [&](std::string_view why) {
    return ConfigError(fmt::format("{}: cannot read: {}", file.string(), why));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just after).
  const int fd = ::open(file.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) throw fail(std::strerror(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw fail(std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw fail("is a directory");
  if (!S_ISREG(st.st_mode))
    throw fail(fmt::format("is a {}, not a regular file", S_ISFIFO(st.st_mode)  ? "FIFO"
                                                          : S_ISCHR(st.st_mode) ? "character device"
                                                          : S_ISBLK(st.st_mode) ? "block device"
                                                          : S_ISSOCK(st.st_mode) ? "socket"
                                                                                 : "special file"));
  if (static_cast<uint64_t>(st.st_size) > kMaxConfigFileBytes)
    throw fail(fmt::format("{} bytes; a configuration file is at most {} bytes", st.st_size,
                           kMaxConfigFileBytes));
  // One byte more than fstat said, to see a file that grew while being read.
  std::string text(static_cast<size_t>(st.st_size) + 1, '\0');
  size_t got = 0;
  while (got < text.size()) {
    const ssize_t n = ::read(fd, text.data() + got, text.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw fail(std::strerror(errno));
    if (n == 0) break;
    got += static_cast<size_t>(n);
  }
  if (got == text.size())
    throw fail("the file grew while being read; read it again when it is complete");
  text.resize(got);
  return text;
}

}  // namespace

SourceMap::SourceMap(std::filesystem::path file, const pb::Descriptor* type,
                     std::shared_ptr<const pb::TextFormat::ParseInfoTree> tree)
    : file_(std::move(file)), type_(type), tree_(std::move(tree)) {}

SourceLocation SourceMap::Locate(std::string_view field_path) const {
  SourceLocation best;
  if (type_ == nullptr) return best;
  const pb::TextFormat::ParseInfoTree* tree = tree_.get();
  const pb::Descriptor* type = type_;
  const std::vector<PathStep> steps = SplitPath(field_path);
  for (size_t i = 0; i < steps.size(); ++i) {
    if (type == nullptr)
      throw std::invalid_argument(fmt::format("field path \"{}\": not a message", field_path));
    const pb::FieldDescriptor* field = type->FindFieldByName(steps[i].name);
    if (field == nullptr)
      throw std::invalid_argument(fmt::format("field path \"{}\": no field \"{}\" in {}",
                                              field_path, steps[i].name, type->full_name()));
    int index = steps[i].index;
    if (field->is_repeated() && index < 0) index = 0;
    if (!field->is_repeated() && index >= 0)
      throw std::invalid_argument(
          fmt::format("field path \"{}\": \"{}\" is not repeated", field_path, field->name()));
    if (tree != nullptr) {
      const auto loc = tree->GetLocation(field, index);
      if (loc.line >= 0) {
        best = {loc.line + 1, loc.column + 1};
        tree = field->message_type() != nullptr ? tree->GetTreeForNested(field, index) : nullptr;
      } else {
        tree = nullptr;
      }
    }
    type = field->message_type();
  }
  return best;
}

std::string SourceMap::Where(std::string_view field_path) const {
  const SourceLocation loc = Locate(field_path);
  if (loc.line == 0) return fmt::format("{}:1:1", file_.string());
  return fmt::format("{}:{}:{}", file_.string(), loc.line, loc.column);
}

ConfigError SourceMap::Error(std::string_view field_path, std::string_view what) const {
  return ConfigError(fmt::format("{}: {}", Where(field_path), what));
}

void ParseTextProto(std::string_view text, const std::filesystem::path& file, pb::Message& out,
                    SourceMap* source) {
  Collector collector(file.string(), text, out.GetDescriptor());
  auto tree = std::make_shared<pb::TextFormat::ParseInfoTree>();
  pb::TextFormat::Parser parser;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(tree.get());
  if (!parser.ParseFromString(std::string(text), &out)) {
    if (collector.errors().empty())
      throw ConfigError(fmt::format("{}:1:1: not a valid {} in text format", file.string(),
                                    out.GetDescriptor()->full_name()));
    throw ConfigError(Join(collector.errors(), "\n"));
  }
  SourceMap map(file, out.GetDescriptor(), std::move(tree));
  CheckConfigValues(out, text, map);
  if (source != nullptr) *source = std::move(map);
}

void LoadTextProtoFile(const std::filesystem::path& file, pb::Message& out, SourceMap* source) {
  ParseTextProto(ReadConfigFile(file), file, out, source);
}

}  // namespace dmahil
