#include "twins/notifications.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "query/routing/route_condition.h"
#include "routing/annotation.h"
#include "routing/config.h"
#include "twins/errc.h"

namespace orrery::twins {
namespace json = boost::json;

namespace {

constexpr std::string_view kOutboxSpace = "dt.outbox";
constexpr std::string_view kEndpointSpace = "dt.endpoint";
constexpr std::string_view kRouteSpace = "dt.eventroute";
constexpr std::string_view kMasked = "********";
// How long the pump waits before retrying events a log refused (backpressure, I/O error).
constexpr auto kRetryDelay = std::chrono::milliseconds(200);

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("twins");
  return l;
}

// Ids and names in messages: at most 80 bytes of them.
std::string_view Clip(std::string_view s) {
  return s.substr(0, 80);
}

std::string_view TypeName(GraphChange::Kind k) {
  switch (k) {
    case GraphChange::Kind::kTwinCreate:
      return "Microsoft.DigitalTwins.Twin.Create";
    case GraphChange::Kind::kTwinUpdate:
      return "Microsoft.DigitalTwins.Twin.Update";
    case GraphChange::Kind::kTwinDelete:
      return "Microsoft.DigitalTwins.Twin.Delete";
    case GraphChange::Kind::kRelationshipCreate:
      return "Microsoft.DigitalTwins.Relationship.Create";
    case GraphChange::Kind::kRelationshipUpdate:
      return "Microsoft.DigitalTwins.Relationship.Update";
    case GraphChange::Kind::kRelationshipDelete:
      return "Microsoft.DigitalTwins.Relationship.Delete";
  }
  return "";
}

// A W3C trace context for an event raised here (a fresh trace).
std::string NewTraceparent() {
  std::string trace = crypto::RandomUuid(), span = crypto::RandomUuid();
  std::erase(trace, '-');
  std::erase(span, '-');
  return "00-" + trace + "-" + span.substr(0, 16) + "-01";
}

std::string OutboxKey(uint64_t ticket) {
  return fmt::format("{:016x}", ticket);
}

Error Invalid(std::string m) {
  return Error(Errc::kInvalidArgument, std::move(m));
}

Status CheckRouteId(std::string_view id) {
  if (strings::IsSimpleName(id, 64)) return Ok();
  return Error(
      Errc::kEventRouteIdInvalid,
      fmt::format("event route id '{}' must be 1-64 letters, digits, '-', '_' or '.'", Clip(id)));
}

json::object EndpointJson(const EventEndpoint& e, bool with_secret) {
  if (e.type == EventEndpoint::Type::kEventLog) {
    return json::object{{"name", e.name}, {"endpointType", "EventLog"}};
  }
  json::object o{{"name", e.name},
                 {"endpointType", "Webhook"},
                 {"url", e.webhook.url},
                 {"maxBatchSize", e.webhook.max_batch_size},
                 {"maxAttempts", e.webhook.max_attempts},
                 {"timeoutInSeconds", e.webhook.timeout_s}};
  if (with_secret) {
    o["secret"] = e.webhook.secret;
  } else if (!e.webhook.secret.empty()) {
    o["secret"] = kMasked;
  }
  return o;
}

}  // namespace

Result<EventEndpoint> EndpointFromJson(std::string name, const json::value& v) {
  ORRERY_TRY(routing::CheckEndpointName(name));
  auto* o = v.if_object();
  if (!o) return Invalid("an endpoint must be a JSON object");
  auto* type = o->if_contains("endpointType");
  if (!type || !type->is_string()) {
    return Invalid("an endpoint needs \"endpointType\": \"Webhook\" or \"EventLog\"");
  }
  EventEndpoint e;
  e.name = name;
  if (strings::IEquals(type->get_string(), "EventLog")) {
    e.type = EventEndpoint::Type::kEventLog;
    return e;
  }
  if (!strings::IEquals(type->get_string(), "Webhook")) {
    return Invalid(fmt::format("endpointType '{}' is not \"Webhook\" or \"EventLog\"",
                               Clip(type->get_string())));
  }
  // The webhook's fields are routing's: validate them as a routing webhook endpoint.
  json::object w = *o;
  w.erase("endpointType");
  w["name"] = name;
  w["format"] = "cloudEvents";
  json::object config{{"endpoints", json::object{{"webhooks", json::array{w}}}}};
  auto parsed = routing::ConfigFromJson(config, routing::ConfigLimits{});
  if (!parsed) return Invalid(parsed.error().message());
  e.webhook = parsed->webhooks.front();
  return e;
}

