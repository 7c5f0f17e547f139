// libFuzzer target for IoT Hub routing conditions: the input is parsed as a route condition
// (lexer with the routing options, expression parser, routing binder); whatever parses is
// evaluated against a fixed message with properties, a JSON body and a twin (evaluator,
// functions, property slots, the primitive rule). Nothing may crash, hang, overflow the stack
// or escape as an exception, and the results must keep the API's promises: Matches is
// IsTrue(Evaluate), Evaluate's result owns its JSON, and a condition that does not use the
// body (the twin) gives the same answer without it.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json.hpp>

#include "query/routing/route_condition.h"

namespace q = orrery::query;

namespace {

struct Fixture {
  boost::json::value body = boost::json::parse(R"({
    "Weather": {"Temperature": 50, "IsEnabled": true, "PrevTemperatures": [20, 30, 40],
                "Location": {"State": "WA"},
                "HistoricalData": [{"Month": "Feb", "Temperature": 40}]},
    "temperature": 35.5, "n": -9223372036854775807, "big": 18446744073709551615,
    "nul": null, "s": "héllo wörld", "protocol.id": 14,
    "properties": {"desired": {"telemetryConfig": {"sendFrequency": 15}, "$version": 6}}})");
  boost::json::object twin = boost::json::parse(R"({
    "deviceId": "d1", "etag": "AAAAAAAAAAE=", "version": 4,
    "tags": {"deploymentLocation": {"building": "43", "floor": "1"}, "roles": ["a", "b"]},
    "properties": {"desired": {"telemetryConfig": {"sendFrequency": "5m"}, "$version": 1},
                   "reported": {"batteryLevel": 55, "$version": 4}}})")
                                 .as_object();
  std::vector<q::AppProperty> app = {{"processingPath", "hot"},
                                     {"severity", "3"},
                                     {"iothub-message-schema", "twinChangeNotification"},
                                     {"opType", "updateTwin"},
                                     {"$custom", "dollar"},
                                     {"long", std::string(600, 'x')},
                                     {"PROCESSINGPATH", "warm"}};
  q::RouteInput input;

  Fixture() {
    input.app_properties = app;
    input.system.Set(q::SystemProperty::kContentType, "application/json");
    input.system.Set(q::SystemProperty::kContentEncoding, "utf-8");
    input.system.Set(q::SystemProperty::kConnectionDeviceId, "d1");
    input.system.Set(q::SystemProperty::kEnqueuedTime, "2024-05-01T10:00:00Z");
    input.body = &body;
    input.twin = &twin;
  }
};

std::string Show(const q::Value& v) {
  if (!v.defined()) return "undefined";
  if (v.borrowed()) std::abort();  // Evaluate returns an owned copy
  return boost::json::serialize(v.get());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const Fixture fixture;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto condition = q::ParseRouteCondition(text);
  if (!condition) return 0;
  if (condition->text() != text) std::abort();
  q::RouteInput in = fixture.input;
  q::Value v = condition->Evaluate(in);
  if (condition->Matches(in) != q::IsTrue(v)) std::abort();
  std::string shown = Show(v);
  q::RouteInput without = in;
  if (!condition->uses_body()) without.body = nullptr;
  if (!condition->uses_twin()) without.twin = nullptr;
  if (Show(condition->Evaluate(without)) != shown) std::abort();
  // Nothing at all: every property, body and twin path is undefined; must not crash.
  (void)condition->Matches(q::RouteInput());
  return 0;
}
