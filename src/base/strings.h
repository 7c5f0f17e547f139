// String helpers used across protocols: percent-encoding, splitting, case-insensitive compare.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orrery::strings {

// encodeURIComponent with the "strict" extra escapes (! ' ( ) *), as the Azure SDKs use.
std::string UrlEncode(std::string_view s);
// Percent-decoding; '+' stays '+' unless plus_is_space. nullopt on a malformed escape.
std::optional<std::string> UrlDecode(std::string_view s, bool plus_is_space = false);

// Splits on every `sep`, keeping empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep);
// Splits at the first `sep`: ("a=b=c", '=') → ("a", "b=c"); no sep → (s, nullopt).
std::pair<std::string_view, std::optional<std::string_view>> SplitOnce(std::string_view s,
                                                                       char sep);

bool IEquals(std::string_view a, std::string_view b);
// Well-formed UTF-8 (RFC 3629; U+0000 allowed).
bool IsValidUtf8(std::string_view s);
// 1..max_bytes ASCII letters, digits, '-', '_' and '.': the names of endpoints, routes, rules.
bool IsSimpleName(std::string_view s, size_t max_bytes);
bool StartsWith(std::string_view s, std::string_view prefix);
std::string ToLower(std::string_view s);
std::string_view Trim(std::string_view s);

}  // namespace orrery::strings
