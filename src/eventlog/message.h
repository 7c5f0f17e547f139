// The message model shared by the hub and the event log: IoT Hub's telemetry message (body,
// application properties, system properties) and its compact binary encoding.
//
// Encoding (version 1), little-endian, every length a LEB128 varint of at most 32 bits:
//
//   u8 version (= 1)
//   field*   where field = u8 tag, varint length, `length` bytes
//
//   tags 1..12   system string properties (kStringFields in message.cc), each at most once
//   tags 32, 33  enqueued time, absolute expiry time: 8-byte little-endian int64 ms since epoch
//   tag 64       one application property: varint key length, key, value (the rest)
//   tag 127      the body (at most once)
//
// Unknown tags are skipped, so a newer writer's extra fields do not break an older reader.
// Decode() validates every length against the remaining input and the limits below and
// returns kCorrupt (never crashes, never reads out of bounds) for hostile bytes. Encode() and
// Decode() are pure functions (no I/O, no globals).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "eventlog/errc.h"

namespace orrery::eventlog {

// IoT Hub's system properties, by their AMQP/Event Hubs names.
struct SystemProperties {
  std::string message_id;                     // message-id
  std::string correlation_id;                 // correlation-id
  std::string content_type;                   // content-type, e.g. "application/json"
  std::string content_encoding;               // content-encoding, e.g. "utf-8"
  std::string connection_device_id;           // iothub-connection-device-id
  std::string connection_module_id;           // iothub-connection-module-id
  std::string connection_auth_method;         // iothub-connection-auth-method (JSON text)
  std::string connection_auth_generation_id;  // iothub-connection-auth-generation-id
  std::string message_source;                 // iothub-message-source, e.g. "Telemetry"
  std::string user_id;                        // user-id
  std::string to;                             // to
  // Orrery's own: where message routing sent the message (routing::Router's annotation);
  // empty when routing was not configured. Never shown to consumers as a property.
  std::string route_annotation;
  int64_t enqueued_time_ms = 0;  // iothub-enqueuedtime; set by the log at append (0 = unset)
  int64_t expiry_time_ms = 0;    // absolute-expiry-time (0 = none)

  bool operator==(const SystemProperties&) const = default;
};

struct Message {
  std::string body;  // opaque bytes
  // Application properties, in the order the device sent them; keys may repeat.
  std::vector<std::pair<std::string, std::string>> properties;
  SystemProperties system;

  bool operator==(const Message&) const = default;
};

// Bounds enforced by both Encode's caller check (CheckMessageLimits) and Decode.
inline constexpr size_t kMaxPropertyCount = 1024;       // application properties
inline constexpr size_t kMaxPropertyBytes = 64 * 1024;  // one key, value or system string
inline constexpr size_t kMaxEncodedBytes = 16 << 20;    // a whole encoded message

// OK when `message` fits the bounds above (body included); kTooLarge otherwise.
// `encoded_size`, when known, saves computing EncodedSize(message) again.
Status CheckMessageLimits(const Message& message, std::optional<size_t> encoded_size = {});

// The exact size Encode() appends.
size_t EncodedSize(const Message& message);

// Appends the encoding of `message` to `*out`. REQUIRES: CheckMessageLimits(message) is OK.
void Encode(const Message& message, std::string* out);
inline std::string Encode(const Message& message) {
  std::string out;
  Encode(message, &out);
  return out;
}

// Parses an encoding; kCorrupt (with the reason) for anything malformed.
Result<Message> Decode(std::string_view bytes);

}  // namespace orrery::eventlog
