// A Stream Analytics job as a durable resource: its definition (query, inputs, reference data,
// outputs, event-ordering and output-error policies) in JSON, validated whole on create and
// update. The shape follows ASA's job properties, flattened (docs/stream-jobs.md):
//
//   {"query": "SELECT … INTO alerts FROM telemetry …",
//    "inputs": [{"name": "telemetry", "source": "iothub", "serialization": "json"},
//               {"name": "hot", "source": "stream", "job": "other", "output": "derived"}],
//    "references": [{"name": "thresholds", "path": "thresholds.csv"}],
//    "outputs": [{"name": "alerts", "type": "webhook", "url": "https://…", "secret": "…"},
//                {"name": "archive", "type": "storage", "path": "alerts", "encoding": "json"},
//                {"name": "derived", "type": "stream"},
//                {"name": "cmd", "type": "c2d", "deviceIdColumn": "deviceId"},
//                {"name": "call", "type": "method", "deviceIdColumn": "deviceId",
//                 "methodName": "reboot"},
//                {"name": "desired", "type": "desiredProperties", "deviceIdColumn": "deviceId"},
//                {"name": "twin", "type": "digitalTwin", "twinIdColumn": "twinId"}],
//    "eventOrdering": {"lateArrivalToleranceInSeconds": 5, "outOfOrderToleranceInSeconds": 0,
//                      "action": "adjust"},
//    "outputErrorPolicy": "retry",
//    "compatibilityLevel": "1.2"}
//
// Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "routing/config.h"
#include "stream/stream_query.h"

namespace orrery::asa {

enum class Errc {
  kInvalidJob = 1,  // a definition, query or request that does not validate (400)
  kJobNotFound,     // 404
  kJobExists,       // create of an existing job (409)
  kConflict,        // the job's state forbids it: update or delete while running (409)
  kLimitExceeded,   // too many jobs, outputs, inputs (400)
  kUnavailable,     // the store failed, shutting down (503)
};
inline std::error_code make_error_code(Errc e) {
  return MakeErrorCode(e);
}

}  // namespace orrery::asa

template <>
struct orrery::ErrcTraits<orrery::asa::Errc> {
  static constexpr const char* kName = "asa";
  static std::string Message(orrery::asa::Errc e);
};
ORRERY_ERRC(orrery::asa::Errc);

namespace orrery::asa {

struct JobInput {
  enum class Source { kIotHub, kStream };
  enum class Serialization { kJson, kCsv };
  std::string name;
  Source source = Source::kIotHub;
  Serialization serialization = Serialization::kJson;
  std::string job, output;  // kStream: the derived stream another job's output writes
};

struct JobReference {
  std::string name;
  std::string path;  // relative to the server's reference directory (asa.reference_dir)
};

struct JobOutput {
  enum class Type { kWebhook, kStorage, kStream, kC2d, kMethod, kDesired, kDigitalTwin };
  std::string name;
  Type type = Type::kWebhook;
  routing::WebhookEndpoint webhook;  // kWebhook (name: the endpoint name, see EndpointName)
  routing::StorageEndpoint storage;  // kStorage
  std::string id_column;             // kC2d, kMethod, kDesired: deviceIdColumn; twin: twinIdColumn
  std::string method_name;           // kMethod: a constant name …
  std::string method_column;         // … or the column holding it
  int response_timeout_s = 30;       // kMethod
};

struct Job {
  std::string name;
  std::string query;
  std::vector<JobInput> inputs;
  std::vector<JobReference> references;
  std::vector<JobOutput> outputs;
  stream::EventTimePolicy ordering;
  bool drop_on_output_error = false;  // outputErrorPolicy "drop" (else "retry")
  std::string compatibility_level = "1.2";
};

struct JobLimits {
  size_t max_inputs = 10;
  size_t max_references = 10;
  size_t max_outputs = 10;
  size_t max_query_bytes = 512 * 1024;  // ASA: 512 KB of query text
  int64_t min_batch_frequency_s = 60;   // storage outputs (routing's bound)
  stream::StreamLimits stream;
};

// Job names: 3..32 letters, digits, '-' and '_' (ASA: 3..63; shorter here because a job's
// outputs become routing endpoints named "<job>.<output>", at most 64 characters); output
// and input names: 1..31 of the same.
Status CheckJobName(std::string_view name);

// Parses and validates `v` as the definition of job `name`: every field's type and bounds,
// names unique, the query parses (line and column in the message) and reads exactly the
// inputs and references declared and writes only the outputs declared. kInvalidJob or
// kLimitExceeded naming the offending item.
Result<Job> JobFromJson(std::string name, const boost::json::value& v, const JobLimits& limits);
// The stored form (with secrets) or the API's (webhook secrets masked).
boost::json::object JobToJson(const Job& job, bool with_secrets);

// The query as the runtime runs it (references declared as such).
Result<stream::StreamQuery> ParseJobQuery(const Job& job, const JobLimits& limits);

// "<job>.<output>": the routing endpoint (and consumer group suffix) of an output.
std::string EndpointName(std::string_view job, std::string_view output);

std::string_view OutputTypeName(JobOutput::Type t);

}  // namespace orrery::asa
