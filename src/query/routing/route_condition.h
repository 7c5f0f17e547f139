// IoT Hub message routing conditions (the `condition` of a route): the second dialect on the
// shared query foundation. A condition is one expression over one message:
//
//   $contentType = 'application/json'          a system property: '$' and its routing name
//   processingPath = 'hot'                     an application property, by bare name
//   $body.Weather.HistoricalData[0].Month      the JSON body (undefined unless the caller parses
//   it) $twin.properties.reported.batteryLevel     the device's (or module's) twin
//   is_defined($body.x) AND NOT (severity IN ('1', '2'))
//
// Names, as IoT Hub resolves them:
//   - `$name` is the system property of that routing name (any case; SystemPropertyName lists
//     them, FindSystemProperty also takes the wire names such as `iothub-connection-device-id`);
//     failing that, the application property named `$name`.
//   - A bare name, dots included (`a.b` is the property "a.b": IoT Hub's grammar keeps dots in
//     names), is an application property. Names match ignoring ASCII case; the last of
//     repeated names wins. Values are strings: `severity = 3` is undefined, compare with
//     '3' or AS_NUMBER(severity) = 3.
//   - `-` joins names (`iothub-message-schema`, `$dt-subject`), so subtraction takes a space
//     (`a - 1`); `[[any text]]` quotes a name anywhere (`[[my#prop]] = 'x'`).
//   - `$body.path` reads the body (members match exactly), `$twin.path` the twin (ignoring
//     case). Both yield only primitives: a path that reaches an object or an array is
//     undefined, and so are `$body` itself, `$body[0]` and `$twin`.
//
// Operators, functions and three-valued logic are the foundation's (docs/query.md); a message
// matches only when the condition is the boolean true. Keywords are case-insensitive. An empty
// (or blank) condition is `true`, as IoT Hub's default route condition.
//
// Sources: learn.microsoft.com/azure/iot-hub/iot-hub-devguide-routing-query-syntax (system
// property keywords, `$`-prefix lookup order, $body and $twin, "the query isn't case-sensitive",
// null or undefined treated as false, the characters names may not contain);
// …/iot-hub-devguide-messages-construct ("Keyword for routing query" column);
// …/iot-hub-non-telemetry-event-schema (system event properties); …/iot-hub-devguide-query-language
// (operators and the routing function list); Azure IoT Edge's open-source edgeHub routing engine
// (Microsoft.Azure.Devices.Routing.Core: the condition grammar, case-insensitive property
// dictionaries, body queries that yield only primitives). docs/query.md, "Routing conditions",
// has the details and the differences.
//
// Stages (query/…): lexer (LexOptions: hyphens, quoted names) → foundation expression parser →
// routing binder (routing/binder.cc: names to roots and property slots, the primitive rule) →
// executor (routing/executor.cc). RouteCondition is immutable and cheap to copy; any number of
// threads may evaluate one at once.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "base/error.h"
#include "query/limits.h"
#include "query/value.h"

