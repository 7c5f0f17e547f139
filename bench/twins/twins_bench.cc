// bench/twins: digital twin patches per second, (a) in process on TwinGraph over the real
// RocksDB state store (every patch validated against its model and group-committed before it
// is acknowledged) and (b) through a real `orrery serve`'s REST API over HTTPS with bearer
// tokens, as ADT clients send them. The peer figure is Azure Digital Twins' documented limit
// of 1,000 twin API requests per second per instance (patches count against it); it cannot
// run here, so the ratio is against that published number.
//
// (c) query latency over a graph of buildings → floors → rooms → sensors (5,011 twins and
// 5,010 relationships per building; 200 buildings ≈ 1M twins), built through TwinGraph on
// RocksDB: a model filter, property filters (equality and range), a one-hop JOIN and a 3-hop
// MATCH from a selective anchor, each run repeatedly for the first page (1,000 rows) and for
// the full result (every page, following continuations), p50 and p99.
//
//   twins_bench [--quick] [--only patch,rest,query] [--twins N] [--patches N] [--window W]
//               [--connections C] [--buildings B] [--reps R]
#include <atomic>
#include <filesystem>
#include <latch>
#include <semaphore>
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
#include "twins/adt_query.h"
#include "twins/errc.h"
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

// The query graph's models: spaces (buildings, floors, rooms) and sensors.
const char* kGraphModels = R"([
 {"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Space;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"name","schema":"string"}]},
 {"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Building;1","@type":"Interface",
  "extends":"dtmi:bench:Space;1","contents":[
   {"@type":"Property","name":"city","schema":"string"},
   {"@type":"Relationship","name":"hasFloor","target":"dtmi:bench:Floor;1"}]},
 {"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Floor;1","@type":"Interface",
  "extends":"dtmi:bench:Space;1","contents":[
   {"@type":"Property","name":"level","schema":"integer"},
   {"@type":"Relationship","name":"hasRoom","target":"dtmi:bench:Room;1"}]},
 {"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:Room;1","@type":"Interface",
  "extends":"dtmi:bench:Space;1","contents":[
   {"@type":"Property","name":"roomCode","schema":"string"},
   {"@type":"Property","name":"area","schema":"double"},
   {"@type":"Property","name":"occupied","schema":"boolean"},
   {"@type":"Relationship","name":"hasSensor","target":"dtmi:bench:RoomSensor;1",
    "properties":[{"@type":"Property","name":"position","schema":"string"}]}]},
 {"@context":"dtmi:dtdl:context;3","@id":"dtmi:bench:RoomSensor;1","@type":"Interface",
  "contents":[{"@type":"Property","name":"serialNumber","schema":"string"},
   {"@type":"Property","name":"kind","schema":"string"},
   {"@type":"Property","name":"temperature","schema":"double"},
   {"@type":"Property","name":"status","schema":"string"}]}])";
constexpr size_t kFloors = 10, kRooms = 50, kSensors = 9;  // per building, floor, room

struct Options {
  size_t twins = 10'000;
  size_t patches = 200'000;
  size_t window = 512;  // in-process patches in flight
  size_t connections = 32;
  size_t buildings = 200;  // the query graph: 5,011 twins each
  size_t reps = 50;        // runs of each query (fewer when one takes long)
  std::string only = "patch,rest,query";
  std::string orrery;
  bool Runs(std::string_view part) const {
    for (auto p : strings::Split(only, ','))
      if (p == part) return true;
    return false;
  }
};

