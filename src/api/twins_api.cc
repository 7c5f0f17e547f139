#include "api/twins_api.h"

#include <algorithm>
#include <charconv>

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "api/twins_jobs_api.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "dtdl/dtmi.h"
#include "identity/principals.h"
#include "identity/token.h"
#include "twins/adt_query.h"
#include "twins/errc.h"
#include "twins/ingestion.h"
#include "twins/model_store.h"
#include "twins/notifications.h"
#include "twins/twin_graph.h"

namespace orrery::api {
namespace json = boost::json;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

// The audiences an ADT token may carry: the resource URI (what `…/.default` scopes ask for)
// and Azure Digital Twins' application id.
const std::vector<std::string> kAudiences = {"https://digitaltwins.azure.net",
                                             "https://digitaltwins.azure.net/",
                                             "0b07f429-9f4b-4714-9392-cc5e8e80c8b0"};
constexpr size_t kMaxModelUploadBytes = 32 << 20;
constexpr size_t kMaxFormBytes = 16 << 10;
constexpr size_t kMaxTelemetryBytes = 256 << 10;

struct Ctx {
  TwinsApiOptions o;
};
using CtxPtr = std::shared_ptr<const Ctx>;

// ADT's error shape, with the code in x-ms-error-code as ADT sends it.
HttpResponse AdtError(int status, std::string_view code, std::string_view message,
                      const std::vector<std::string>& details = {}) {
  json::object err{{"code", code}, {"message", message}};
  if (!details.empty()) {
    json::array d;
    for (auto& line : details)
      d.push_back(json::object{{"code", code}, {"message", line}});
    err["details"] = std::move(d);
  }
  auto r = HttpResponse::Json(status, json::serialize(json::object{{"error", std::move(err)}}));
  r.headers.Set("x-ms-error-code", std::string(code));
  return r;
}

HttpResponse AdtError(const Error& e, const std::vector<std::string>& details = {}) {
  auto w = twins::ToWireError(e);
  if (e.code().category() == CategoryOf<identity::Errc>()) {
    auto c = static_cast<identity::Errc>(e.code().value());
    if (c == identity::Errc::kUnauthorized) w = {401, "Unauthorized"};
    if (c == identity::Errc::kForbidden) w = {403, "Forbidden"};
  }
  auto r = AdtError(w.status, w.code, e.message(), details);
  if (w.status == 401) r.headers.Set("WWW-Authenticate", "Bearer");
  return r;
}

HttpResponse Invalid(std::string message) {
  return AdtError(400, "InvalidArgument", message);
}

HttpResponse JsonOk(int status, const json::value& v) {
  return HttpResponse::Json(status, json::serialize(v));
}

// The scheme and authority clients reached us with (for nextLink and the OpenID document).
std::string BaseUrl(const HttpRequest& req) {
  std::string host(req.headers.Get("Host").value_or("localhost"));
  // A Host header is the client's own; keep it to characters a host[:port] can have.
  bool ok =
      !host.empty() && host.size() <= 255 && std::all_of(host.begin(), host.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
               c == '[' || c == ']';
      });
  return "https://" + (ok ? host : std::string("localhost"));
}

std::optional<HttpResponse> CheckApiVersion(const HttpRequest& req) {
  auto v = req.Query("api-version");
  if (!v) {
    return AdtError(400, "MissingApiVersionParameter",
                    "the api-version query parameter is required (2023-10-31 or 2022-05-31)");
  }
  for (auto* known : kTwinsApiVersions) {
    if (*v == known) return std::nullopt;
  }
  return AdtError(400, "UnsupportedApiVersion",
                  fmt::format("api-version '{}' is not supported (2023-10-31 or 2022-05-31)", *v));
}

// Checks api-version and the bearer token; `write` needs the owner role.
std::optional<HttpResponse> Authorize(const Ctx& c, const HttpRequest& req, bool write) {
  if (auto bad = CheckApiVersion(req)) return bad;
  auto header = req.headers.Get("Authorization");
  std::string_view h = header.value_or("");
  if (h.size() < 7 || !strings::IEquals(h.substr(0, 7), "Bearer ")) {
    return AdtError(Error(identity::Errc::kUnauthorized,
                          "an Authorization: Bearer token is required (get one from "
                          "/{tenant}/oauth2/v2.0/token)"));
  }
  auto claims =
      c.o.issuer->Verify(strings::Trim(h.substr(7)), kAudiences, "", timeutil::NowMs() / 1000);
  if (!claims) return AdtError(claims.error());
  std::vector<std::string> names = claims->roles;
  auto roles = identity::ParseRoles(names);
  uint32_t bits = roles ? *roles : 0;
  bool allowed = write ? (bits & identity::kOwner) != 0 : bits != 0;
  if (!allowed) {
    return AdtError(Error(identity::Errc::kForbidden,
                          write ? "this call needs the owner role (Azure Digital Twins Data Owner)"
                                : "this call needs the reader or owner role"));
  }
  return std::nullopt;
}