EventFilterInput::EventFilterInput(const json::object& event) {
  for (auto& [k, v] : event) {
    if (k != "data" && v.is_string()) {
      attributes_.emplace_back(std::string(k), std::string(v.get_string()));
    }
  }
  input_.app_properties = attributes_;
  input_.body = event.if_contains("data");
}

json::object EndpointToJson(const EventEndpoint& e) {
  return EndpointJson(e, false);
}

json::object ChangeEvent(const GraphChange& change, std::string_view source) {
  bool relationship = change.kind == GraphChange::Kind::kRelationshipCreate ||
                      change.kind == GraphChange::Kind::kRelationshipUpdate ||
                      change.kind == GraphChange::Kind::kRelationshipDelete;
  std::string subject = change.twin_id;
  if (relationship) subject += "/relationships/" + change.relationship_id;
  return json::object{{"specversion", "1.0"},
                      {"id", crypto::RandomUuid()},
                      {"type", TypeName(change.kind)},
                      {"source", source},
                      {"subject", subject},
                      {"time", timeutil::FormatUtcMs(change.time_ms)},
                      {"datacontenttype", "application/json"},
                      {"traceparent", NewTraceparent()},
                      {"data", change.data}};
}

struct Notifier::Impl {
  store::KvStore* store = nullptr;
  NotifierOptions options;
  std::unique_ptr<eventlog::EventLog> log;
  std::unique_ptr<routing::EndpointManager> webhooks;

  struct CompiledRoute {
    EventRoute route;
    query::RouteCondition condition;
  };
  mutable std::mutex config_mu;  // serialises endpoint and route changes (store writes)
  mutable std::mutex mu;
  std::map<std::string, EventEndpoint, std::less<>> endpoints;  // guarded by mu
  std::map<std::string, CompiledRoute, std::less<>> routes;     // guarded by mu

  // The outbox: events staged with a change (ticket → event), and committed ones waiting for
  // the pump, in ticket order. Guarded by mu.
  uint64_t next_ticket = 1;
  std::map<uint64_t, json::object> staged;
  std::map<uint64_t, json::object> ready;
  bool stopping = false;
  bool stopped = false;
  std::condition_variable cv;
  std::thread pump;
  std::atomic<uint64_t> routed{0};
  std::vector<Notifier::Subscriber> subscribers;  // set before the first change
  std::vector<std::function<bool(const GraphChange&)>> wants;

  // Which endpoints a route sends `event` to (its data parsed as $body).
  std::vector<const EventEndpoint*> Match(const json::object& event) const {
    EventFilterInput in(event);
    std::vector<const EventEndpoint*> out;
    for (auto& [id, r] : routes) {
      if (!r.condition.Matches(in.input())) continue;
      auto e = endpoints.find(r.route.endpoint);
      if (e == endpoints.end()) continue;
      if (std::find(out.begin(), out.end(), &e->second) == out.end()) out.push_back(&e->second);
    }
    return out;
  }

