// bench/stream-e2e: device publish → stream job → webhook latency through the real
// `orrery serve`, next to mosquitto in the same run.
//
// Devices are mosquitto_pub processes (MQTT 3.1.1, QoS 1, IoT Hub user names and SAS tokens)
// fed one JSON line per message at a paced rate, each stamped with its send time (µs, the
// system clock). Orrery acknowledges each message once it is durable in the event log; a job
// (`SELECT … INTO hook FROM telemetry WHERE temperature > 0`, every message passes) writes a
// row per message to its output log, whose webhook worker POSTs the rows to an HTTPS receiver
// in this process; latency = receive time − send time. The peer is mosquitto (Debian package,
// default settings: no persistence, no processing) with the same publishers and one
// mosquitto_sub: the broker hop alone, the floor any pipeline on top of it pays.
//
// Usage: stream_e2e_bench [--quick] [--seconds S] [--rates 1000,10000] [--devices N]
//                         [--orrery PATH]
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "hub/sas.h"
#include "net/http_client.h"
#include "net/http_server.h"
#include "net/io_pool.h"
#include "net/tls.h"
#include "pki/pki.h"
#include "stream/stream_query.h"
#include "test/support/orrery_server.h"
#include "test/support/process.h"

using namespace orrery;
namespace json = boost::json;

namespace {

int64_t NowUs() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Latencies of the messages of the current run (their "run" field), in µs.
struct Latencies {
  std::mutex mu;
  int run = -1;
  std::vector<int64_t> us;
  std::vector<int64_t> enqueue_us;  // Orrery: send → enqueued in the hub's log (ms resolution)
  std::atomic<uint64_t> received{0};
  void Record(int run_of_row, int64_t sent_us, int64_t now_us, int64_t enqueued_us = 0) {
    std::lock_guard lock(mu);
    if (run_of_row != run) return;
    us.push_back(now_us - sent_us);
    if (enqueued_us) enqueue_us.push_back(enqueued_us - sent_us);
    ++received;
  }
  void Reset(int next) {
    std::lock_guard lock(mu);
    run = next;
    us.clear();
    enqueue_us.clear();
    received = 0;
  }
  static std::pair<double, double> Quantiles(std::vector<int64_t>& v) {
    if (v.empty()) return {0, 0};
    std::sort(v.begin(), v.end());
    auto at = [&](double q) {
      return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))]) /
             1000.0;
    };
    return {at(0.50), at(0.99)};
  }
  std::pair<double, double> P50P99() {
    std::lock_guard lock(mu);
    return Quantiles(us);
  }
  std::pair<double, double> EnqueueP50P99() {
    std::lock_guard lock(mu);
    return Quantiles(enqueue_us);
  }
};

// Parses one row (or line) {"run":…,"sentUs":…} and records it.
void RecordRow(Latencies& lat, const json::value& v, int64_t now) {
  auto* o = v.if_object();
  if (!o) return;
  auto* run = o->if_contains("run");
  auto* sent = o->if_contains("sentUs");
  if (!run || !sent || !run->is_number() || !sent->is_number()) return;
  int64_t enqueued = 0;
  if (auto* enq = o->if_contains("enq"); enq && enq->is_string()) {
    enqueued = stream::ParseDateTime(enq->get_string()).value_or(0);
  }
  lat.Record(static_cast<int>(run->to_number<int64_t>()), sent->to_number<int64_t>(), now,
             enqueued);
}

