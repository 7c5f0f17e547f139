// bench/service: the service REST API of a real `orrery serve`, over HTTPS keep-alive
// connections, as back-end applications and the azure-iothub SDK use it.
//
//   setup     N devices created with the registry's bulk POST (100 per request); every tenth
//             tagged {"region":"west"} and given a rank.
//   patches   C connections PATCH /twins/{id} desired properties of random devices for S
//             seconds: twin patches/s (each durable — group-committed fsync — before its 200)
//             and p50/p99 latency. Anchors: IoT Hub S3 allows 250 twin updates/s per unit;
//             Orrery's target is 50,000/s.
//   queries   device-query latency over the N devices (all pages of 1,000 rows): a tag
//             filter, a GROUP BY count, a selective projection, an unindexed full scan.
//
// IoT Hub cannot run here, so its published throttle is the peer figure (a ratio against a
// quota, not a measurement). Usage:
//   service_bench [--quick] [--devices N] [--seconds S] [--connections C] [--orrery PATH]

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "bench/common/https_load.h"
#include "bench/common/options.h"
#include "hub/registry.h"
#include "hub/sas.h"
#include "store/kv_store.h"
#include "test/support/orrery_server.h"

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;
using namespace orrery;
using bench::Percentile;
using bench::Request;
using bench::Response;
using bench::RunLoad;

