// The client side of the stream jobs' REST API (api/asa_api.h): what `orrery asa job
// create|update|start|stop|show|list|delete` run. The hub's CLI conventions (api/service_cli.h):
// blocking, the response's JSON pretty-printed to `out`, usage errors (kInvalidArgument) found
// before any request, the server's refusal as "HTTP <status> <code>: <message>" — for a query
// that does not parse, the message names its line and column.
#pragma once

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include "api/service_cli.h"
#include "base/error.h"

namespace orrery::api {

struct AsaJobOptions {
  enum class Op { kCreate, kUpdate, kStart, kStop, kShow, kList, kDelete };
  Op op = Op::kShow;
  std::string name;
  // create, update: the definition (JSON, docs/stream-jobs.md) and, optionally, the query
  // from its own file (it replaces the definition's "query").
  std::filesystem::path definition;
  std::filesystem::path query_file;
  // start: JobStartTime (now, the default), CustomTime (with start_time, ISO 8601) or
  // LastOutputEventTime (where the job stopped).
  std::string start_mode;
  std::string start_time;
};

Status AsaJobCommand(const ServiceConnection& c, const AsaJobOptions& o, std::FILE* out,
                     std::FILE* err);

}  // namespace orrery::api