  // Appends `event` to the logs its routes name; `done` runs exactly once: after every
  // append is durable, with the first failure if one failed (some appends may have been
  // made: at-least-once).
  void Route(const json::object& event, std::function<void(Status)> done) {
    std::vector<std::string> hooks;
    bool to_hub = false;
    {
      std::lock_guard lock(mu);
      for (auto* e : Match(event)) {
        if (e->type == EventEndpoint::Type::kWebhook) {
          hooks.push_back(e->name);
        } else {
          to_hub = true;
        }
      }
    }
    if (to_hub && !options.hub_log) to_hub = false;
    if (hooks.empty() && !to_hub) return done(Ok());
    auto str = [&](std::string_view k) {
      auto* v = event.if_contains(k);
      return v && v->is_string() ? std::string(v->get_string()) : std::string();
    };
    // Partition by the twin, so that one twin's events keep their order.
    std::string key = str("subject");
    if (auto slash = key.find('/'); slash != std::string::npos) key.resize(slash);
    if (key.empty()) key = str("source");

    struct Join {
      std::mutex mu;
      int left = 0;
      Status first = Ok();
      std::function<void(Status)> done;
    };
    auto join = std::make_shared<Join>();
    join->left = static_cast<int>(!hooks.empty()) + static_cast<int>(to_hub);
    join->done = std::move(done);
    auto finish = [join](Status st) {
      std::function<void(Status)> run;
      Status result = Ok();
      {
        std::lock_guard lock(join->mu);
        if (!st && join->first) join->first = st;
        if (--join->left > 0) return;
        run = std::move(join->done);
        result = join->first;
      }
      run(result);
    };
    auto callback = [finish](const Result<eventlog::Appended>& r) {
      finish(r ? Ok() : Status(r.error()));
    };
    if (!hooks.empty()) {
      routing::Annotation a;
      a.endpoints = hooks;
      std::sort(a.endpoints.begin(), a.endpoints.end());
      eventlog::Message m;
      m.body = json::serialize(event);
      m.system.content_type = "application/cloudevents+json";
      m.system.content_encoding = "utf-8";
      m.system.message_id = str("id");
      m.system.route_annotation = routing::EncodeAnnotation(a);
      if (auto st = log->AppendToPartition(log->PartitionFor(key), m, callback); !st) finish(st);
    }
    if (to_hub) {
      // The CloudEvents AMQP binding: the data is the body, the attributes are properties.
      eventlog::Message m;
      if (auto* d = event.if_contains("data")) m.body = json::serialize(*d);
      m.system.content_type = "application/json";
      m.system.content_encoding = "utf-8";
      m.system.message_id = str("id");
      for (auto& [k, v] : event) {
        if (k != "data" && v.is_string()) {
          m.properties.emplace_back("cloudEvents:" + std::string(k), std::string(v.get_string()));
        }
      }
      auto* hub = options.hub_log;
      if (auto st = hub->AppendToPartition(hub->PartitionFor(key), m, callback); !st) finish(st);
    }
  }

  void PumpLoop() {
    std::unique_lock lock(mu);
    while (true) {
      cv.wait(lock, [&] { return stopping || !ready.empty(); });
      if (ready.empty()) return;  // stopping, with everything committed routed
      auto batch = std::move(ready);
      ready.clear();
      lock.unlock();
      // Route the batch, then wait for its appends; failures go back to `ready`.
      struct Wait {
        std::mutex mu;
        std::condition_variable cv;
        size_t left = 0;
        std::vector<uint64_t> failed;
      };
      auto w = std::make_shared<Wait>();
      w->left = batch.size();
      for (auto& [ticket, event] : batch) {
        Route(event, [w, t = ticket](Status st) {
          std::lock_guard l(w->mu);
          if (!st) w->failed.push_back(t);
          if (--w->left == 0) w->cv.notify_all();
        });
      }
      std::vector<uint64_t> failed;
      {
        std::unique_lock l(w->mu);
        w->cv.wait(l, [&] { return w->left == 0; });
        failed = w->failed;
      }
      // Subscribers (propagation) see the routed events; they stay in the outbox until done.
      if (!subscribers.empty()) {
        std::unique_lock l(w->mu);
        for (auto& [ticket, event] : batch) {
          if (std::find(failed.begin(), failed.end(), ticket) != failed.end()) continue;
          for (auto& f : subscribers) {
            ++w->left;
            l.unlock();
            f(event, [w] {
              std::lock_guard g(w->mu);
              if (--w->left == 0) w->cv.notify_all();
            });
            l.lock();
          }
        }
        w->cv.wait(l, [&] { return w->left == 0; });
      }
      store::WriteBatch done;
      for (auto& [ticket, event] : batch) {
        if (std::find(failed.begin(), failed.end(), ticket) == failed.end()) {
          done.Delete(kOutboxSpace, OutboxKey(ticket));
        }
      }
      routed += batch.size() - failed.size();
      // The outbox entry may outlive its delivery in a crash: then it is routed again.
      if (!done.empty()) {
        if (auto st = store->Write(std::move(done), store::Durability::kBuffered); !st) {
          Log()->warn("event notifications: could not clear the outbox: {}", st.error().message());
        }
      }
      lock.lock();
      if (!failed.empty()) {
        Log()->warn("event notifications: {} events could not be routed yet; retrying",
                    failed.size());
        if (stopping) return;  // they stay in the outbox for the next start
        for (auto t : failed)
          ready.emplace(t, std::move(batch[t]));
        cv.wait_for(lock, kRetryDelay, [&] { return stopping; });
      }
    }
  }

