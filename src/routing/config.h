// Message-routing configuration: routes, enrichments, the fallback route and custom endpoints
// (storage on the local filesystem, HTTPS webhooks), in IoT Hub's "routing" JSON shape
// (its ARM RoutingProperties, with Orrery's `webhooks` beside `storageContainers`):
//
//   {"endpoints":{"storageContainers":[{"name","path","fileNameFormat","batchFrequencyInSeconds",
//                                       "maxChunkSizeInBytes","encoding"}],
//                 "webhooks":[{"name","url","secret","maxBatchSize","maxAttempts",
//                              "timeoutInSeconds"}]},
//    "routes":[{"name","source","condition","endpointNames":[…],"isEnabled"}],
//    "fallbackRoute":{"isEnabled":true},
//    "enrichments":[{"key","value","endpointNames":[…]}]}
//
// Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "base/error.h"
#include "hub/annotator.h"

namespace orrery::routing {

using Source = hub::MessageSource;
std::string_view SourceName(Source s);  // "DeviceMessages", …
Result<Source> ParseSource(std::string_view name);

struct Route {
  std::string name;
  Source source = Source::kDeviceMessages;
  std::string condition = "true";
  std::vector<std::string> endpoints;
  bool enabled = true;
};

struct Enrichment {
  std::string key;
  std::string value;  // static text, "$iothubname", "$twin.tags.…", "$twin.properties.…"
  std::vector<std::string> endpoints;
};

enum class Encoding { kAvro, kAvroDeflate, kJson };

struct StorageEndpoint {
  std::string name;
  std::string path;  // directory under <data-dir>/archive (relative, no "..")
  std::string file_name_format = "{iothub}/{partition}/{YYYY}/{MM}/{DD}/{HH}/{mm}";
  int64_t batch_frequency_s = 300;      // 60..720 (IoT Hub's bounds)
  int64_t max_chunk_bytes = 300 << 20;  // 10 MiB..500 MiB
  Encoding encoding = Encoding::kAvro;
  // Not configurable in JSON: each message body (a stream job's row) is written itself rather
  // than as IoT Hub's routing record: a JSON line, or an Avro record of its columns.
  bool body_rows = false;
};

struct WebhookEndpoint {
  std::string name;
  std::string url;               // https://…
  std::string secret;            // HMAC-SHA256 key for the signature header (never shown back)
  int64_t max_batch_size = 100;  // messages per POST, 1..1000
  int64_t max_attempts = 10;     // then the batch is dead-lettered, 1..100
  int64_t timeout_s = 10;        // per attempt, 1..120
  // "format": "routingRecord" (IoT Hub's routing record shape; the default), "cloudEvents"
  // (each message body is a structured CloudEvent; POSTed as a CloudEvents JSON batch) or
  // "jsonArray" (each message body is JSON; POSTed as an array of them: Stream Analytics rows).
  enum class Format { kRoutingRecord, kCloudEvents, kJsonArray };
  Format format = Format::kRoutingRecord;
  // Not configurable in JSON: how long a partial batch waits for more before it is sent.
  // Routing batches for 200 ms; stream job outputs send what they have at once (the worker
  // still drains everything readable first, so load batches by itself).
  int64_t linger_ms = 200;
};

struct RoutingConfig {
  std::vector<StorageEndpoint> storage;
  std::vector<WebhookEndpoint> webhooks;
  std::vector<Route> routes;
  bool fallback_enabled = true;
  std::vector<Enrichment> enrichments;
};

// Bounds of the server (configurable): IoT Hub's batch frequency is 60..720 s; tests lower it.
struct ConfigLimits {
  int64_t min_batch_frequency_s = 60;
  size_t max_routes = 100;
  size_t max_enrichments = 10;
  size_t max_endpoints = 10;  // custom endpoints in all
};

// Parses and validates (names unique and well-formed, endpoints known, conditions parse,
// enrichment values well-formed, bounds): kInvalidArgument naming the offending item.
Result<RoutingConfig> ConfigFromJson(const boost::json::value& v, const ConfigLimits& limits);
// The stored form; `with_secrets` = false for API answers (webhook secrets masked).
boost::json::object ConfigToJson(const RoutingConfig& c, bool with_secrets);

// Endpoint names: 1..64 letters, digits, '-', '_', '.', starting and ending with a letter or
// digit; "events" is the built-in endpoint.
Status CheckEndpointName(std::string_view name);

}  // namespace orrery::routing
