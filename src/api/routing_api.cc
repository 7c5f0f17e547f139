#include "api/routing_api.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/hub_http.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/policies.h"
#include "routing/errc.h"
#include "routing/service.h"

namespace orrery::api {
namespace json = boost::json;
using net::HttpRequest;
using net::HttpResponse;
using net::Responder;

namespace {

struct Ctx {
  RoutingApiOptions o;
};
using CtxPtr = std::shared_ptr<const Ctx>;

HttpResponse Invalid(std::string message) {
  return ErrorResponse(Error(hub::Errc::kInvalidArgument, std::move(message)));
}

// Routing errors are the caller's (a configuration that does not validate): 400.
HttpResponse RoutingError(const Error& e) {
  if (e.code().category() == CategoryOf<routing::Errc>()) return Invalid(e.message());
  return ErrorResponse(e);
}

// A test message in IoT Hub's shape ({"body","appProperties","systemProperties"}).
Result<eventlog::Message> TestMessage(const json::value* v) {
  eventlog::Message m;
  auto* o = v ? v->if_object() : nullptr;
  if (!o) return m;
  if (auto* b = o->if_contains("body")) {
    m.body = b->is_string() ? std::string(b->get_string()) : json::serialize(*b);
  }
  if (auto* p = o->if_contains("appProperties"); p && p->is_object()) {
    for (auto& [k, val] : p->get_object()) {
      m.properties.emplace_back(
          k, val.is_string() ? std::string(val.get_string()) : json::serialize(val));
    }
  }
  if (auto* p = o->if_contains("systemProperties"); p && p->is_object()) {
    for (auto& [k, val] : p->get_object()) {
      if (!val.is_string()) continue;
      std::string s(val.get_string());
      auto& sys = m.system;
      if (k == "contentType")
        sys.content_type = s;
      else if (k == "contentEncoding")
        sys.content_encoding = s;
      else if (k == "connectionDeviceId" || k == "iothub-connection-device-id")
        sys.connection_device_id = s;
      else if (k == "connectionModuleId" || k == "iothub-connection-module-id")
        sys.connection_module_id = s;
      else if (k == "messageId")
        sys.message_id = s;
      else if (k == "correlationId")
        sys.correlation_id = s;
      else if (k == "userId")
        sys.user_id = s;
      else if (k == "to")
        sys.to = s;
      else
        return Error(hub::Errc::kInvalidArgument,
                     fmt::format("unknown system property '{}' in the test message", k));
    }
  }
  return m;
}

const json::object* Twin(const json::object& body) {
  auto* t = body.if_contains("twin");
  if (!t || !t->is_object()) return nullptr;
  // IoT Hub's test APIs wrap it: {"twin":{"properties":{…},"tags":{…}}}.
  return &t->get_object();
}

void GetConfig(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, hub::kRegistryRead)) {
    return res.Send(*refusal);
  }
  res.Send(JsonResponse(200, routing::ConfigToJson(*c->o.routing->config(), false)));
}

void PutConfig(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, hub::kRegistryWrite)) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  // Validating, starting endpoints and storing the file take a few milliseconds at most and
  // happen rarely; done inline.
  auto config = c->o.routing->Configure(*body);
  if (!config) return res.Send(RoutingError(config.error()));
  res.Send(JsonResponse(200, routing::ConfigToJson(*config, false)));
}

void TestNew(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, hub::kRegistryRead)) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto* o = body->if_object();
  auto* route = o ? o->if_contains("route") : nullptr;
  auto* cond = route && route->is_object() ? route->get_object().if_contains("condition") : nullptr;
  std::string condition = cond && cond->is_string() ? std::string(cond->get_string()) : "true";
  auto message = TestMessage(o ? o->if_contains("message") : nullptr);
  if (!message) return res.Send(ErrorResponse(message.error()));
  auto r = c->o.routing->router()->TestCondition(condition, *message, o ? Twin(*o) : nullptr);
  json::array errors;
  if (!r) {
    errors.push_back(json::object{{"message", r.error().message()}, {"severity", "error"}});
  }
  res.Send(JsonResponse(
      200, json::object{{"result", r ? *r : "undefined"},
                        {"details", json::object{{"compilationErrors", std::move(errors)}}}}));
}

void TestAll(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, hub::kRegistryRead)) {
    return res.Send(*refusal);
  }
  auto body = ParseJsonBody(req);
  if (!body) return res.Send(ErrorResponse(body.error()));
  auto* o = body->if_object();
  auto source = routing::Source::kDeviceMessages;
  if (auto* s = o ? o->if_contains("routingSource") : nullptr; s && s->is_string()) {
    auto parsed = routing::ParseSource(s->get_string());
    if (!parsed) return res.Send(RoutingError(parsed.error()));
    source = *parsed;
  }
  auto message = TestMessage(o ? o->if_contains("message") : nullptr);
  if (!message) return res.Send(ErrorResponse(message.error()));
  json::array routes;
  for (auto& r : c->o.routing->router()->TestAll(*message, source, o ? Twin(*o) : nullptr)) {
    json::array endpoints;
    for (auto& e : r.endpoints)
      endpoints.emplace_back(e);
    routes.push_back(
        json::object{{"properties", json::object{{"name", r.name},
                                                 {"source", routing::SourceName(r.source)},
                                                 {"condition", r.condition},
                                                 {"endpointNames", std::move(endpoints)},
                                                 {"isEnabled", r.enabled}}}});
  }
  res.Send(JsonResponse(200, json::object{{"routes", std::move(routes)}}));
}

void Health(const CtxPtr& c, HttpRequest& req, Responder res) {
  if (auto refusal = CheckServiceAuth(*c->o.policies, req, hub::kRegistryRead)) {
    return res.Send(*refusal);
  }
  json::array value;
  auto time = [](int64_t ms) {
    return ms ? json::value(timeutil::FormatUtcMs(ms)) : json::value(nullptr);
  };
  for (auto& h : c->o.routing->Health()) {
    value.push_back(json::object{{"endpointId", h.endpoint},
                                 {"healthStatus", routing::HealthName(h.status)},
                                 {"lastKnownError", h.last_error},
                                 {"lastKnownErrorTime", time(h.last_error_ms)},
                                 {"lastSuccessfulSendAttemptTime", time(h.last_success_ms)},
                                 {"lastSendAttemptTime", time(h.last_attempt_ms)},
                                 {"deliveredMessages", h.delivered},
                                 {"deadLetteredMessages", h.dead_lettered}});
  }
  res.Send(JsonResponse(200, json::object{{"value", std::move(value)}}));
}

}  // namespace

void RegisterRoutingRoutes(net::Router& router, const RoutingApiOptions& options) {
  auto c = std::make_shared<const Ctx>(Ctx{options});
  auto on = [&](std::string_view method, std::string_view pattern,
                void (*fn)(const CtxPtr&, HttpRequest&, Responder)) {
    router.Add(method, pattern, [c, fn](HttpRequest& req, Responder res) { fn(c, req, res); });
  };
  on("GET", "/routing", GetConfig);
  router.Add("PUT", "/routing", [c](HttpRequest& req, Responder res) { PutConfig(c, req, res); },
             {.max_body = 4 << 20});
  on("POST", "/routing/routes/$testnew", TestNew);
  on("POST", "/routing/routes/$testall", TestAll);
  on("GET", "/routing/endpoints/health", Health);
}

}  // namespace orrery::api