// A handler behind authorization; `blocking` ones run on the blocking executor.
net::HttpHandler Guard(CtxPtr c, bool write, bool blocking,
                       std::function<HttpResponse(const Ctx&, const HttpRequest&)> f) {
  return [c, write, blocking, f = std::move(f)](HttpRequest& req, Responder r) {
    if (auto refused = Authorize(*c, req, write)) return r.Send(std::move(*refused));
    if (!blocking) return r.Send(f(*c, req));
    boost::asio::post(c->o.blocking, [c, f, req = std::move(req), r] { r.Send(f(*c, req)); });
  };
}

// The max-items-per-page header, capped at `*page` (the server's page size).
std::optional<HttpResponse> ReadPageSize(const HttpRequest& req, size_t* page) {
  auto h = req.headers.Get("max-items-per-page");
  if (!h) return std::nullopt;
  uint64_t n = 0;
  auto [p, err] = std::from_chars(h->data(), h->data() + h->size(), n);
  if (err != std::errc() || p != h->data() + h->size() || n < 1) {
    return Invalid("max-items-per-page must be a positive integer");
  }
  *page = std::min<uint64_t>(*page, n);
  return std::nullopt;
}

bool BoolQuery(const HttpRequest& req, std::string_view key) {
  auto v = req.Query(key);
  return v && strings::IEquals(*v, "true");
}

std::optional<HttpResponse> CheckModelId(std::string_view id) {
  if (id.empty()) return AdtError(400, "MissingArgument", "the model id is missing");
  if (!dtdl::ParseDtmi(id)) {
    return Invalid(
        fmt::format("'{}' is not a valid model id (a DTMI such as dtmi:com:example:Room;1)", id));
  }
  return std::nullopt;
}

HttpResponse AddModels(const Ctx& c, const HttpRequest& req) {
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec) return Invalid("the body is not JSON: " + ec.message());
  if (!body.is_array()) return Invalid("the body must be a JSON array of DTDL Interface objects");
  std::vector<json::value> models(body.get_array().begin(), body.get_array().end());
  std::vector<std::string> details;
  auto added = c.o.models->Add(models, &details);
  if (!added) return AdtError(added.error(), details);
  json::array out;
  for (auto& r : *added)
    out.push_back(twins::ToModelData(r, false));
  return JsonOk(201, out);
}

HttpResponse ListModels(const Ctx& c, const HttpRequest& req) {
  twins::ListOptions lo;
  for (auto& [k, v] : req.query) {
    if (k != "dependenciesFor") continue;
    for (auto part : strings::Split(v, ',')) {
      auto id = strings::Trim(part);
      if (id.empty()) continue;
      if (auto bad = CheckModelId(id)) return std::move(*bad);
      lo.dependencies_for.emplace_back(id);
    }
  }
  size_t page = c.o.max_page;
  if (auto bad = ReadPageSize(req, &page)) return std::move(*bad);
  std::string after;
  if (auto token = req.Query("continuationToken")) {
    auto decoded = identity::Base64UrlDecode(*token);
    if (!decoded) return Invalid("the continuation token is not one this service issued");
    after = std::move(*decoded);
  }
  auto list = c.o.models->List(lo, after, page + 1);
  if (!list) return AdtError(list.error());
  bool include = BoolQuery(req, "includeModelDefinition");
  json::array value;
  for (size_t i = 0; i < list->size() && i < page; ++i)
    value.push_back(twins::ToModelData((*list)[i], include));
  json::object out{{"value", std::move(value)}};
  if (list->size() > page) {
    // The next page starts after the last id of this one; the link keeps the filters.
    std::string link = BaseUrl(req) + "/models?api-version=" +
                       strings::UrlEncode(req.Query("api-version").value_or(kTwinsApiVersions[0]));
    for (auto& id : lo.dependencies_for)
      link += "&dependenciesFor=" + strings::UrlEncode(id);
    if (include) link += "&includeModelDefinition=true";
    link += "&continuationToken=" + identity::Base64UrlEncode((*list)[page - 1].id);
    out["nextLink"] = link;
  } else {
    out["nextLink"] = nullptr;
  }
  return JsonOk(200, out);
}

HttpResponse GetModel(const Ctx& c, const HttpRequest& req) {
  auto id = req.Param("id");
  if (auto bad = CheckModelId(id)) return std::move(*bad);
  auto m = c.o.models->Get(id);
  if (!m)
    return AdtError(Error(twins::Errc::kModelNotFound, fmt::format("there is no model '{}'", id)));
  return JsonOk(200, twins::ToModelData(*m, BoolQuery(req, "includeModelDefinition")));
}

