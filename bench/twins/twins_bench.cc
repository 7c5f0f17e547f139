// bench/twins: digital twin patches per second, (a) in process on TwinGraph over the real
// RocksDB state store (every patch validated against its model and group-committed before it
// is acknowledged) and (b) through a real `orrery serve`'s REST API over HTTPS with bearer
// tokens, as ADT clients send them. The peer figure is Azure Digital Twins' documented limit
// of 1,000 twin API requests per second per instance (patches count against it); it cannot
// run here, so the ratio is against that published number.
//
//   twins_bench [--quick] [--twins N] [--patches N] [--window W] [--connections C]
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

#include <fmt/format.h>
#include <boost/asio/ssl/context.hpp>
#include <boost/json.hpp>

#include "base/files.h"
#include "base/strings.h"
#include "base/time.h"
#include "bench/common/https_load.h"
#include "bench/common/options.h"
#include "identity/principals.h"
#include "net/http_client.h"
#include "store/kv_store.h"
#include "test/support/orrery_server.h"
#include "twins/model_store.h"
#include "twins/twin_graph.h"

namespace orrery {
namespace {
namespace json = boost::json;
namespace http = boost::beast::http;
using bench::Clock;

constexpr double kAdtPatchesPerSecond = 1000;  // ADT: API requests per second per instance

const char* kModel = R"({"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Sensor;1",
  "@type":"Interface","contents":[{"@type":"Property","name":"temperature","schema":"double"},
  {"@type":"Property","name":"status","schema":"string"}]})";

struct Options {
  size_t twins = 10'000;
  size_t patches = 200'000;
  size_t window = 512;  // in-process patches in flight
  size_t connections = 32;
  std::string orrery;
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Runs `n` operations with at most `window` in flight; `start(i, done)` begins operation i.
template <class Start>
double RunWindowed(size_t n, size_t window, Start start, std::atomic<size_t>& errors) {
  std::mutex mu;
  std::condition_variable cv;
  size_t in_flight = 0, finished = 0;
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    start(i, [&](bool ok) {
      if (!ok) ++errors;
      std::lock_guard lock(mu);
      --in_flight;
      ++finished;
      cv.notify_all();
    });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished == n; });
  return Seconds(Clock::now() - t0);
}

