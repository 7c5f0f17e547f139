// libFuzzer target for the query stages: the input is parsed as an IoT Hub statement and as
// a bare condition (lexer, expression parser, statement parser, binder); whatever parses is
// run against a small fixed twin (evaluator, functions, projection, aggregation). Nothing may
// crash, hang, overflow the stack or escape as an exception, and the results must keep the
// API's promises: Apply answers only for non-aggregate queries, Finish without GROUP BY
// gives exactly one row, TOP bounds the rows.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <boost/json.hpp>

#include "query/iothub/hub_query.h"

namespace q = orrery::query;

namespace {

const boost::json::object& Twin() {
  static const boost::json::object twin = boost::json::parse(R"({
    "deviceId": "d1", "etag": "AAAAAAAAAAE=", "version": 4, "status": "enabled",
    "connectionState": "Connected", "lastActivityTime": "2024-05-01T10:00:00Z",
    "cloudToDeviceMessageCount": 0, "authenticationType": "sas",
    "x509Thumbprint": {"primaryThumbprint": null, "secondaryThumbprint": null},
    "modelId": "", "capabilities": {"iotEdge": false},
    "tags": {"location": {"region": "US", "plant": "Redmond43"}, "building": 43,
             "roles": ["gateway", "meter"], "group": "a"},
    "properties": {
      "desired": {"telemetryConfig": {"sendFrequencyInSecs": 300}, "$version": 2,
                  "$metadata": {"$lastUpdated": "2024-05-01T09:00:00Z"}},
      "reported": {"telemetryConfig": {"status": "Success"}, "temp": 21.5, "fw": 1,
                   "big": 9223372036854775807, "neg": -9223372036854775807, "nul": null,
                   "s": "héllo wörld", "$version": 4}}})")
                                              .as_object();
  return twin;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  const boost::json::object& twin = Twin();

  if (auto query = q::ParseHubQuery(text)) {
    if (query->aggregate()) {
      auto agg = query->StartAggregation();
      agg.Add(twin);
      agg.Add(twin);
      auto rows = agg.Finish();
      if (query->top() && rows.size() > *query->top()) std::abort();
      for (const auto& row : rows) {
        if (!row.is_object()) std::abort();
        (void)boost::json::serialize(row);
      }
    } else {
      auto row = query->Apply(twin);
      if (row && query->select_all() && *row != boost::json::value(twin)) std::abort();
      if (row.has_value() != query->Matches(twin)) std::abort();
      if (row) (void)boost::json::serialize(*row);
    }
  }
  for (auto from : {q::HubCollection::kDevices, q::HubCollection::kModules}) {
    if (auto condition = q::ParseHubCondition(text, from)) {
      q::Value v = condition->Evaluate(twin);
      if (condition->Matches(twin) != q::IsTrue(v)) std::abort();
      if (v.defined()) (void)boost::json::serialize(v.get());
    }
  }
  return 0;
}
