// Stream Analytics jobs' REST surface on the hub's HTTPS listener (ASA keeps these on Azure's
// management plane; the shapes follow its streamingjobs resource, flattened — see
// docs/stream-jobs.md):
//
//   GET    /asa/jobs                  {"value":[job…]}                     RegistryRead or
//   ServiceConnect PUT    /asa/jobs/{name}           create (201) or replace a stopped job (200)
//   RegistryWrite +
//                                                                                   ServiceConnect
//   GET    /asa/jobs/{name}           the job, its state and metrics      RegistryRead or
//   ServiceConnect DELETE /asa/jobs/{name}           a stopped job (204) RegistryWrite +
//   ServiceConnect POST   /asa/jobs/{name}/start     {"outputStartMode": "JobStartTime" |
//   "CustomTime" (with
//                                     "outputStartTime") | "LastOutputEventTime"} (200)  as PUT
//   POST   /asa/jobs/{name}/stop      (200)                                as PUT
//
// Writes need both permissions because a job acts on devices (cloud-to-device messages,
// methods, desired properties): by default only iothubowner has both. Errors are ASA's ARM
// shape {"error":{"code","message"}} with 400 (BadRequest: the definition or query, with line
// and column), 404 (NotFound), 409 (Conflict: exists, or running), 503.
#pragma once

#include "net/http.h"

namespace orrery::hub {
class PolicyStore;
}
namespace orrery::asa {
class JobService;
}

namespace orrery::api {

struct AsaApiOptions {
  asa::JobService* jobs = nullptr;  // must outlive the router
  const hub::PolicyStore* policies = nullptr;
};

void RegisterAsaRoutes(net::Router& router, const AsaApiOptions& options);

}  // namespace orrery::api
