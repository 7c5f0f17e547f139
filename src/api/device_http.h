// IoT Hub's device HTTPS API (wire contract §3) on the HTTPS listener:
//
//   POST   /devices/{id}[/modules/{mid}]/messages/events     telemetry (single, or a batch with
//                                                            Content-Type application/vnd.
//                                                            microsoft.iothub.json)
//   GET    /devices/{id}/messages/devicebound                receive a C2D message (200, or 204
//                                                            when the queue is empty)
//   DELETE /devices/{id}/messages/devicebound/{lock}         complete (…?reject: reject)
//   POST   /devices/{id}/messages/devicebound/{lock}/abandon abandon
//
// Requests authenticate with a device SAS token in Authorization, or with the X.509 client
// certificate of the TLS connection. A 2xx for telemetry is sent only once every message of
// the request is durable in the event log.
#pragma once

#include "net/http.h"

namespace orrery::hub {
class Hub;
}

namespace orrery::api {

struct DeviceHttpOptions {
  hub::Hub* hub = nullptr;  // must outlive the router
  size_t max_batch_bytes = 256 * 1024;
  size_t max_batch_messages = 500;
};

void RegisterDeviceHttpRoutes(net::Router& router, const DeviceHttpOptions& options);

}  // namespace orrery::api
