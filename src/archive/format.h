// IoT Hub's storage-endpoint file format: the record written for each routed message, its Avro
// schema, and its JSON line. Pure functions (no I/O); thread-safe. See docs/adr/0007-avro.md
// for the evidence behind every choice below.
//
// A record has four fields, in this order, in both encodings:
//   EnqueuedTimeUtc   "2019-05-10T06:06:32.7220000Z" (.NET's round-trip format: 7 fraction digits)
//   Properties        the application properties, then the endpoint's enrichments
//   SystemProperties  messageId, correlationId, userId, to, connectionDeviceId,
//                     connectionModuleId, connectionAuthMethod, connectionDeviceGenerationId,
//                     contentType, contentEncoding, enqueuedTime — each only when set
//   Body              the body bytes (Avro: the "bytes" branch, also when empty)
//
// Normalisation (identical for both encodings, so an Avro and a JSON file of the same batch
// hold the same records):
//   - Every key and value becomes valid UTF-8 (Avro strings and JSON must be): a byte that does
//     not start a well-formed sequence becomes U+FFFD, as .NET's decoder (IoT Hub's) does; U+0000
//     in a key becomes U+FFFD too (libavro's map keys are C strings); values keep it.
//   - Properties are a map: a repeated key keeps its first position and its last value, so an
//     enrichment overrides an application property of the same name.
//
// JSON: one object per line ("\n"-terminated). Body is base64 unless the message declares
// contentType application/json and contentEncoding utf-8 (both case-insensitive) and the body
// is valid JSON; then it is the JSON value itself, copied as sent (line breaks, which valid JSON
// has only between tokens, become spaces).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "eventlog/event_log.h"

namespace orrery::archive {

// IoT Hub's encodings for storage endpoints ("avro", "avroDeflate", "JSON" in its ARM API).
// kAvro is an Avro object container file with the "null" codec (IoT Hub's default), kAvroDeflate
// the same with the "deflate" codec, kJson one JSON object per line.
enum class Encoding { kAvro, kAvroDeflate, kJson };

// "avro" | "avrodeflate" | "json", case-insensitive.
Result<Encoding> ParseEncoding(std::string_view name);
std::string_view EncodingName(Encoding e);   // "avro", "avroDeflate", "json"
std::string_view FileExtension(Encoding e);  // ".avro" (both Avro encodings) or ".json"

// The record schema IoT Hub writes in its files' avro.schema metadata.
inline constexpr std::string_view kAvroSchema =
    R"({"type":"record","name":"Message","namespace":"Microsoft.Azure.Devices","fields":[)"
    R"({"name":"EnqueuedTimeUtc","type":"string"},)"
    R"({"name":"Properties","type":{"type":"map","values":"string"}},)"
    R"({"name":"SystemProperties","type":{"type":"map","values":"string"}},)"
    R"({"name":"Body","type":["null","bytes"]}]})";

// A key and its value (properties, system properties, enrichments).
using Property = std::pair<std::string, std::string>;

// One normalised record. `body` borrows the event's body: valid while the event is.
struct Record {
  std::string enqueued_time_utc;
  std::vector<Property> properties;
  std::vector<Property> system_properties;
  std::string_view body;
  bool declares_json = false;  // contentType application/json and contentEncoding utf-8
};

// The record for `event` (EnqueuedTimeUtc and enqueuedTime from event.enqueued_ms), with
// `enrichments` appended to its properties.
Record MakeRecord(const eventlog::Event& event, std::span<const Property> enrichments = {});

// 1557468392722 → "2019-05-10T06:06:32.7220000Z".
std::string FormatEnqueuedTime(int64_t ms_since_epoch);

// `s` when it is valid UTF-8; otherwise a copy in which every byte that does not begin a
// well-formed sequence is replaced by U+FFFD.
std::string SanitizeUtf8(std::string_view s);

// Whether the JSON encoding writes the body inline: declared as JSON and valid JSON.
bool InlinesJsonBody(const Record& record);

// Appends the record's JSON object and "\n" to `*out`.
void AppendJsonLine(const Record& record, std::string* out);

}  // namespace orrery::archive