HttpResponse PatchModel(const Ctx& c, const HttpRequest& req) {
  auto id = req.Param("id");
  if (auto bad = CheckModelId(id)) return std::move(*bad);
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  auto patch_error = [](std::string why) {
    return AdtError(Error(twins::Errc::kJsonPatchInvalid, std::move(why)));
  };
  if (ec || !body.is_array() || body.get_array().empty()) {
    return patch_error("the body must be a JSON Patch array");
  }
  bool decommission = false;
  for (auto& op : body.get_array()) {
    auto* o = op.if_object();
    auto str = [&](std::string_view k) -> std::string {
      auto* v = o ? o->if_contains(k) : nullptr;
      return v && v->is_string() ? std::string(v->get_string()) : "";
    };
    auto* value = o ? o->if_contains("value") : nullptr;
    if (str("op") != "replace" || str("path") != "/decommissioned" || !value || !value->is_bool()) {
      return patch_error(
          "only [{\"op\":\"replace\",\"path\":\"/decommissioned\",\"value\":true}] can change a "
          "model");
    }
    if (!value->get_bool()) {
      auto m = c.o.models->Get(id);
      if (m && m->decommissioned)
        return patch_error("a decommissioned model cannot be recommissioned");
      continue;  // already commissioned: nothing to do
    }
    decommission = true;
  }
  if (!c.o.models->Get(id)) {
    return AdtError(Error(twins::Errc::kModelNotFound, fmt::format("there is no model '{}'", id)));
  }
  if (decommission) {
    if (auto st = c.o.models->Decommission(id); !st) return AdtError(st.error());
  }
  return HttpResponse::Empty(204);
}

HttpResponse DeleteModel(const Ctx& c, const HttpRequest& req) {
  auto id = req.Param("id");
  if (auto bad = CheckModelId(id)) return std::move(*bad);
  if (auto st = c.o.models->Delete(id); !st) return AdtError(st.error());
  return HttpResponse::Empty(204);
}

// --- twins and relationships ---

std::string Header(const HttpRequest& req, std::string_view name) {
  return std::string(req.headers.Get(name).value_or(""));
}

Result<json::object> BodyObject(const HttpRequest& req) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec || !v.is_object())
    return Error(twins::Errc::kInvalidArgument, "the body must be a JSON object");
  return std::move(v.get_object());
}

Result<json::array> BodyPatch(const HttpRequest& req) {
  boost::system::error_code ec;
  json::value v = json::parse(req.body, ec);
  if (ec || !v.is_array()) {
    return Error(twins::Errc::kJsonPatchInvalid, "the body must be a JSON Patch array");
  }
  return std::move(v.get_array());
}

HttpResponse WithEtag(HttpResponse r, std::string_view etag) {
  if (!etag.empty()) r.headers.Set("ETag", std::string(etag));
  return r;
}

std::string EtagOf(const json::object& o) {
  auto* e = o.if_contains("$etag");
  return e && e->is_string() ? std::string(e->get_string()) : "";
}

// Handlers whose answer comes from the graph's completion (which may run on the store's
// writer thread: Responder::Send is thread-safe).
using AsyncHandler = std::function<void(const Ctx&, HttpRequest&, Responder)>;
net::HttpHandler AsyncGuard(CtxPtr c, bool write, AsyncHandler f) {
  return [c, write, f = std::move(f)](HttpRequest& req, Responder r) {
    if (auto refused = Authorize(*c, req, write)) return r.Send(std::move(*refused));
    f(*c, req, std::move(r));
  };
}

void SendEtag(Responder r, Result<std::string> etag) {
  if (!etag) return r.Send(AdtError(etag.error()));
  r.Send(WithEtag(HttpResponse::Empty(204), *etag));
}

void SendVoid(Responder r, Status st) {
  if (!st) return r.Send(AdtError(st.error()));
  r.Send(HttpResponse::Empty(204));
}

void SendObject(Responder r, Result<json::object> o) {
  if (!o) return r.Send(AdtError(o.error()));
  r.Send(WithEtag(JsonOk(200, *o), EtagOf(*o)));
}

HttpResponse GetTwin(const Ctx& c, const HttpRequest& req) {
  auto t = c.o.graph->GetTwin(req.Param("id"));
  if (!t) return AdtError(t.error());
  return WithEtag(JsonOk(200, *t), EtagOf(*t));
}

void PutTwin(const Ctx& c, HttpRequest& req, Responder r) {
  auto body = BodyObject(req);
  if (!body) return r.Send(AdtError(body.error()));
  c.o.graph->PutTwin(std::string(req.Param("id")), std::move(*body), Header(req, "If-None-Match"),
                     [r](Result<json::object> t) { SendObject(r, std::move(t)); });
}

