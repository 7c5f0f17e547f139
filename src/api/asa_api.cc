#include "api/asa_api.h"

#include <boost/json.hpp>

#include "api/hub_http.h"
#include "asa/jobs.h"
#include "hub/policies.h"

namespace orrery::api {
namespace json = boost::json;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

struct Ctx {
  AsaApiOptions o;
};
using CtxPtr = std::shared_ptr<const Ctx>;

constexpr uint32_t kWrite = hub::kRegistryWrite | hub::kServiceConnect;
constexpr uint32_t kRead = hub::kRegistryRead | hub::kServiceConnect;

HttpResponse AsaError(const Error& e) {
  int status = 500;
  std::string_view code = "InternalServerError";
  if (e.code().category() == CategoryOf<asa::Errc>()) {
    switch (static_cast<asa::Errc>(e.code().value())) {
      case asa::Errc::kInvalidJob:
      case asa::Errc::kLimitExceeded:
        status = 400, code = "BadRequest";
        break;
      case asa::Errc::kJobNotFound:
        status = 404, code = "NotFound";
        break;
      case asa::Errc::kJobExists:
      case asa::Errc::kConflict:
        status = 409, code = "Conflict";
        break;
      case asa::Errc::kUnavailable:
        status = 503, code = "ServiceUnavailable";
        break;
    }
  } else if (e.code().category() == CategoryOf<hub::Errc>()) {
    return ErrorResponse(e);  // the request itself (its JSON): IoT Hub's shape, as elsewhere
  }
  return JsonResponse(
      status, json::object{{"error", json::object{{"code", code}, {"message", e.message()}}}});
}

bool Authorized(const CtxPtr& c, HttpRequest& req, Responder& res, uint32_t permissions, bool any) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, permissions, any)) {
    res.Send(*refusal);
    return false;
  }
  return true;
}

void List(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kRead, true)) return;
  json::array value;
  for (auto& j : c->o.jobs->List())
    value.push_back(std::move(j));
  res.Send(JsonResponse(200, json::object{{"value", std::move(value)}}));
}

void Get(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kRead, true)) return;
  auto j = c->o.jobs->Get(req.Param("name"));
  res.Send(j ? JsonResponse(200, *j) : AsaError(j.error()));
}

void Put(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kWrite, false)) return;
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  std::string name(req.Param("name"));
  // Validating the query takes well under a millisecond for ASA-sized queries: inline.
  bool exists = static_cast<bool>(c->o.jobs->Get(name));
  auto j = exists ? c->o.jobs->Update(name, *body) : c->o.jobs->Create(name, *body);
  res.Send(j ? JsonResponse(exists ? 200 : 201, *j) : AsaError(j.error()));
}

void Delete(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kWrite, false)) return;
  auto st = c->o.jobs->Delete(req.Param("name"));
  res.Send(st ? HttpResponse::Empty(204) : AsaError(st.error()));
}

void Start(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kWrite, false)) return;
  auto body = ParseJsonBody(req, /*allow_empty=*/true);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto from = asa::StartFromJson(*body);
  if (!from) return res.Send(AsaError(from.error()));
  auto j = c->o.jobs->Start(req.Param("name"), *from);
  res.Send(j ? JsonResponse(200, *j) : AsaError(j.error()));
}

void Stop(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (!Authorized(c, req, res, kWrite, false)) return;
  auto j = c->o.jobs->Stop(req.Param("name"));
  res.Send(j ? JsonResponse(200, *j) : AsaError(j.error()));
}

}  // namespace

void RegisterAsaRoutes(net::Router& router, const AsaApiOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  auto on = [&](std::string_view method, std::string_view pattern,
                void (*fn)(const CtxPtr&, HttpRequest&, Responder), size_t max_body = 0) {
    net::RouteOptions ro;
    if (max_body) ro.max_body = max_body;
    router.Add(
        method, pattern, [c, fn](HttpRequest& req, Responder res) { fn(c, req, res); }, ro);
  };
  on("GET", "/asa/jobs", List);
  on("GET", "/asa/jobs/{name}", Get);
  on("PUT", "/asa/jobs/{name}", Put, 1 << 20);
  on("DELETE", "/asa/jobs/{name}", Delete);
  on("POST", "/asa/jobs/{name}/start", Start);
  on("POST", "/asa/jobs/{name}/stop", Stop);
}

}  // namespace orrery::api
