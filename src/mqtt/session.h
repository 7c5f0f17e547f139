// A client session: subscriptions, queued and in-flight messages, packet identifiers. It
// outlives connections when the client asked for that (MQTT 3.1.1 clean session 0, MQTT 5
// session expiry > 0).
//
// Thread safety: the immutable client id and `online` may be read freely; everything else is
// guarded by `mu`. Publishers on any thread enqueue under `mu`; the attached connection
// drains the queue on its own thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "mqtt/message.h"
#include "mqtt/packets.h"

namespace orrery::mqtt {

class Connection;

// Learns the fate of one server-originated delivery (the hub's cloud-to-device messages):
// `settled(true)` when the client acknowledged it (PUBACK, or PUBCOMP for QoS 2),
// `settled(false)` when the broker gave it up (session ended, queue full, expired, too large
// for the client) — whichever happens first, exactly once, on any thread, possibly while a
// session lock is held: `settled` must only record or post, never call into the broker.
class DeliveryHook {
 public:
  explicit DeliveryHook(std::function<void(bool acked)> settled) : settled_(std::move(settled)) {}
  ~DeliveryHook() { Settle(false); }
  DeliveryHook(const DeliveryHook&) = delete;
  DeliveryHook& operator=(const DeliveryHook&) = delete;
  void Settle(bool acked) {
    if (!done_.exchange(true) && settled_) settled_(acked);
  }
  // Forgets the callback without calling it (the delivery was never handed over).
  void Disarm() { done_ = true; }

 private:
  std::function<void(bool)> settled_;
  std::atomic<bool> done_{false};
};

struct Outgoing {
  MessagePtr message;
  uint8_t qos = 0;
  bool retain = false;
  std::vector<uint32_t> subscription_ids;
  uint64_t store_seq = 0;              // key in the persistent queue; 0 = not persisted
  std::shared_ptr<DeliveryHook> hook;  // server-originated direct deliveries only
};

struct Inflight {
  enum class State : uint8_t { kAwaitPuback, kAwaitPubrec, kAwaitPubcomp };
  Outgoing out;
  State state = State::kAwaitPuback;
};

struct SubRecord {
  SubscriptionOptions options;
  uint32_t subscription_id = 0;
};

constexpr uint32_t kSessionNeverExpires = 0xFFFFFFFF;

class Session {
 public:
  explicit Session(std::string id) : client_id(std::move(id)) {}

  const std::string client_id;
  std::atomic<bool> online{false};

  std::mutex mu;
  // --- guarded by mu ---
  std::weak_ptr<Connection> connection;
  Version version = Version::k311;
  uint32_t expiry_s = 0;  // 0: ends with the connection
  std::map<std::string, SubRecord> subscriptions;
  std::deque<Outgoing> queue;
  std::map<uint16_t, Inflight> inflight;
  std::set<uint16_t> incoming_qos2;  // QoS 2 PUBLISH received, PUBREL not yet
  uint16_t next_packet_id = 1;
  uint64_t next_store_seq = 1;
  bool flush_scheduled = false;
  int64_t disconnected_at_ms = 0;
  bool ended = false;  // removed from the broker; drop anything that still arrives

  bool persistent() const { return expiry_s != 0; }
};
using SessionPtr = std::shared_ptr<Session>;

}  // namespace orrery::mqtt