void PatchTwin(const Ctx& c, HttpRequest& req, Responder r) {
  auto patch = BodyPatch(req);
  if (!patch) return r.Send(AdtError(patch.error()));
  c.o.graph->PatchTwin(std::string(req.Param("id")), std::move(*patch), Header(req, "If-Match"),
                       [r](Result<std::string> e) { SendEtag(r, std::move(e)); });
}

void DeleteTwin(const Ctx& c, HttpRequest& req, Responder r) {
  c.o.graph->DeleteTwin(std::string(req.Param("id")), Header(req, "If-Match"),
                        [r](Status st) { SendVoid(r, std::move(st)); });
}

HttpResponse GetComponent(const Ctx& c, const HttpRequest& req) {
  auto twin = c.o.graph->GetTwin(req.Param("id"));
  if (!twin) return AdtError(twin.error());
  auto comp = c.o.graph->GetComponent(req.Param("id"), req.Param("component"));
  if (!comp) return AdtError(comp.error());
  return WithEtag(JsonOk(200, *comp), EtagOf(*twin));
}

void PatchComponent(const Ctx& c, HttpRequest& req, Responder r) {
  auto patch = BodyPatch(req);
  if (!patch) return r.Send(AdtError(patch.error()));
  c.o.graph->PatchComponent(std::string(req.Param("id")), std::string(req.Param("component")),
                            std::move(*patch), Header(req, "If-Match"),
                            [r](Result<std::string> e) { SendEtag(r, std::move(e)); });
}

HttpResponse GetRelationship(const Ctx& c, const HttpRequest& req) {
  auto rel = c.o.graph->GetRelationship(req.Param("id"), req.Param("rel"));
  if (!rel) return AdtError(rel.error());
  return WithEtag(JsonOk(200, *rel), EtagOf(*rel));
}

void PutRelationship(const Ctx& c, HttpRequest& req, Responder r) {
  auto body = BodyObject(req);
  if (!body) return r.Send(AdtError(body.error()));
  c.o.graph->PutRelationship(std::string(req.Param("id")), std::string(req.Param("rel")),
                             std::move(*body), Header(req, "If-None-Match"),
                             [r](Result<json::object> o) { SendObject(r, std::move(o)); });
}

void PatchRelationship(const Ctx& c, HttpRequest& req, Responder r) {
  auto patch = BodyPatch(req);
  if (!patch) return r.Send(AdtError(patch.error()));
  c.o.graph->PatchRelationship(std::string(req.Param("id")), std::string(req.Param("rel")),
                               std::move(*patch), Header(req, "If-Match"),
                               [r](Result<std::string> e) { SendEtag(r, std::move(e)); });
}

void DeleteRelationship(const Ctx& c, HttpRequest& req, Responder r) {
  c.o.graph->DeleteRelationship(std::string(req.Param("id")), std::string(req.Param("rel")),
                                Header(req, "If-Match"),
                                [r](Status st) { SendVoid(r, std::move(st)); });
}

// {"value":[…],"nextLink":…} for a relationship listing; the token is the last entry's key.
HttpResponse RelationshipPage(const HttpRequest& req, std::vector<json::object> items, size_t page,
                              const std::function<std::string(const json::object&)>& key,
                              std::string_view extra_query) {
  json::array value;
  for (size_t i = 0; i < items.size() && i < page; ++i)
    value.push_back(items[i]);
  json::object out{{"value", std::move(value)}};
  if (items.size() > page) {
    out["nextLink"] = BaseUrl(req) + req.path + "?api-version=" +
                      strings::UrlEncode(req.Query("api-version").value_or(kTwinsApiVersions[0])) +
                      std::string(extra_query) +
                      "&continuationToken=" + identity::Base64UrlEncode(key(items[page - 1]));
  } else {
    out["nextLink"] = nullptr;
  }
  return JsonOk(200, out);
}

Result<std::string> ContinuationAfter(const HttpRequest& req) {
  auto token = req.Query("continuationToken");
  if (!token) return std::string();
  auto decoded = identity::Base64UrlDecode(*token);
  if (!decoded)
    return Error(twins::Errc::kInvalidArgument,
                 "the continuation token is not one this service issued");
  return std::move(*decoded);
}

HttpResponse ListRelationships(const Ctx& c, const HttpRequest& req) {
  auto after = ContinuationAfter(req);
  if (!after) return AdtError(after.error());
  std::string name(req.Query("relationshipName").value_or(""));
  size_t page = c.o.max_relationship_page;
  auto list = c.o.graph->ListRelationships(req.Param("id"), name, *after, page + 1);
  if (!list) return AdtError(list.error());
  return RelationshipPage(
      req, std::move(*list), page,
      [](const json::object& o) { return std::string(o.at("$relationshipId").as_string()); },
      name.empty() ? "" : "&relationshipName=" + strings::UrlEncode(name));
}