namespace orrery::query {

// The system properties a condition can name (IoT Hub's "Keyword for routing query").
enum class SystemProperty : uint8_t {
  kContentType,                   // $contentType (content-type)
  kContentEncoding,               // $contentEncoding (content-encoding)
  kMessageId,                     // $messageId (message-id)
  kCorrelationId,                 // $correlationId (correlation-id)
  kUserId,                        // $userId (user-id)
  kTo,                            // $to
  kConnectionDeviceId,            // $connectionDeviceId (iothub-connection-device-id)
  kConnectionModuleId,            // $connectionModuleId (iothub-connection-module-id)
  kConnectionDeviceGenerationId,  // $connectionDeviceGenerationId (…-auth-generation-id)
  kConnectionAuthMethod,          // $connectionAuthMethod (iothub-connection-auth-method)
  kEnqueuedTime,                  // $enqueuedTime (iothub-enqueuedtime), ISO 8601 text
  kCreationTimeUtc,               // $creation-time-utc (iothub-creation-time-utc)
  kDtDataSchema,                  // $dt-dataschema: the device's model id
  kDtSubject,                     // $dt-subject: the sending component
  kInterfaceName,                 // $iothub-interface-name (IoT Plug and Play preview)
};
inline constexpr size_t kSystemPropertyCount = 15;

// The routing name, as documented: "contentType", "connectionDeviceId", "dt-subject", …
std::string_view SystemPropertyName(SystemProperty p);
// A system property by a name a condition may use after '$': the routing name or the wire
// name ("iothub-connection-device-id", "message-id", …), ignoring ASCII case.
std::optional<SystemProperty> FindSystemProperty(std::string_view name);

// The system properties of one message, as views (nothing is copied). Cheap to build per
// message: an array of string_views and a presence mask.
class SystemProperties {
 public:
  // REQUIRES: `value`'s characters outlive every evaluation that reads them.
  void Set(SystemProperty p, std::string_view value) noexcept {
    values_[Index(p)] = value;
    present_ |= Bit(p);
  }
  // By any name FindSystemProperty knows; false (and nothing set) for other names.
  bool SetByName(std::string_view name, std::string_view value) noexcept;
  void Clear(SystemProperty p) noexcept { present_ &= ~Bit(p); }
  std::optional<std::string_view> Get(SystemProperty p) const noexcept {
    if ((present_ & Bit(p)) == 0) return std::nullopt;
    return values_[Index(p)];
  }

 private:
  static size_t Index(SystemProperty p) noexcept { return static_cast<size_t>(p); }
  static uint32_t Bit(SystemProperty p) noexcept { return uint32_t{1} << Index(p); }

  std::array<std::string_view, kSystemPropertyCount> values_{};
  uint32_t present_ = 0;
};

using AppProperty = std::pair<std::string, std::string>;

// What a route condition sees of one message. Nothing is copied: every view and pointer must
// stay valid while a condition evaluates the input.
struct RouteInput {
  // In order; names match ignoring ASCII case and a repeated name's last value wins.
  std::span<const AppProperty> app_properties;
  SystemProperties system;
  // The parsed body, or nullptr (every $body path is undefined). IoT Hub reads the body only
  // when $contentType is application/json and $contentEncoding UTF-8, -16 or -32; that check
  // and the decoding are the caller's. Parse only when some condition uses_body().
  const boost::json::value* body = nullptr;
  // The sender's twin in the service shape ({"tags":…, "properties":{"desired":…,
  // "reported":…}, …}; a module's own twin for module messages), or nullptr (every $twin
  // path is undefined). Fetch only when some condition uses_twin().
  const boost::json::object* twin = nullptr;
};

namespace internal {
struct RoutePlan;
}

class RouteCondition {
 public:
  // The condition evaluates to the boolean true (undefined, null and non-booleans do not).
  // Allocates nothing for the usual conditions: up to 8 distinct property names, whose values
  // longer than 13 bytes take 512 bytes in all (beyond that, a few small allocations).
  bool Matches(const RouteInput& in) const;
  // What the condition evaluates to (undefined included), for "test route" diagnostics.
  // The result is an owned copy: it borrows nothing from `in` or from this condition.
  Value Evaluate(const RouteInput& in) const;
  // Whether some path reads $body / $twin; when not, Matches ignores RouteInput::body / twin.
  bool uses_body() const;
  bool uses_twin() const;
  // The text the condition was parsed from.
  const std::string& text() const;

 private:
  friend Result<RouteCondition> ParseRouteCondition(std::string_view text);
  explicit RouteCondition(std::shared_ptr<const internal::RoutePlan> plan)
      : plan_(std::move(plan)) {}
  std::shared_ptr<const internal::RoutePlan> plan_;
};

// The bounds on condition text: 8192 bytes (as IoT Hub queries; Azure documents no separate
// bound for routes), otherwise the shared defaults.
Limits RouteLimits();

// Errors: Errc::kSyntax, kUnknownFunction, kInvalidQuery (arity), kLimitExceeded, with
// "line L, column C: …" messages.
Result<RouteCondition> ParseRouteCondition(std::string_view text);

}  // namespace orrery::query
