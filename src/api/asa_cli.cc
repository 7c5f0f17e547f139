#include "api/asa_cli.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/cli_http.h"
#include "base/files.h"
#include "base/strings.h"

namespace orrery::api {
namespace json = boost::json;
using cli::Usage;

namespace {

constexpr std::string_view kApiVersion = "2020-03-01";  // ASA's streamingjobs API
constexpr size_t kMaxFileBytes = 1 << 20;

std::string JobPath(std::string_view name) {
  return "/asa/jobs/" + strings::UrlEncode(name);
}

Result<std::string> Definition(const AsaJobOptions& o) {
  if (o.definition.empty()) return Usage("--definition FILE (the job's JSON) is required");
  auto text = files::ReadFile(o.definition, kMaxFileBytes);
  if (!text) return Usage(fmt::format("--definition: {}", text.error().message()));
  ORRERY_ASSIGN_OR_RETURN(json::value v, cli::JsonArg(*text, "--definition", true));
  if (!o.query_file.empty()) {
    auto q = files::ReadFile(o.query_file, kMaxFileBytes);
    if (!q) return Usage(fmt::format("--query: {}", q.error().message()));
    v.as_object()["query"] = *q;
  }
  return json::serialize(v);
}

}  // namespace

Status AsaJobCommand(const ServiceConnection& c, const AsaJobOptions& o, std::FILE* out,
                     std::FILE*) {
  using Op = AsaJobOptions::Op;
  switch (o.op) {
    case Op::kCreate:
    case Op::kUpdate: {
      ORRERY_ASSIGN_OR_RETURN(std::string body, Definition(o));
      // PUT creates or replaces: ask first, so that create never replaces and update never
      // creates.
      auto exists = cli::Exchange(c, {.method = "GET", .path = JobPath(o.name)}, kApiVersion);
      if (!exists) return exists.error();
      if (o.op == Op::kCreate && exists->status == 200) {
        return Error(BaseErrc::kAlreadyExists,
                     fmt::format("job '{}' exists (orrery asa job update changes it)", o.name));
      }
      if (o.op == Op::kUpdate && exists->status == 404) {
        return Error(BaseErrc::kNotFound, fmt::format("no job '{}'", o.name));
      }
      return cli::Print(
          out, cli::Send(c, {.method = "PUT", .path = JobPath(o.name), .body = body}, kApiVersion));
    }
    case Op::kStart: {
      json::object body;
      if (!o.start_mode.empty()) {
        std::string mode = o.start_mode;
        if (strings::IEquals(mode, "now")) mode = "JobStartTime";
        if (strings::IEquals(mode, "last")) mode = "LastOutputEventTime";
        if (strings::IEquals(mode, "time")) mode = "CustomTime";
        body["outputStartMode"] = mode;
      }
      if (!o.start_time.empty()) {
        body["outputStartMode"] = "CustomTime";
        body["outputStartTime"] = o.start_time;
      }
      return cli::Print(out, cli::Send(c,
                                       {.method = "POST",
                                        .path = JobPath(o.name) + "/start",
                                        .body = json::serialize(body)},
                                       kApiVersion));
    }
    case Op::kStop:
      return cli::Print(
          out, cli::Send(c, {.method = "POST", .path = JobPath(o.name) + "/stop"}, kApiVersion));
    case Op::kShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = JobPath(o.name)}, kApiVersion));
    case Op::kList:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = "/asa/jobs"}, kApiVersion));
    case Op::kDelete:
      return cli::Print(out,
                        cli::Send(c, {.method = "DELETE", .path = JobPath(o.name)}, kApiVersion));
  }
  return Usage("unknown command");
}

}  // namespace orrery::api
