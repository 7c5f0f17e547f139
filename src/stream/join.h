// Internal to the stream component: the JOIN operators engine.cc runs for a SELECT with JOINs.
//
// Design note. A JOIN of two streams (ASA's temporal join) pairs an event l of the left
// stream (FROM's) with an event r of the right one when ON holds and t(r) - t(l) lies within
// [lo, hi] (from DATEDIFF(unit, l, r) BETWEEN lo AND hi). Both sides arrive in event time
// order, each with its watermark; the join processes their events in one merged time order,
// up to F = min(both watermarks), so that a pair is found when its later event is processed
// (the earlier one is buffered) and every pair's row carries the later time, max(t(l), t(r)):
// rows leave in time order and F is the join's own watermark. Buffers keep what a future
// event can still match: left events with t + hi >= F, right ones with t >= F + lo, per ON
// equality key. LEFT OUTER: a left event that found no match by t + max(hi, 0) (the latest
// time a match could arrive) yields a row with the right side missing, at that time.
//
// Reference data has no time: a JOIN of reference data looks each row up (by ON's equality
// keys when it has some, else over every row) and passes on one row per match, or, LEFT
// OUTER, the row alone when none matches.
#pragma once

#include <array>
#include <deque>
#include <functional>
#include <queue>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "query/evaluator.h"
#include "query/value.h"
#include "stream/aggregates.h"  // AppendKey: the key text of a value
#include "stream/plan.h"

namespace orrery::stream::internal {

// An empty object standing for the missing side of a LEFT OUTER JOIN row.
const boost::json::object& AbsentSource();

// The events of one joined row: sources[i] is source i's (AbsentSource() when missing).
struct JoinedRow {
  std::array<const boost::json::object*, kMaxJoinSources> sources{};
};

// Roots for evaluating expressions over the sources of `row` (0: source 0, 1: `extras`,
// SourceRoot(i): source i), `count` sources.
struct JoinRoots {
  std::array<query::Root, kMaxJoinSources + 1> roots{};
  size_t size = 0;
  JoinRoots(const JoinedRow& row, size_t count, const boost::json::object* extras);
};

// A JOIN of two streams; see the design note. Not thread-safe (an engine's).
class StreamJoin {
 public:
  // Receives each joined row: left, right (nullptr: no match) and the row's time.
  using Out = std::function<void(const boost::json::object& left, const boost::json::object* right,
                                 Micros ts)>;

  StreamJoin(const JoinSpec& spec, size_t max_events, Out out);

  // An event of side 0 (left) or 1 (right), at or after that side's watermark.
  // Throws QueryError(kLimitExceeded) beyond max_events buffered.
  void Push(int side, const boost::json::object& event, Micros ts);
  // The side's watermark moved to `w`. Processes what became final; returns the join's
  // watermark (every later row has a time >= it).
  Micros Advance(int side, Micros w);

 private:
  struct Pending {
    Micros ts;
    uint64_t seq;
    boost::json::object event;
    bool operator>(const Pending& o) const { return ts != o.ts ? ts > o.ts : seq > o.seq; }
  };
  struct Entry {
    Micros ts;
    boost::json::object event;
    std::string key;
    bool matched = false;
    Entry* next = nullptr;  // the next (later) entry of the same key
  };
  struct KeyList {  // a key's entries, oldest first
    Entry* first = nullptr;
    Entry* last = nullptr;
  };
  struct Side {
    Micros watermark = std::numeric_limits<Micros>::min();
    std::priority_queue<Pending, std::vector<Pending>, std::greater<>> pending;
    std::deque<Entry> entries;  // processed, in time order (stable addresses)
    std::unordered_map<std::string, KeyList> by_key;
  };

  void Drain();
  void Process(int side, Pending p);
  void Expire(Micros now);  // before processing events at `now`: LEFT OUTER rows, eviction
  void PopFront(Side& s);
  static void Append(Side& s, Entry&& e);
  bool KeyOf(int side, const boost::json::object& event, std::string& key) const;
  bool Residual(const boost::json::object& left, const boost::json::object& right) const;

  const JoinSpec& spec_;
  size_t max_events_;
  Out out_;
  Side sides_[2];
  Micros frontier_ = std::numeric_limits<Micros>::min();
  uint64_t seq_ = 0;
  size_t held_ = 0;  // pending plus buffered events, both sides
};

// The rows of one reference input, indexed by a JOIN's right_keys.
class ReferenceIndex {
 public:
  // REQUIRES: `rows` outlives the index (until the next Build).
  void Build(const JoinSpec& spec, size_t source, const std::vector<boost::json::object>& rows);
  // Calls `f(row)` for each reference row joined to the sources of `row` before `source`.
  // `extras`: root 1.
  void Match(const JoinSpec& spec, size_t source, JoinedRow& row,
             const std::function<void(const boost::json::object&)>& f) const;

 private:
  const std::vector<boost::json::object>* rows_ = nullptr;
  std::unordered_map<std::string, std::vector<uint32_t>> by_key_;
};

}  // namespace orrery::stream::internal
