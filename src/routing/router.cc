#include "routing/router.h"

#include <algorithm>
#include <optional>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/strings.h"
#include "base/time.h"
#include "hub/registry.h"
#include "query/routing/route_condition.h"
#include "routing/annotation.h"
#include "routing/errc.h"

namespace orrery::routing {
namespace json = boost::json;

namespace {

constexpr size_t kSources = 5;

size_t Index(hub::MessageSource s) {
  return static_cast<size_t>(s);
}

// IoT Hub routes on the body only for JSON in a UTF encoding.
bool BodyIsJson(const eventlog::SystemProperties& s) {
  std::string ct = strings::ToLower(s.content_type);
  std::string ce = strings::ToLower(s.content_encoding);
  bool json_type = ct == "application/json" || ct.starts_with("application/json;");
  bool utf = ce == "utf-8" || ce == "utf-16" || ce == "utf-32";
  return json_type && utf;
}

// The value of a $twin.… path as an enrichment's text (strings as they are, other JSON
// values serialised); nullopt when the path is not there.
std::optional<std::string> TwinPath(const json::object& twin, std::string_view path) {
  const json::value* at = nullptr;
  const json::object* obj = &twin;
  for (auto seg : strings::Split(path, '.')) {
    if (!obj) return std::nullopt;
    at = obj->if_contains(seg);
    if (!at) return std::nullopt;
    obj = at->if_object();
  }
  if (!at) return std::nullopt;
  if (at->is_string()) return std::string(at->get_string());
  return json::serialize(*at);
}

}  // namespace

struct Router::Compiled {
  RoutingConfig config;
  struct CompiledRoute {
    const Route* route;
    query::RouteCondition condition;
  };
  std::vector<CompiledRoute> routes[kSources];
  bool uses_body[kSources] = {};
  bool uses_twin[kSources] = {};
  bool enrich_twin = false;
};

Router::Router(RouterOptions options) : options_(std::move(options)) {
  if (auto* m = options_.metrics) {
    auto c = [&](const char* outcome) {
      return &m->GetCounter("orrery_routing_messages_total",
                            "Messages routed at ingestion, by outcome.", {{"outcome", outcome}});
    };
    routed_ = c("routed");
    fallback_ = c("fallback");
    dropped_ = c("no_endpoint");
  }
}

Router::~Router() = default;

Status Router::SetConfig(const RoutingConfig& config) {
  auto c = std::make_shared<Compiled>();
  c->config = config;
  for (const Route& r : c->config.routes) {
    auto cond = query::ParseRouteCondition(r.condition);
    if (!cond) {
      return Error(Errc::kInvalidConfig,
                   fmt::format("route '{}': {}", r.name, cond.error().message()));
    }
    if (!r.enabled) continue;
    size_t i = Index(r.source);
    c->uses_body[i] = c->uses_body[i] || cond->uses_body();
    c->uses_twin[i] = c->uses_twin[i] || cond->uses_twin();
    c->routes[i].push_back({&r, std::move(*cond)});
  }
  for (auto& e : c->config.enrichments) {
    if (e.value.starts_with("$twin.")) c->enrich_twin = true;
  }
  std::lock_guard lock(mu_);
  compiled_ = std::move(c);
  return Ok();
}

std::shared_ptr<const Router::Compiled> Router::Current() const {
  std::lock_guard lock(mu_);
  return compiled_;
}

std::shared_ptr<const RoutingConfig> Router::config() const {
  auto c = Current();
  if (!c) return std::make_shared<const RoutingConfig>();
  return std::shared_ptr<const RoutingConfig>(c, &c->config);
}

bool Router::Wants(hub::MessageSource source) const {
  auto c = Current();
  return c && !c->routes[Index(source)].empty();
}

namespace {

// What a condition sees of a message, with the body and twin resolved once.
struct Resolved {
  std::optional<json::value> body;
  std::shared_ptr<const json::object> twin;
  std::string enqueued;  // $enqueuedTime's text (the characters the input points to)
};

query::RouteInput InputFor(const eventlog::Message& m, Resolved& r) {
  using P = query::SystemProperty;
  query::RouteInput in;
  in.app_properties = m.properties;
  const auto& s = m.system;
  auto set = [&](P p, const std::string& v) {
    if (!v.empty()) in.system.Set(p, v);
  };
  set(P::kContentType, s.content_type);
  set(P::kContentEncoding, s.content_encoding);
  set(P::kMessageId, s.message_id);
  set(P::kCorrelationId, s.correlation_id);
  set(P::kUserId, s.user_id);
  set(P::kTo, s.to);
  set(P::kConnectionDeviceId, s.connection_device_id);
  set(P::kConnectionModuleId, s.connection_module_id);
  set(P::kConnectionDeviceGenerationId, s.connection_auth_generation_id);
  set(P::kConnectionAuthMethod, s.connection_auth_method);
  // At ingestion the log has not stamped the message yet: it is enqueued now.
  r.enqueued = timeutil::FormatUtcMs(s.enqueued_time_ms ? s.enqueued_time_ms : timeutil::NowMs());
  in.system.Set(P::kEnqueuedTime, r.enqueued);
  // These travel as properties in Orrery's message model (mqtt_topics: $.schema, $.sub, $.ifid).
  for (auto& [k, v] : m.properties) {
    if (k == "dt-dataschema") in.system.Set(P::kDtDataSchema, v);
    if (k == "dt-subject") in.system.Set(P::kDtSubject, v);
    if (k == "iothub-interface-id") in.system.Set(P::kInterfaceName, v);
  }
  in.body = r.body ? &*r.body : nullptr;
  in.twin = r.twin.get();
  return in;
}

Resolved Resolve(
    const eventlog::Message& m, bool body, bool twin,
    const std::function<std::shared_ptr<const json::object>(std::string_view)>& fetch) {
  Resolved r;
  if (body && BodyIsJson(m.system)) {
    boost::system::error_code ec;
    json::value v = json::parse(m.body, ec);
    if (!ec) r.body = std::move(v);
  }
  if (twin && fetch && !m.system.connection_device_id.empty()) {
    r.twin = fetch(hub::IdentityKey(m.system.connection_device_id, m.system.connection_module_id));
  }
  return r;
}

}  // namespace

void Router::Annotate(eventlog::Message& m, hub::MessageSource source) const {
  auto c = Current();
  if (!c) return;  // not configured: the built-in endpoint, as without routing
  size_t si = Index(source);
  Resolved r = Resolve(m, c->uses_body[si], c->uses_twin[si] || c->enrich_twin, options_.twin);
  query::RouteInput in = InputFor(m, r);
  Annotation a;
  for (auto& cr : c->routes[si]) {
    if (!cr.condition.Matches(in)) continue;
    for (auto& e : cr.route->endpoints)
      a.endpoints.push_back(e);
  }
  bool fell_back = false;
  if (a.endpoints.empty() && source == hub::MessageSource::kDeviceMessages &&
      c->config.fallback_enabled) {
    a.endpoints.emplace_back(kBuiltInEndpoint);
    fell_back = true;
  }
  std::sort(a.endpoints.begin(), a.endpoints.end());
  a.endpoints.erase(std::unique(a.endpoints.begin(), a.endpoints.end()), a.endpoints.end());
  for (auto& e : c->config.enrichments) {
    std::optional<std::string> value;
    if (e.value == "$iothubname") {
      value = options_.hub_name;
    } else if (e.value.starts_with("$twin.")) {
      if (r.twin) value = TwinPath(*r.twin, std::string_view(e.value).substr(6));
    } else {
      value = e.value;
    }
    if (!value) continue;  // a twin path that is not there adds nothing
    for (auto& endpoint : e.endpoints) {
      if (!std::binary_search(a.endpoints.begin(), a.endpoints.end(), endpoint)) continue;
      auto it = std::find_if(a.enrichments.begin(), a.enrichments.end(),
                             [&](auto& x) { return x.first == endpoint; });
      if (it == a.enrichments.end()) {
        a.enrichments.emplace_back(endpoint, std::vector<std::pair<std::string, std::string>>{});
        it = std::prev(a.enrichments.end());
      }
      it->second.emplace_back(e.key, *value);
    }
  }
  if (a.endpoints.empty()) {
    if (dropped_) dropped_->Inc();
  } else if (fell_back) {
    if (fallback_) fallback_->Inc();
  } else if (routed_) {
    routed_->Inc();
  }
  m.system.route_annotation = EncodeAnnotation(a);
}

Result<std::string> Router::TestCondition(std::string_view condition,
                                          const eventlog::Message& sample,
                                          const json::object* twin) const {
  auto cond = query::ParseRouteCondition(condition);
  if (!cond) return Error(Errc::kInvalidConfig, cond.error().message());
  Resolved r = Resolve(sample, cond->uses_body(), false, {});
  if (twin) r.twin = std::make_shared<const json::object>(*twin);
  query::Value v = cond->Evaluate(InputFor(sample, r));
  if (!v.defined()) return std::string("undefined");
  return std::string(query::IsTrue(v) ? "true" : "false");
}

bool MessageMatches(const query::RouteCondition& condition, const eventlog::Message& message) {
  Resolved r = Resolve(message, condition.uses_body(), false, {});
  return condition.Matches(InputFor(message, r));
}

std::vector<Route> Router::TestAll(const eventlog::Message& sample, hub::MessageSource source,
                                   const json::object* twin) const {
  std::vector<Route> out;
  auto c = Current();
  if (!c) return out;
  size_t si = Index(source);
  Resolved r = Resolve(sample, c->uses_body[si], false, {});
  if (twin) r.twin = std::make_shared<const json::object>(*twin);
  auto in = InputFor(sample, r);
  for (auto& cr : c->routes[si]) {
    if (cr.condition.Matches(in)) out.push_back(*cr.route);
  }
  return out;
}

}  // namespace orrery::routing
