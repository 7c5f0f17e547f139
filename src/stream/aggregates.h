// Internal to the stream component: the states behind aggregates, for the windows of a grouped
// SELECT (AggState) and for the analytic functions of any SELECT (AnalyticState).
//
// Design note (analytic functions). Each analytic call site keeps, per PARTITION BY key, the
// events it remembers: those that matched its WHEN, newest last, within LIMIT DURATION of the
// current event (the window is (now - duration, now], as a sliding window's). LAG(x, k) needs
// only the last k of them and LAST the last one, so older ones are dropped at once; an
// aggregate keeps them all and answers from a two-stack queue ("sliding window aggregation"):
// pushes go on the back stack with a running total, and when the front stack is empty the back
// is flipped onto it as suffix totals, so evicting the oldest and reading the total of what is
// left are amortised O(1) for any associative combine (sums, MIN, MAX, TopOne), exactly (no
// subtraction of doubles). Partitions sit in a list ordered by the time they last remembered an
// event (events come in time order, so moving a touched partition to the back keeps it
// sorted); a partition whose newest event has expired is dropped from the front of that list,
// so keys that stop appearing do not stay. ISFIRST remembers, per key, only the end of the
// tumbling interval whose first matching event it has seen. The anomaly detectors keep, per key,
// the last historySize numeric values as LAG keeps its last k (ChangePoint each with its
// martingale step); anomaly.h has their models.
#pragma once

#include <cstdint>
#include <deque>
#include <list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <boost/json/value.hpp>

#include "query/aggregates.h"
#include "query/evaluator.h"
#include "stream/plan.h"

namespace orrery::stream::internal {

namespace json = boost::json;

// Throws QueryError(kLimitExceeded, message).
[[noreturn]] void LimitError(std::string message);

// Appends a group or partition key part for `v` (1 and 1.0 are one key; undefined is a key of
// its own).
void AppendKey(std::string& out, const query::Value& v);

// What an aggregate is fed for one event: COUNT(*): true; TopOne and CollectTop: [value, order
// key…] (a missing value or key is null); Collect(), TopOne(), CollectTop(n): the event itself
// as the value; the percentiles: their ORDER BY value; the others: their argument.
query::Value AggInput(const AggSpec& spec, std::span<const query::Root> roots,
                      const json::object& event);

// Orders two [value, key…] inputs of TopOne/CollectTop by the spec's ORDER BY: < 0 when `a`
// ranks first. Nulls are the least values (first ascending); numbers by value; date-time
// strings by time; other strings by text.
int CompareRanked(const AggSpec& spec, const json::array& a, const json::array& b);

// One aggregate of one window and group. Not copyable (COUNT(DISTINCT), Collect and the
// percentiles own their values); bounded by StreamLimits::max_distinct and max_collect.
class AggState {
 public:
  explicit AggState(const AggSpec& spec);
  // `v`: AggInput's value for one event. Throws QueryError(kLimitExceeded) past a bound.
  void Add(const query::Value& v, const StreamLimits& limits);
  // The aggregate of what was added; null over nothing (COUNT: 0, Collect: []).
  query::Value Result() const;

 private:
  static query::AggregateKind Base(AggKind k);

  const AggSpec* spec_;
  query::Accumulator acc_;
  uint64_t n_ = 0;
  double mean_ = 0;
  double m2_ = 0;
  bool invalid_ = false;
  std::unique_ptr<std::unordered_set<std::string>> distinct_;  // COUNT(DISTINCT) only
  std::unique_ptr<std::vector<json::value>>
      items_;                        // Collect; CollectTop (ranked, ≤ top); percentiles
  std::optional<json::value> best_;  // TopOne
};

// A combinable summary of some events for the analytic aggregates COUNT, SUM, AVG, MIN, MAX and
// TopOne (see the design note).
struct Partial {
  uint64_t count = 0;    // values counted (COUNT, AVG's divisor)
  bool invalid = false;  // SUM, AVG: a value was not a number
  bool exact = true;     // SUM, AVG: every value was an integer and the sum fits
  int64_t isum = 0;
  double dsum = 0;
  std::optional<json::value> best;  // MIN, MAX: the extreme; TopOne: its [value, key…]
};

// The state of one analytic call site (see the design note). Not thread-safe.
class AnalyticState {
 public:
  // The function's value for the current row, which is then remembered when it matches WHEN.
  // `roots`: the row (event, extras, APPLY records); `ts`: its time, never less than the
  // previous row's. `remembered` is the SELECT's count of remembered events across its
  // analytic functions; past limits.max_analytic_events this throws QueryError(kLimitExceeded).
  json::value Next(const AnalyticSpec& spec, std::span<const query::Root> roots, Micros ts,
                   size_t& remembered, const StreamLimits& limits);

 private:
  struct Entry {
    Micros ts;
    bool defined;
    json::value value;
  };
  struct Partition;
  using Parts = std::unordered_map<std::string, Partition>;
  struct Partition {
    std::deque<Entry> entries;  // LAG, LAST, aggregates: oldest first
    // Aggregates with a Partial: the two stacks (front: suffix totals, oldest last).
    std::vector<Partial> front;
    std::vector<Partial> back;
    Partial back_total;
    Micros newest = 0;  // the newest remembered event's time; ISFIRST: its interval's end
    std::list<Parts::value_type*>::iterator lru;
  };

  void Expire(const AnalyticSpec& spec, Micros now, size_t& remembered);
  Partition& Touch(const std::string& key, Micros newest, size_t& remembered,
                   const StreamLimits& limits);
  void PopFront(const AnalyticSpec& spec, Partition& p, size_t& remembered);
  json::value NextAnomaly(const AnalyticSpec& spec, std::span<const query::Root> roots, Micros ts,
                          bool matches, Partition* p, size_t& remembered,
                          const StreamLimits& limits);

  Parts parts_;
  std::list<Parts::value_type*> lru_;  // least recently remembered first
  std::string key_;                    // scratch
  std::vector<double> history_;        // scratch: an anomaly detector's history
  std::vector<double> steps_;          // scratch: ChangePoint's martingale steps
};

}  // namespace orrery::stream::internal