HttpResponse ListIncoming(const Ctx& c, const HttpRequest& req) {
  auto after = ContinuationAfter(req);
  if (!after) return AdtError(after.error());
  size_t page = c.o.max_relationship_page;
  auto list = c.o.graph->ListIncoming(req.Param("id"), *after, page + 1);
  if (!list) return AdtError(list.error());
  return RelationshipPage(req, std::move(*list), page, twins::TwinGraph::IncomingKey, "");
}

// POST /query {"query"[, "continuationToken"]}, header max-items-per-page: one page under the
// graph's lock (bounded by the page size and the query's limits).
HttpResponse Query(const Ctx& c, const HttpRequest& req) {
  auto body = BodyObject(req);
  if (!body) return AdtError(body.error());
  auto* text = body->if_contains("query");
  if (!text || !text->is_string()) return Invalid("the body must be {\"query\": \"SELECT …\"}");
  auto q = twins::AdtQuery::Parse(text->get_string());
  if (!q) return AdtError(400, "BadRequest", q.error().message());
  size_t max_items = c.o.max_query_page;
  if (auto bad = ReadPageSize(req, &max_items)) return std::move(*bad);
  twins::AdtPageRequest page{.max_items = max_items};
  if (auto* token = body->if_contains("continuationToken"); token && token->is_string()) {
    page.continuation = std::string(token->get_string());
  }
  Result<twins::AdtPage> result = Error(twins::Errc::kUnavailable, "no answer");
  c.o.graph->Read([&](const twins::GraphView& view) { result = q->Execute(view, page); });
  if (!result) return AdtError(400, "BadRequest", result.error().message());
  json::array rows(result->rows.begin(), result->rows.end());
  json::object out{{"value", std::move(rows)}};
  if (result->continuation.empty()) {
    out["continuationToken"] = nullptr;
  } else {
    out["continuationToken"] = result->continuation;
  }
  auto r = JsonOk(200, out);
  r.headers.Set("query-charge", fmt::format("{:.2f}", result->query_charge()));
  return r;
}

// --- event routes, endpoints and telemetry ---

json::object RouteJson(const twins::EventRoute& r) {
  return json::object{{"id", r.id}, {"endpointName", r.endpoint}, {"filter", r.filter}};
}

HttpResponse PutEventRoute(const Ctx& c, const HttpRequest& req) {
  auto body = BodyObject(req);
  if (!body) return AdtError(body.error());
  auto str = [&](std::string_view k) -> std::optional<std::string> {
    auto* v = body->if_contains(k);
    if (!v || !v->is_string()) return std::nullopt;
    return std::string(v->get_string());
  };
  auto endpoint = str("endpointName");
  if (!endpoint) return Invalid("the body must be {\"endpointName\": …, \"filter\": …}");
  auto filter = str("filter");
  if (!filter) {
    return AdtError(Error(twins::Errc::kEventRouteFilterInvalid,
                          "\"filter\" is required (\"true\" routes every event)"));
  }
  auto st = c.o.notifier->PutRoute(
      {std::string(req.Param("id")), std::move(*endpoint), std::move(*filter)});
  if (!st) return AdtError(st.error());
  return HttpResponse::Empty(204);
}

HttpResponse GetEventRoute(const Ctx& c, const HttpRequest& req) {
  auto r = c.o.notifier->GetRoute(req.Param("id"));
  if (!r) return AdtError(r.error());
  return JsonOk(200, RouteJson(*r));
}

// Routes by id, after the continuation token's id.
HttpResponse ListEventRoutes(const Ctx& c, const HttpRequest& req) {
  auto after = ContinuationAfter(req);
  if (!after) return AdtError(after.error());
  size_t page = c.o.max_page;
  if (auto bad = ReadPageSize(req, &page)) return std::move(*bad);
  std::vector<json::object> items;
  for (auto& r : c.o.notifier->Routes()) {
    if (r.id > *after) items.push_back(RouteJson(r));
  }
  return RelationshipPage(
      req, std::move(items), page,
      [](const json::object& o) { return std::string(o.at("id").as_string()); }, "");
}

HttpResponse DeleteEventRoute(const Ctx& c, const HttpRequest& req) {
  if (auto st = c.o.notifier->DeleteRoute(req.Param("id")); !st) return AdtError(st.error());
  return HttpResponse::Empty(204);
}

// An endpoint with its delivery health (webhooks).
json::object EndpointWithHealth(const Ctx& c, const twins::EventEndpoint& e) {
  json::object o = twins::EndpointToJson(e);
  for (auto& h : c.o.notifier->Health()) {
    if (h.endpoint != e.name) continue;
    json::object health{{"status", routing::HealthName(h.status)},
                        {"delivered", h.delivered},
                        {"deadLettered", h.dead_lettered}};
    if (!h.last_error.empty()) health["lastError"] = h.last_error;
    o["health"] = std::move(health);
  }
  return o;
}

