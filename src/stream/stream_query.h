// The Azure Stream Analytics (ASA) dialect and its event-time engine, for one partition.
//
//   ORRERY_ASSIGN_OR_RETURN(auto q, stream::StreamQuery::Parse(text));   // errors → 400
//   stream::Engine engine(q, policy);
//   for (each event in arrival order) ORRERY_RETURN_IF_ERROR(engine.Push("input", obj, arrival));
//   engine.Flush();                       // end of input: every open window closes
//   for (auto& [target, rows] : engine.TakeOutputs()) …
//
// The grammar subset, semantics and what is not yet supported are in docs/stream.md.
// Times are microseconds since the Unix epoch (UTC). A StreamQuery is immutable and may be
// shared by engines on any threads; an Engine belongs to one thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "query/limits.h"

namespace orrery::stream {

using Micros = int64_t;  // microseconds since 1970-01-01T00:00:00Z
constexpr Micros kSecond = 1'000'000;

// The member a job's runtime adds to each event for GetMetadataPropertyValue: {"User": {the
// message's application properties}}. SELECT * leaves it out of rows.
inline constexpr std::string_view kMetadataMember = "\x01meta";

// ISO 8601 date-times ("2026-01-01T00:00:10Z", "…T00:00:10.1234567+02:00", "2026-01-01");
// a missing zone is UTC. nullopt when `text` is not one.
std::optional<Micros> ParseDateTime(std::string_view text);
// "2026-01-01T00:00:10.0000000Z" (seven fractional digits, as ASA writes them).
std::string FormatDateTime(Micros t);

// The job's event-ordering settings (ASA's "Event ordering" tab).
struct EventTimePolicy {
  enum class Action { kAdjust, kDrop };
  // An event whose time is earlier than its arrival time minus this is late: adjusted to
  // arrival - tolerance, or dropped. nullopt: indefinite (nothing is late). ASA's default: 5 s.
  std::optional<Micros> late_arrival_tolerance = 5 * kSecond;
  // Events up to this much older than the newest event time seen are reordered; older ones
  // are adjusted to (newest - tolerance) or dropped. ASA's default: 0.
  Micros out_of_order_tolerance = 0;
  Action action = Action::kAdjust;
};

struct StreamLimits {
  query::Limits text;                           // query text, nesting, list widths, nodes
  uint32_t max_statements = 64;                 // WITH steps plus SELECT statements and UNION parts
  Micros max_window = 7 * 24 * 3600 * kSecond;  // window sizes, hops, timeouts (ASA: 7 days)
  size_t max_buffered_events = 1'000'000;       // per FROM: the reorder buffer, sliding windows
  size_t max_open_groups = 1'000'000;           // per windowed SELECT: open (window, key) groups
  size_t max_distinct = 100'000;                // per COUNT(DISTINCT …) group
  uint32_t max_hops_per_event = 1000;           // hopping windows: size / hop
  // per group: the values Collect and the percentiles hold; CollectTop's count
  size_t max_collect = 100'000;
  // per SELECT: the events its analytic functions (LAG, LAST, ISFIRST's keys, aggregates OVER
  // LIMIT DURATION) remember, all partitions together; LAG's offset
  size_t max_analytic_events = 1'000'000;
  size_t max_apply_rows = 100'000;        // the rows CROSS/OUTER APPLY make of one event
  size_t max_reference_rows = 1'000'000;  // per reference data input
  // per SELECT: the keys of TIMESTAMP BY … OVER and PARTITION BY with their own clock
  size_t max_substreams = 1'000'000;
  // per MATCH_RECOGNIZE: the partial matches (alternatives still running, over every start)
  // one PARTITION BY key holds; the keys with partial or unreported matches
  size_t max_match_partials = 10'000;
  size_t max_match_keys = 100'000;
};

namespace internal {
struct Plan;
}

class StreamQuery {
 public:
  // Parses and binds `text`. Errors are query::Errc (kSyntax, kUnknownFunction,
  // kInvalidQuery, kLimitExceeded) with "line L, column C: …".
  static Result<StreamQuery> Parse(std::string_view text, const StreamLimits& limits = {});
  // As Parse, where the inputs named in `reference_inputs` are reference data: they are only
  // joined (on the right of a JOIN, with no time bound) and loaded with Engine::SetReference.
  static Result<StreamQuery> Parse(std::string_view text, const StreamLimits& limits,
                                   const std::vector<std::string>& reference_inputs);

