// The Azure Digital Twins data plane on its own HTTPS listener (ADT's `/digitaltwins/{id}`
// collides with the hub's paths), and the OAuth 2.0 endpoints its clients get tokens from:
//
//   identity  GET  /{tenant}/v2.0/.well-known/openid-configuration
//             POST /{tenant}/oauth2/v2.0/token      (client_credentials; client id + secret)
//             GET  /{tenant}/discovery/v2.0/keys    (JWKS)
//   models    POST /models, GET /models[?dependenciesFor=&includeModelDefinition=],
//             GET|PATCH|DELETE /models/{id}         (api-version 2023-10-31 or 2022-05-31)
//   twins     GET|PUT|PATCH|DELETE /digitaltwins/{id} (If-Match, If-None-Match: *),
//             GET|PATCH /digitaltwins/{id}/components/{component},
//             GET|PUT|PATCH|DELETE /digitaltwins/{id}/relationships/{relationshipId},
//             GET /digitaltwins/{id}/relationships[?relationshipName=],
//             GET /digitaltwins/{id}/incomingrelationships
//   query     POST /query {"query"[,"continuationToken"]} (max-items-per-page; query-charge)
//   events    POST /digitaltwins/{id}[/components/{component}]/telemetry (Message-Id),
//             GET /eventroutes, GET|PUT|DELETE /eventroutes/{id} {"endpointName","filter"},
//             GET /endpoints, GET|PUT|DELETE /endpoints/{name} (Orrery's: ADT manages
//             endpoints in its control plane)
//   ingestion GET /mappings, GET|PUT|DELETE /mappings/{name} (Orrery's; twins/ingestion.h)
//
// Every data-plane call needs `Authorization: Bearer <token>` issued here, for the audience
// https://digitaltwins.azure.net, with the role "owner" for changes or "reader"/"owner" for
// reads. Errors are ADT's shape {"error":{"code","message"[,"details"]}} with the code also
// in an x-ms-error-code header. docs/twins.md lists every route.
//
// Handlers run on the connection's I/O thread; those that write the store (which fsyncs) are
// posted to the `blocking` executor.
#pragma once

#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "base/error.h"
#include "net/http.h"

namespace orrery::identity {
class PrincipalStore;
class TokenIssuer;
}  // namespace orrery::identity
namespace orrery::twins {
class BulkJobs;
class Ingestion;
class ModelStore;
class Notifier;
class TwinGraph;
}  // namespace orrery::twins

namespace orrery::api {

struct TwinsApiOptions {
  twins::ModelStore* models = nullptr;             // must outlive the router
  twins::TwinGraph* graph = nullptr;               // must outlive the router
  twins::Notifier* notifier = nullptr;             // event routes; must outlive the router
  twins::Ingestion* ingestion = nullptr;           // mapping rules; must outlive the router
  const identity::TokenIssuer* issuer = nullptr;   // must outlive the router
  identity::PrincipalStore* principals = nullptr;  // must outlive the router
  boost::asio::any_io_executor blocking;           // for handlers that fsync
  int64_t token_lifetime_s = 3600;
  size_t max_page = 100;                // models per page (ADT's limit)
  size_t max_relationship_page = 1000;  // relationships per page
  size_t max_query_page = 1000;         // query rows per page (ADT's)
  twins::BulkJobs* jobs = nullptr;      // the Jobs API (twins_jobs_api.h) when set
};

void RegisterTwinsRoutes(net::Router& router, const TwinsApiOptions& options);

// For the other routes of this listener (twins_jobs_api.cc): the api-version and bearer
// token checks (`write` needs the owner role), ADT's error shape, and the scheme and
// authority clients reached us with.
std::optional<net::HttpResponse> AuthorizeTwinsCall(const TwinsApiOptions& options,
                                                    const net::HttpRequest& req, bool write);
net::HttpResponse TwinsError(const Error& error);
std::string TwinsBaseUrl(const net::HttpRequest& req);

// The api-versions the data plane accepts.
inline constexpr const char* kTwinsApiVersions[] = {"2023-10-31", "2022-05-31"};

}  // namespace orrery::api
