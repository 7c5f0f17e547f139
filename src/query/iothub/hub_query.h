// The IoT Hub query dialect: device/module twin and job queries (POST /devices/query) and
// bare conditions (the `queryCondition` of scheduled jobs), over twins in IoT Hub's service
// JSON shape.
//
//   SELECT [TOP n] * | item [, item…]
//     FROM devices | devices.modules | devices.jobs
//     [WHERE condition]
//     [GROUP BY expression [, expression…]]
//   item := expression [AS alias] | COUNT() | COUNT(*) | SUM|AVG|MIN|MAX(expression)  [AS alias]
//
// Keywords are case-insensitive; so are property names (an exact match wins, otherwise the
// first member equal ignoring ASCII case), as IoT Hub's are. A path may name the collection
// first: `devices.tags.x`, `devices.modules.moduleId`, `devices.jobs.status` read `tags.x`,
// `moduleId`, `status` of the document. The full grammar, the semantics of undefined, the
// function list and the limits are in docs/query.md.
//
// Stages (query/…): lexer → expression parser → this dialect's statement parser
// (iothub/parser.cc) → binder (iothub/binder.cc: paths, functions, GROUP BY rules) →
// executor (iothub/executor.cc: the classes below).
//
// Paging is the caller's: it iterates its documents in a stable order (device id, then module
// id), calls Apply on each and stops after top() rows or a page; the continuation token is its
// own. Aggregate queries need every document: feed them all to one Aggregation, then page
// through Finish()'s rows.
//
// HubQuery and HubCondition are immutable and cheap to copy (they share their plan); their
// const members may be called from any number of threads at once. An Aggregation belongs to
// one thread.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "base/error.h"
#include "query/aggregates.h"
#include "query/limits.h"
#include "query/value.h"

namespace orrery::query {

enum class HubCollection { kDevices, kModules, kJobs };
std::string_view HubCollectionName(HubCollection c);  // "devices", "devices.modules", …

// IoT Hub's limits: 8192 bytes of query text (Azure documents 8192 characters), otherwise
// the shared defaults.
Limits HubLimits();

namespace internal {
struct HubPlan;
}

class HubQuery {
 public:
  HubCollection from() const;
  // GROUP BY, or an aggregate in SELECT: use StartAggregation, not Apply.
  bool aggregate() const;
  // SELECT TOP n: the caller returns at most n rows in all (Finish() applies it itself).
  std::optional<uint64_t> top() const;
  // SELECT *: Apply returns matching documents unchanged. A caller that only serialises rows
  // can test Matches() and write the document itself, saving Apply's deep copy (which costs
  // more than the filter: ~3 µs for a 1 KB twin against ~0.2–0.7 µs for a typical WHERE).
  bool select_all() const;

  // The WHERE clause alone (true without one).
  bool Matches(const boost::json::object& doc) const;
  // The row for `doc`: the document itself for SELECT *, else an object of the projected
  // values keyed by alias, or by the last member name of a path as the document spells it
  // (`SELECT DeviceId` → {"deviceId": …}), or "$1", "$2"… for other unnamed items; undefined
  // values are left out. nullopt when WHERE does not hold. Nothing is copied for documents
  // that do not match. REQUIRES: !aggregate() (otherwise: nullopt).
  std::optional<boost::json::value> Apply(const boost::json::object& doc) const;

  class Aggregation {
   public:
    // Filters `doc` by WHERE and adds it to its group.
    void Add(const boost::json::object& doc);
    // One row per group, in the order the groups were first seen (without GROUP BY: exactly
    // one row, even for no documents: `[{"n":0}]`), at most top() rows. Leaves the
    // aggregation empty. Memory is proportional to the number of groups.
    std::vector<boost::json::value> Finish();

   private:
    friend class HubQuery;
    struct Group {
      std::vector<Value> keys;  // owned copies of the GROUP BY values (undefined allowed)
      std::vector<std::string> key_names;  // each key's last member name, as the document spells it
      std::vector<Accumulator> accumulators;
    };
    explicit Aggregation(std::shared_ptr<const internal::HubPlan> plan);
    Group NewGroup() const;

    std::shared_ptr<const internal::HubPlan> plan_;
    std::unordered_map<std::string, size_t> index_;  // encoded keys → groups_
    std::vector<Group> groups_;
  };
  // REQUIRES: aggregate().
  Aggregation StartAggregation() const;

 private:
  friend Result<HubQuery> ParseHubQuery(std::string_view text);
  explicit HubQuery(std::shared_ptr<const internal::HubPlan> plan) : plan_(std::move(plan)) {}
  std::shared_ptr<const internal::HubPlan> plan_;
};

class HubCondition {
 public:
  // The condition evaluates to true (undefined, null and non-booleans do not match).
  bool Matches(const boost::json::object& doc) const;
  // What the condition evaluates to (undefined included), for diagnostics and tests. The
  // result may borrow from `doc` and from this condition.
  Value Evaluate(const boost::json::object& doc) const;

 private:
  friend Result<HubCondition> ParseHubCondition(std::string_view text, HubCollection from);
  explicit HubCondition(std::shared_ptr<const internal::HubPlan> plan) : plan_(std::move(plan)) {}
  std::shared_ptr<const internal::HubPlan> plan_;
};

// A whole statement. Errors: Errc::kSyntax, kUnknownFunction, kInvalidQuery, kLimitExceeded,
// with "line L, column C: …" messages.
Result<HubQuery> ParseHubQuery(std::string_view text);
// A bare condition, as in a WHERE clause: `deviceId = 'dev1'`,
// `tags.building = 43 AND properties.reported.fw < 2`. `from` only decides which collection
// prefix paths may carry (`devices.modules.moduleId` for kModules).
Result<HubCondition> ParseHubCondition(std::string_view text,
                                       HubCollection from = HubCollection::kDevices);

}  // namespace orrery::query
