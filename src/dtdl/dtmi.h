// Digital Twin Model Identifiers (DTMI): "dtmi:<segment>(:<segment>)*[;<version>][#<fragment>]".
//
// The syntax is the same for DTDL v2 and v3; the DTDL version decides only which versions an
// element's @id may carry (v2: a major version, v3: major[.minor]). Segments start with a letter
// or "_", hold letters, digits and "_", and do not end with "_"; a segment or fragment that
// starts with "_" is reserved for identifiers the parser generates.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace orrery::dtdl {

// Longest identifier accepted anywhere (the specifications' 2048 for Interfaces; we use the
// same bound for every element so that a hostile input cannot grow generated ids unboundedly).
inline constexpr std::size_t kMaxDtmiLength = 2048;

struct Dtmi {
  std::string text;                 // as written
  std::vector<std::string> labels;  // path segments, without "dtmi:"
  std::int64_t major = 0;           // 0 when the identifier has no version
  std::int64_t minor = 0;           // 0 when absent
  bool has_version = false;
  bool has_minor = false;
  std::string fragment;  // including the leading '#', empty when absent

  // "dtmi:a:b" plus the fragment, without the version.
  std::string Versionless() const;
  // A segment or the fragment starts with '_' (identifiers the parser generates).
  bool IsReserved() const;
};

// Parses a DTMI; nullopt when `text` does not conform to the syntax above.
std::optional<Dtmi> ParseDtmi(std::string_view text);

}  // namespace orrery::dtdl
