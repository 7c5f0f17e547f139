// UTC timestamps as IoT Hub writes them: ISO 8601 / RFC 3339 with milliseconds and 'Z'.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace orrery::timeutil {

// Milliseconds since the Unix epoch now (system clock).
int64_t NowMs();

// 1795322094123 → "2026-11-22T04:34:54.123Z".
std::string FormatUtcMs(int64_t ms_since_epoch);

// Parses "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)" (also a space for 'T') to ms since the
// epoch; fractions beyond milliseconds are truncated. nullopt when malformed or out of range.
std::optional<int64_t> ParseUtcMs(std::string_view text);

}  // namespace orrery::timeutil
