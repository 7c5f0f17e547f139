// Ingestion from the hub without glue code: declarative rules that turn what devices do into
// twin patches (mapping rules), and twin changes into patches of related twins (propagation
// rules). In Azure each of these takes an Azure Function.
//
//   {"source": "telemetry",                        // or twinChangeEvents, deviceLifecycleEvents,
//                                                  //    deviceConnectionStateEvents
//    "condition": "is_defined($body.temperature)", // optional: an IoT Hub routing condition
//    "twinId": "{deviceId}",                       // the target: an id template ({deviceId},
//                                                  //    {moduleId}) …
//    "twinQuery": "SELECT T FROM DIGITALTWINS T WHERE T.deviceId = '{deviceId}'",  // … or a query
//    "patch": {"/temperature": "$body.temperature", "/lastSeen": "$enqueuedTime"}}
//
//   {"source": "digitalTwinChange",                // a twin's Create/Update notification
//    "condition": "$body.modelId = 'dtmi:example:Sensor;1'",  // optional: an event route filter
//    "relationship": "hasSensor", "direction": "incoming",     // the related twins to patch
//    "patch": {"/temperature": "$twin.temperature"}}
//
// Patch values: "$body.<path>" (the message body's JSON; for digitalTwinChange the event's
// data), "$twin.<path>" (digitalTwinChange: the changed twin as it is now), "$deviceId",
// "$moduleId", "$enqueuedTime", "$property.<name>" (an application property), "$twinId"
// (digitalTwinChange); any other JSON value is a constant. A value that is undefined (the
// message lacks it) leaves its path alone; a patch that would change nothing is not applied
// (which also ends propagation cycles once values settle). Each patch is an "add" of every
// path (JSON Patch add replaces a member), validated as any patch against the twin's model.
//
// Delivery: hub messages are read by a consumer of the hub's event log (group "dt.ingest",
// checkpointed after the patches are durable: at-least-once, patches are idempotent);
// propagation runs from the notification outbox (Notifier::Subscribe), before the event
// leaves it. A rule that fails for a message (no such twin, a value the model refuses) is
// counted and logged, and the message is passed.
//
// Rules are stored (keyspace "dt.mapping"), at most 100; thread-safe.
#pragma once

#include <atomic>
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "eventlog/event_log.h"
#include "store/kv_store.h"

namespace orrery::twins {

class Notifier;
class TwinGraph;

struct IngestionRule {
  enum class Source {
    kTelemetry,
    kTwinChange,
    kLifecycle,
    kConnectionState,
    kDigitalTwinChange,
  };
  std::string name;
  Source source = Source::kTelemetry;
  std::string condition;
  std::string twin_id;       // hub sources: a template
  std::string twin_query;    // hub sources: instead of twin_id
  std::string relationship;  // digitalTwinChange
  bool incoming = true;      // digitalTwinChange: the twins whose relationship points here
  std::vector<std::pair<std::string, boost::json::value>> patch;  // path → value expression
};

// Parses and validates a rule (the condition parses, the query parses, paths are JSON
// pointers, a target is given); kInvalidArgument naming what is wrong.
Result<IngestionRule> RuleFromJson(std::string name, const boost::json::value& v);
boost::json::object RuleToJson(const IngestionRule& rule);

struct IngestionStats {
  uint64_t applied = 0;    // patches applied
  uint64_t unchanged = 0;  // patches skipped: nothing would change
  uint64_t failed = 0;     // patches refused (no such twin, validation)
};

class Ingestion {
 public:
  // Loads the rules, subscribes to `notifier` (propagation) and starts reading `hub_log`.
  // `graph`, `notifier` and `hub_log` must outlive Stop().
  static Result<std::unique_ptr<Ingestion>> Open(store::KvStore* store, TwinGraph* graph,
                                                 Notifier* notifier, eventlog::EventLog* hub_log);
  ~Ingestion();  // Stop()s

  // Blocking (durable writes).
  Status PutRule(IngestionRule rule);
  Status DeleteRule(std::string_view name);  // kInvalidArgument when there is none
  std::vector<IngestionRule> Rules() const;
  Result<IngestionRule> GetRule(std::string_view name) const;
  // Creates or replaces the rules of a JSON file {"name": rule, …} (twins.mappings_file); a
  // bad rule fails the whole file, naming the file and the rule.
  Status LoadFile(const std::filesystem::path& file);

  IngestionStats stats() const;
  // Stops reading the hub's log (checkpointed).
  void Stop();

  struct Impl;

 private:
  explicit Ingestion(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace orrery::twins
