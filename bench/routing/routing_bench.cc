// bench/routing: message routing's decision at ingestion, on one core.
//
//   annotate   Router::Annotate over JSON telemetry with 10 routes whose conditions read the
//              body ($body.temperature > t): the body is parsed once per message, then every
//              route's condition is evaluated and the annotation encoded — what each device
//              message costs on its way into the event log.
//   evaluate   the 10 conditions alone on pre-parsed bodies: condition evaluations/s.
//   properties the same with conditions on application and system properties (no body).
//
// Target (issue 7): >= 1M condition evaluations/s per core. No peer can run here (IoT Hub's
// routing is a managed service); the figure is compared with the target. Usage:
//   routing_bench [--seconds S]
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "query/routing/route_condition.h"
#include "routing/config.h"
#include "routing/router.h"

using namespace orrery;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

eventlog::Message Message(int i) {
  eventlog::Message m;
  m.body = fmt::format(R"({{"temperature":{},"humidity":{},"deviceState":"ok","seq":{}}})", i % 120,
                       (i * 7) % 100, i);
  m.properties = {{"processingPath", i % 3 == 0 ? "hot" : "cold"}, {"fw", "2.1"}};
  m.system.connection_device_id = fmt::format("dev-{}", i % 1000);
  m.system.content_type = "application/json";
  m.system.content_encoding = "utf-8";
  return m;
}

template <class F>
double PerSecond(double seconds, F&& step) {
  uint64_t n = 0;
  auto end = Clock::now() +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  auto start = Clock::now();
  while (Clock::now() < end) {
    for (int i = 0; i < 1000; ++i)
      step(n++);
  }
  return static_cast<double>(n) / std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 3;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--seconds" && i + 1 < argc) {
      seconds = std::stod(argv[++i]);
    } else {
      fmt::print(stderr, "usage: routing_bench [--seconds S]\n");
      return 2;
    }
  }
  constexpr int kRoutes = 10;
  json::array storage, routes, property_routes;
  for (int r = 0; r < kRoutes; ++r) {
    storage.push_back(json::object{{"name", fmt::format("e{}", r)}});
    routes.push_back(json::object{{"name", fmt::format("r{}", r)},
                                  {"condition", fmt::format("$body.temperature > {}", 10 * r + 5)},
                                  {"endpointNames", json::array{fmt::format("e{}", r)}}});
    property_routes.push_back(json::object{
        {"name", fmt::format("p{}", r)},
        {"condition", fmt::format("processingPath = 'hot' AND $contentType = 'application/json' "
                                  "AND fw = '{}'",
                                  r == 0 ? "2.1" : "9.9")},
        {"endpointNames", json::array{fmt::format("e{}", r)}}});
  }
  auto config = routing::ConfigFromJson(
      json::object{{"endpoints", json::object{{"storageContainers", storage}}}, {"routes", routes}},
      {});
  if (!config) {
    fmt::print(stderr, "{}\n", config.error().message());
    return 1;
  }
  routing::Router router({.hub_name = "bench"});
  if (auto st = router.SetConfig(*config); !st) {
    fmt::print(stderr, "{}\n", st.error().message());
    return 1;
  }
  std::vector<eventlog::Message> messages;
  for (int i = 0; i < 4096; ++i)
    messages.push_back(Message(i));

  fmt::print("Routing benchmark: {} routes, {} s per measure, 1 thread (of {} cores)\n\n", kRoutes,
             seconds, std::thread::hardware_concurrency());

  double annotate = PerSecond(seconds, [&](uint64_t n) {
    router.Annotate(messages[n % messages.size()], hub::MessageSource::kDeviceMessages);
  });
  fmt::print(
      "annotate   {:>12.0f} messages/s  = {:>12.0f} condition evaluations/s "
      "(body parse + 10 routes + annotation)\n",
      annotate, annotate * kRoutes);

  std::vector<query::RouteCondition> conditions;
  for (const auto& r : config->routes)
    conditions.push_back(*query::ParseRouteCondition(r.condition));
  std::vector<json::value> bodies;
  for (auto& m : messages)
    bodies.push_back(json::parse(m.body));
  volatile uint64_t matched = 0;
  double eval = PerSecond(seconds, [&](uint64_t n) {
    query::RouteInput in;
    in.body = &bodies[n % bodies.size()];
    matched = matched + conditions[n % kRoutes].Matches(in);
  });
  fmt::print(
      "evaluate   {:>12.0f} condition evaluations/s ($body.temperature > t, parsed bodies)"
      "  vs target 1,000,000: {:.1f}x\n",
      eval, eval / 1e6);

  std::vector<query::RouteCondition> props;
  for (auto& r : property_routes)
    props.push_back(*query::ParseRouteCondition(r.as_object().at("condition").as_string()));
  double prop = PerSecond(seconds, [&](uint64_t n) {
    const auto& m = messages[n % messages.size()];
    query::RouteInput in;
    in.app_properties = m.properties;
    in.system.Set(query::SystemProperty::kContentType, m.system.content_type);
    matched = matched + props[n % kRoutes].Matches(in);
  });
  fmt::print(
      "properties {:>12.0f} condition evaluations/s (3-term AND on properties)"
      "  vs target 1,000,000: {:.1f}x\n",
      prop, prop / 1e6);
  fmt::print("\nannotate vs target (10 evaluations per message): {:.1f}x\n",
             annotate * kRoutes / 1e6);
  return 0;
}
