// The routing service: owns the router and the endpoints, and the stored configuration
// (<data-dir>/routing/routing.json, replaced atomically). A configuration is validated whole,
// then the endpoints are applied (new ones start at the log's end), then the router starts
// using it — so no message is annotated for an endpoint whose reader does not exist yet.
//
// Thread safety: every method is safe from any thread; Configure calls are serialised.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

#include <boost/json/fwd.hpp>

#include "base/error.h"
#include "routing/config.h"
#include "routing/endpoints.h"
#include "routing/router.h"

namespace orrery::routing {

struct ServiceOptions {
  std::filesystem::path state_dir;    // <data-dir>/routing: routing.json, dead-letter/
  std::filesystem::path config_file;  // optional: replaces the stored configuration at start
  ConfigLimits limits;
  RouterOptions router;
  EndpointOptions endpoints;  // archive_root etc.; dead_letter_root defaults under state_dir
};

class RoutingService {
 public:
  // Loads the configuration (config_file, else routing.json, else none) and starts it.
  static Result<std::unique_ptr<RoutingService>> Open(eventlog::EventLog* log,
                                                      ServiceOptions options);
  ~RoutingService();

  std::shared_ptr<Router> router() const { return router_; }
  // Validates, applies and stores a configuration in IoT Hub's routing JSON shape. A webhook
  // secret sent back masked ("********") keeps the stored one.
  Result<RoutingConfig> Configure(const boost::json::value& config);
  std::shared_ptr<const RoutingConfig> config() const { return router_->config(); }
  std::vector<EndpointHealth> Health() const { return endpoints_->Health(); }
  const ConfigLimits& limits() const { return options_.limits; }
  // Flushes and stops the endpoints. Call before the event log closes.
  void Stop();

 private:
  RoutingService(eventlog::EventLog* log, ServiceOptions options);
  Status Install(const RoutingConfig& config, bool save);

  eventlog::EventLog* log_;
  ServiceOptions options_;
  std::shared_ptr<Router> router_;
  std::unique_ptr<EndpointManager> endpoints_;
  std::mutex mu_;  // serialises Configure
  bool configured_ = false;
};

}  // namespace orrery::routing
