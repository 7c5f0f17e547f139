// The provisioning service's pure wire codecs, on their own so that the fuzz build needs no
// network stack: DPS's MQTT user name, its error body, and the linked-hubs file.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace orrery::dps {

struct DpsUserName {
  std::string id_scope;
  std::string registration_id;
};
// "{idScope}/registrations/{registrationId}/api-version=…" (no '?': wire contract §5.2);
// nullopt when `username` is not DPS's shape (a hub device's, a plain MQTT user's).
std::optional<DpsUserName> ParseDpsUserName(std::string_view username);

// DPS's error body: {"errorCode":…,"trackingId":…,"message":…,"timestampUtc":…}.
std::string ErrorBody(const Error& error);

// Linked hubs from a JSON file, in the shape of DPS's iotHubs resource property:
//   [{"connectionString": "HostName=hub2:9443;SharedAccessKeyName=…;SharedAccessKey=…",
//     "allocationWeight": 1, "applyAllocationPolicy": true}, …]
// kInvalidArgument with the entry and the problem (never the key).
struct LinkedHubConfig {
  std::string connection_string;
  std::string host_name;
  int weight = 1;
  bool apply_allocation_policy = true;
};
Result<std::vector<LinkedHubConfig>> ParseLinkedHubs(std::string_view json_text);

}  // namespace orrery::dps