HttpResponse PutEndpoint(const Ctx& c, const HttpRequest& req) {
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec) return Invalid("the body must be a JSON object");
  auto e = twins::EndpointFromJson(std::string(req.Param("name")), body);
  if (!e) return AdtError(e.error());
  if (auto st = c.o.notifier->PutEndpoint(*e); !st) return AdtError(st.error());
  return JsonOk(200, EndpointWithHealth(c, *c.o.notifier->GetEndpoint(e->name)));
}

HttpResponse GetEndpoint(const Ctx& c, const HttpRequest& req) {
  auto e = c.o.notifier->GetEndpoint(req.Param("name"));
  if (!e) return AdtError(e.error());
  return JsonOk(200, EndpointWithHealth(c, *e));
}

HttpResponse ListEndpoints(const Ctx& c, const HttpRequest&) {
  json::array value;
  for (auto& e : c.o.notifier->Endpoints())
    value.push_back(EndpointWithHealth(c, e));
  return JsonOk(200, json::object{{"value", std::move(value)}, {"nextLink", nullptr}});
}

HttpResponse DeleteEndpoint(const Ctx& c, const HttpRequest& req) {
  if (auto st = c.o.notifier->DeleteEndpoint(req.Param("name")); !st) return AdtError(st.error());
  return HttpResponse::Empty(204);
}

// POST /digitaltwins/{id}[/components/{component}]/telemetry (Message-Id required): routed
// as microsoft.iot.telemetry; 204 once durable on every log a route sends it to.
void PublishTelemetry(const Ctx& c, HttpRequest& req, Responder r) {
  std::string id(req.Param("id")), component(req.Param("component"));
  std::string message_id = Header(req, "Message-Id");
  if (message_id.empty()) {
    return r.Send(AdtError(400, "MissingArgument", "the Message-Id header is required"));
  }
  if (message_id.size() > 256) {
    return r.Send(Invalid("the Message-Id header is longer than 256 bytes"));
  }
  auto model =
      component.empty() ? c.o.graph->ModelOf(id) : c.o.graph->ComponentModel(id, component);
  if (!model) return r.Send(AdtError(model.error()));
  c.o.notifier->PublishTelemetry(std::move(id), std::move(component), std::move(*model),
                                 std::move(message_id), Header(req, "Telemetry-Source-Time"),
                                 std::move(req.body),
                                 [r](Status st) { SendVoid(r, std::move(st)); });
}

// --- ingestion rules (Orrery's: ADT takes an Azure Function per pipeline) ---

HttpResponse PutMapping(const Ctx& c, const HttpRequest& req) {
  boost::system::error_code ec;
  json::value body = json::parse(req.body, ec);
  if (ec) return Invalid("the body must be a JSON object");
  auto rule = twins::RuleFromJson(std::string(req.Param("name")), body);
  if (!rule) return AdtError(rule.error());
  if (auto st = c.o.ingestion->PutRule(*rule); !st) return AdtError(st.error());
  return JsonOk(200, twins::RuleToJson(*rule));
}

HttpResponse GetMapping(const Ctx& c, const HttpRequest& req) {
  auto rule = c.o.ingestion->GetRule(req.Param("name"));
  if (!rule) return AdtError(rule.error());
  return JsonOk(200, twins::RuleToJson(*rule));
}

HttpResponse ListMappings(const Ctx& c, const HttpRequest&) {
  json::array value;
  for (auto& r : c.o.ingestion->Rules())
    value.push_back(twins::RuleToJson(r));
  auto stats = c.o.ingestion->stats();
  return JsonOk(200, json::object{{"value", std::move(value)},
                                  {"nextLink", nullptr},
                                  {"stats", json::object{{"applied", stats.applied},
                                                         {"unchanged", stats.unchanged},
                                                         {"failed", stats.failed}}}});
}

HttpResponse DeleteMapping(const Ctx& c, const HttpRequest& req) {
  if (auto st = c.o.ingestion->DeleteRule(req.Param("name")); !st) return AdtError(st.error());
  return HttpResponse::Empty(204);
}

// --- OAuth 2.0 (Microsoft identity platform v2.0 shapes) ---

HttpResponse OAuthError(int status, std::string_view error, std::string_view description) {
  return HttpResponse::Json(status, json::serialize(json::object{
                                        {"error", error},
                                        {"error_description", description},
                                        {"timestamp", timeutil::FormatUtcMs(timeutil::NowMs())}}));
}

std::optional<HttpResponse> CheckTenant(const Ctx& c, const HttpRequest& req) {
  if (req.Param("tenant") == c.o.issuer->tenant()) return std::nullopt;
  return OAuthError(400, "invalid_tenant",
                    fmt::format("tenant '{}' is not this server's ({}; see `orrery identity "
                                "tenant`)",
                                req.Param("tenant"), c.o.issuer->tenant()));
}