double Seconds(Clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Runs `n` operations with at most `window` in flight; `start(i, done)` begins operation i.
// (A semaphore and a latch: the completions, on the store's writer thread, cost next to
// nothing.)
template <class Start>
double RunWindowed(size_t n, size_t window, Start start, std::atomic<size_t>& errors) {
  std::counting_semaphore<> slots(static_cast<std::ptrdiff_t>(window));
  std::latch finished(static_cast<std::ptrdiff_t>(n));
  auto t0 = Clock::now();
  for (size_t i = 0; i < n; ++i) {
    slots.acquire();
    start(i, [&](bool ok) {
      if (!ok) ++errors;
      slots.release();
      finished.count_down();
    });
  }
  finished.wait();
  return Seconds(Clock::now() - t0);
}

// A fresh RocksDB store in a temporary directory with a model store and a twin graph.
struct Graph {
  std::filesystem::path dir;
  std::unique_ptr<store::KvStore> kv;
  std::unique_ptr<twins::ModelStore> models;
  std::unique_ptr<twins::TwinGraph> graph;

  bool Open(std::string_view name, const std::vector<json::value>& model_defs) {
    dir = std::filesystem::temp_directory_path() / fmt::format("{}-{}", name, ::getpid());
    std::filesystem::remove_all(dir);
    auto s = store::OpenRocksDb({.path = dir});
    if (!s) return fmt::print(stderr, "store: {}\n", s.error().message()), false;
    kv = std::move(*s);
    auto m = twins::ModelStore::Open(kv.get(), {}, timeutil::NowMs);
    if (!m) return fmt::print(stderr, "models: {}\n", m.error().message()), false;
    models = std::move(*m);
    if (auto added = models->Add(model_defs); !added) {
      return fmt::print(stderr, "models: {}\n", added.error().message()), false;
    }
    auto g = twins::TwinGraph::Open(kv.get(), models.get(), {}, timeutil::NowMs);
    if (!g) return fmt::print(stderr, "graph: {}\n", g.error().message()), false;
    graph = std::move(*g);
    return true;
  }
  ~Graph() {
    graph.reset();
    models.reset();
    if (kv) kv->Drain();
    kv.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
};

int InProcess(const Options& o) {
  Graph env;
  if (!env.Open("orrery-twins-bench", {json::parse(kModel)})) return 1;
  auto& graph = env.graph;
  std::atomic<size_t> errors = 0;
  double created = RunWindowed(
      o.twins, o.window,
      [&](size_t i, auto done) {
        json::object t{{"$metadata", json::object{{"$model", "dtmi:bench:Sensor;1"}}},
                       {"temperature", 20.0},
                       {"status", "ok"}};
        graph->PutTwin(fmt::format("sensor-{:06d}", i), std::move(t), "",
                       [done](Result<json::object> r) { done(r.has_value()); });
      },
      errors);
  double patched = RunWindowed(
      o.patches, o.window,
      [&](size_t i, auto done) {
        json::array patch{json::object{{"op", "replace"},
                                       {"path", "/temperature"},
                                       {"value", 20.0 + static_cast<double>(i % 100) / 10}}};
        graph->PatchTwin(fmt::format("sensor-{:06d}", (i * 7919) % o.twins), std::move(patch), "",
                         [done](Result<std::string> r) { done(r.has_value()); });
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

// ---- (c) query latency over a building graph ----------------------------------------------

std::string BuildingId(size_t b) {
  return fmt::format("b{:03d}", b);
}
std::string FloorId(size_t b, size_t f) {
  return fmt::format("b{:03d}-f{:02d}", b, f);
}
std::string RoomId(size_t b, size_t f, size_t r) {
  return fmt::format("b{:03d}-f{:02d}-r{:02d}", b, f, r);
}
std::string SensorId(size_t b, size_t f, size_t r, size_t s) {
  return fmt::format("b{:03d}-f{:02d}-r{:02d}-s{}", b, f, r, s);
}
size_t SensorNumber(size_t b, size_t f, size_t r, size_t s) {
  return ((b * kFloors + f) * kRooms + r) * kSensors + s;
}
double SensorTemperature(size_t n) {
  return 15.0 + static_cast<double>((n * 7) % 1500) / 100;  // 15.00 … 29.99
}

struct Latency {
  std::vector<double> ms;
  size_t rows = 0, pages = 0;
  uint64_t examined = 0;
};

// The graph's view without its property index (what the engine had before it): starts use
// $dtId lookups, the model index, or a scan.
class WithoutPropertyIndex final : public twins::ForwardingGraphView {
 public:
  using ForwardingGraphView::ForwardingGraphView;
  bool ForEachTwinByProperty(const PropertyFilter&, const Visit&) const override { return false; }
  std::optional<size_t> CountTwinsByProperty(const PropertyFilter&, size_t) const override {
    return std::nullopt;
  }
};

int Queries(const Options& o) {
  Graph env;
  json::array defs = json::parse(kGraphModels).as_array();
  if (!env.Open("orrery-twins-qbench", {defs.begin(), defs.end()})) return 1;
  auto& g = *env.graph;
  const size_t B = o.buildings;
  const size_t per_building = 1 + kFloors * (1 + kRooms * (1 + kSensors));
  const size_t n_twins = B * per_building, n_rels = n_twins - B;
  fmt::print(
      "queries over {} buildings × {} floors × {} rooms × {} sensors: {} twins, {} "
      "relationships\n",
      B, kFloors, kRooms, kSensors, n_twins, n_rels);
  std::atomic<size_t> errors = 0;
  auto fail = [&](const Error& e) {
    if (errors++ < 3) fmt::print(stderr, "  failed: {}\n", e.message());
  };
  // Every twin, building by building (the twins of a level before the relationships to them).
  struct Twin {
    std::string id;
    json::object body;
  };
  struct Rel {
    std::string source, id, target, name;
    json::object props;
  };
  auto meta = [](const char* model) { return json::object{{"$model", model}}; };
  auto t0 = Clock::now();
  size_t twins_done = 0, rels_done = 0, next_report = 100'000;
  auto progress = [&](bool force) {
    size_t n = twins_done + rels_done;
    if (!force && n < next_report) return;
    next_report = n + 100'000;
    double s = Seconds(Clock::now() - t0);
    fmt::print("  built {:>9} twins {:>9} relationships  {:6.1f} s  ({:.0f}/s)\n", twins_done,
               rels_done, s, static_cast<double>(n) / s);
    std::fflush(stdout);
  };
  for (size_t b = 0; b < B; ++b) {
    std::vector<Twin> ts;
    std::vector<Rel> rs;
    ts.reserve(per_building);
    ts.push_back({BuildingId(b),
                  {{"$metadata", meta("dtmi:bench:Building;1")},
                   {"name", fmt::format("Building {}", b)},
                   {"city", b % 2 ? "Lyon" : "Porto"}}});
    for (size_t f = 0; f < kFloors; ++f) {
      ts.push_back({FloorId(b, f),
                    {{"$metadata", meta("dtmi:bench:Floor;1")},
                     {"name", fmt::format("Building {} floor {}", b, f)},
                     {"level", static_cast<int64_t>(f)}}});
      rs.push_back({BuildingId(b), fmt::format("floor-{:02d}", f), FloorId(b, f), "hasFloor", {}});
      for (size_t r = 0; r < kRooms; ++r) {
        ts.push_back({RoomId(b, f, r),
                      {{"$metadata", meta("dtmi:bench:Room;1")},
                       {"name", fmt::format("Room {}.{:02d}", f, r)},
                       {"roomCode", fmt::format("B{:03d}-F{:02d}-R{:02d}", b, f, r)},
                       {"area", 10.0 + static_cast<double>((b + f + r) % 40)},
                       {"occupied", (b + f + r) % 3 == 0}}});
        rs.push_back(
            {FloorId(b, f), fmt::format("room-{:02d}", r), RoomId(b, f, r), "hasRoom", {}});
        for (size_t s = 0; s < kSensors; ++s) {
          size_t n = SensorNumber(b, f, r, s);
          ts.push_back({SensorId(b, f, r, s),
                        {{"$metadata", meta("dtmi:bench:RoomSensor;1")},
                         {"serialNumber", fmt::format("SN-{:07d}", n)},
                         {"kind", s % 3 == 0   ? "temperature"
                                  : s % 3 == 1 ? "co2"
                                               : "motion"},
                         {"temperature", SensorTemperature(n)},
                         {"status", "ok"}}});
          rs.push_back({RoomId(b, f, r), fmt::format("sensor-{}", s), SensorId(b, f, r, s),
                        "hasSensor", json::object{{"position", s % 2 ? "wall" : "ceiling"}}});
        }
      }
    }
    RunWindowed(
        ts.size(), o.window,
        [&](size_t i, auto done) {
          g.PutTwin(ts[i].id, std::move(ts[i].body), "", [&, done](Result<json::object> r) {
            if (!r) fail(r.error());
            done(r.has_value());
          });
        },
        errors);
    twins_done += ts.size();
    RunWindowed(
        rs.size(), o.window,
        [&](size_t i, auto done) {
          json::object body = std::move(rs[i].props);
          body["$relationshipName"] = rs[i].name;
          body["$targetId"] = rs[i].target;
          g.PutRelationship(rs[i].source, rs[i].id, std::move(body), "",
                            [&, done](Result<json::object> r) {
                              if (!r) fail(r.error());
                              done(r.has_value());
                            });
        },
        errors);
    rels_done += rs.size();
    progress(b + 1 == B);
    if (errors) return 1;
  }
  fmt::print("  graph: {} twins, {} relationships\n\n", g.twin_count(), g.relationship_count());

  // Anchors inside the graph whatever its size.
  const size_t ab = B * 58 / 100, af = 5, ar = 33, as = 4;
  const size_t sn = SensorNumber(ab, af, ar, as);
  struct Case {
    std::string name, text;
    bool compare = true;  // also run without the property index
  };
  std::vector<Case> cases = {
      {"model filter (buildings)",
       "SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:bench:Building;1')", false},
      {"model filter (floors, exact)",
       "SELECT * FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, 'dtmi:bench:Floor;1', exact)", false},
      {"property = (serial number)",
       fmt::format("SELECT * FROM DIGITALTWINS T WHERE T.serialNumber = 'SN-{:07d}'", sn)},
      {"property range (temperature)", "SELECT * FROM DIGITALTWINS T WHERE T.temperature >= 29.97"},
      {"property + model (room code)",
       fmt::format("SELECT T.$dtId, T.area FROM DIGITALTWINS T WHERE IS_OF_MODEL(T, "
                   "'dtmi:bench:Room;1') AND T.roomCode = 'B{:03d}-F{:02d}-R{:02d}'",
                   ab, af, ar)},
      {"JOIN, 1 hop (room → sensors)",
       fmt::format("SELECT R, S FROM DIGITALTWINS R JOIN S RELATED R.hasSensor WHERE R.roomCode "
                   "= 'B{:03d}-F{:02d}-R{:02d}'",
                   ab, af, ar)},
      {"MATCH, 3 hops (building → sensors)",
       fmt::format("SELECT F.level, R.roomCode, S.serialNumber, S.temperature FROM DIGITALTWINS "
                   "MATCH (B)-[:hasFloor]->(F)-[:hasRoom]->(R)-[:hasSensor]->(S) WHERE B.name = "
                   "'Building {}'",
                   ab)},
      {"MATCH, 3 hops (sensor → building)",
       fmt::format("SELECT B, F, R, S FROM DIGITALTWINS MATCH "
                   "(B)-[:hasFloor]->(F)-[:hasRoom]->(R)-[:hasSensor]->(S) WHERE S.serialNumber "
                   "= 'SN-{:07d}'",
                   sn)},
      {"full scan (status != ok, none)",
       "SELECT COUNT() FROM DIGITALTWINS T WHERE T.status != 'ok'", false},
  };
  auto page = [&](const twins::AdtQuery& q, const std::string& token, bool indexed) {
    Result<twins::AdtPage> out = Error(twins::Errc::kUnavailable, "not run");
    g.Read([&](const twins::GraphView& view) {
      WithoutPropertyIndex plain(view);
      out = q.Execute(indexed ? view : plain, {1000, token});
    });
    return out;
  };
  fmt::print("{:<40} {:>7} {:>5} {:>9}   {:>19}   {:>19}\n", "query", "rows", "pages", "examined",
             "first page p50/p99", "full result p50/p99");
  for (size_t k = 0; k < cases.size() * 2; ++k) {
    const Case& c = cases[k / 2];
    bool indexed = k % 2 == 0;
    if (!indexed && !c.compare) continue;
    auto q = twins::AdtQuery::Parse(c.text);
    if (!q) return fmt::print(stderr, "{}: {}\n", c.text, q.error().message()), 1;
    Latency first, full;
    auto budget = Clock::now() + std::chrono::seconds(o.reps > 5 ? 10 : 3);
    for (size_t rep = 0; rep < o.reps && (rep < 3 || Clock::now() < budget); ++rep) {
      auto p0 = Clock::now();
      auto r = page(*q, "", indexed);
      first.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - p0).count());
      if (!r) return fmt::print(stderr, "{}: {}\n", c.text, r.error().message()), 1;
      full.rows = r->rows.size(), full.pages = 1, full.examined = r->examined;
      std::string token = r->continuation;
      while (!token.empty()) {
        auto next = page(*q, token, indexed);
        if (!next) return fmt::print(stderr, "{}: {}\n", c.text, next.error().message()), 1;
        full.rows += next->rows.size(), ++full.pages, full.examined += next->examined;
        token = next->continuation;
      }
      full.ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - p0).count());
    }
    fmt::print(
        "{:<40} {:>7} {:>5} {:>9}   {:>8.2f} / {:>8.2f}   {:>8.2f} / {:>8.2f} ms  ({} runs)\n",
        indexed ? c.name : "  without the property index", full.rows, full.pages, full.examined,
        bench::Percentile(first.ms, 0.5), bench::Percentile(first.ms, 0.99),
        bench::Percentile(full.ms, 0.5), bench::Percentile(full.ms, 0.99), first.ms.size());
    std::fflush(stdout);
  }
  for (const Case& c : cases)
    fmt::print("  {}: {}\n", c.name, c.text);
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
          {{"--quick",
            [&](const std::string&) {
              o.twins = 2'000, o.patches = 40'000, o.buildings = 4, o.reps = 5;
            },
            false},
           {"--only", [&](const std::string& v) { o.only = v; }},
           {"--buildings", [&](const std::string& v) { o.buildings = std::stoul(v); }},
           {"--reps", [&](const std::string& v) { o.reps = std::stoul(v); }},
           {"--twins", [&](const std::string& v) { o.twins = std::stoul(v); }},
           {"--patches", [&](const std::string& v) { o.patches = std::stoul(v); }},
           {"--window", [&](const std::string& v) { o.window = std::stoul(v); }},
           {"--connections", [&](const std::string& v) { o.connections = std::stoul(v); }},
           {"--orrery", [&](const std::string& v) { o.orrery = v; }}},
          "usage: twins_bench [--quick] [--only patch,rest,query] [--twins N] [--patches N] "
          "[--window W] [--connections C] [--buildings B] [--reps R] [--orrery PATH]")) {
    return 2;
  }
  bench::UseOrreryBinary(o.orrery);
  fmt::print("Twins benchmark: {} twins, {} patches, {} cores\n\n", o.twins, o.patches,
             std::thread::hardware_concurrency());
  int rc = 0;
  if (o.Runs("patch")) rc |= InProcess(o), fmt::print("\n");
  if (o.Runs("rest")) rc |= OverRest(o), fmt::print("\n");
  if (o.Runs("query")) rc |= Queries(o);
  return rc;
}
