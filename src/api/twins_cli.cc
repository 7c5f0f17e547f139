#include "api/twins_cli.h"

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/cli_http.h"
#include "base/files.h"
#include "base/strings.h"
#include "base/time.h"
#include "identity/principals.h"
#include "identity/token.h"
#include "net/http_client.h"
#include "twins/model_batches.h"

namespace orrery::api {
namespace json = boost::json;
namespace fs = std::filesystem;

namespace {
constexpr std::string_view kApiVersion = "2023-10-31";
constexpr size_t kMaxBatch = 250;  // ADT's models per upload

Result<std::vector<json::value>> ReadModels(const std::vector<fs::path>& paths, std::FILE* err) {
  auto found = files::FindFiles(paths, ".json");
  if (!found) return cli::Usage(found.error().message());
  std::vector<fs::path> files = std::move(*found);
  if (files.empty()) return cli::Usage("no .json model files found");
  std::vector<json::value> models;
  for (auto& f : files) {
    auto text = files::ReadFile(f, 16 << 20);
    if (!text) return cli::Usage(fmt::format("{}: {}", f.string(), text.error().message()));
    std::string_view body = *text;
    if (body.starts_with("\xEF\xBB\xBF")) body.remove_prefix(3);  // a UTF-8 byte order mark
    boost::system::error_code ec;
    json::value v = json::parse(body, ec);
    if (ec) return cli::Usage(fmt::format("{}: not JSON: {}", f.string(), ec.message()));
    if (v.is_array()) {
      for (auto& m : v.get_array())
        models.push_back(m);
    } else {
      models.push_back(std::move(v));
    }
  }
  fmt::print(err, "read {} models from {} files\n", models.size(), files.size());
  return models;
}

Result<json::value> ParseBody(const net::HttpResponse& r) {
  return cli::BodyJson(r);
}

// Every page of a {"value","nextLink"} listing, from `path` on.
Result<json::array> AllPages(const ServiceConnection& c, std::string path) {
  json::array all;
  for (int pages = 0; pages < 100'000; ++pages) {
    ORRERY_ASSIGN_OR_RETURN(auto r, cli::Send(c, {.method = "GET", .path = path}, kApiVersion));
    ORRERY_ASSIGN_OR_RETURN(json::object page, cli::BodyObject(r));
    if (auto* v = page.if_contains("value"); v && v->is_array()) {
      for (auto& m : v->get_array())
        all.push_back(m);
    }
    auto* next = page.if_contains("nextLink");
    if (!next || !next->is_string()) break;
    // The link is absolute; keep its path and query, minus the api-version Send adds.
    std::string link(next->get_string());
    auto scheme = link.find("://");
    auto slash = link.find('/', scheme == std::string::npos ? 0 : scheme + 3);
    path = slash == std::string::npos ? path : link.substr(slash);
    if (auto p = path.find("api-version="); p != std::string::npos) {
      auto end = path.find('&', p);
      path.erase(p, end == std::string::npos ? std::string::npos : end - p + 1);
      if (!path.empty() && (path.back() == '&' || path.back() == '?')) path.pop_back();
    }
  }
  return all;
}
}  // namespace

std::vector<std::vector<json::value>> ModelBatches(std::vector<json::value> models,
                                                   size_t max_batch) {
  return twins::ModelBatches(std::move(models), max_batch);
}

Result<ServiceConnection> ResolveTwinsConnection(const TwinsConnectionOptions& o) {
  ServiceConnection c;
  c.url = !o.endpoint.empty() ? o.endpoint : fmt::format("https://{}:{}", o.host_name, o.port);
  while (!c.url.empty() && c.url.back() == '/')
    c.url.pop_back();
  if (!o.ca_file.empty()) {
    c.tls.ca_file = o.ca_file;
  } else if (fs::exists(o.data_dir / "tls" / "ca.pem")) {
    c.tls.ca_file = o.data_dir / "tls" / "ca.pem";
  }
  if (o.client_id.empty() || o.client_secret.empty()) {
    return cli::Usage(
        "a service principal is needed: --client-id and --client-secret (or AZURE_CLIENT_ID and "
        "AZURE_CLIENT_SECRET); create one with `orrery identity sp create --name NAME --role "
        "owner`");
  }
  std::string tenant = o.tenant;
  if (tenant.empty()) {
    auto t = files::ReadFile(o.data_dir / "identity" / "tenant", 256);
    if (!t) {
      return cli::Usage(fmt::format(
          "no tenant: pass --tenant (or AZURE_TENANT_ID), or --data-dir of the server ({})",
          t.error().message()));
    }
    tenant = std::string(strings::Trim(*t));
  }
  std::string form = "grant_type=client_credentials&client_id=" + strings::UrlEncode(o.client_id) +
                     "&client_secret=" + strings::UrlEncode(o.client_secret) +
                     "&scope=" + strings::UrlEncode("https://digitaltwins.azure.net/.default");
  net::HttpClientOptions ho;
  ho.tls = c.tls;
  ho.timeout = std::chrono::seconds(30);
  ho.max_response_bytes = 64 << 10;
  net::Headers h;
  h.Set("Content-Type", "application/x-www-form-urlencoded");
  auto r = net::Fetch("POST", c.url + "/" + strings::UrlEncode(tenant) + "/oauth2/v2.0/token",
                      std::move(h), form, ho);
  if (!r) return r.error();
  boost::system::error_code ec;
  json::value v = json::parse(r->body, ec);
  if (r->status != 200 || ec || !v.is_object()) {
    std::string why = !ec && v.is_object() ? cli::Str(v.get_object(), "error_description") : "";
    return Error(BaseErrc::kUnavailable,
                 fmt::format("HTTP {} from the token endpoint{}{}", r->status,
                             why.empty() ? "" : ": ", cli::OneLine(why)));
  }
  std::string token = cli::Str(v.get_object(), "access_token");
  if (token.empty())
    return Error(BaseErrc::kUnavailable, "the token endpoint sent no access_token");
  c.token = "Bearer " + token;
  c.host_name = o.host_name;
  return c;
}

Status ModelCommand(const ServiceConnection& c, const ModelCommandOptions& o, std::FILE* out,
                    std::FILE* err) {
  using Op = ModelCommandOptions::Op;
  std::string id_path = "/models/" + strings::UrlEncode(o.id);
  switch (o.op) {
    case Op::kAdd: {
      ORRERY_ASSIGN_OR_RETURN(auto models, ReadModels(o.paths, err));
      auto batches = ModelBatches(std::move(models), kMaxBatch);
      size_t total = 0, done = 0;
      for (auto& b : batches)
        total += b.size();
      json::array added;
      for (auto& b : batches) {
        json::array body(b.begin(), b.end());
        ORRERY_ASSIGN_OR_RETURN(
            auto r,
            cli::Send(c, {.method = "POST", .path = "/models", .body = json::serialize(body)},
                      kApiVersion));
        ORRERY_ASSIGN_OR_RETURN(json::value v, ParseBody(r));
        if (v.is_array()) {
          for (auto& m : v.get_array())
            added.push_back(m);
        }
        done += b.size();
        if (batches.size() > 1) fmt::print(err, "uploaded {}/{} models\n", done, total);
      }
      fmt::print(out, "{}\n", PrettyJson(added));
      return Ok();
    }
    case Op::kList: {
      std::string query = o.definition ? "?includeModelDefinition=true" : "";
      for (auto& d : o.dependencies_for)
        query +=
            (query.empty() ? "?" : "&") + std::string("dependenciesFor=") + strings::UrlEncode(d);
      ORRERY_ASSIGN_OR_RETURN(json::array all, AllPages(c, "/models" + query));
      fmt::print(out, "{}\n", PrettyJson(all));
      return Ok();
    }
    case Op::kShow:
      return cli::Print(
          out, cli::Send(c,
                         {.method = "GET",
                          .path = id_path + (o.definition ? "?includeModelDefinition=true" : "")},
                         kApiVersion));
    case Op::kDecommission: {
      net::Headers h;
      h.Set("Content-Type", "application/json-patch+json");
      ORRERY_TRY(cli::Send(c,
                           {.method = "PATCH",
                            .path = id_path,
                            .body = R"([{"op":"replace","path":"/decommissioned","value":true}])",
                            .headers = std::move(h)},
                           kApiVersion));
      fmt::print(err, "decommissioned {}\n", o.id);
      return Ok();
    }
    case Op::kDelete:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = id_path}, kApiVersion));
      fmt::print(err, "deleted {}\n", o.id);
      return Ok();
  }
  return Ok();
}