void OpenIdConfiguration(const Ctx& c, HttpRequest& req, Responder r) {
  if (auto bad = CheckTenant(c, req)) return r.Send(std::move(*bad));
  std::string base = BaseUrl(req) + "/" + c.o.issuer->tenant();
  json::object doc{
      {"issuer", base + "/v2.0"},
      {"token_endpoint", base + "/oauth2/v2.0/token"},
      {"authorization_endpoint", base + "/oauth2/v2.0/authorize"},
      {"end_session_endpoint", base + "/oauth2/v2.0/logout"},
      {"jwks_uri", base + "/discovery/v2.0/keys"},
      {"response_types_supported", json::array{"code", "id_token", "code id_token", "token"}},
      {"subject_types_supported", json::array{"pairwise"}},
      {"id_token_signing_alg_values_supported", json::array{"ES256"}},
      {"token_endpoint_auth_methods_supported",
       json::array{"client_secret_post", "client_secret_basic"}},
      {"grant_types_supported", json::array{"client_credentials"}},
      {"scopes_supported", json::array{"https://digitaltwins.azure.net/.default"}},
      {"tenant_region_scope", "WW"},
      {"cloud_instance_name", "orrery"}};
  r.Send(JsonOk(200, doc));
}

void Keys(const Ctx& c, HttpRequest& req, Responder r) {
  if (auto bad = CheckTenant(c, req)) return r.Send(std::move(*bad));
  r.Send(JsonOk(200, c.o.issuer->Jwks()));
}

HttpResponse Token(const Ctx& c, const HttpRequest& req) {
  if (auto bad = CheckTenant(c, req)) return std::move(*bad);
  if (req.body.size() > kMaxFormBytes)
    return OAuthError(400, "invalid_request", "the request is too large");
  std::map<std::string, std::string> form;
  for (auto pair : strings::Split(req.body, '&')) {
    if (pair.empty()) continue;
    auto [k, v] = strings::SplitOnce(pair, '=');
    auto key = strings::UrlDecode(k, true);
    auto value = strings::UrlDecode(v.value_or(""), true);
    if (!key || !value)
      return OAuthError(400, "invalid_request", "the form body is not URL-encoded");
    form.emplace(std::move(*key), std::move(*value));
  }
  // client_secret_basic: Authorization: Basic base64(urlencode(id):urlencode(secret)).
  if (auto basic = req.headers.Get("Authorization");
      basic && basic->size() > 6 && strings::IEquals(basic->substr(0, 6), "Basic ")) {
    auto decoded = crypto::Base64Decode(strings::Trim(basic->substr(6)));
    if (decoded) {
      auto [id, secret] = strings::SplitOnce(*decoded, ':');
      if (auto i = strings::UrlDecode(id, true)) form.try_emplace("client_id", *i);
      if (auto s = strings::UrlDecode(secret.value_or(""), true))
        form.try_emplace("client_secret", *s);
    }
  }
  if (form["grant_type"] != "client_credentials") {
    return OAuthError(400, "unsupported_grant_type",
                      "only grant_type=client_credentials (a service principal's id and secret) "
                      "is supported");
  }
  std::string scope = form["scope"];
  std::string audience;
  for (auto s : strings::Split(scope, ' ')) {
    if (s.ends_with("/.default")) audience = std::string(s.substr(0, s.size() - 9));
  }
  if (std::find(kAudiences.begin(), kAudiences.end(), audience) == kAudiences.end()) {
    return OAuthError(400, "invalid_scope",
                      fmt::format("scope '{}' is not offered here; ask for "
                                  "https://digitaltwins.azure.net/.default",
                                  scope));
  }
  if (form["client_id"].empty() || form["client_secret"].empty()) {
    return OAuthError(400, "invalid_request", "client_id and client_secret are required");
  }
  auto p = c.o.principals->Authenticate(form["client_id"], form["client_secret"]);
  if (!p) {
    if (p.error().code() == identity::Errc::kUnauthorized) {
      return OAuthError(401, "invalid_client", "invalid client id or secret");
    }
    return OAuthError(500, "server_error", p.error().message());
  }
  int64_t now = timeutil::NowMs() / 1000;
  std::string jwt =
      c.o.issuer->Issue({.issuer = BaseUrl(req) + "/" + c.o.issuer->tenant() + "/v2.0",
                         .subject = p->client_id,
                         .audience = audience,
                         .roles = identity::RoleNames(p->roles),
                         .issued_at_s = now,
                         .expires_at_s = now + c.o.token_lifetime_s});
  auto r = JsonOk(200, json::object{{"token_type", "Bearer"},
                                    {"expires_in", c.o.token_lifetime_s},
                                    {"ext_expires_in", c.o.token_lifetime_s},
                                    {"access_token", jwt}});
  r.headers.Set("Cache-Control", "no-store");
  return r;
}

}  // namespace

