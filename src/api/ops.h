// Operational endpoints on the HTTPS listener: /healthz (the process serves requests),
// /readyz (every enabled service has started; 503 while starting or stopping) and
// /metrics (Prometheus text format 0.0.4). Unauthenticated by design, like Prometheus
// targets: they reveal counts and sizes, never identities or secrets.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "base/metrics.h"
#include "net/http.h"

namespace orrery::api {

struct Readiness {
  std::atomic<bool> ready{false};
  std::atomic<bool> stopping{false};
};

void RegisterOpsRoutes(net::Router& router, metrics::Registry& registry,
                       const Readiness& readiness);

// Adds process facts to the registry: orrery_build_info, resident memory, open file
// descriptors, start time. Returns the collector id.
uint64_t AddProcessCollector(metrics::Registry& registry, std::string version);

}  // namespace orrery::api