int InProcess(const Options& o) {
  auto dir =
      std::filesystem::temp_directory_path() / fmt::format("orrery-twins-bench-{}", ::getpid());
  std::filesystem::remove_all(dir);
  auto kv = store::OpenRocksDb({.path = dir});
  if (!kv) return fmt::print(stderr, "store: {}\n", kv.error().message()), 1;
  auto models = twins::ModelStore::Open(kv->get(), {}, timeutil::NowMs);
  if (!models || !(*models)->Add({json::parse(kModel)})) return fmt::print(stderr, "models\n"), 1;
  auto graph = twins::TwinGraph::Open(kv->get(), models->get(), {}, timeutil::NowMs);
  if (!graph) return fmt::print(stderr, "graph: {}\n", graph.error().message()), 1;
  std::atomic<size_t> errors = 0;
  double created = RunWindowed(
      o.twins, o.window,
      [&](size_t i, auto done) {
        json::object t{{"$metadata", json::object{{"$model", "dtmi:bench:Sensor;1"}}},
                       {"temperature", 20.0},
                       {"status", "ok"}};
        (*graph)->PutTwin(fmt::format("sensor-{:06d}", i), std::move(t), "",
                          [done](Result<json::object> r) { done(r.has_value()); });
      },
      errors);
  double patched = RunWindowed(
      o.patches, o.window,
      [&](size_t i, auto done) {
        json::array patch{json::object{{"op", "replace"},
                                       {"path", "/temperature"},
                                       {"value", 20.0 + static_cast<double>(i % 100) / 10}}};
        (*graph)->PatchTwin(fmt::format("sensor-{:06d}", (i * 7919) % o.twins), std::move(patch),
                            "", [done](Result<std::string> r) { done(r.has_value()); });
      },
      errors);
  double per_s = static_cast<double>(o.patches) / patched;
  fmt::print("in process (TwinGraph on RocksDB, {} in flight)\n", o.window);
  fmt::print("  create   {:>8} twins      {:>9.0f}/s\n", o.twins,
             static_cast<double>(o.twins) / created);
  fmt::print(
      "  patch    {:>8} patches    {:>9.0f}/s   {:.1f}x ADT's {:.0f}/s  (target 50,000/s: "
      "{:.2f}x)\n",
      o.patches, per_s, per_s / kAdtPatchesPerSecond, kAdtPatchesPerSecond, per_s / 50'000);
  if (errors) fmt::print("  {} operations failed\n", errors.load());
  graph->reset();
  models->reset();
  (*kv)->Drain();
  kv->reset();
  std::filesystem::remove_all(dir);
  return errors ? 1 : 0;
}

int OverRest(const Options& o) {
  testing::OrreryServer server("twins-bench");
  if (!server.started())
    return fmt::print(stderr, "orrery did not start:\n{}\n", server.process().output()), 1;
  identity::PrincipalStore principals(server.data_dir() / "identity");
  auto sp = principals.Create("bench", identity::kOwner);
  if (!sp) return fmt::print(stderr, "principal: {}\n", sp.error().message()), 1;
  auto tenant = files::ReadFile(server.data_dir() / "identity" / "tenant");
  net::HttpClientOptions ho;
  ho.tls.ca_file = server.ca_file();
  net::Headers form;
  form.Set("Content-Type", "application/x-www-form-urlencoded");
  auto tok = net::Fetch(
      "POST", server.TwinsUrl("/" + std::string(strings::Trim(*tenant)) + "/oauth2/v2.0/token"),
      std::move(form),
      "grant_type=client_credentials&scope=https%3A%2F%2Fdigitaltwins.azure.net%2F.default"
      "&client_id=" +
          sp->principal.client_id + "&client_secret=" + sp->secret,
      ho);
  if (!tok || tok->status != 200) return fmt::print(stderr, "no token\n"), 1;
  std::string bearer =
      "Bearer " + std::string(json::parse(tok->body).at("access_token").as_string());

  boost::asio::ssl::context tls(boost::asio::ssl::context::tls_client);
  tls.load_verify_file(server.ca_file().string());
  tls.set_verify_mode(boost::asio::ssl::verify_peer);
  const uint16_t port = server.ports().twins;
  const std::string api = "?api-version=2023-10-31";
  std::atomic<size_t> errors = 0;
  auto check = [&](const bench::Response& r, Clock::duration) {
    if (r.result_int() >= 300) {
      if (errors++ < 3)
        fmt::print(stderr, "HTTP {}: {}\n", r.result_int(), r.body().substr(0, 200));
    }
  };
  size_t step = 0;
  bench::RunLoad(
      tls, port, bearer, 1,
      [&]() -> std::optional<bench::Request> {
        if (step++ > 0) return std::nullopt;
        return bench::Request{
            http::verb::post, "/models" + api, std::string("[") + kModel + "]", {}};
      },
      check);
  size_t next = 0;
  auto t0 = Clock::now();
  bench::RunLoad(
      tls, port, bearer, o.connections,
      [&]() -> std::optional<bench::Request> {
        if (next >= o.twins) return std::nullopt;
        return bench::Request{
            http::verb::put,
            fmt::format("/digitaltwins/sensor-{:06d}{}", next++, api),
            R"({"$metadata":{"$model":"dtmi:bench:Sensor;1"},"temperature":20,"status":"ok"})",
            {}};
      },
      check);
  double created = Seconds(Clock::now() - t0);
  size_t patches = o.patches / 4, sent = 0;
  std::vector<double> latencies;
  latencies.reserve(patches);
  t0 = Clock::now();
  bench::RunLoad(
      tls, port, bearer, o.connections,
      [&]() -> std::optional<bench::Request> {
        if (sent >= patches) return std::nullopt;
        size_t i = sent++;
        return bench::Request{
            http::verb::patch,
            fmt::format("/digitaltwins/sensor-{:06d}{}", (i * 7919) % o.twins, api),
            fmt::format(R"([{{"op":"replace","path":"/temperature","value":{}}}])",
                        20.0 + static_cast<double>(i % 100) / 10),
            {{"Content-Type", "application/json-patch+json"}}};
      },
      [&](const bench::Response& r, Clock::duration d) {
        check(r, d);
        latencies.push_back(std::chrono::duration<double, std::milli>(d).count());
      });
  double patched = Seconds(Clock::now() - t0);
  double per_s = static_cast<double>(patches) / patched;
  fmt::print("REST over HTTPS ({} connections, bearer token, one orrery serve)\n", o.connections);
  fmt::print("  create   {:>8} twins      {:>9.0f}/s\n", o.twins,
             static_cast<double>(o.twins) / created);
  fmt::print(
      "  patch    {:>8} patches    {:>9.0f}/s   {:.1f}x ADT's {:.0f}/s   p50 {:.2f} ms  p99 {:.2f} "
      "ms\n",
      patches, per_s, per_s / kAdtPatchesPerSecond, kAdtPatchesPerSecond,
      bench::Percentile(latencies, 0.5), bench::Percentile(latencies, 0.99));
  if (errors) fmt::print("  {} requests failed\n", errors.load());
  return errors ? 1 : 0;
}

}  // namespace
}  // namespace orrery

int main(int argc, char** argv) {
  using namespace orrery;
  Options o;
  o.orrery = bench::DefaultOrreryBinary(argv[0]);
  if (!bench::ParseFlags(
          argc, argv,
          {{"--quick", [&](const std::string&) { o.twins = 2'000, o.patches = 40'000; }, false},
           {"--twins", [&](const std::string& v) { o.twins = std::stoul(v); }},
           {"--patches", [&](const std::string& v) { o.patches = std::stoul(v); }},
           {"--window", [&](const std::string& v) { o.window = std::stoul(v); }},
           {"--connections", [&](const std::string& v) { o.connections = std::stoul(v); }},
           {"--orrery", [&](const std::string& v) { o.orrery = v; }}},
          "usage: twins_bench [--quick] [--twins N] [--patches N] [--window W] "
          "[--connections C] [--orrery PATH]")) {
    return 2;
  }
  bench::UseOrreryBinary(o.orrery);
  fmt::print("Twins benchmark: {} twins, {} patches, {} cores\n\n", o.twins, o.patches,
             std::thread::hardware_concurrency());
  int rc = InProcess(o);
  fmt::print("\n");
  return rc | OverRest(o);
}
