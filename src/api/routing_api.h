// Message routing's REST surface on the HTTPS listener (IoT Hub keeps these on its management
// plane; the shapes follow its ARM routing API):
//
//   GET  /routing                         the configuration (webhook secrets masked)   RegistryRead
//   PUT  /routing                         replace it (validated whole; 200 with it) RegistryWrite
//   POST /routing/routes/$testnew         {"message":…,"route":{…},"twin":…} →
//                                         {"result":"true|false|undefined","details":…}
//                                         RegistryRead
//   POST /routing/routes/$testall         {"routingSource":…,"message":…,"twin":…} →
//                                         {"routes":[{"properties":{route}}]} RegistryRead
//   GET  /routing/endpoints/health        {"value":[{"endpointId","healthStatus",…}]} RegistryRead
//
// A test message is {"body":"text","appProperties":{…},"systemProperties":{…}} with IoT
// Hub's system property names (contentType, contentEncoding, connectionDeviceId, …).
#pragma once

#include "net/http.h"

namespace orrery::hub {
class PolicyStore;
}
namespace orrery::routing {
class RoutingService;
}

namespace orrery::api {

struct RoutingApiOptions {
  routing::RoutingService* routing = nullptr;  // must outlive the router
  const hub::PolicyStore* policies = nullptr;
};

void RegisterRoutingRoutes(net::Router& router, const RoutingApiOptions& options);

}  // namespace orrery::api
