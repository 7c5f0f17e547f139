// bench/dps: device registrations per second, end to end, through a real `orrery serve`'s
// Device Provisioning Service over HTTPS, as the device SDKs register.
//
//   setup       one symmetric-key enrollment group (initial twin {"tags":{"fleet":"bench"}})
//               created over the service REST; its key is read back and each device's key
//               derived from it (HMAC-SHA256 over the registration id, as DPS documents).
//   register    C HTTPS keep-alive connections register N distinct devices as fast as they
//               can: PUT /{scope}/registrations/{rid}/register with the device's own SAS
//               token, then — when the answer is 202 "assigning" — GET the operation after
//               Retry-After until it is "assigned". Each registration creates the device's
//               identity on the hub and applies the initial twin, then records the
//               registration state: every one of these is durable (RocksDB group commit with
//               fsync) before the device sees "assigned".
//   re-register the same devices again: already assigned, so this is the reprovision path
//               (the identity and twin are updated in place, a new registration state).
//
// Each phase prints registrations/s (only "assigned" outcomes count), p50/p99 end-to-end
// latency (first request written → "assigned" read, polls and their waits included), how many
// needed a poll, and the ratio to the target (2,000/s) and to Azure DPS's published quota
// (1,000 registrations per minute per service unit: a quota, not a measurement — DPS cannot
// run here). The devices' SAS tokens are computed before the clock starts (each device signs
// its own on its own CPU). Usage:
//   dps_bench [--quick] [--devices N] [--connections C] [--answer-within MS] [--orrery PATH]
// --answer-within sets the server's dps.answer_within: 0 answers every register with
// "assigning" and makes every device poll after Retry-After (1 s), as Azure DPS does.

#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/asio/ssl.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include "bench/common/https_load.h"
#include "bench/common/options.h"
#include "dps/access.h"
#include "dps/enrollment.h"
#include "hub/policies.h"
#include "hub/sas.h"
#include "test/support/orrery_server.h"

namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace json = boost::json;
using namespace orrery;
using bench::Clock;
using bench::Percentile;
using bench::Request;
using bench::Response;
using bench::RunLoad;