Status TwinCommand(const ServiceConnection& c, const TwinCommandOptions& o, std::FILE* out,
                   std::FILE* err) {
  using Op = TwinCommandOptions::Op;
  std::string twin = "/digitaltwins/" + strings::UrlEncode(o.id);
  std::string rel = twin + "/relationships/" + strings::UrlEncode(o.relationship_id);
  std::string route = "/eventroutes/" + strings::UrlEncode(o.id);
  std::string endpoint = "/endpoints/" + strings::UrlEncode(o.id);
  std::string mapping = "/mappings/" + strings::UrlEncode(o.id);
  auto object_arg = [](const std::string& text, std::string_view flag) -> Result<json::object> {
    if (text.empty()) return json::object{};
    ORRERY_ASSIGN_OR_RETURN(json::value v, cli::JsonArg(text, flag, true));
    return std::move(v.get_object());
  };
  switch (o.op) {
    case Op::kTwinCreate: {
      ORRERY_ASSIGN_OR_RETURN(json::object body, object_arg(o.properties, "--properties"));
      json::object meta;
      if (auto* m = body.if_contains("$metadata"); m && m->is_object()) meta = m->get_object();
      meta["$model"] = o.model;
      body["$metadata"] = std::move(meta);
      net::Headers h;
      if (o.create_only) h.Set("If-None-Match", "*");
      return cli::Print(out, cli::Send(c,
                                       {.method = "PUT",
                                        .path = twin,
                                        .body = json::serialize(body),
                                        .headers = std::move(h)},
                                       kApiVersion));
    }
    case Op::kTwinShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = twin}, kApiVersion));
    case Op::kTwinUpdate: {
      ORRERY_ASSIGN_OR_RETURN(json::value patch, cli::JsonArg(o.patch, "--patch", false));
      if (!patch.is_array()) return cli::Usage("--patch must be a JSON Patch array");
      net::Headers h;
      h.Set("Content-Type", "application/json-patch+json");
      if (!o.etag.empty()) h.Set("If-Match", o.etag);
      ORRERY_ASSIGN_OR_RETURN(auto r, cli::Send(c,
                                                {.method = "PATCH",
                                                 .path = twin,
                                                 .body = json::serialize(patch),
                                                 .headers = std::move(h)},
                                                kApiVersion));
      fmt::print(out, "{}\n", r.headers.Get("ETag").value_or(""));
      return Ok();
    }
    case Op::kTwinDelete: {
      net::Headers h;
      if (!o.etag.empty()) h.Set("If-Match", o.etag);
      ORRERY_TRY(
          cli::Send(c, {.method = "DELETE", .path = twin, .headers = std::move(h)}, kApiVersion));
      fmt::print(err, "deleted twin {}\n", o.id);
      return Ok();
    }
    case Op::kRelCreate: {
      ORRERY_ASSIGN_OR_RETURN(json::object body, object_arg(o.properties, "--properties"));
      body["$relationshipName"] = o.name;
      body["$targetId"] = o.target;
      net::Headers h;
      if (o.create_only) h.Set("If-None-Match", "*");
      return cli::Print(out, cli::Send(c,
                                       {.method = "PUT",
                                        .path = rel,
                                        .body = json::serialize(body),
                                        .headers = std::move(h)},
                                       kApiVersion));
    }
    case Op::kRelShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = rel}, kApiVersion));
    case Op::kRelList: {
      std::string path =
          o.incoming
              ? twin + "/incomingrelationships"
              : twin + "/relationships" +
                    (o.name.empty() ? "" : "?relationshipName=" + strings::UrlEncode(o.name));
      ORRERY_ASSIGN_OR_RETURN(json::array all, AllPages(c, path));
      fmt::print(out, "{}\n", PrettyJson(all));
      return Ok();
    }
    case Op::kRelDelete:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = rel}, kApiVersion));
      fmt::print(err, "deleted relationship {} of {}\n", o.relationship_id, o.id);
      return Ok();
    case Op::kQuery: {
      json::array all;
      json::value token = nullptr;
      for (int pages = 0; pages < 100'000; ++pages) {
        json::object body{{"query", o.query}};
        if (token.is_string()) body["continuationToken"] = token;
        ORRERY_ASSIGN_OR_RETURN(
            auto r,
            cli::Send(c, {.method = "POST", .path = "/query", .body = json::serialize(body)},
                      kApiVersion));
        ORRERY_ASSIGN_OR_RETURN(json::object page, cli::BodyObject(r));
        if (auto* v = page.if_contains("value"); v && v->is_array()) {
          for (auto& row : v->get_array())
            all.push_back(row);
        }
        auto* next = page.if_contains("continuationToken");
        if (!next || !next->is_string()) break;
        token = *next;
      }
      fmt::print(out, "{}\n", PrettyJson(all));
      fmt::print(err, "{} rows\n", all.size());
      return Ok();
    }
    case Op::kRouteCreate: {
      json::object body{{"endpointName", o.endpoint_name},
                        {"filter", o.filter.empty() ? "true" : o.filter}};
      ORRERY_TRY(cli::Send(c, {.method = "PUT", .path = route, .body = json::serialize(body)},
                           kApiVersion));
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = route}, kApiVersion));
    }
    case Op::kRouteShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = route}, kApiVersion));
    case Op::kRouteList: {
      ORRERY_ASSIGN_OR_RETURN(json::array all, AllPages(c, "/eventroutes"));
      fmt::print(out, "{}\n", PrettyJson(all));
      return Ok();
    }
    case Op::kRouteDelete:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = route}, kApiVersion));
      fmt::print(err, "deleted event route {}\n", o.id);
      return Ok();
    case Op::kEndpointCreate: {
      if (o.event_log == !o.url.empty()) {
        return cli::Usage("give either --webhook URL or --event-log");
      }
      json::object body{{"endpointType", o.event_log ? "EventLog" : "Webhook"}};
      if (!o.event_log) {
        body["url"] = o.url;
        if (!o.secret.empty()) body["secret"] = o.secret;
        if (o.max_attempts > 0) body["maxAttempts"] = o.max_attempts;
      }
      return cli::Print(
          out, cli::Send(c, {.method = "PUT", .path = endpoint, .body = json::serialize(body)},
                         kApiVersion));
    }
    case Op::kEndpointShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = endpoint}, kApiVersion));
    case Op::kEndpointList: {
      ORRERY_ASSIGN_OR_RETURN(json::array all, AllPages(c, "/endpoints"));
      fmt::print(out, "{}\n", PrettyJson(all));
      return Ok();
    }
    case Op::kEndpointDelete:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = endpoint}, kApiVersion));
      fmt::print(err, "deleted endpoint {}\n", o.id);
      return Ok();
    case Op::kMappingCreate: {
      ORRERY_ASSIGN_OR_RETURN(json::value rule, cli::JsonArg(o.rule, "--rule", true));
      return cli::Print(
          out, cli::Send(c, {.method = "PUT", .path = mapping, .body = json::serialize(rule)},
                         kApiVersion));
    }
    case Op::kMappingShow:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = mapping}, kApiVersion));
    case Op::kMappingList:
      return cli::Print(out, cli::Send(c, {.method = "GET", .path = "/mappings"}, kApiVersion));
    case Op::kMappingDelete:
      ORRERY_TRY(cli::Send(c, {.method = "DELETE", .path = mapping}, kApiVersion));
      fmt::print(err, "deleted ingestion rule {}\n", o.id);
      return Ok();
  }
  return Ok();
}