  Status ApplyWebhooks() {
    routing::RoutingConfig config;
    {
      std::lock_guard lock(mu);
      for (auto& [name, e] : endpoints) {
        if (e.type == EventEndpoint::Type::kWebhook) config.webhooks.push_back(e.webhook);
      }
    }
    return webhooks->Apply(config);
  }

  Status Load() {
    ORRERY_TRY(store->Scan(kEndpointSpace, "", [&](std::string_view key, std::string_view value) {
      boost::system::error_code ec;
      auto v = json::parse(value, ec);
      auto e =
          ec ? Result<EventEndpoint>(Invalid("not JSON")) : EndpointFromJson(std::string(key), v);
      if (!e) {
        Log()->error("event notifications: stored endpoint '{}' is unreadable ({}); skipped", key,
                     e.error().message());
        return true;
      }
      endpoints.emplace(std::string(key), std::move(*e));
      return true;
    }));
    ORRERY_TRY(store->Scan(kRouteSpace, "", [&](std::string_view key, std::string_view value) {
      boost::system::error_code ec;
      auto v = json::parse(value, ec);
      auto* o = ec ? nullptr : v.if_object();
      auto str = [&](std::string_view k) {
        auto* x = o ? o->if_contains(k) : nullptr;
        return x && x->is_string() ? std::string(x->get_string()) : std::string();
      };
      auto cond = query::ParseRouteCondition(str("filter"));
      if (!o || !cond) {
        Log()->error("event notifications: stored route '{}' is unreadable; skipped", key);
        return true;
      }
      routes.emplace(
          std::string(key),
          CompiledRoute{{std::string(key), str("endpointName"), str("filter")}, std::move(*cond)});
      return true;
    }));
    return store->Scan(kOutboxSpace, "", [&](std::string_view key, std::string_view value) {
      uint64_t ticket = std::strtoull(std::string(key).c_str(), nullptr, 16);
      boost::system::error_code ec;
      auto v = json::parse(value, ec);
      if (!ec && v.is_object()) ready.emplace(ticket, std::move(v.get_object()));
      next_ticket = std::max(next_ticket, ticket + 1);
      return true;
    });
  }
};

Notifier::Notifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Notifier::~Notifier() {
  Stop();
}

Result<std::unique_ptr<Notifier>> Notifier::Open(store::KvStore* store, NotifierOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  if (!options.now_ms) options.now_ms = &timeutil::NowMs;
  impl->options = std::move(options);
  auto& o = impl->options;
  ORRERY_ASSIGN_OR_RETURN(impl->log, eventlog::EventLog::Open(o.dir / "log", o.log));
  impl->webhooks = std::make_unique<routing::EndpointManager>(
      impl->log.get(), routing::EndpointOptions{.dead_letter_root = o.dir / "dead-letter",
                                                .webhook_tls = o.webhook_tls,
                                                .hub_name = o.source,
                                                .now_ms = o.now_ms});
  ORRERY_TRY(impl->Load());
  ORRERY_TRY(impl->ApplyWebhooks());
  if (!impl->ready.empty()) {
    Log()->info("event notifications: routing {} events a previous run left in the outbox",
                impl->ready.size());
  }
  auto* raw = impl.get();
  impl->pump = std::thread([raw] { raw->PumpLoop(); });
  return std::unique_ptr<Notifier>(new Notifier(std::move(impl)));
}

