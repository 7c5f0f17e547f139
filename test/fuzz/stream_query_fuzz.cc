// libFuzzer target for the Stream Analytics dialect: the input is parsed and bound as an ASA
// query (an input named `ref` is reference data, with two rows); whatever binds runs over a
// few fixed events on every input it reads (event time, windows, aggregates, steps, joins),
// then is flushed. Nothing may crash, hang, overflow the stack
// or escape as an exception, and a handful of events may not produce an unbounded output.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "stream/stream_query.h"

namespace s = orrery::stream;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto q = s::StreamQuery::Parse(text, {}, {"ref"});
  if (!q) return 0;
  s::Engine engine(
      *q, {.late_arrival_tolerance = 5 * s::kSecond, .out_of_order_tolerance = 2 * s::kSecond});
  if (!q->references().empty()) {
    std::vector<boost::json::object> rows = {{{"deviceId", "a"}, {"site", "north"}},
                                             {{"deviceId", "b"}, {"n", 2}}};
    if (!engine.SetReference("ref", std::move(rows))) return 0;
  }
  static const char* kEvents[] = {
      R"({"deviceId":"a","t":"2026-01-01T00:00:01Z","temp":20.5,"n":1,"tags":{"k":"x"}})",
      R"({"deviceId":"b","t":"2026-01-01T00:00:03Z","temp":null,"n":2,"arr":[1,2,3]})",
      R"({"deviceId":"a","t":"2026-01-01T00:00:02Z","temp":25,"n":"3"})",
      R"({"deviceId":"c","t":"not a time","temp":-1e300})",
      R"({"deviceId":"a","t":"2026-01-01T00:01:30Z","temp":19})"};
  s::Micros arrival = *s::ParseDateTime("2026-01-01T00:00:01Z");
  for (const char* e : kEvents) {
    auto event = boost::json::parse(e).as_object();
    for (auto& input : q->inputs()) {
      if (!engine.Push(input, event, arrival)) return 0;
    }
    arrival += s::kSecond;
  }
  if (!engine.Flush()) return 0;
  size_t rows = 0;
  for (auto& [target, out] : engine.TakeOutputs())
    rows += out.size();
  if (rows > 10'000'000) std::abort();
  return 0;
}
