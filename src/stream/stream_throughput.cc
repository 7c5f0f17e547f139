// A quick throughput probe (not a benchmark suite; bench/stream comes later): a tumbling
// COUNT/AVG per device over events parsed from JSON text beforehand, and from the text.
//   stream_throughput [events] [devices]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "stream/stream_query.h"

int main(int argc, char** argv) {
  using namespace orrery::stream;
  namespace json = boost::json;
  size_t events = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1'000'000;
  size_t devices = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 10'000;
  auto q = StreamQuery::Parse(
      "SELECT deviceId, COUNT(*) AS n, AVG(temperature) AS avgT INTO out FROM input "
      "TIMESTAMP BY time GROUP BY deviceId, TumblingWindow(second, 10)");
  if (!q) {
    std::fprintf(stderr, "%s\n", q.error().message().c_str());
    return 1;
  }
  std::vector<std::string> text;
  text.reserve(events);
  Micros base = *ParseDateTime("2026-01-01T00:00:00Z");
  for (size_t i = 0; i < events; ++i) {
    Micros t = base + static_cast<Micros>(i) * 100;  // 10k events per second of event time
    text.push_back("{\"deviceId\":\"dev-" + std::to_string(i % devices) +
                   "\",\"temperature\":" + std::to_string(20 + static_cast<double>(i % 100) / 10) +
                   ",\"time\":\"" + FormatDateTime(t) + "\"}");
  }
  auto run = [&](bool from_text, const std::vector<json::object>& parsed) {
    Engine engine(*q, EventTimePolicy{});
    size_t rows = 0;
    auto start = std::chrono::steady_clock::now();
    json::parser p;
    for (size_t i = 0; i < events; ++i) {
      Micros arrival = base + static_cast<Micros>(i) * 100;
      if (from_text) {
        p.reset();
        p.write(text[i]);
        json::value v = p.release();
        (void)engine.Push("input", v.get_object(), arrival);
      } else {
        (void)engine.Push("input", parsed[i], arrival);
      }
      if (i % 65536 == 0) {
        for (auto& [k, r] : engine.TakeOutputs())
          rows += r.size();
      }
    }
    (void)engine.Flush();
    for (auto& [k, r] : engine.TakeOutputs())
      rows += r.size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-12s %zu events, %zu rows: %.0f events/s\n",
                from_text ? "from JSON" : "pre-parsed", events, rows,
                static_cast<double>(events) / s);
  };
  std::vector<json::object> parsed;
  parsed.reserve(events);
  for (const auto& t : text)
    parsed.push_back(json::parse(t).get_object());
  run(false, parsed);
  run(true, parsed);
  {
    auto start = std::chrono::steady_clock::now();
    json::parser p;
    size_t n = 0;
    for (const auto& t : text) {
      p.reset();
      p.write(t);
      n += p.release().get_object().size();
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%-12s %zu events: %.0f events/s (%zu)\n", "parse only", events,
                static_cast<double>(events) / s, n);
  }
  return 0;
}