Status PrincipalCommand(const PrincipalCommandOptions& o, std::FILE* out, std::FILE* err) {
  using Op = PrincipalCommandOptions::Op;
  fs::path dir = o.data_dir / "identity";
  auto issuer = identity::TokenIssuer::Open(dir);
  if (!issuer) return issuer.error();
  identity::PrincipalStore store(dir);
  switch (o.op) {
    case Op::kTenant:
      fmt::print(out, "{}\n", (*issuer)->tenant());
      return Ok();
    case Op::kCreate: {
      auto roles = identity::ParseRoles(o.roles);
      if (!roles) return cli::Usage(roles.error().message());
      auto created = store.Create(o.name, *roles);
      if (!created) {
        if (created.error().code() == identity::Errc::kInvalidArgument) {
          return cli::Usage(created.error().message());
        }
        return created.error();
      }
      json::array role_names;
      for (auto& r : identity::RoleNames(created->principal.roles))
        role_names.emplace_back(r);
      fmt::print(out, "{}\n",
                 PrettyJson(json::object{{"tenantId", (*issuer)->tenant()},
                                         {"clientId", created->principal.client_id},
                                         {"clientSecret", created->secret},
                                         {"displayName", created->principal.name},
                                         {"roles", std::move(role_names)},
                                         {"authorityHost", o.endpoint}}));
      fmt::print(err,
                 "the secret is shown only now. Use it as AZURE_TENANT_ID / AZURE_CLIENT_ID / "
                 "AZURE_CLIENT_SECRET, with the authority host {}\n",
                 o.endpoint);
      return Ok();
    }
    case Op::kList: {
      ORRERY_ASSIGN_OR_RETURN(auto list, store.List());
      json::array a;
      for (auto& p : list) {
        json::array role_names;
        for (auto& r : identity::RoleNames(p.roles))
          role_names.emplace_back(r);
        a.push_back(json::object{{"clientId", p.client_id},
                                 {"displayName", p.name},
                                 {"roles", std::move(role_names)},
                                 {"created", timeutil::FormatUtcMs(p.created_ms)}});
      }
      fmt::print(out, "{}\n", PrettyJson(a));
      return Ok();
    }
    case Op::kDelete: {
      auto st = store.Remove(o.name);
      if (!st)
        return st.error().Is(identity::Errc::kNotFound) ? cli::Usage(st.error().message())
                                                        : st.error();
      fmt::print(err, "deleted {} (its tokens stay valid until they expire)\n", o.name);
      return Ok();
    }
  }
  return Ok();
}

}  // namespace orrery::api
