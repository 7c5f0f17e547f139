// IoT Hub's MQTT conventions (wire contract §2): the CONNECT user name, the topics a device
// uses, and the property bags carried in telemetry and cloud-to-device topics.
//
// Pure functions (no I/O, no state); fuzzed with the rest of the hub's parsers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "eventlog/message.h"
#include "hub/c2d.h"

namespace orrery::hub::mqtt_topics {

// "{host}/{deviceId}[/{moduleId}]/?api-version=...&model-id=...&DeviceClientType=..."
struct HubUserName {
  std::string host;
  std::string client_id;  // "{deviceId}" or "{deviceId}/{moduleId}"
  std::string api_version;
  std::string model_id;  // raw (not URL-encoded by the SDK)
  std::string client_type;
};
// True when `user_name` has IoT Hub's shape (so the client is a device, not a plain MQTT
// client); nullopt otherwise.
std::optional<HubUserName> ParseUserName(std::string_view user_name);

// The device (and module) of an MQTT client id "{deviceId}[/{moduleId}]".
std::pair<std::string_view, std::string_view> SplitClientId(std::string_view client_id);

// Decodes a property bag "k=v&k2=v2" (percent-encoded; '+' is literal). kInvalidArgument for
// a malformed escape. Empty pieces are skipped; a key without '=' has an empty value.
Result<std::vector<std::pair<std::string, std::string>>> ParsePropertyBag(std::string_view bag);

// What a device publishes, by topic.
enum class Kind {
  kTelemetry,          // devices/{d}[/modules/{m}]/messages/events/{bag}
  kTwinGet,            // $iothub/twin/GET/?$rid=
  kTwinPatchReported,  // $iothub/twin/PATCH/properties/reported/?$rid=
  kMethodResponse,     // $iothub/methods/res/{status}/?$rid=
  kOther,              // anything else (refused)
};
struct DeviceTopic {
  Kind kind = Kind::kOther;
  std::string bag;         // telemetry: the raw property bag (trailing '/' removed)
  std::string request_id;  // $rid
  int status = 0;          // method response status
};
// Classifies a topic published by `device_id`/`module_id` (module empty for a device).
DeviceTopic ClassifyPublish(std::string_view topic, std::string_view device_id,
                            std::string_view module_id);

// Whether a device may subscribe to `filter` (C2D, module inputs, twin responses, desired
// updates, methods).
bool DeviceMaySubscribe(std::string_view filter, std::string_view device_id,
                        std::string_view module_id);
// Whether a topic or filter is in the hub's namespace ("devices/…", "$iothub/…"), which plain
// MQTT clients may not use.
bool IsHubTopic(std::string_view topic_or_filter);

// Builds a telemetry message from a telemetry property bag: $.mid, $.cid, $.uid, $.to, $.ct,
// $.ce, $.exp (ISO 8601) become system properties; $.ifid, $.sub, $.on, $.schema, $.cdid
// become their AMQP-named properties; the rest are application properties.
Result<eventlog::Message> TelemetryFromBag(std::string_view bag, std::string body);

// The topic of a cloud-to-device delivery: devices/{d}/messages/devicebound/{bag} with the
// message's system and application properties percent-encoded (§2.5).
std::string C2dTopic(std::string_view device_id, const C2dMessage& message);

inline std::string TwinResponseTopic(int status, std::string_view rid,
                                     std::optional<int64_t> version = std::nullopt) {
  std::string t = "$iothub/twin/res/" + std::to_string(status) + "/?$rid=" + std::string(rid);
  if (version) t += "&$version=" + std::to_string(*version);
  return t;
}
inline std::string DesiredTopic(int64_t version) {
  return "$iothub/twin/PATCH/properties/desired/?$version=" + std::to_string(version);
}
inline std::string MethodTopic(std::string_view method, std::string_view rid) {
  return "$iothub/methods/POST/" + std::string(method) + "/?$rid=" + std::string(rid);
}

}  // namespace orrery::hub::mqtt_topics
