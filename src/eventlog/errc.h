// The eventlog component's error codes.
#pragma once

#include "base/error.h"

namespace orrery::eventlog {

enum class Errc {
  kInvalidArgument = 1,  // bad options, partition out of range, bad consumer group name
  kBackpressure,         // pending bytes at the limit: retry after NotifyWhenWritable fires
  kTooLarge,             // a message or record beyond the configured bounds
  kClosed,               // the log is closed (or closing)
  kFailed,               // an earlier write or fdatasync failed; the log refuses appends
  kCorrupt,              // bytes that fail validation (CRC, framing, encoding, metadata)
  kPartitionMismatch,    // reopened with a partition count other than the one it was created with
  kLocked,               // another EventLog (in this or another process) holds the directory
  kGroupNotFound,        // no such consumer group
  kGroupExists,          // the consumer group already exists
  kIo,                   // an operating-system I/O error
};

inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::eventlog

template <>
struct orrery::ErrcTraits<orrery::eventlog::Errc> {
  static constexpr const char* kName = "eventlog";
  static std::string Message(orrery::eventlog::Errc e) {
    using E = orrery::eventlog::Errc;
    switch (e) {
      case E::kInvalidArgument:
        return "invalid argument";
      case E::kBackpressure:
        return "event log is full (backpressure)";
      case E::kTooLarge:
        return "too large";
      case E::kClosed:
        return "event log is closed";
      case E::kFailed:
        return "event log failed after an I/O error";
      case E::kCorrupt:
        return "corrupt event log data";
      case E::kPartitionMismatch:
        return "partition count differs from the one the log was created with";
      case E::kLocked:
        return "event log directory is in use";
      case E::kGroupNotFound:
        return "consumer group not found";
      case E::kGroupExists:
        return "consumer group already exists";
      case E::kIo:
        return "I/O error";
    }
    return "unknown eventlog error";
  }
};
ORRERY_ERRC(orrery::eventlog::Errc);

namespace orrery::eventlog {

// kInvalidArgument for a partition index beyond the log's `count` partitions.
inline Error PartitionOutOfRange(uint32_t partition, uint32_t count) {
  return Error(Errc::kInvalidArgument, "partition " + std::to_string(partition) +
                                           " out of range (0.." + std::to_string(count - 1) + ")");
}

}  // namespace orrery::eventlog