  // The names FROM reads that are not WITH steps, in order of first use.
  const std::vector<std::string>& inputs() const;
  // The INTO targets ("default" for a SELECT without INTO), in order of first use.
  const std::vector<std::string>& outputs() const;
  // The reference data inputs the query joins, in order of first use.
  const std::vector<std::string>& references() const;

  // How far back in event time the engine's state can reach: the sum over its SELECTs of
  // their window spans (session windows: the maximum duration), LIMIT DURATIONs (twice for
  // AnomalyDetection_ChangePoint) and DATEDIFF bounds. Events older than this before the engine's
  // clock no longer affect what it will produce, so a replay from there (plus the ordering
  // tolerances) rebuilds its state.
  Micros StateHorizon() const;

  // Whether each input partition may run on its own engine (fed only that partition, the
  // others heartbeaten far ahead) and produce, together, the rows of one engine merging them:
  // every SELECT reading an input either splits it into substreams by PartitionId
  // (PARTITION BY PartitionId, TIMESTAMP BY … OVER PartitionId) or holds no cross-event state
  // and no TIMESTAMP BY (a filter or projection, with APPLY or reference JOINs), and every
  // SELECT reading a WITH step holds no cross-event state. Conservative: false when unsure
  // (docs/stream.md, "Partitions").
  bool PartitionParallel() const;

  std::shared_ptr<const internal::Plan> plan() const { return plan_; }

 private:
  std::shared_ptr<const internal::Plan> plan_;
};

struct OutputEvent {
  Micros timestamp = 0;  // System.Timestamp() of the row
  boost::json::object row;
};

struct EngineStats {
  uint64_t events_in = 0;
  uint64_t dropped_late = 0;           // late or out of order under Action::kDrop
  uint64_t adjusted = 0;               // late or out of order under Action::kAdjust
  uint64_t dropped_bad_timestamp = 0;  // TIMESTAMP BY not a date-time
  uint64_t dropped_schema = 0;         // events and reference rows that do not fit CREATE TABLE
};

class Engine {
 public:
  // Every input has `partitions` partitions (0 … partitions - 1; at least 1).
  Engine(const StreamQuery& query, EventTimePolicy policy = {}, uint32_t partitions = 1);
  ~Engine();
  Engine(Engine&&) noexcept;
  Engine& operator=(Engine&&) noexcept;

  // One event of `input` (a name the query reads, matched ignoring case), in arrival order.
  // What the engine keeps of it is copied into the default memory resource, so `event` may
  // live in a buffer the caller reuses once Push returns (a json::monotonic_resource).
  // REQUIRES: arrival times never decrease. Errors: an unknown input; a limit of
  // StreamLimits exceeded (query::Errc::kLimitExceeded; the engine is then unusable).
  Result<void> Push(std::string_view input, const boost::json::object& event, Micros arrival);
  // One event of partition `partition` of `input`. The partitions of an input are merged in
  // one order, by arrival time, then partition, then their order within the partition, which
  // does not depend on how the calls for different partitions interleave: an event is
  // processed once every other partition has sent (or heartbeaten) a later arrival, or at
  // Flush. PartitionId in the query is `partition`.
  // REQUIRES: arrival times never decrease within a partition. Errors: as Push; a partition
  // out of range; more events waiting for a silent partition than
  // StreamLimits::max_buffered_events (kLimitExceeded).
  Result<void> Push(std::string_view input, uint32_t partition, const boost::json::object& event,
                    Micros arrival);
  // Partition `partition` of `input` will send nothing that arrives before `arrival`.
  Result<void> Heartbeat(std::string_view input, uint32_t partition, Micros arrival);
  // The end of every input: buffered events are released and every open window closes.
  Result<void> Flush();
  // Loads (or replaces) the rows of reference data `input` (one of query.references(),
  // matched ignoring case); events pushed afterwards join them. Errors: not a reference input
  // of the query; more rows than StreamLimits::max_reference_rows (kLimitExceeded; the engine
  // stays usable).
  Result<void> SetReference(std::string_view input, std::vector<boost::json::object> rows);

  // Rows produced so far, per INTO target, in the order they were produced (System.Timestamp
  // never decreases within a target fed by one SELECT).
  std::map<std::string, std::vector<OutputEvent>> TakeOutputs();
  const EngineStats& stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace orrery::stream
