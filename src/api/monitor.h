// The client side of the event stream (api/eventhub.h): what `orrery monitor-events` runs,
// shaped like `az iot hub monitor-events`. Blocking; runs on the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>

#include <boost/json/fwd.hpp>

#include "base/error.h"
#include "net/tls.h"

namespace orrery::api {

struct MonitorOptions {
  std::string url;    // the HTTPS listener, e.g. "https://localhost:8443"
  std::string token;  // a service SAS token with ServiceConnect
  net::TlsClientOptions tls;
  std::string consumer_group = "$Default";
  std::optional<uint32_t> partition;     // all partitions when empty
  std::string from = "latest";           // checkpoint | earliest | latest | sequence:N | time:T
  std::string device_id;                 // only this device's events when non-empty
  bool system_properties = false;        // --properties sys
  bool application_properties = false;   // --properties app
  bool annotations = false;              // --properties anno
  uint64_t count = 0;                    // stop after this many events (0: never)
  std::chrono::seconds idle_timeout{0};  // stop after this long without an event (0: never)
};

// Streams events to `out` (one JSON document per event) until `count` events or the idle
// timeout; progress and warnings go to `err`. An error when the server refuses or the
// connection breaks.
Status MonitorEvents(const MonitorOptions& options, std::FILE* out, std::FILE* err);

// The az-style document for one event message of the stream:
//   {"event": {"origin", "module", "interface", "component", "payload", "annotations"?,
//              "properties"?: {"system"?, "application"?}}}
// The payload is parsed JSON when the body is JSON, else the text (or base64 for binary).
std::string FormatMonitoredEvent(const boost::json::object& event, const MonitorOptions& options);

}  // namespace orrery::api
