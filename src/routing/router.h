// The router: IoT Hub's message routing decision, made at ingestion (hub::MessageAnnotator).
// For each message it evaluates the enabled routes of the message's source, collects their
// endpoints (a message matched by several routes to one endpoint goes there once), applies
// the fallback route (device messages that match no route go to the built-in `events`
// endpoint, when enabled), computes the enrichments of the chosen endpoints, and records all
// of it in the message's routing annotation (routing/annotation.h). Endpoint readers and the
// built-in endpoint's consumers then only look at the annotation.
//
// Conditions (query/routing/route_condition.h) may read the body — parsed once per message,
// only when some condition needs it and the message is JSON in a UTF encoding — and the
// device's twin, fetched once per message from the registry's cache, only when needed.
//
// Thread safety: Annotate/Wants/Test* are called from any thread concurrently; SetConfig swaps
// the compiled configuration atomically (messages being annotated keep the one they started
// with).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "hub/annotator.h"
#include "query/routing/route_condition.h"
#include "routing/config.h"

namespace orrery::routing {

struct RouterOptions {
  std::string hub_name = "localhost";  // $iothubname, and the hubName of system events
  // The device's (or module's) twin in the service shape, by registry key; null if unknown.
  std::function<std::shared_ptr<const boost::json::object>(std::string_view key)> twin;
  metrics::Registry* metrics = nullptr;
};

// Whether a stored message matches a routing condition as a route would see it ($body parsed
// when the condition reads it and the message is JSON; $twin undefined). For other consumers
// of the log (digital twins ingestion).
bool MessageMatches(const query::RouteCondition& condition, const eventlog::Message& message);

class Router final : public hub::MessageAnnotator {
 public:
  explicit Router(RouterOptions options);
  ~Router() override;

  // Compiles and installs a configuration (validated by ConfigFromJson); kInvalidConfig when
  // a condition does not parse, naming the route.
  Status SetConfig(const RoutingConfig& config);
  std::shared_ptr<const RoutingConfig> config() const;

  bool Wants(hub::MessageSource source) const override;
  void Annotate(eventlog::Message& message, hub::MessageSource source) const override;

  // "Test route": what `condition` evaluates to for a sample message ("true", "false" or
  // "undefined"); kInvalidConfig with the compilation error for a bad condition.
  Result<std::string> TestCondition(std::string_view condition, const eventlog::Message& sample,
                                    const boost::json::object* twin) const;
  // "Test all routes": the enabled routes of `source` that the sample matches.
  std::vector<Route> TestAll(const eventlog::Message& sample, hub::MessageSource source,
                             const boost::json::object* twin) const;

 private:
  struct Compiled;
  std::shared_ptr<const Compiled> Current() const;

  RouterOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const Compiled> compiled_;  // guarded by mu_ (the pointer, not the object)
  metrics::Counter* routed_ = nullptr;
  metrics::Counter* fallback_ = nullptr;
  metrics::Counter* dropped_ = nullptr;
};

}  // namespace orrery::routing
