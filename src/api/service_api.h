// IoT Hub's service REST API (wire contract §4) on the HTTPS listener: the registry, twins,
// direct methods, cloud-to-device messages and feedback, device queries, jobs and
// statistics — what the unmodified azure-iothub SDK, `orrery device|twin|method|c2d` and
// back-end applications call. Every route takes `?api-version=` (any value is accepted) and
// a service SAS token signed by a shared access policy; docs/service-api.md lists the routes
// with the permission each needs.
//
// Handlers run on the connection's I/O thread and never block: hub operations complete on
// the store's writer thread (durable) and answer through the Responder from there.
#pragma once

#include "base/metrics.h"
#include "net/http.h"

namespace orrery::hub {
class Hub;
class Jobs;
class PolicyStore;
}  // namespace orrery::hub

namespace orrery::api {

struct ServiceApiOptions {
  hub::Hub* hub = nullptr;    // must outlive the router
  hub::Jobs* jobs = nullptr;  // nullable: no /jobs/v2 routes
  // Nullable: no /policies routes. The hub's own store (it reads the same object).
  hub::PolicyStore* policies = nullptr;
  size_t max_list = 1000;  // GET /devices returns at most this many
  size_t max_bulk = 100;   // devices per bulk registry request
  size_t max_query_page = 1000;
  metrics::Registry* metrics = nullptr;
};

void RegisterServiceRoutes(net::Router& router, const ServiceApiOptions& options);

}  // namespace orrery::api
