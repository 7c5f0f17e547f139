// The provisioning service's HTTPS surfaces on the shared listener (wire contract §5.3, §6):
//
//   device   PUT /{idScope}/registrations/{id}/register, GET …/operations/{operationId}
//            (SAS token with sr={idScope}/registrations/{id}, or an X.509 client certificate)
//   service  /enrollments, /enrollmentGroups (also /enrollmentgroups), /registrations —
//            create/update/get/delete with If-Match, queries with x-ms-max-item-count and
//            x-ms-continuation, bulk operations, attestation mechanisms; SAS tokens of DPS's
//            policies (provisioningserviceowner, enrollmentread, enrollmentwrite, …)
//
// Errors are DPS's JSON shape {"errorCode","trackingId","message","timestampUtc"}. docs/dps.md
// lists every route with the permission it needs.
//
// Handlers run on the connection's I/O thread and never block.
#pragma once

#include "net/http.h"

namespace orrery::hub {
class PolicyStore;
}
namespace orrery::dps {
class ProvisioningService;
}

namespace orrery::api {

struct DpsApiOptions {
  dps::ProvisioningService* service = nullptr;  // must outlive the router
  const hub::PolicyStore* policies = nullptr;   // DPS's policies (dps::DpsPolicySchema)
  size_t max_query_page = 1000;
  size_t max_bulk = 10;  // enrollments per bulk operation (Azure DPS's limit)
};

void RegisterDpsRoutes(net::Router& router, const DpsApiOptions& options);

}  // namespace orrery::api
