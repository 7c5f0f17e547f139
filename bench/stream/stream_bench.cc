// bench/stream: Stream Analytics queries over telemetry on one core, events/s.
//
//   filter    SELECT deviceId, temperature, humidity … TIMESTAMP BY time WHERE temperature > 25
//   tumbling  SELECT deviceId, AVG(temperature), MAX(temperature) … GROUP BY deviceId,
//             TumblingWindow(second, 10), over 10,000 devices
//   join      a JOIN of two streams (requests, responses one second later) on requestId,
//             DATEDIFF(second, a, b) BETWEEN 0 AND 5; events of both sides count
//
// Each runs from pre-parsed events (json::object, the engine alone) and from JSON text
// (boost::json, the parser of the engine's input path, each event parsed into a reused
// json::monotonic_resource buffer — the engine copies what it keeps — then the engine), next
// to the speed of parsing the same text the same way alone: the limit of the JSON path.
// Target (issue 9): >= 1M events/s per core for `tumbling` from JSON. Peer: Apache Flink's
// Nexmark results, ~20k-175k events/s per core (cannot run here; quoted, not measured).
//
//   stream_bench [--events N] [--reps R] [--quick] [--only filter,tumbling,join]
//                [--default-memory]   (parse every event into the default memory resource)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "bench/common/options.h"
#include "stream/stream_query.h"

using namespace orrery;
namespace json = boost::json;
using Clock = std::chrono::steady_clock;

namespace {

bool default_memory = false;  // --default-memory

struct Event {
  std::string input;
  std::string text;
  stream::Micros arrival;
};

struct Scenario {
  std::string name;
  std::string query;
  std::vector<Event> events;
};

constexpr size_t kDevices = 10'000;

stream::Micros Base() {
  return *stream::ParseDateTime("2026-01-01T00:00:00Z");
}

// Telemetry of 10,000 devices, 10,000 events per second of event time, in time order.
std::vector<Event> Telemetry(size_t n) {
  std::vector<Event> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    stream::Micros t = Base() + static_cast<stream::Micros>(i) * 100;
    out.push_back(Event{"input",
                        fmt::format(R"({{"deviceId":"dev-{}","temperature":{:.1f},"humidity":{},)"
                                    R"("time":"{}"}})",
                                    i % kDevices, 15 + static_cast<double>(i * 7 % 200) / 10,
                                    40 + i % 30, stream::FormatDateTime(t)),
                        t});
  }
  return out;
}

// Requests and their responses one second later, merged in time order: n events in all.
std::vector<Event> RequestsAndResponses(size_t n) {
  std::vector<Event> out;
  out.reserve(n);
  size_t pairs = n / 2;
  const stream::Micros step = 200;  // 5,000 requests per second
  size_t next_response = 0;
  for (size_t i = 0; i < pairs; ++i) {
    stream::Micros t = Base() + static_cast<stream::Micros>(i) * step;
    while (next_response < i &&
           Base() + static_cast<stream::Micros>(next_response) * step + stream::kSecond <= t) {
      stream::Micros rt =
          Base() + static_cast<stream::Micros>(next_response) * step + stream::kSecond;
      out.push_back(Event{"responses",
                          fmt::format(R"({{"requestId":{},"status":200,"time":"{}"}})",
                                      next_response, stream::FormatDateTime(rt)),
                          rt});
      ++next_response;
    }
    out.push_back(Event{"requests",
                        fmt::format(R"({{"requestId":{},"deviceId":"dev-{}","time":"{}"}})", i,
                                    i % kDevices, stream::FormatDateTime(t)),
                        t});
  }
  for (; next_response < pairs; ++next_response) {
    stream::Micros rt =
        Base() + static_cast<stream::Micros>(next_response) * step + stream::kSecond;
    out.push_back(Event{"responses",
                        fmt::format(R"({{"requestId":{},"status":200,"time":"{}"}})", next_response,
                                    stream::FormatDateTime(rt)),
                        rt});
  }
  return out;
}

struct Run {
  double seconds = 0;
  uint64_t rows = 0;
};

