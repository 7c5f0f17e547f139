#include "api/ops.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <fstream>

namespace orrery::api {

void RegisterOpsRoutes(net::Router& router, metrics::Registry& registry,
                       const Readiness& readiness) {
  router.Add("GET", "/healthz", [](net::HttpRequest&, net::Responder r) {
    r.Send(net::HttpResponse::Json(200, R"({"status":"ok"})"));
  });
  router.Add("GET", "/readyz", [&readiness](net::HttpRequest&, net::Responder r) {
    if (readiness.stopping) {
      r.Send(net::HttpResponse::Json(503, R"({"status":"stopping"})"));
    } else if (!readiness.ready) {
      r.Send(net::HttpResponse::Json(503, R"({"status":"starting"})"));
    } else {
      r.Send(net::HttpResponse::Json(200, R"({"status":"ready"})"));
    }
  });
  router.Add("GET", "/metrics", [&registry](net::HttpRequest&, net::Responder r) {
    auto res = net::HttpResponse::Text(200, registry.Render());
    res.headers.Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8");
    r.Send(std::move(res));
  });
}

uint64_t AddProcessCollector(metrics::Registry& registry, std::string version) {
  double start =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  return registry.AddCollector([version = std::move(version), start](metrics::Sink& sink) {
    sink.Gauge("orrery_build_info", "Build information (value is always 1).",
               {{"version", version}}, 1);
    sink.Gauge("process_start_time_seconds", "Start time of the process since the Unix epoch.", {},
               start);
    long pages_total = 0, pages_resident = 0;
    if (std::ifstream statm("/proc/self/statm"); statm >> pages_total >> pages_resident) {
      sink.Gauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
                 static_cast<double>(pages_resident) * static_cast<double>(sysconf(_SC_PAGESIZE)));
    }
    int fds = 0;
    if (DIR* d = opendir("/proc/self/fd")) {
      while (readdir(d))
        ++fds;
      closedir(d);
      sink.Gauge("process_open_fds", "Number of open file descriptors.", {}, fds - 3);
    }
  });
}

}  // namespace orrery::api