std::optional<HttpResponse> AuthorizeTwinsCall(const TwinsApiOptions& options,
                                               const HttpRequest& req, bool write) {
  return Authorize(Ctx{options}, req, write);
}
HttpResponse TwinsError(const Error& error) {
  return AdtError(error);
}
std::string TwinsBaseUrl(const HttpRequest& req) {
  return BaseUrl(req);
}

void RegisterTwinsRoutes(net::Router& router, const TwinsApiOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  if (options.jobs) RegisterTwinsJobsRoutes(router, options);
  router.Add("GET", "/{tenant}/v2.0/.well-known/openid-configuration",
             [c](HttpRequest& req, Responder r) { OpenIdConfiguration(*c, req, std::move(r)); });
  router.Add("GET", "/{tenant}/discovery/v2.0/keys",
             [c](HttpRequest& req, Responder r) { Keys(*c, req, std::move(r)); });
  // The principals file may be re-read (a file read): off the I/O thread.
  router.Add("POST", "/{tenant}/oauth2/v2.0/token", [c](HttpRequest& req, Responder r) {
    boost::asio::post(c->o.blocking, [c, req = std::move(req), r] { r.Send(Token(*c, req)); });
  });
  router.Add("POST", "/models", Guard(c, true, true, AddModels),
             {.max_body = kMaxModelUploadBytes});
  router.Add("GET", "/models", Guard(c, false, false, ListModels));
  router.Add("GET", "/models/{id}", Guard(c, false, false, GetModel));
  router.Add("PATCH", "/models/{id}", Guard(c, true, true, PatchModel));
  router.Add("DELETE", "/models/{id}", Guard(c, true, true, DeleteModel));
  if (!options.graph) return;
  router.Add("POST", "/query", Guard(c, false, false, Query));
  router.Add("GET", "/digitaltwins/{id}", Guard(c, false, false, GetTwin));
  router.Add("PUT", "/digitaltwins/{id}", AsyncGuard(c, true, PutTwin));
  router.Add("PATCH", "/digitaltwins/{id}", AsyncGuard(c, true, PatchTwin));
  router.Add("DELETE", "/digitaltwins/{id}", AsyncGuard(c, true, DeleteTwin));
  router.Add("GET", "/digitaltwins/{id}/components/{component}",
             Guard(c, false, false, GetComponent));
  router.Add("PATCH", "/digitaltwins/{id}/components/{component}",
             AsyncGuard(c, true, PatchComponent));
  router.Add("GET", "/digitaltwins/{id}/relationships", Guard(c, false, false, ListRelationships));
  router.Add("GET", "/digitaltwins/{id}/incomingrelationships",
             Guard(c, false, false, ListIncoming));
  router.Add("GET", "/digitaltwins/{id}/relationships/{rel}",
             Guard(c, false, false, GetRelationship));
  router.Add("PUT", "/digitaltwins/{id}/relationships/{rel}", AsyncGuard(c, true, PutRelationship));
  router.Add("PATCH", "/digitaltwins/{id}/relationships/{rel}",
             AsyncGuard(c, true, PatchRelationship));
  router.Add("DELETE", "/digitaltwins/{id}/relationships/{rel}",
             AsyncGuard(c, true, DeleteRelationship));
  if (!options.notifier) return;
  router.Add("POST", "/digitaltwins/{id}/telemetry", AsyncGuard(c, true, PublishTelemetry),
             {.max_body = kMaxTelemetryBytes});
  router.Add("POST", "/digitaltwins/{id}/components/{component}/telemetry",
             AsyncGuard(c, true, PublishTelemetry), {.max_body = kMaxTelemetryBytes});
  router.Add("GET", "/eventroutes", Guard(c, false, false, ListEventRoutes));
  router.Add("GET", "/eventroutes/{id}", Guard(c, false, false, GetEventRoute));
  router.Add("PUT", "/eventroutes/{id}", Guard(c, true, true, PutEventRoute));
  router.Add("DELETE", "/eventroutes/{id}", Guard(c, true, true, DeleteEventRoute));
  // Orrery's own (ADT manages endpoints in its control plane).
  router.Add("GET", "/endpoints", Guard(c, false, false, ListEndpoints));
  router.Add("GET", "/endpoints/{name}", Guard(c, false, false, GetEndpoint));
  router.Add("PUT", "/endpoints/{name}", Guard(c, true, true, PutEndpoint));
  router.Add("DELETE", "/endpoints/{name}", Guard(c, true, true, DeleteEndpoint));
  if (!options.ingestion) return;
  router.Add("GET", "/mappings", Guard(c, false, false, ListMappings));
  router.Add("GET", "/mappings/{name}", Guard(c, false, false, GetMapping));
  router.Add("PUT", "/mappings/{name}", Guard(c, true, true, PutMapping));
  router.Add("DELETE", "/mappings/{name}", Guard(c, true, true, DeleteMapping));
}

}  // namespace orrery::api