namespace {

constexpr double kTarget = 2'000;                 // registrations/s (brief)
constexpr double kAzurePerSecond = 1'000.0 / 60;  // Azure DPS: 1,000 registrations/min/unit
constexpr const char* kDeviceApi = "api-version=2019-03-31";
constexpr const char* kServiceApi = "api-version=2021-10-01";

struct Options {
  size_t devices = 20'000;
  size_t connections = 64;
  std::optional<int> answer_within_ms;  // the server's dps.answer_within (default 2 s)
  std::string orrery;
};

struct Device {
  std::string rid;
  std::string token;  // the device's SAS token, signed with its derived key
};

struct PhaseResult {
  size_t assigned = 0;
  size_t errors = 0;
  size_t polled = 0;  // registrations that needed at least one status poll
  size_t polls = 0;   // status polls in all
  double seconds = 0;
  std::vector<double> latency_ms;
  std::map<std::string, size_t> substatus;
};

std::optional<json::object> ParseObject(std::string_view body) {
  boost::system::error_code ec;
  auto v = json::parse(body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return std::move(v.get_object());
}

std::string StringAt(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// One registration per device, C connections, each device start to "assigned".
PhaseResult RegisterAll(asio::ssl::context& tls, uint16_t port, const std::string& scope,
                        const std::vector<Device>& devices, size_t connections) {
  struct Slot {
    const Device* device = nullptr;
    Clock::time_point start;
    std::string operation;  // non-empty: poll it next
    Clock::duration wait{};
    size_t polls = 0;
  };
  PhaseResult out;
  out.latency_ms.reserve(devices.size());
  std::vector<Slot> slots(connections);
  size_t next_device = 0;
  auto fail = [&](const Slot& s, const Response& r) {
    if (out.errors++ < 5) {
      fmt::print(stderr, "{}: HTTP {}: {}\n", s.device->rid, r.result_int(),
                 r.body().substr(0, 300));
    }
  };
  auto t0 = Clock::now();
  RunLoad(tls, port, "", connections, [&](size_t i) {
    bench::ConnectionScript script;
    script.next = [&, i]() -> std::optional<Request> {
      Slot& s = slots[i];
      if (!s.operation.empty()) {
        return Request{http::verb::get,
                       fmt::format("/{}/registrations/{}/operations/{}?{}", scope, s.device->rid,
                                   s.operation, kDeviceApi),
                       "",
                       {{"Authorization", s.device->token}},
                       s.wait};
      }
      if (next_device >= devices.size()) return std::nullopt;
      s = Slot{.device = &devices[next_device++], .start = Clock::now()};
      return Request{
          http::verb::put,
          fmt::format("/{}/registrations/{}/register?{}", scope, s.device->rid, kDeviceApi),
          json::serialize(json::object{{"registrationId", s.device->rid}}),
          {{"Authorization", s.device->token}}};
    };
    script.done = [&, i](const Response& r, Clock::duration) {
      Slot& s = slots[i];
      s.operation.clear();
      auto body = ParseObject(r.body());
      int code = static_cast<int>(r.result_int());
      std::string status = body ? StringAt(*body, "status") : "";
      if ((code == 200 || code == 202) && status == "assigning") {
        s.operation = StringAt(*body, "operationId");
        if (s.operation.empty()) return fail(s, r);
        int seconds = 1;
        if (auto ra = r.find(http::field::retry_after); ra != r.end()) {
          try {
            seconds = std::stoi(std::string(ra->value()));
          } catch (...) {
          }
        }
        s.wait = std::chrono::seconds(seconds);
        ++s.polls;
        ++out.polls;
        return;
      }
      if (code != 200 || status != "assigned") return fail(s, r);
      ++out.assigned;
      if (s.polls) ++out.polled;
      out.latency_ms.push_back(
          std::chrono::duration<double, std::milli>(Clock::now() - s.start).count());
      if (auto* st = body->if_contains("registrationState"); st && st->is_object()) {
        ++out.substatus[StringAt(st->get_object(), "substatus")];
      }
    };
    return script;
  });
  out.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return out;
}

void Report(const char* name, const PhaseResult& r, size_t devices, size_t connections) {
  double rate = static_cast<double>(r.assigned) / r.seconds;
  std::string substatus;
  for (auto& [k, n] : r.substatus)
    substatus += fmt::format("{}{} {}", substatus.empty() ? "" : ", ", k.empty() ? "?" : k, n);
  fmt::print(
      "{}: {:.0f} registrations/s over {} connections ({} of {} assigned in {:.1f} s; p50 {:.2f} "
      "ms, p99 {:.2f} ms end to end; {} needed a poll, {} polls; substatus: {})\n"
      "  vs target 2,000/s: {:.2f}x   vs Azure DPS (1,000/min): {:.0f}x\n",
      name, rate, connections, r.assigned, devices, r.seconds, Percentile(r.latency_ms, 0.5),
      Percentile(r.latency_ms, 0.99), r.polled, r.polls, substatus, rate / kTarget,
      rate / kAzurePerSecond);
  if (r.errors) fmt::print("  {} registrations failed\n", r.errors);
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  o.orrery = bench::DefaultOrreryBinary(argv[0]);
  if (!bench::ParseFlags(
          argc, argv,
          {{"--quick", [&](const std::string&) { o.devices = 2'000; }, false},
           {"--devices", [&](const std::string& v) { o.devices = std::stoul(v); }},
           {"--connections", [&](const std::string& v) { o.connections = std::stoul(v); }},
           {"--answer-within", [&](const std::string& v) { o.answer_within_ms = std::stoi(v); }},
           {"--orrery", [&](const std::string& v) { o.orrery = v; }}},
          "usage: dps_bench [--quick] [--devices N] [--connections C] [--answer-within MS] "
          "[--orrery PATH]")) {
    return 2;
  }
  bench::UseOrreryBinary(o.orrery);
  fmt::print(
      "DPS benchmark: {} devices, {} connections (HTTPS), {} cores{}\n\n", o.devices, o.connections,
      std::thread::hardware_concurrency(),
      o.answer_within_ms ? fmt::format(", dps.answer_within {} ms", *o.answer_within_ms) : "");

  std::vector<std::string> env;
  if (o.answer_within_ms) {
    env.push_back(fmt::format("ORRERY_DPS_ANSWER_WITHIN={}ms", *o.answer_within_ms));
  }
  testing::OrreryServer server("dps-bench", {}, env);
  if (!server.started()) {
    fmt::print(stderr, "orrery did not start:\n{}\n", server.process().output());
    return 1;
  }
  auto policies = hub::PolicyStore::Open(server.data_dir(), dps::DpsPolicySchema());
  if (!policies) {
    fmt::print(stderr, "no DPS policies: {}\n", policies.error().message());
    return 1;
  }
  auto owner = (*policies)->Find("provisioningserviceowner");
  auto scope = dps::LoadIdScope(server.data_dir());
  if (!owner || !scope) {
    fmt::print(stderr, "no provisioningserviceowner policy or ID scope\n");
    return 1;
  }
  const int64_t expiry = std::time(nullptr) + 3 * 3600;
  auto token = hub::MakeSasToken("localhost", owner->primary_key, expiry, owner->name);
  asio::ssl::context tls(asio::ssl::context::tls_client);
  tls.load_verify_file(server.ca_file().string());
  tls.set_verify_mode(asio::ssl::verify_peer);
  const uint16_t port = server.ports().https;

  // ---- setup: the enrollment group, its key, the devices' tokens.
  std::vector<Request> setup = {
      {http::verb::put,
       fmt::format("/enrollmentGroups/bench-grp?{}", kServiceApi),
       R"({"enrollmentGroupId":"bench-grp","attestation":{"type":"symmetricKey"},)"
       R"("initialTwin":{"tags":{"fleet":"bench"}}})",
       {}},
      {http::verb::post,
       fmt::format("/enrollmentGroups/bench-grp/attestationmechanism?{}", kServiceApi),
       "",
       {}}};
  size_t step = 0;
  std::string group_key;
  bool setup_ok = true;
  RunLoad(
      tls, port, *token, 1,
      [&]() -> std::optional<Request> {
        if (!setup_ok || step >= setup.size()) return std::nullopt;
        return setup[step++];
      },
      [&](const Response& r, Clock::duration) {
        if (r.result_int() != 200) {
          fmt::print(stderr, "setup: HTTP {}: {}\n", r.result_int(), r.body().substr(0, 300));
          setup_ok = false;
          return;
        }
        if (step == setup.size()) {
          auto v = ParseObject(r.body());
          auto* sk = v ? v->if_contains("symmetricKey") : nullptr;
          if (sk && sk->is_object()) group_key = StringAt(sk->get_object(), "primaryKey");
        }
      });
  if (!setup_ok || group_key.empty()) {
    fmt::print(stderr, "setup failed: no enrollment group key\n");
    return 1;
  }
  std::vector<Device> devices(o.devices);
  for (size_t i = 0; i < o.devices; ++i) {
    devices[i].rid = fmt::format("bench-dev-{:06d}", i);
    auto key = dps::DeriveDeviceKey(group_key, devices[i].rid);
    auto t = key ? hub::MakeSasToken(fmt::format("{}/registrations/{}", *scope, devices[i].rid),
                                     *key, expiry, "registration")
                 : Result<std::string>(key.error());
    if (!t) {
      fmt::print(stderr, "device token: {}\n", t.error().message());
      return 1;
    }
    devices[i].token = std::move(*t);
  }
  fmt::print("setup: enrollment group bench-grp (symmetric key), ID scope {}\n", *scope);

  // ---- first registrations, then the same devices again (the reprovision path).
  auto first = RegisterAll(tls, port, *scope, devices, o.connections);
  Report("registration", first, o.devices, o.connections);
  auto again = RegisterAll(tls, port, *scope, devices, o.connections);
  Report("re-registration", again, o.devices, o.connections);
  size_t errors = first.errors + again.errors;
  return errors || first.assigned != o.devices || again.assigned != o.devices ? 1 : 0;
}