// One pass of the scenario through a fresh engine; `parsed` empty: parse the text.
Run Once(const stream::StreamQuery& q, const Scenario& s, const std::vector<json::object>& parsed) {
  stream::EventTimePolicy policy;  // ASA's defaults; events come in time order
  stream::Engine engine(q, policy);
  json::parser p;
  unsigned char buffer[4096];
  json::monotonic_resource memory(buffer, sizeof buffer);
  Run r;
  auto start = Clock::now();
  for (size_t i = 0; i < s.events.size(); ++i) {
    const Event& e = s.events[i];
    if (parsed.empty()) {
      memory.release();  // the previous event's
      p.reset(default_memory ? json::storage_ptr() : json::storage_ptr(&memory));
      p.write(e.text);
      json::value v = p.release();
      (void)engine.Push(e.input, v.get_object(), e.arrival);
    } else {
      (void)engine.Push(e.input, parsed[i], e.arrival);
    }
    if ((i & 0xffff) == 0) {
      for (auto& [k, rows] : engine.TakeOutputs())
        r.rows += rows.size();
    }
  }
  (void)engine.Flush();
  for (auto& [k, rows] : engine.TakeOutputs())
    r.rows += rows.size();
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

double ParseOnce(const Scenario& s) {
  json::parser p;
  unsigned char buffer[4096];
  json::monotonic_resource memory(buffer, sizeof buffer);
  size_t members = 0;
  auto start = Clock::now();
  for (const auto& e : s.events) {
    memory.release();
    p.reset(default_memory ? json::storage_ptr() : json::storage_ptr(&memory));
    p.write(e.text);
    members += p.release().get_object().size();
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (members == 0) std::abort();
  return seconds;
}

struct Stats {
  double best = 0;    // events/s
  double median = 0;  // events/s
};

Stats Summarise(std::vector<double> seconds, size_t events) {
  std::sort(seconds.begin(), seconds.end());
  auto rate = [&](double s) { return static_cast<double>(events) / s; };
  return {rate(seconds.front()), rate(seconds[seconds.size() / 2])};
}

std::string Rate(double r) {
  return r >= 1e6 ? fmt::format("{:.2f} M", r / 1e6) : fmt::format("{:.0f} k", r / 1e3);
}

}  // namespace

int main(int argc, char** argv) {
  size_t events = 2'000'000;
  int reps = 5;
  std::string only = "filter,tumbling,join";
  bool ok = bench::ParseFlags(
      argc, argv,
      {{"--events", [&](const std::string& v) { events = std::stoul(v); }},
       {"--reps", [&](const std::string& v) { reps = std::max(1, std::stoi(v)); }},
       {"--only", [&](const std::string& v) { only = v; }},
       {"--default-memory", [&](const std::string&) { default_memory = true; }, false},
       {"--quick",
        [&](const std::string&) {
          events = 300'000;
          reps = 3;
        },
        false}},
      "usage: stream_bench [--events N] [--reps R] [--quick] [--only filter,tumbling,join] "
      "[--default-memory]");
  if (!ok) return 2;

  std::vector<Scenario> scenarios;
  if (only.find("filter") != std::string::npos) {
    scenarios.push_back({"filter",
                         "SELECT deviceId, temperature, humidity INTO out FROM input "
                         "TIMESTAMP BY time WHERE temperature > 25",
                         Telemetry(events)});
  }
  if (only.find("tumbling") != std::string::npos) {
    scenarios.push_back({"tumbling",
                         "SELECT deviceId, AVG(temperature) AS avgT, MAX(temperature) AS maxT "
                         "INTO out FROM input TIMESTAMP BY time "
                         "GROUP BY deviceId, TumblingWindow(second, 10)",
                         Telemetry(events)});
  }
  if (only.find("join") != std::string::npos) {
    scenarios.push_back({"join",
                         "SELECT a.deviceId, a.requestId, b.status, "
                         "DATEDIFF(millisecond, a.time, b.time) AS latency INTO out "
                         "FROM requests a TIMESTAMP BY time JOIN responses b TIMESTAMP BY time "
                         "ON a.requestId = b.requestId AND DATEDIFF(second, a, b) BETWEEN 0 AND 5",
                         RequestsAndResponses(events)});
  }

  fmt::print(
      "Stream Analytics benchmark: {} events per scenario, best and median of {} runs, 1 "
      "thread (of {} cores); JSON parsed into {}\n\n",
      events, reps, std::thread::hardware_concurrency(),
      default_memory ? "the default memory resource" : "a reused monotonic buffer");
  fmt::print("{:<9} {:>16} {:>16} {:>16} {:>10} {:>9}\n", "scenario", "pre-parsed ev/s",
             "from JSON ev/s", "parse only ev/s", "rows", "JSON/parse");
  for (const auto& s : scenarios) {
    auto q = stream::StreamQuery::Parse(s.query);
    if (!q) {
      fmt::print(stderr, "{}: {}\n", s.name, q.error().message());
      return 1;
    }
    std::vector<json::object> parsed;
    parsed.reserve(s.events.size());
    for (const auto& e : s.events)
      parsed.push_back(json::parse(e.text).get_object());
    std::vector<double> pre, text, parse;
    uint64_t rows = 0;
    for (int i = 0; i < reps; ++i) {
      Run a = Once(*q, s, parsed);
      Run b = Once(*q, s, {});
      pre.push_back(a.seconds);
      text.push_back(b.seconds);
      parse.push_back(ParseOnce(s));
      rows = a.rows;
      if (a.rows != b.rows) {
        fmt::print(stderr, "{}: {} rows pre-parsed, {} from JSON\n", s.name, a.rows, b.rows);
        return 1;
      }
    }
    Stats sp = Summarise(pre, s.events.size()), st = Summarise(text, s.events.size()),
          sx = Summarise(parse, s.events.size());
    fmt::print("{:<9} {:>7} ({:>6}) {:>7} ({:>6}) {:>7} ({:>6}) {:>10} {:>8.0f}%\n", s.name,
               Rate(sp.best), Rate(sp.median), Rate(st.best), Rate(st.median), Rate(sx.best),
               Rate(sx.median), rows, 100 * st.best / sx.best);
  }
  fmt::print(
      "\n(best (median)). Target: tumbling from JSON >= 1 M events/s/core. Peer figure (quoted): "
      "Apache Flink Nexmark, ~20 k-175 k events/s/core.\n");
  return 0;
}