// The webhook receiver: an HTTPS server on loopback with its own throw-away CA.
class Receiver {
 public:
  explicit Receiver(Latencies& lat) : dir_("bench-e2e-hook"), lat_(lat) {
    auto certs = pki::EnsureDevelopmentCerts(dir_.path(), "localhost");
    if (!certs) Die("receiver certificates: " + certs.error().message());
    ca_ = certs->paths.ca_cert;
    auto router = std::make_shared<net::Router>();
    router->Add("POST", "/hook", [this](net::HttpRequest& req, net::Responder r) {
      int64_t now = NowUs();
      boost::system::error_code ec;
      json::value batch = json::parse(req.body, ec);
      if (!ec && batch.is_array()) {
        for (auto& row : batch.get_array())
          RecordRow(lat_, row, now);
      }
      r.Send(net::HttpResponse::Empty(204));
    });
    auto tls = net::TlsServerContext::Create({certs->paths.server_cert, certs->paths.server_key});
    if (!tls) Die("receiver TLS: " + tls.error().message());
    auto server = net::HttpServer::Start(
        pool_, {.name = "hook", .addresses = {"127.0.0.1"}, .tls = *tls}, router);
    if (!server) Die("receiver: " + server.error().message());
    server_ = std::move(*server);
    pool_.Start();
  }
  ~Receiver() {
    server_->Stop();
    pool_.Stop();
    pool_.Join();
  }
  std::string url() const { return fmt::format("https://localhost:{}/hook", server_->port()); }
  const std::filesystem::path& ca() const { return ca_; }

  [[noreturn]] static void Die(const std::string& why) {
    fmt::print(stderr, "stream_e2e_bench: {}\n", why);
    std::exit(1);
  }

 private:
  testing::TempDir dir_;
  Latencies& lat_;
  std::filesystem::path ca_;
  net::IoPool pool_{1};
  std::unique_ptr<net::HttpServer> server_;
};

// A device: a mosquitto_pub process reading one message per line from its stdin.
struct Publisher {
  FILE* pipe = nullptr;
};

Publisher StartPublisher(uint16_t port, const std::string& id, const std::string& user,
                         const std::string& password, const std::string& topic) {
  std::string cmd = fmt::format(
      "exec mosquitto_pub -h 127.0.0.1 -p {} -V mqttv311 -q 1 -i '{}' {} -t '{}' -l", port, id,
      user.empty() ? std::string() : fmt::format("-u '{}' -P '{}'", user, password), topic);
  Publisher p;
  p.pipe = ::popen(cmd.c_str(), "w");
  if (!p.pipe) Receiver::Die("cannot start mosquitto_pub");
  return p;
}

struct RunResult {
  double rate = 0;
  uint64_t sent = 0, received = 0;
  double p50 = 0, p99 = 0;
  double enqueue_p50 = 0, enqueue_p99 = 0;  // Orrery only
};

