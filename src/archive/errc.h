// The archive component's error codes.
#pragma once

#include "base/error.h"

namespace orrery::archive {

enum class Errc {
  kInvalidArgument = 1,  // a bad path template, hub name, file path or option
  kTooLarge,             // one record larger than the Avro block size (the writer stays usable)
  kAlreadyExists,        // the final file, or its temp file, already exists
  kIo,                   // an operating-system I/O error (the writer has failed)
  kEncoding,             // libavro refused a schema, record or file (the writer has failed)
  kClosed,               // the writer was finished or aborted
  kSchemaMismatch,       // a row that does not fit the file's row schema (the writer stays usable)
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::archive

template <>
struct orrery::ErrcTraits<orrery::archive::Errc> {
  static constexpr const char* kName = "archive";
  static std::string Message(orrery::archive::Errc e) {
    using E = orrery::archive::Errc;
    switch (e) {
      case E::kInvalidArgument:
        return "invalid argument";
      case E::kTooLarge:
        return "record too large";
      case E::kAlreadyExists:
        return "file already exists";
      case E::kIo:
        return "I/O error";
      case E::kEncoding:
        return "Avro encoding error";
      case E::kClosed:
        return "batch writer is closed";
      case E::kSchemaMismatch:
        return "row does not fit the file's schema";
    }
    return "unknown archive error";
  }
};
ORRERY_ERRC(orrery::archive::Errc);
