// The MQTT 3.1.1 / 5.0 codec: pure functions, bytes in and structs out (and back), no I/O.
// Shared by the broker and Orrery's own clients (benchmarks, tests, the edge gateway).
//
// Decoding is incremental: Decode() looks at the front of a buffer and either needs more
// bytes, yields one packet and how many bytes it used, or reports a protocol violation with
// the reason code the specification prescribes (0x81 Malformed Packet, 0x82 Protocol Error,
// 0x95 Packet Too Large, ...). Every length is checked before it is used; hostile input never
// reads out of bounds (fuzzed: test/fuzz/mqtt_codec_fuzz.cc).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/packets.h"

namespace orrery::mqtt {

enum class DecodeStatus { kNeedMore, kOk, kError };

struct DecodeError {
  Reason reason = Reason::kMalformedPacket;
  std::string message;
  // Set while decoding a CONNECT once its protocol level is known: the version a CONNACK
  // refusal must be encoded in (3.1.1 for unknown levels, per the specifications).
  std::optional<Version> connack_version;
};

struct DecodeLimits {
  size_t max_packet_size = 268'435'460;  // total bytes incl. fixed header
};

// `version`: the connection's protocol version, or nullopt before CONNECT (then only a
// CONNECT is accepted and it decides the version). On kOk, `consumed` bytes form `out`.
DecodeStatus Decode(std::string_view data, std::optional<Version> version,
                    const DecodeLimits& limits, Packet& out, size_t& consumed, DecodeError& error);

// Appends the encoding of `packet` for `version` to `out`. Fields that the version lacks
// (properties in 3.1.1) are left out; 5.0 reason codes map to 3.1.1 return codes.
void Encode(const Packet& packet, Version version, std::string& out);

// Appends a PUBLISH without building a Publish struct (the broker's fan-out path).
void EncodePublish(std::string& out, Version version, std::string_view topic,
                   std::string_view payload, uint8_t qos, bool retain, bool dup, uint16_t packet_id,
                   const Properties* properties);

// Size of a PUBLISH encoding, to honour a client's Maximum Packet Size before sending.
size_t PublishSize(Version version, std::string_view topic, std::string_view payload, uint8_t qos,
                   const Properties* properties);

// 3.1.1 CONNACK return code for a 5.0 reason.
uint8_t ConnackReturnCode311(Reason r);

}  // namespace orrery::mqtt
