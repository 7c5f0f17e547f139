#include "archive/path_template.h"

#include <ctime>

#include <fmt/format.h>

#include "archive/errc.h"
#include "base/strings.h"

namespace orrery::archive {
namespace {

using Token = PathTemplate::Token;
struct TokenName {
  std::string_view name;
  Token token;
};
// IoT Hub's tokens, case-sensitive ({MM} is the month, {mm} the minute).
constexpr TokenName kTokens[] = {{"iothub", Token::kIotHub}, {"partition", Token::kPartition},
                                 {"YYYY", Token::kYear},     {"MM", Token::kMonth},
                                 {"DD", Token::kDay},        {"HH", Token::kHour},
                                 {"mm", Token::kMinute}};
constexpr std::string_view kAllowed = "{iothub} {partition} {YYYY} {MM} {DD} {HH} {mm}";

Error Invalid(std::string_view format, std::string_view why) {
  return Error(Errc::kInvalidArgument, fmt::format("file name format '{}': {}", format, why));
}

bool IsUnsafeChar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u < 0x20 || u == 0x7F || c == '\\';
}

// Segments that name nothing or could climb out of the storage root.
bool IsUnsafeSegment(std::string_view segment) {
  return segment.empty() || segment == "." || segment == "..";
}

bool EndsWithIgnoreCase(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && strings::IEquals(s.substr(s.size() - suffix.size()), suffix);
}

}  // namespace

Result<PathTemplate> PathTemplate::Parse(std::string_view format) {
  if (format.empty()) return Invalid(format, "is empty");
  if (format.size() > kMaxFileNameFormatBytes) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("file name format is longer than {} bytes", kMaxFileNameFormatBytes));
  }
  if (!strings::IsValidUtf8(format)) return Invalid(format, "is not valid UTF-8");
  if (format.front() == '/') return Invalid(format, "must be relative (it starts with '/')");
  for (char c : format) {
    if (IsUnsafeChar(c)) return Invalid(format, "contains a control character or '\\'");
  }
  for (std::string_view segment : strings::Split(format, '/')) {
    if (IsUnsafeSegment(segment)) {
      return Invalid(format, "has an empty, '.' or '..' path segment");
    }
  }

  PathTemplate t;
  t.format_ = std::string(format);
  bool seen[std::size(kTokens)] = {};
  std::string literal;
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '}') return Invalid(format, fmt::format("unbalanced '}}' at offset {}", i));
    if (c != '{') {
      literal.push_back(c);
      continue;
    }
    size_t close = format.find_first_of("{}", i + 1);
    if (close == std::string_view::npos || format[close] != '}') {
      return Invalid(format, fmt::format("unbalanced '{{' at offset {}", i));
    }
    std::string_view name = format.substr(i + 1, close - i - 1);
    const TokenName* found = nullptr;
    for (const TokenName& token : kTokens) {
      if (token.name == name) found = &token;
    }
    if (!found) {
      return Invalid(format, fmt::format("unknown token {{{}}} (allowed: {})", name, kAllowed));
    }
    if (!literal.empty()) t.pieces_.emplace_back(std::move(literal));
    literal.clear();
    t.pieces_.emplace_back(found->token);
    seen[static_cast<size_t>(found->token)] = true;
    i = close;
  }
  if (!literal.empty()) t.pieces_.emplace_back(std::move(literal));

  std::string missing;
  for (const TokenName& token : kTokens) {
    if (!seen[static_cast<size_t>(token.token)])
      missing += fmt::format("{}{{{}}}", missing.empty() ? "" : " ", token.name);
  }
  if (!missing.empty()) {
    return Invalid(format,
                   fmt::format("must contain every token ({}); missing {}", kAllowed, missing));
  }
  return t;
}

Result<std::filesystem::path> PathTemplate::Format(std::string_view iothub, uint32_t partition,
                                                   int64_t start_ms, Encoding encoding) const {
  bool unsafe_char = false;
  for (char c : iothub)
    unsafe_char |= IsUnsafeChar(c) || c == '/';
  if (IsUnsafeSegment(iothub) || unsafe_char || !strings::IsValidUtf8(iothub) ||
      iothub.size() > 255) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("hub name '{}' cannot be a file name segment", iothub));
  }
  int64_t secs = start_ms >= 0 ? start_ms / 1000 : (start_ms - 999) / 1000;
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 < 0 || tm.tm_year + 1900 > 9999) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("batch start {} ms is out of range", start_ms));
  }

  std::string out;
  for (const Piece& piece : pieces_) {
    if (const auto* text = std::get_if<std::string>(&piece)) {
      out += *text;
      continue;
    }
    switch (std::get<Token>(piece)) {
      case Token::kIotHub:
        out += iothub;
        break;
      case Token::kPartition:
        out += std::to_string(partition);
        break;
      case Token::kYear:
        out += fmt::format("{:04}", tm.tm_year + 1900);
        break;
      case Token::kMonth:
        out += fmt::format("{:02}", tm.tm_mon + 1);
        break;
      case Token::kDay:
        out += fmt::format("{:02}", tm.tm_mday);
        break;
      case Token::kHour:
        out += fmt::format("{:02}", tm.tm_hour);
        break;
      case Token::kMinute:
        out += fmt::format("{:02}", tm.tm_min);
        break;
    }
  }
  std::string_view extension = FileExtension(encoding);
  if (!EndsWithIgnoreCase(out, extension)) out += extension;
  return std::filesystem::path(out);
}

}  // namespace orrery::archive
