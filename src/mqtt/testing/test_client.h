// A blocking MQTT client on raw sockets for tests: sends packets (or raw bytes) and receives
// decoded packets with deadlines. Not for production use.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "mqtt/codec.h"

namespace orrery::mqtt::testing {

class TestClient {
 public:
  // Connects a TCP socket to 127.0.0.1:port (no MQTT yet). Aborts the test on failure.
  explicit TestClient(uint16_t port);
  ~TestClient();

  void SendRaw(std::string_view bytes);
  void Send(const Packet& p);
  // The next packet, or nullopt on timeout, close, or undecodable bytes (see closed()).
  std::optional<Packet> Receive(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  // The next packet of the wire, bypassing packets stashed by the helpers below.
  std::optional<Packet> ReceiveWire(std::chrono::milliseconds timeout);
  // True once the server closed the connection (after draining what it sent).
  bool WaitClosed(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  void Close();

  // CONNECT and wait for the CONNACK.
  Connack Connect(const std::string& client_id, Version v = Version::k311, bool clean = true,
                  uint16_t keep_alive = 60);
  Connack Connect(const mqtt::Connect& c);
  // SUBSCRIBE one filter; returns the SUBACK's first reason.
  Reason Subscribe(const std::string& filter, uint8_t qos, uint32_t sub_id = 0,
                   SubscriptionOptions extra = {});
  // PUBLISH and complete its QoS flow; returns the PUBACK/PUBREC reason (Success for QoS 0).
  Reason Publish(const std::string& topic, const std::string& payload, uint8_t qos = 0,
                 bool retain = false, Properties props = {});
  // Waits for a PUBLISH, acknowledging it by its QoS (PUBACK, or PUBREC → PUBREL → PUBCOMP).
  std::optional<mqtt::Publish> ReceivePublish(
      std::chrono::milliseconds timeout = std::chrono::seconds(5), bool ack = true);

  Version version() const { return version_; }
  uint16_t NextId() { return next_id_ == 0xFFFF ? (next_id_ = 1) : ++next_id_; }

 private:
  int fd_ = -1;
  Version version_ = Version::k311;
  std::string buf_;
  std::deque<Packet> stash_;  // packets that arrived while waiting for something else
  uint16_t next_id_ = 0;
  bool closed_ = false;
};

}  // namespace orrery::mqtt::testing
