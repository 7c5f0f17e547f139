// An application message as the broker routes it: immutable once published and shared by
// every session it is delivered to.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "mqtt/packets.h"

namespace orrery::mqtt {

struct Message {
  std::string topic;
  std::string payload;
  uint8_t qos = 0;
  bool retain = false;
  // MQTT 5 properties that travel with the message (payload format, content type, response
  // topic, correlation data, user properties); null when there are none. Subscription
  // identifiers and topic aliases are per delivery and never stored here.
  std::unique_ptr<Properties> properties;
  int64_t expires_at_ms = 0;  // absolute; 0 = never
  std::string publisher;      // client id of the publisher ("" for server-originated)
};
using MessagePtr = std::shared_ptr<const Message>;

}  // namespace orrery::mqtt
