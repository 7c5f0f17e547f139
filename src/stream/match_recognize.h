// Internal to the stream component: MATCH_RECOGNIZE over a time-ordered stream of events.
//
// Design note. Events come in event-time order (after the node's reorder buffer). Each
// PARTITION BY key matches on its own. Every event of a key starts an attempt: the search for
// the preferred match beginning at that event. An attempt runs the pattern's program as a
// Pike VM in priority order: its threads are the alternatives still alive, each with its own
// slots (the First/Last/Min/Max values DEFINE and MEASURES read), because a DEFINE may depend
// on what a thread has matched so far. On each event a thread whose symbol's DEFINE holds
// advances and follows the program's splits (the preferred branch first: greedy quantifiers,
// the left side of '|'); a thread reaching the end records its match and cuts every thread of
// lower priority; the attempt is over when no thread is left, and its match (if any) is the
// last recorded, the preferred one. Threads at the same instruction with equal slots behave
// alike from then on, so the lower-priority one is dropped.
//
// LIMIT DURATION d: an attempt started at t takes events before t + d only, so it ends once
// the watermark reaches t + d (a heap of deadlines per key). Attempts are reported in the
// order they started: AFTER MATCH SKIP TO NEXT ROW keeps every one; PAST LAST ROW drops those
// starting inside a reported match. A match's row has the time of its last event; rows are
// released in time order once no attempt still running could report an earlier one (the
// "hold": the least time of a match recorded but not yet reported), and the node forwards
// min(watermark, hold) downstream.
//
// Bounds: StreamLimits::max_match_partials threads per key, max_match_keys keys with anything
// running or unreported; a key with neither is forgotten.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/json/object.hpp>

#include "stream/plan.h"

namespace orrery::stream::internal {

class Matcher {
 public:
  Matcher(const MatchSpec& spec, const StreamLimits& limits);

  // The next event, at `ts` (never less than the previous one's). Throws QueryError
  // (kLimitExceeded) past the limits.
  void Push(const boost::json::object& event, Micros ts);
  // No later event has a time below `w`: ends the attempts LIMIT DURATION closes (kMaxTime:
  // every attempt, at the end of input).
  void Advance(Micros w);
  // The least time a row reported from now on can have, given watermark `w`.
  Micros Hold(Micros w) const;
  // Reports the rows with time <= `up_to`, in time order.
  void TakeReady(Micros up_to, const std::function<void(boost::json::object, Micros)>& emit);

 private:
  struct Thread {
    int pc = 0;
    std::vector<std::optional<boost::json::value>> slots;
    std::vector<uint16_t> classes;  // the symbol of each matched event (for Classifier())
    uint32_t length = 0;            // events matched
  };
  struct Found {
    Micros ts = 0;
    uint64_t end = 0;  // the sequence number of the match's last event
    boost::json::object row;
  };
  struct Attempt {
    Micros start = 0;
    uint64_t first = 0;  // the sequence number of its first event
    std::vector<Thread> threads;
    std::optional<Found> found;
    bool done = false;
  };
  struct Key {
    std::vector<boost::json::value> values;  // the PARTITION BY values
    std::deque<Attempt> attempts;            // by start
    uint64_t seq = 0;
    size_t threads = 0;
    std::optional<std::multiset<Micros>::iterator> floor;
    Micros deadline = kMaxTimeValue;
  };
  struct Ready {
    Micros ts;
    uint64_t seq;
    boost::json::object row;
    bool operator>(const Ready& o) const { return ts != o.ts ? ts > o.ts : seq > o.seq; }
  };
  static constexpr Micros kMaxTimeValue = INT64_MAX;

  bool Holds(int symbol, const Thread& t, const boost::json::object& event);
  void Fold(Thread& t, int symbol, const boost::json::object& event) const;
  // Follows the program from `pc` for `t` (which has just matched an event or is new), adding
  // the threads that wait for an event to `out`. True when a match was recorded (which cuts
  // the lower-priority alternatives).
  bool Follow(Attempt& a, const Thread& t, int pc, std::vector<Thread>& out, Key& key,
              const boost::json::object& event, Micros ts, uint64_t seq);
  void Step(Attempt& a, Key& key, const boost::json::object& event, Micros ts, uint64_t seq);
  boost::json::object Row(const Thread& t, const Key& key, const boost::json::object& last);
  // Reports the finished attempts at the front, in order; updates the key's hold and
  // deadline. Returns false when the key holds nothing any more.
  bool Settle(Key& key, const std::string& name);

  const MatchSpec& spec_;
  const StreamLimits& limits_;
  std::unordered_map<std::string, Key> keys_;
  std::multiset<Micros> floors_;  // per key with a recorded, unreported match: the least time
  std::priority_queue<std::pair<Micros, std::string>, std::vector<std::pair<Micros, std::string>>,
                      std::greater<>>
      deadlines_;  // (the earliest end of a key's running attempts, key)
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready_;
  uint64_t ready_seq_ = 0;
  std::vector<std::string> slot_names_;
  std::vector<uint32_t> visited_;  // per instruction: the Follow pass that last visited it
  uint32_t pass_ = 0;
};

}  // namespace orrery::stream::internal
