// Storage-endpoint file names: IoT Hub's fileNameFormat, default
// "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}". Every one of the seven tokens must appear
// (in any order, repeats allowed) and no other token may, as IoT Hub requires. Time tokens are
// the batch's start time in UTC, zero-padded ({YYYY} 4 digits, the others 2); {partition} is the
// decimal partition index; {iothub} the hub name.
//
// Paths stay under the caller's storage root: a template is relative, '/'-separated, without
// empty, "." or ".." segments, backslashes or control characters, and the hub name must be a
// single safe segment. The caller joins the result under its root.
//
// Pure; thread-safe (a PathTemplate is immutable).
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "archive/format.h"
#include "base/error.h"

namespace orrery::archive {

inline constexpr std::string_view kDefaultFileNameFormat =
    "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}";
inline constexpr size_t kMaxFileNameFormatBytes = 1024;

class PathTemplate {
 public:
  // kInvalidArgument, naming the problem (unknown or missing token, unbalanced brace, unsafe
  // segment), for a template IoT Hub would refuse or that could leave the storage root.
  static Result<PathTemplate> Parse(std::string_view format);

  // The relative path of the batch of `partition` that starts at `start_ms`, with the
  // encoding's extension appended unless the template already ends with it (".avro" /
  // ".json", case-insensitive). kInvalidArgument for an unsafe hub name.
  Result<std::filesystem::path> Format(std::string_view iothub, uint32_t partition,
                                       int64_t start_ms, Encoding encoding) const;

  const std::string& format() const { return format_; }

  enum class Token { kIotHub, kPartition, kYear, kMonth, kDay, kHour, kMinute };

 private:
  using Piece = std::variant<std::string, Token>;  // literal text or a token

  std::string format_;
  std::vector<Piece> pieces_;
};

}  // namespace orrery::archive