namespace {

struct Options {
  size_t devices = 100'000;
  double seconds = 10;
  size_t connections = 64;
  std::string orrery;
};

std::string DeviceId(size_t i) {
  return fmt::format("bench-{:06d}", i);
}

// The hub core without HTTP or TLS: `threads` callers patching desired properties of random
// twins through Registry::UpdateTwin on a RocksDB store, each keeping up to 256 patches in
// flight (every completion is durable: group-committed fsync). What the REST path costs on
// top of it is the difference to the `patches` figure.
double EngineTwinPatchesPerSecond(size_t devices, double seconds, size_t threads) {
  testing::TempDir dir("service-bench-engine");
  auto store = store::OpenRocksDb({.path = dir.path() / "state"});
  if (!store) return 0;
  auto registry = hub::Registry::Open(store->get(), {.max_devices = devices + 1});
  if (!registry) return 0;
  std::atomic<size_t> created{0};
  for (size_t i = 0; i < devices; ++i) {
    hub::Identity id;
    id.device_id = DeviceId(i);
    (*registry)->Create(id, [&](Result<hub::IdentityView>) { ++created; });
  }
  (*store)->Drain();
  std::atomic<uint64_t> done{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  auto t0 = Clock::now();
  for (size_t t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::uniform_int_distribution<size_t> pick(0, devices - 1);
      std::atomic<int> inflight{0};
      uint64_t n = 0;
      while (!stop) {
        if (inflight.load() >= 256) {
          std::this_thread::yield();
          continue;
        }
        ++inflight;
        auto patch =
            json::parse(
                fmt::format(R"({{"properties":{{"desired":{{"setpoint":{},"mode":"auto"}}}}}})",
                            ++n))
                .as_object();
        (*registry)->UpdateTwin(DeviceId(pick(rng)), patch, "", [&](Result<hub::TwinChange>) {
          ++done;
          --inflight;
        });
      }
      while (inflight.load() > 0)
        std::this_thread::yield();
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers)
    w.join();
  (*store)->Drain();
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  return static_cast<double>(done.load()) / elapsed;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.orrery = bench::DefaultOrreryBinary(argv[0]);
  if (!bench::ParseFlags(
          argc, argv,
          {{"--quick",
            [&](const std::string&) {
              o.devices = 10'000;
              o.seconds = 3;
            },
            false},
           {"--devices", [&](const std::string& v) { o.devices = std::stoul(v); }},
           {"--seconds", [&](const std::string& v) { o.seconds = std::stod(v); }},
           {"--connections", [&](const std::string& v) { o.connections = std::stoul(v); }},
           {"--orrery", [&](const std::string& v) { o.orrery = v; }}},
          "usage: service_bench [--quick] [--devices N] [--seconds S] "
          "[--connections C] [--orrery PATH]")) {
    return 2;
  }
  bench::UseOrreryBinary(o.orrery);
  fmt::print(
      "Service API benchmark: {} devices, {} connections, {} s of twin patches, {} cores\n\n",
      o.devices, o.connections, o.seconds, std::thread::hardware_concurrency());

  testing::OrreryServer server("service-bench");
  if (!server.started()) {
    fmt::print(stderr, "orrery did not start:\n{}\n", server.process().output());
    return 1;
  }
  auto cs_proc = testing::Process::Spawn(
      {o.orrery, "hub", "connection-string", "--data-dir", server.data_dir().string()});
  cs_proc->Wait();
  auto cs =
      hub::ParseServiceConnectionString(cs_proc->output().substr(0, cs_proc->output().find('\n')));
  if (!cs) {
    fmt::print(stderr, "no connection string: {}\n", cs.error().message());
    return 1;
  }
  auto token =
      hub::MakeSasToken(cs->host_name, cs->key, std::time(nullptr) + 3 * 3600, cs->key_name);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(server.ca_file().string());
  tls.set_verify_mode(asio::ssl::verify_peer);
  const uint16_t port = server.ports().https;
  size_t errors = 0;
  auto check = [&](const Response& r, int want) {
    if (static_cast<int>(r.result_int()) != want) {
      if (errors++ < 5)
        fmt::print(stderr, "HTTP {}: {}\n", r.result_int(), r.body().substr(0, 300));
    }
  };

  // ---- setup: bulk-create the fleet, tag every tenth device.
  auto t0 = Clock::now();
  size_t next_batch = 0;
  RunLoad(
      tls, port, *token, 8,
      [&]() -> std::optional<Request> {
        if (next_batch >= o.devices) return std::nullopt;
        json::array batch;
        for (size_t i = next_batch; i < std::min(o.devices, next_batch + 100); ++i)
          batch.push_back(json::object{{"id", DeviceId(i)}, {"importMode", "create"}});
        next_batch += 100;
        return Request{
            http::verb::post, "/devices?api-version=2021-04-12", json::serialize(batch), {}};
      },
      [&](const Response& r, Clock::duration) { check(r, 200); });
  double create_s = std::chrono::duration<double>(Clock::now() - t0).count();
  size_t next_tag = 0;
  t0 = Clock::now();
  RunLoad(
      tls, port, *token, o.connections,
      [&]() -> std::optional<Request> {
        if (next_tag >= o.devices) return std::nullopt;
        size_t i = next_tag;
        next_tag += 10;
        return Request{http::verb::patch,
                       fmt::format("/twins/{}?api-version=2021-04-12", DeviceId(i)),
                       fmt::format(R"({{"tags":{{"region":"west","rank":{}}}}})", i),
                       {{"If-Match", "\"*\""}}};
      },
      [&](const Response& r, Clock::duration) { check(r, 200); });
  double tag_s = std::chrono::duration<double>(Clock::now() - t0).count();
  fmt::print("setup: {} devices created in {:.1f} s ({:.0f}/s, bulk); {} tagged in {:.1f} s\n",
             o.devices, create_s, static_cast<double>(o.devices) / create_s, o.devices / 10, tag_s);

  // ---- twin patches: desired properties of random devices, for S seconds.
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<size_t> pick(0, o.devices - 1);
  uint64_t sent = 0, ok = 0;
  std::vector<double> latency_ms;
  latency_ms.reserve(2'000'000);
  auto end = Clock::now() +
             std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  t0 = Clock::now();
  RunLoad(
      tls, port, *token, o.connections,
      [&]() -> std::optional<Request> {
        if (Clock::now() >= end) return std::nullopt;
        ++sent;
        return Request{
            http::verb::patch,
            fmt::format("/twins/{}?api-version=2021-04-12", DeviceId(pick(rng))),
            fmt::format(R"({{"properties":{{"desired":{{"setpoint":{},"mode":"auto"}}}}}})", sent),
            {}};
      },
      [&](const Response& r, Clock::duration d) {
        check(r, 200);
        if (r.result_int() == 200) ++ok;
        latency_ms.push_back(std::chrono::duration<double, std::milli>(d).count());
      });
  double patch_s = std::chrono::duration<double>(Clock::now() - t0).count();
  double rate = static_cast<double>(ok) / patch_s;
  fmt::print(
      "twin patches: {:.0f}/s over {} connections (p50 {:.2f} ms, p99 {:.2f} ms, {} durable)\n"
      "  vs target 50,000/s: {:.2f}x   vs IoT Hub S3 (250/s per unit): {:.0f}x\n",
      rate, o.connections, Percentile(latency_ms, 0.5), Percentile(latency_ms, 0.99), ok,
      rate / 50'000, rate / 250);

  // ---- the same patches in process, through the hub core alone (the server is idle now).
  double engine = EngineTwinPatchesPerSecond(o.devices, o.seconds, 2);
  fmt::print(
      "twin patches in process (hub core + RocksDB, 2 threads, no HTTP/TLS): {:.0f}/s\n"
      "  vs target 50,000/s: {:.2f}x   vs IoT Hub S3 (250/s per unit): {:.0f}x\n",
      engine, engine / 50'000, engine / 250);

  // ---- device queries over the fleet: every page of 1,000 rows, 15 runs each.
  struct NamedQuery {
    const char* name;
    std::string sql;
  };
  std::vector<NamedQuery> queries = {
      {"tag filter (10% match)", "SELECT * FROM devices WHERE tags.region = 'west'"},
      {"group by + count",
       "SELECT tags.region AS region, COUNT() AS n FROM devices GROUP BY "
       "tags.region"},
      {"selective projection", "SELECT deviceId, tags.rank FROM devices WHERE tags.rank = 4210"},
      {"full scan, no match", "SELECT * FROM devices WHERE properties.reported.fw = '9.9'"},
  };
  for (auto& q : queries) {
    std::vector<double> runs;
    size_t rows = 0;
    for (int run = 0; run < 15; ++run) {
      std::string continuation;
      bool more = true;
      size_t got = 0;
      auto start = Clock::now();
      // One connection, the pages in sequence, as the SDK's Query does.
      RunLoad(
          tls, port, *token, 1,
          [&]() -> std::optional<Request> {
            if (!more) return std::nullopt;
            Request r{http::verb::post,
                      "/devices/query?api-version=2021-04-12",
                      json::serialize(json::object{{"query", q.sql}}),
                      {{"x-ms-max-item-count", "1000"}}};
            if (!continuation.empty()) r.headers.emplace_back("x-ms-continuation", continuation);
            return r;
          },
          [&](const Response& r, Clock::duration) {
            check(r, 200);
            auto v = json::parse(r.body());
            got += v.is_array() ? v.get_array().size() : 0;
            auto c = r.find("x-ms-continuation");
            more = c != r.end();
            continuation = more ? std::string(c->value()) : "";
          });
      runs.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
      rows = got;
    }
    fmt::print("query {:<24} {:>6} rows: p50 {:>8.1f} ms  p99 {:>8.1f} ms\n", q.name, rows,
               Percentile(runs, 0.5), Percentile(runs, 0.99));
  }
  if (errors) fmt::print("{} requests failed\n", errors);
  return errors ? 1 : 0;
}
