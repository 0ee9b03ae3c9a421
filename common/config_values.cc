#include "common/config_values.h"

#include <string>
#include <vector>

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <boost/locale/utf.hpp>

#include "common/problems.h"

namespace dmahil {
namespace {

namespace pb = google::protobuf;

// Offsets of the starts of the lines of `text` (0-based lines).
std::vector<size_t> LineStarts(std::string_view text) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n') starts.push_back(i + 1);
  return starts;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

class Walker {
 public:
  Walker(std::string_view text, Problems& problems)
      : text_(text), starts_(LineStarts(text)), p_(problems) {}

  void Walk(const pb::Message& msg, const std::string& prefix) {
    const pb::Reflection* r = msg.GetReflection();
    std::vector<const pb::FieldDescriptor*> fields;
    r->ListFields(msg, &fields);
    for (const pb::FieldDescriptor* f : fields) {
      const int n = f->is_repeated() ? r->FieldSize(msg, f) : 1;
      for (int i = 0; i < n; ++i) {
        const std::string path = f->is_repeated() ? fmt::format("{}{}[{}]", prefix, f->name(), i)
                                                  : fmt::format("{}{}", prefix, f->name());
        const int at = f->is_repeated() ? i : -1;
        switch (f->cpp_type()) {
          case pb::FieldDescriptor::CPPTYPE_MESSAGE:
            Walk(at < 0 ? r->GetMessage(msg, f) : r->GetRepeatedMessage(msg, f, at), path + ".");
            break;
          case pb::FieldDescriptor::CPPTYPE_STRING:
            if (f->type() == pb::FieldDescriptor::TYPE_STRING)
              CheckString(path, at < 0 ? r->GetString(msg, f) : r->GetRepeatedString(msg, f, at));
            break;
          case pb::FieldDescriptor::CPPTYPE_ENUM:
            CheckEnum(path, f,
                      at < 0 ? r->GetEnumValue(msg, f) : r->GetRepeatedEnumValue(msg, f, at));
            break;
          default:
            break;
        }
      }
    }
  }

 private:
  void CheckString(const std::string& path, const std::string& s) {
    namespace utf = boost::locale::utf;
    for (const char* it = s.data(); it != s.data() + s.size();) {
      const char* start = it;
      const utf::code_point c = utf::utf_traits<char>::decode(it, s.data() + s.size());
      if (c == utf::illegal || c == utf::incomplete) {
        p_.Add(path, "{}: the string is not valid UTF-8 (byte {} of {}); reports carry it", path,
               start - s.data(), s.size());
        return;
      }
    }
    for (const char c : s) {
      const auto u = static_cast<unsigned char>(c);
      if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7f) {
        p_.Add(path, "{}: the string holds control character {:#04x}", path, u);
        return;
      }
    }
  }

  void CheckEnum(const std::string& path, const pb::FieldDescriptor* f, int value) {
    const pb::EnumDescriptor* e = f->enum_type();
    const pb::EnumValueDescriptor* named = e->FindValueByNumber(value);
    if (named == nullptr) {
      p_.Add(path, "{}: {} is not a value of {}; give one of its names", path, value,
             e->full_name());
      return;
    }
    if (GivenAsNumber(path))
      p_.Add(path, "{}: give the value by name ({}), not as the number {}", path, named->name(),
             value);
  }

  // Whether the value of the field at `path` is written as a number: the text after the
  // field's name (where the parser located it) and its ':' starts with a digit or '-'.
  bool GivenAsNumber(const std::string& path) const {
    const SourceLocation at = p_.source().Locate(path);
    if (at.line <= 0 || static_cast<size_t>(at.line) > starts_.size()) return false;
    size_t i = starts_[static_cast<size_t>(at.line - 1)] + static_cast<size_t>(at.column - 1);
    const auto ident = [](char c) {
      return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    };
    while (i < text_.size() && ident(text_[i])) ++i;
    while (i < text_.size() && IsSpace(text_[i])) ++i;
    if (i < text_.size() && text_[i] == ':') ++i;
    while (i < text_.size() && IsSpace(text_[i])) ++i;
    return i < text_.size() && ((text_[i] >= '0' && text_[i] <= '9') || text_[i] == '-');
  }

  std::string_view text_;
  std::vector<size_t> starts_;
  Problems& p_;
};

}  // namespace

void CheckConfigValues(const pb::Message& msg, std::string_view text, const SourceMap& source) {
  Problems problems(source);
  Walker(text, problems).Walk(msg, "");
  problems.ThrowIfAny();
}

}  // namespace dmahil
