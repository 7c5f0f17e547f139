#include "dtdl/dtmi.h"

#include <cctype>

namespace orrery::dtdl {
namespace {

bool IsAlpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool IsDigit(char c) {
  return c >= '0' && c <= '9';
}

// A segment: [A-Za-z_][A-Za-z0-9_]*, not ending in '_'. A leading '_' marks a reserved
// (parser-generated) identifier; it is syntactically valid.
bool ValidSegment(std::string_view s) {
  if (s.empty()) return false;
  if (!IsAlpha(s.front()) && s.front() != '_') return false;
  for (char c : s) {
    if (!IsAlpha(c) && !IsDigit(c) && c != '_') return false;
  }
  return s.back() != '_';
}

// Digits without a leading zero, at most `max_digits` long, value > 0.
std::optional<std::int64_t> ParseVersionPart(std::string_view s, std::size_t max_digits) {
  if (s.empty() || s.size() > max_digits || s.front() == '0') return std::nullopt;
  std::int64_t v = 0;
  for (char c : s) {
    if (!IsDigit(c)) return std::nullopt;
    v = v * 10 + (c - '0');
  }
  return v;
}

}  // namespace

std::string Dtmi::Versionless() const {
  std::string out = "dtmi:";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i != 0) out += ':';
    out += labels[i];
  }
  return out + fragment;
}

bool Dtmi::IsReserved() const {
  for (const auto& l : labels) {
    if (!l.empty() && l.front() == '_') return true;
  }
  return fragment.size() > 1 && fragment[1] == '_';
}

std::optional<Dtmi> ParseDtmi(std::string_view text) {
  if (text.size() > 4096 || !text.starts_with("dtmi:")) return std::nullopt;
  Dtmi d;
  d.text = std::string(text);
  std::string_view rest = text.substr(5);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) {
    std::string_view frag = rest.substr(hash + 1);
    // An empty fragment is allowed; otherwise it follows segment rules.
    if (!frag.empty() && !ValidSegment(frag)) return std::nullopt;
    d.fragment = "#" + std::string(frag);
    rest = rest.substr(0, hash);
  }
  if (auto semi = rest.find(';'); semi != std::string_view::npos) {
    std::string_view ver = rest.substr(semi + 1);
    rest = rest.substr(0, semi);
    std::string_view maj = ver, min;
    if (auto dot = ver.find('.'); dot != std::string_view::npos) {
      maj = ver.substr(0, dot);
      min = ver.substr(dot + 1);
      auto m = ParseVersionPart(min, 6);
      if (!m) return std::nullopt;
      d.minor = *m;
      d.has_minor = true;
    }
    auto M = ParseVersionPart(maj, 9);
    if (!M) return std::nullopt;
    d.major = *M;
    d.has_version = true;
  }
  std::size_t start = 0;
  while (true) {
    auto colon = rest.find(':', start);
    std::string_view seg =
        rest.substr(start, colon == std::string_view::npos ? colon : colon - start);
    if (!ValidSegment(seg)) return std::nullopt;
    d.labels.emplace_back(seg);
    if (colon == std::string_view::npos) break;
    start = colon + 1;
  }
  return d;
}

}  // namespace orrery::dtdl
