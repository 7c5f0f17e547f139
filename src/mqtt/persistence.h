// Binary records for persistent sessions, their queued messages and retained messages in
// the state store (space "mqtt.session", "mqtt.queue", "mqtt.retained"). Pure functions;
// decoding validates every length (a corrupt record is skipped and reported, never trusted).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "mqtt/session.h"

namespace orrery::mqtt::persist {

inline constexpr std::string_view kSessions = "mqtt.session";
inline constexpr std::string_view kQueue = "mqtt.queue";
inline constexpr std::string_view kRetained = "mqtt.retained";

// Queue key: client id, NUL, big-endian sequence number (so a prefix scan is in order).
std::string QueueKey(std::string_view client_id, uint64_t seq);
std::string QueuePrefix(std::string_view client_id);

struct StoredMessage {
  Outgoing out;
  std::optional<Inflight::State> state;  // set once sent and awaiting an acknowledgement
  uint16_t packet_id = 0;
};
std::string EncodeMessage(const Outgoing& out, std::optional<Inflight::State> state,
                          uint16_t packet_id);
std::optional<StoredMessage> DecodeMessage(std::string_view bytes);

// REQUIRES: session.mu held (reads its fields).
std::string EncodeSession(const Session& session);
// Fills version, expiry, disconnect time, packet id and sequence counters, subscriptions.
bool DecodeSession(std::string_view bytes, Session& session);

}  // namespace orrery::mqtt::persist