void Notifier::Stop() {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mu);
    if (d.stopped) return;
    d.stopping = d.stopped = true;
  }
  d.cv.notify_all();
  if (d.pump.joinable()) d.pump.join();
  if (d.webhooks) d.webhooks->Stop();
  if (d.log) d.log->Close();
}

uint64_t Notifier::OnChange(GraphChange change, store::WriteBatch& batch) {
  auto& d = *impl_;
  {
    // Nobody would take it: no record, no cost (the graph's bulk paths stay fast).
    std::lock_guard lock(d.mu);
    bool wanted = !d.routes.empty();
    for (auto& w : d.wants)
      wanted = wanted || w(change);
    if (!wanted) return 0;
  }
  json::object event = ChangeEvent(change, d.options.source);
  std::string record = json::serialize(event);
  std::lock_guard lock(d.mu);
  uint64_t ticket = d.next_ticket++;
  batch.Put(kOutboxSpace, OutboxKey(ticket), record);
  d.staged.emplace(ticket, std::move(event));
  return ticket;
}

void Notifier::OnCommitted(uint64_t ticket, bool ok) {
  auto& d = *impl_;
  {
    std::lock_guard lock(d.mu);
    auto it = d.staged.find(ticket);
    if (it == d.staged.end()) return;
    if (ok) d.ready.emplace(ticket, std::move(it->second));
    d.staged.erase(it);
  }
  d.cv.notify_all();
}

void Notifier::PublishTelemetry(std::string twin_id, std::string component, std::string model,
                                std::string message_id, std::string source_time, std::string body,
                                std::function<void(Status)> done) {
  auto& d = *impl_;
  boost::system::error_code ec;
  json::value data = json::parse(body, ec);
  if (ec) return done(Invalid("the telemetry must be a JSON document"));
  json::object event{{"specversion", "1.0"},
                     {"id", message_id},
                     {"type", "microsoft.iot.telemetry"},
                     {"source", d.options.source + "/digitaltwins/" + twin_id}};
  if (!component.empty()) event["subject"] = component;
  event["dataschema"] = model;
  event["time"] = timeutil::FormatUtcMs(d.options.now_ms());
  event["datacontenttype"] = "application/json";
  event["traceparent"] = NewTraceparent();
  if (!source_time.empty()) event["telemetrysourcetime"] = source_time;
  event["data"] = std::move(data);
  d.Route(event, [&d, done = std::move(done)](Status st) {
    if (st) ++d.routed;
    done(st ? Ok()
            : Status(Error(Errc::kUnavailable,
                           "the telemetry could not be routed: " + st.error().message())));
  });
}

Status Notifier::PutEndpoint(EventEndpoint endpoint) {
  auto& d = *impl_;
  std::lock_guard config(d.config_mu);
  {
    std::lock_guard lock(d.mu);
    auto it = d.endpoints.find(endpoint.name);
    if (it == d.endpoints.end() && d.endpoints.size() >= d.options.max_endpoints) {
      return Error(Errc::kLimitExceeded,
                   fmt::format("at most {} endpoints", d.options.max_endpoints));
    }
    // A secret sent back masked keeps the stored one.
    if (it != d.endpoints.end() && endpoint.webhook.secret == kMasked) {
      endpoint.webhook.secret = it->second.webhook.secret;
    }
  }
  if (endpoint.webhook.secret == kMasked)
    return Invalid("a new endpoint's secret cannot be masked");
  store::WriteBatch batch;
  batch.Put(kEndpointSpace, endpoint.name, json::serialize(EndpointJson(endpoint, true)));
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  {
    std::lock_guard lock(d.mu);
    d.endpoints[endpoint.name] = endpoint;
  }
  return d.ApplyWebhooks();
}

Status Notifier::DeleteEndpoint(std::string_view name) {
  auto& d = *impl_;
  std::lock_guard config(d.config_mu);
  {
    std::lock_guard lock(d.mu);
    if (!d.endpoints.contains(name)) {
      return Error(Errc::kEndpointNotFound, fmt::format("there is no endpoint '{}'", name));
    }
    for (auto& [id, r] : d.routes) {
      if (r.route.endpoint == name) {
        return Error(
            Errc::kEndpointInUse,
            fmt::format("event route '{}' sends to endpoint '{}': delete it first", id, name));
      }
    }
  }
  store::WriteBatch batch;
  batch.Delete(kEndpointSpace, name);
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  {
    std::lock_guard lock(d.mu);
    d.endpoints.erase(d.endpoints.find(name));
  }
  return d.ApplyWebhooks();
}