// Sends `rate` messages/s for `seconds` round-robin over the publishers, stamped with `run`;
// then waits (bounded) for what is still on its way.
RunResult Drive(std::vector<Publisher>& pubs, Latencies& lat, int run, double rate,
                double seconds) {
  lat.Reset(run);
  RunResult r;
  r.rate = rate;
  auto start = std::chrono::steady_clock::now();
  uint64_t sent = 0;
  size_t next = 0;
  while (true) {
    double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds) break;
    auto due = static_cast<uint64_t>(elapsed * rate);
    std::vector<bool> touched(pubs.size(), false);
    while (sent < due) {
      auto& p = pubs[next];
      touched[next] = true;
      next = (next + 1) % pubs.size();
      std::fprintf(p.pipe, "{\"run\":%d,\"seq\":%llu,\"temperature\":21.5,\"sentUs\":%lld}\n", run,
                   static_cast<unsigned long long>(sent), static_cast<long long>(NowUs()));
      ++sent;
    }
    for (size_t i = 0; i < pubs.size(); ++i) {
      if (touched[i]) std::fflush(pubs[i].pipe);
    }
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  r.sent = sent;
  // Drain: up to 10 s for the rest.
  for (int i = 0; i < 1000 && lat.received < sent; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  r.received = lat.received;
  std::tie(r.p50, r.p99) = lat.P50P99();
  std::tie(r.enqueue_p50, r.enqueue_p99) = lat.EnqueueP50P99();
  return r;
}

void StopPublishers(std::vector<Publisher>& pubs) {
  for (auto& p : pubs)
    ::pclose(p.pipe);
  pubs.clear();
}

std::vector<double> ParseRates(const std::string& s) {
  std::vector<double> out;
  size_t at = 0;
  while (at <= s.size()) {
    size_t comma = s.find(',', at);
    std::string part = s.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    if (!part.empty()) out.push_back(std::stod(part));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 10;
  std::vector<double> rates = {1000, 10000};
  size_t devices = 10;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) Receiver::Die(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") {
      seconds = 3;
    } else if (a == "--seconds") {
      seconds = std::stod(value());
    } else if (a == "--rates") {
      rates = ParseRates(value());
    } else if (a == "--devices") {
      devices = std::stoul(value());
    } else if (a == "--orrery") {
      ::setenv("ORRERY_BINARY", value().c_str(), 1);
    } else {
      Receiver::Die(
          "usage: stream_e2e_bench [--quick] [--seconds S] [--rates R,R] "
          "[--devices N] [--orrery PATH]");
    }
  }
  if (::access("/usr/bin/mosquitto_pub", X_OK) != 0 || ::access("/usr/sbin/mosquitto", X_OK) != 0) {
    Receiver::Die("needs mosquitto and mosquitto-clients (scripts/install-deps installs them)");
  }
  ::signal(SIGPIPE, SIG_IGN);
  Latencies lat;
  Receiver hook(lat);

  // ---- Orrery: hub + job + webhook ----
  testing::OrreryServer server(
      "bench-e2e", std::vector<std::string>{},
      std::vector<std::string>{"ORRERY_ASA_WEBHOOK_CA_FILE=" + hook.ca().string()});
  if (!server.started()) Receiver::Die("orrery did not start:\n" + server.process().output());
  auto cs = testing::Process::Spawn({testing::OrreryBinary(), "hub", "connection-string",
                                     "--data-dir", server.data_dir().string()});
  cs->Wait();
  auto parsed = hub::ParseServiceConnectionString(cs->output().substr(0, cs->output().find('\n')));
  if (!parsed) Receiver::Die("no service connection string: " + cs->output());
  std::string token = *hub::MakeSasToken(parsed->host_name, parsed->key,
                                         timeutil::NowMs() / 1000 + 3600, parsed->key_name);
  net::HttpClientOptions trust;
  trust.tls.ca_file = server.ca_file();
  auto call = [&](const std::string& method, const std::string& path, const std::string& body) {
    net::Headers h;
    h.Set("Authorization", token);
    auto r = net::Fetch(method, server.Url(path + "?api-version=2021-04-12"), h, body, trust);
    if (!r || r->status >= 300) {
      Receiver::Die(
          fmt::format("{} {}: {}", method, path,
                      r ? fmt::format("HTTP {} {}", r->status, r->body) : r.error().message()));
    }
    return *r;
  };
  std::vector<std::pair<std::string, std::string>> device_tokens;
  for (size_t d = 0; d < devices; ++d) {
    std::string id = fmt::format("e2e-{}", d);
    auto r = call("PUT", "/devices/" + id, "{}");
    std::string key(json::parse(r.body)
                        .as_object()["authentication"]
                        .as_object()["symmetricKey"]
                        .as_object()["primaryKey"]
                        .as_string());
    device_tokens.emplace_back(id, *hub::MakeSasToken("localhost/devices/" + id, key,
                                                      timeutil::NowMs() / 1000 + 3600, "", true));
  }
  json::object job = json::parse(fmt::format(R"j({{
      "inputs": [{{"name": "telemetry"}}],
      "outputs": [{{"name": "hook", "type": "webhook", "url": "{}", "maxBatchSize": 1000}}]}})j",
                                             hook.url()))
                         .as_object();
  job["query"] =
      "SELECT run, seq, sentUs, EventEnqueuedUtcTime AS enq, IoTHub.ConnectionDeviceId AS deviceId "
      "INTO hook FROM telemetry "
      "WHERE temperature > 0";
  call("PUT", "/asa/jobs/e2e", json::serialize(job));
  call("POST", "/asa/jobs/e2e/start", "{}");

  std::vector<RunResult> orrery_results, peer_results;
  int run = 0;
  {
    std::vector<Publisher> pubs;
    for (auto& [id, sas] : device_tokens) {
      pubs.push_back(StartPublisher(server.ports().mqtt, id,
                                    fmt::format("localhost/{}/?api-version=2021-04-12", id), sas,
                                    fmt::format("devices/{}/messages/events/", id)));
    }
    Drive(pubs, lat, run++, 500, 1);  // warm-up: connections, the job's first batches
    for (double rate : rates) {
      orrery_results.push_back(Drive(pubs, lat, run++, rate, seconds));
      auto& r = orrery_results.back();
      fmt::print(
          "orrery     {:>7.0f} msg/s: {} sent, {} rows received, p50 {:.2f} ms, p99 {:.2f} ms "
          "(of which publish → enqueued p50 {:.2f}, p99 {:.2f})\n",
          r.rate, r.sent, r.received, r.p50, r.p99, r.enqueue_p50, r.enqueue_p99);
      std::fflush(stdout);
    }
    StopPublishers(pubs);
  }
  server.Stop();

  // ---- mosquitto: the broker hop alone ----
  testing::TempDir mdir("bench-e2e-mosquitto");
  uint16_t mport = testing::FreePort();
  std::ofstream(mdir.path() / "mosquitto.conf")
      << "listener " << mport << " 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n"
      << "log_dest none\n";
  auto broker =
      testing::Process::Spawn({"mosquitto", "-c", (mdir.path() / "mosquitto.conf").string()});
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // bench only: the broker's start
  // A topic of this run's own, so that the subscriber (which would reconnect forever) can be
  // told apart and stopped.
  std::string topic_root = fmt::format("e2e-bench-{}", ::getpid());
  std::string sub_cmd = fmt::format(
      "exec mosquitto_sub -h 127.0.0.1 -p {} -V mqttv311 -q 1 -t '{}/#'", mport, topic_root);
  FILE* sub = ::popen(sub_cmd.c_str(), "r");
  std::atomic<bool> reading{true};
  std::thread reader([&] {
    char line[4096];
    while (reading && std::fgets(line, sizeof line, sub)) {
      int64_t now = NowUs();
      boost::system::error_code ec;
      json::value v = json::parse(line, ec);
      if (!ec) RecordRow(lat, v, now);
    }
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // bench only: SUBACK
  {
    std::vector<Publisher> pubs;
    for (size_t d = 0; d < devices; ++d) {
      pubs.push_back(StartPublisher(mport, fmt::format("peer-{}", d), "", "",
                                    fmt::format("{}/{}", topic_root, d)));
    }
    Drive(pubs, lat, run++, 500, 1);
    for (double rate : rates) {
      peer_results.push_back(Drive(pubs, lat, run++, rate, seconds));
      auto& r = peer_results.back();
      fmt::print("mosquitto  {:>7.0f} msg/s: {} sent, {} received, p50 {:.2f} ms, p99 {:.2f} ms\n",
                 r.rate, r.sent, r.received, r.p50, r.p99);
      std::fflush(stdout);
    }
    StopPublishers(pubs);
  }
  reading = false;
  std::system(fmt::format("pkill -f '{}/#'", topic_root).c_str());
  ::pclose(sub);
  reader.join();
  broker->Signal(SIGKILL);
  broker->Wait();

  fmt::print(
      "\n| rate (msg/s) | Orrery publish → job → webhook p50 / p99 (ms) | rows | mosquitto "
      "publish → subscriber p50 / p99 (ms) | p99 ratio | target p99 < 20 ms |\n");
  fmt::print("|---|---|---|---|---|---|\n");
  for (size_t i = 0; i < orrery_results.size(); ++i) {
    auto& o = orrery_results[i];
    auto& p = peer_results[i];
    fmt::print("| {:.0f} | {:.2f} / {:.2f} | {}/{} | {:.2f} / {:.2f} | {:.1f}x | {} |\n", o.rate,
               o.p50, o.p99, o.received, o.sent, p.p50, p.p99, p.p99 > 0 ? o.p99 / p.p99 : 0.0,
               o.p99 < 20 && o.received == o.sent ? "met" : "not met");
  }
  return 0;
}
