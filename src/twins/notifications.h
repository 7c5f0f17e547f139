// Event notifications of the digital twins service: Azure Digital Twins' event routes and
// endpoints. Every change of the twin graph (Twin.Create/Update/Delete, Relationship.Create/
// Update/Delete) and every telemetry message sent to a twin becomes a CloudEvents 1.0 event;
// each event route whose filter the event matches sends it to the route's endpoint:
//
//   - a webhook: HTTPS POSTs of CloudEvents JSON batches (Content-Type
//     application/cloudevents-batch+json), HMAC-signed, retried with backoff, dead-lettered
//     (routing's webhook sink, reading the notification log below);
//   - the hub's event log (a derived stream): the event's data as the message body with the
//     CloudEvents AMQP binding's properties (cloudEvents:type, cloudEvents:source, …), so that
//     `orrery monitor-events`, Event Hubs clients and stream jobs read it.
//
// Filters are ADT's: `type = 'Microsoft.DigitalTwins.Twin.Create'`, `source`, `subject`, `id`,
// `dataschema`, `datacontenttype`, `specversion`, `time` (the event's attributes, as names),
// `$body.<path>` (the event's data), AND/OR/NOT, comparisons, IN, STARTS_WITH/ENDS_WITH/
// CONTAINS, `true` and `false` — parsed as IoT Hub routing conditions (query/routing), whose
// application properties are the event's attributes.
//
// Delivery is at-least-once, kill -9 included. A graph change's event is written to an outbox
// (keyspace "dt.outbox") in the change's own store batch (ChangeObserver), so it is durable
// exactly when the change is; a pump thread then routes it — appends it to the notification
// log (<dir>, an event log whose messages carry the routing annotation of the webhook
// endpoints they go to) and to the hub's log — and removes it from the outbox once those
// appends are durable. After a crash, what is still in the outbox is routed again (the same
// event id, so receivers can drop duplicates). Telemetry is acknowledged once its appends are
// durable. Routes apply to events raised after they change, as in ADT.
//
// Endpoints (keyspace "dt.endpoint") and routes ("dt.eventroute") are stored; ADT's limits:
// 6 endpoints and 6 routes per instance (configurable).
//
// Thread safety: every method is safe from any thread. OnChange runs under the graph's lock:
// it only builds the event and queues it.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "eventlog/event_log.h"
#include "query/routing/route_condition.h"
#include "routing/endpoints.h"
#include "store/kv_store.h"
#include "twins/twin_graph.h"

namespace orrery::twins {

struct EventEndpoint {
  enum class Type { kWebhook, kEventLog };
  std::string name;
  Type type = Type::kWebhook;
  routing::WebhookEndpoint webhook;  // kWebhook: url, secret, batch size, attempts, timeout
};

struct EventRoute {
  std::string id;
  std::string endpoint;
  std::string filter;
};

struct NotifierOptions {
  std::filesystem::path dir;              // the notification log and dead letters
  std::string source;                     // CloudEvents "source": the instance's host name
  eventlog::EventLog* hub_log = nullptr;  // for kEventLog endpoints; must outlive Stop()
  net::TlsClientOptions webhook_tls;      // trust for webhook receivers
  size_t max_endpoints = 6;               // ADT's limits
  size_t max_routes = 6;
  size_t max_filter_bytes = 4096;
  eventlog::Options log;  // the notification log's (partitions etc.)
  std::function<int64_t()> now_ms;
};

// The endpoint JSON of Orrery's endpoint API: {"endpointType": "Webhook", "url", "secret",
// "maxBatchSize", "maxAttempts", "timeoutInSeconds"} or {"endpointType": "EventLog"}.
Result<EventEndpoint> EndpointFromJson(std::string name, const boost::json::value& v);
boost::json::object EndpointToJson(const EventEndpoint& e);  // secrets masked

// What an event route filter (an IoT Hub routing condition) sees of a CloudEvent: its string
// attributes as properties, its data as $body. Borrows `event`, which must outlive it.
class EventFilterInput {
 public:
  explicit EventFilterInput(const boost::json::object& event);
  EventFilterInput(const EventFilterInput&) = delete;
  EventFilterInput& operator=(const EventFilterInput&) = delete;
  const query::RouteInput& input() const { return input_; }
  const std::vector<query::AppProperty>& attributes() const { return attributes_; }

 private:
  std::vector<query::AppProperty> attributes_;
  query::RouteInput input_;
};

// The CloudEvent (structured JSON) of a graph change, with a fresh id.
boost::json::object ChangeEvent(const GraphChange& change, std::string_view source);

class Notifier final : public ChangeObserver {
 public:
  // Opens the notification log under options.dir, loads endpoints and routes, starts the
  // webhook endpoints and the pump, and queues what the outbox still holds.
  static Result<std::unique_ptr<Notifier>> Open(store::KvStore* store, NotifierOptions options);
  ~Notifier() override;  // Stop()s

  uint64_t OnChange(GraphChange change, store::WriteBatch& batch) override;
  void OnCommitted(uint64_t ticket, bool ok) override;

  // A telemetry message to twin `twin_id` (`component` empty, or the component path) whose
  // model (the component's, for component telemetry) is `model`: routed as
  // microsoft.iot.telemetry with `message_id` as its id. `done` runs once it is durable on
  // every log it goes to (at once when no route takes it), on a log's sync thread or the
  // caller's. `body` must be JSON.
  void PublishTelemetry(std::string twin_id, std::string component, std::string model,
                        std::string message_id, std::string source_time, std::string body,
                        std::function<void(Status)> done);

  // Endpoints. Blocking (durable writes): call off the I/O threads.
  Status PutEndpoint(EventEndpoint endpoint);
  // kEndpointInUse while a route names it.
  Status DeleteEndpoint(std::string_view name);
  std::vector<EventEndpoint> Endpoints() const;
  Result<EventEndpoint> GetEndpoint(std::string_view name) const;

  // Event routes (ADT's /eventroutes). Blocking.
  Status PutRoute(EventRoute route);
  Status DeleteRoute(std::string_view id);
  std::vector<EventRoute> Routes() const;  // by id
  Result<EventRoute> GetRoute(std::string_view id) const;

  // Sees each committed graph change's event once it is routed and before it leaves the
  // outbox (so a crash replays it: at-least-once): `f(event, done)` calls `done` exactly once,
  // from any thread, when what it did is durable. Runs on the pump thread. `wants(change)`
  // (under the graph's lock: cheap, no calls into the graph) says whether it needs the event;
  // a change that no route and no subscriber wants gets no outbox record at all (ADT drops
  // events no route takes). Call before the first change.
  using Subscriber =
      std::function<void(const boost::json::object& event, std::function<void()> done)>;
  void Subscribe(Subscriber f, std::function<bool(const GraphChange&)> wants);

  std::vector<routing::EndpointHealth> Health() const;
  // Events routed since the start (for metrics and tests).
  uint64_t routed() const;

  // Routes what is queued, stops the pump and the endpoints (flushed; checkpoints stay).
  void Stop();

  struct Impl;

 private:
  explicit Notifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::twins
