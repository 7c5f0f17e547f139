// The routing annotation: what message routing decided for one message at ingestion, stored
// with it in the event log (eventlog::SystemProperties::route_annotation), so that every
// endpoint's reader — and the built-in endpoint's consumers — know whether the message is
// theirs and which enrichments it carries, without evaluating routes again (route changes apply
// to messages that arrive after them, as in IoT Hub).
//
// Encoding: compact JSON, {"e":["events","archive"],"x":{"archive":[["k","v"],…]}} ("x" only
// when there are enrichments). An empty annotation means routing was not configured: the
// message belongs to the built-in endpoint only, without enrichments.
//
// Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace orrery::routing {

inline constexpr std::string_view kBuiltInEndpoint = "events";

struct Annotation {
  std::vector<std::string> endpoints;  // sorted, unique
  // Per endpoint, the enrichment properties to add (endpoint, key, value).
  std::vector<std::pair<std::string, std::vector<std::pair<std::string, std::string>>>> enrichments;
};

std::string EncodeAnnotation(const Annotation& a);
// Malformed text (never written by Orrery) decodes as "built-in endpoint only".
Annotation DecodeAnnotation(std::string_view text);

// Whether a message with this annotation goes to `endpoint` (fast: no full decode).
bool RoutedTo(std::string_view annotation, std::string_view endpoint);
// The enrichment properties for `endpoint` (empty when none).
std::vector<std::pair<std::string, std::string>> EnrichmentsFor(std::string_view annotation,
                                                                std::string_view endpoint);

}  // namespace orrery::routing