std::vector<EventEndpoint> Notifier::Endpoints() const {
  std::lock_guard lock(impl_->mu);
  std::vector<EventEndpoint> out;
  for (auto& [name, e] : impl_->endpoints)
    out.push_back(e);
  return out;
}

Result<EventEndpoint> Notifier::GetEndpoint(std::string_view name) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->endpoints.find(name);
  if (it == impl_->endpoints.end()) {
    return Error(Errc::kEndpointNotFound, fmt::format("there is no endpoint '{}'", name));
  }
  return it->second;
}

Status Notifier::PutRoute(EventRoute route) {
  auto& d = *impl_;
  ORRERY_TRY(CheckRouteId(route.id));
  if (route.filter.size() > d.options.max_filter_bytes) {
    return Error(Errc::kEventRouteFilterInvalid,
                 fmt::format("the filter is {} bytes; the limit is {}", route.filter.size(),
                             d.options.max_filter_bytes));
  }
  if (strings::Trim(route.filter).empty()) {
    return Error(Errc::kEventRouteFilterInvalid,
                 "the filter is empty: use \"true\" to route every event");
  }
  auto cond = query::ParseRouteCondition(route.filter);
  if (!cond) return Error(Errc::kEventRouteFilterInvalid, cond.error().message());
  std::lock_guard config(d.config_mu);
  {
    std::lock_guard lock(d.mu);
    if (!d.endpoints.contains(route.endpoint)) {
      return Error(Errc::kEventRouteEndpointInvalid,
                   fmt::format("there is no endpoint '{}'", Clip(route.endpoint)));
    }
    if (!d.routes.contains(route.id) && d.routes.size() >= d.options.max_routes) {
      return Error(Errc::kLimitExceeded,
                   fmt::format("at most {} event routes", d.options.max_routes));
    }
  }
  store::WriteBatch batch;
  batch.Put(
      kRouteSpace, route.id,
      json::serialize(json::object{{"endpointName", route.endpoint}, {"filter", route.filter}}));
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  std::lock_guard lock(d.mu);
  std::string id = route.id;
  d.routes.insert_or_assign(id, Impl::CompiledRoute{std::move(route), std::move(*cond)});
  return Ok();
}

Status Notifier::DeleteRoute(std::string_view id) {
  auto& d = *impl_;
  std::lock_guard config(d.config_mu);
  {
    std::lock_guard lock(d.mu);
    if (!d.routes.contains(id)) {
      return Error(Errc::kEventRouteNotFound, fmt::format("there is no event route '{}'", id));
    }
  }
  store::WriteBatch batch;
  batch.Delete(kRouteSpace, id);
  ORRERY_TRY(d.store->Write(std::move(batch), store::Durability::kDurable));
  std::lock_guard lock(d.mu);
  d.routes.erase(d.routes.find(id));
  return Ok();
}

std::vector<EventRoute> Notifier::Routes() const {
  std::lock_guard lock(impl_->mu);
  std::vector<EventRoute> out;
  for (auto& [id, r] : impl_->routes)
    out.push_back(r.route);
  return out;
}

Result<EventRoute> Notifier::GetRoute(std::string_view id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->routes.find(id);
  if (it == impl_->routes.end()) {
    return Error(Errc::kEventRouteNotFound, fmt::format("there is no event route '{}'", id));
  }
  return it->second.route;
}

void Notifier::Subscribe(Subscriber f, std::function<bool(const GraphChange&)> wants) {
  impl_->subscribers.push_back(std::move(f));
  impl_->wants.push_back(std::move(wants));
}

std::vector<routing::EndpointHealth> Notifier::Health() const {
  return impl_->webhooks->Health();
}

uint64_t Notifier::routed() const {
  return impl_->routed.load();
}

}  // namespace orrery::twins
