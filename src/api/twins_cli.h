// The client side of the digital twins API (api/twins_api.h) and the identity commands:
//
//   orrery identity tenant                       the tenant id (offline)
//   orrery identity sp create --name N --role owner|reader   a service principal (offline;
//                                                 prints its client id and secret once)
//   orrery identity sp list | delete ID|NAME     (offline)
//   orrery dt model add FILE|DIR …               upload models (batches of ≤250 in dependency
//                                                 order, so a large ontology uploads whole)
//   orrery dt model list [--dependencies-for ID …] [--definition]
//   orrery dt model show ID [--definition] | decommission ID | delete ID
//   orrery dt twin create ID --model M [--properties JSON] [--if-none-match] | show ID |
//                  update ID --patch JSON [--etag E] | delete ID [--etag E]
//   orrery dt relationship create SRC RID --name N --target T [--properties JSON] |
//                  show SRC RID | list SRC [--name N] [--incoming] | delete SRC RID
//   orrery dt query "SELECT …"                   every page; prints the rows as one array
//
// The dt commands get a token with the client credentials grant from the ADT listener's
// token endpoint (client id and secret from flags or AZURE_CLIENT_ID / AZURE_CLIENT_SECRET,
// tenant from AZURE_TENANT_ID or the data directory), then call the API. Errors as in
// cli_http.h; secrets never appear in messages.
#pragma once

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "api/service_cli.h"
#include "base/error.h"

namespace orrery::api {

struct TwinsConnectionOptions {
  std::string endpoint;  // default https://<host_name>:<port>
  std::string host_name;
  int64_t port = 9443;
  std::string tenant;  // default: <data_dir>/identity/tenant
  std::string client_id, client_secret;
  std::filesystem::path data_dir;
  std::filesystem::path ca_file;  // default <data_dir>/tls/ca.pem when it exists
};
// Fetches a token; the connection's `token` is the Authorization header value.
Result<ServiceConnection> ResolveTwinsConnection(const TwinsConnectionOptions& options);

struct ModelCommandOptions {
  enum class Op { kAdd, kList, kShow, kDecommission, kDelete } op = Op::kList;
  std::vector<std::filesystem::path> paths;   // add
  std::string id;                             // show, decommission, delete
  std::vector<std::string> dependencies_for;  // list
  bool definition = false;                    // list, show
};
Status ModelCommand(const ServiceConnection& c, const ModelCommandOptions& o, std::FILE* out,
                    std::FILE* err);

// orrery dt twin create|show|update|delete and orrery dt relationship
// create|show|list|delete: one REST call each (lists follow nextLink).
struct TwinCommandOptions {
  enum class Op {
    kTwinCreate,
    kTwinShow,
    kTwinUpdate,
    kTwinDelete,
    kRelCreate,
    kRelShow,
    kRelList,
    kRelDelete,
    kQuery,
    kRouteCreate,
    kRouteShow,
    kRouteList,
    kRouteDelete,
    kEndpointCreate,
    kEndpointShow,
    kEndpointList,
    kEndpointDelete,
    kMappingCreate,
    kMappingShow,
    kMappingList,
    kMappingDelete,
  } op = Op::kTwinShow;
  std::string id;               // the twin (the source, for relationships)
  std::string model;            // twin create
  std::string properties;       // JSON object: twin create, relationship create
  std::string patch;            // JSON Patch array: twin update
  std::string etag;             // If-Match (update, delete)
  bool create_only = false;     // If-None-Match: * (create)
  std::string relationship_id;  // relationship create, show, delete
  std::string name, target;     // relationship create; name also filters list
  bool incoming = false;        // relationship list
  std::string query;            // query: the ADT query text (every page is fetched)
  // Event routes (id = the route's) and endpoints (id = the endpoint's name).
  std::string endpoint_name;  // route create
  std::string filter;         // route create ("true": every event)
  std::string url, secret;    // endpoint create: a webhook
  bool event_log = false;     // endpoint create: the hub's event log instead
  int64_t max_attempts = 0;   // endpoint create (0: the server's default)
  std::string rule;           // mapping create: the rule, a JSON object (id = its name)
};
Status TwinCommand(const ServiceConnection& c, const TwinCommandOptions& o, std::FILE* out,
                   std::FILE* err);

struct PrincipalCommandOptions {
  enum class Op { kTenant, kCreate, kList, kDelete } op = Op::kList;
  std::filesystem::path data_dir;
  std::string name;  // create; delete (id or name)
  std::vector<std::string> roles;
  std::string endpoint;  // for the hints create prints
};
Status PrincipalCommand(const PrincipalCommandOptions& o, std::FILE* out, std::FILE* err);

// The upload order `orrery dt model add` uses: models (Interface objects) in batches of at
// most `max_batch`, each batch referencing only itself and earlier ones. Exposed for tests.
std::vector<std::vector<boost::json::value>> ModelBatches(std::vector<boost::json::value> models,
                                                          size_t max_batch);

}  // namespace orrery::api
