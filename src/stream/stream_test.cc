// Unit tests of the C++ interface; the language itself is tested by testdata/*.test.
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "query/errc.h"
#include "stream/geo.h"
#include "stream/stream_query.h"

namespace orrery::stream {
namespace {

namespace json = boost::json;

TEST(DateTime, ParsesAndFormats) {
  EXPECT_EQ(ParseDateTime("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseDateTime("1970-01-01T00:00:01.5Z"), 1'500'000);
  EXPECT_EQ(ParseDateTime("1970-01-01T01:00:00+01:00"), 0);
  EXPECT_EQ(ParseDateTime("1970-01-01"), 0);
  EXPECT_EQ(ParseDateTime("1969-12-31T23:59:59Z"), -kSecond);
  EXPECT_FALSE(ParseDateTime("2026-13-01T00:00:00Z"));
  EXPECT_FALSE(ParseDateTime("yesterday"));
  EXPECT_FALSE(ParseDateTime("2026-01-01T00:00:00Zjunk"));
  EXPECT_EQ(FormatDateTime(0), "1970-01-01T00:00:00.0000000Z");
  EXPECT_EQ(FormatDateTime(*ParseDateTime("2024-02-29T23:59:58.123456Z")),
            "2024-02-29T23:59:58.1234560Z");
  EXPECT_EQ(FormatDateTime(-1), "1969-12-31T23:59:59.9999990Z");
}

TEST(StreamQuery, InputsAndOutputs) {
  auto q = StreamQuery::Parse(
      "WITH s AS (SELECT * FROM a) SELECT * INTO x FROM s; SELECT * INTO y FROM b");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EXPECT_EQ(q->inputs(), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(q->outputs(), (std::vector<std::string>{"x", "y"}));
}

TEST(Engine, UnknownInputIsAnError) {
  auto q = StreamQuery::Parse("SELECT * FROM a");
  ASSERT_TRUE(q.has_value());
  Engine e(*q);
  auto r = e.Push("b", json::object{}, 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("no input named 'b'"), std::string::npos);
}

TEST(Engine, ReorderBufferIsBounded) {
  StreamLimits limits;
  limits.max_buffered_events = 2;
  auto q = StreamQuery::Parse("SELECT * FROM a TIMESTAMP BY t", limits);
  ASSERT_TRUE(q.has_value());
  EventTimePolicy p;
  p.late_arrival_tolerance = std::nullopt;
  p.out_of_order_tolerance = 3600 * kSecond;
  Engine e(*q, p);
  for (int i = 0; i < 2; ++i) {
    json::object ev{{"t", "2026-01-01T00:00:0" + std::to_string(i) + "Z"}};
    ASSERT_TRUE(e.Push("a", ev, 0).has_value());
  }
  auto r = e.Push("a", json::object{{"t", "2026-01-01T00:00:05Z"}}, 0);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded));
  EXPECT_FALSE(e.Push("a", json::object{{"t", "2026-01-01T00:00:06Z"}}, 0).has_value());
}

TEST(Engine, OpenGroupsAreBounded) {
  StreamLimits limits;
  limits.max_open_groups = 3;
  auto q = StreamQuery::Parse("SELECT k, COUNT(*) AS n FROM a GROUP BY k, TumblingWindow(hour, 1)",
                              limits);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  Status r;
  for (int i = 0; i < 4 && r; ++i)
    r = e.Push("a", json::object{{"k", i}}, kSecond);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("too many open windows"), std::string::npos);
}

TEST(Engine, WindowRowsComeOnlyAfterTheWatermarkPassesTheEnd) {
  auto q = StreamQuery::Parse(
      "SELECT COUNT(*) AS n, System.Timestamp() AS t INTO o FROM a GROUP BY TumblingWindow(second, "
      "10)");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  ASSERT_TRUE(e.Push("a", json::object{}, 1 * kSecond).has_value());
  ASSERT_TRUE(e.Push("a", json::object{}, 10 * kSecond).has_value());  // (0, 10] still open
  EXPECT_TRUE(e.TakeOutputs().empty());
  ASSERT_TRUE(e.Push("a", json::object{}, 11 * kSecond).has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["o"].size(), 1u);
  EXPECT_EQ(out["o"][0].timestamp, 10 * kSecond);
  EXPECT_EQ(json::serialize(out["o"][0].row), R"({"n":2,"t":"1970-01-01T00:00:10.0000000Z"})");
}

TEST(Engine, JoinBuffersAreBounded) {
  StreamLimits limits;
  limits.max_buffered_events = 3;
  auto q = StreamQuery::Parse(
      "SELECT a.k FROM a TIMESTAMP BY t JOIN b TIMESTAMP BY t "
      "ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 AND 5",
      limits);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EventTimePolicy p;
  p.late_arrival_tolerance = std::nullopt;
  Engine e(*q, p);
  // b says nothing: a's events wait for b's time to pass them.
  Status r;
  for (int i = 0; i < 4 && r; ++i) {
    r = e.Push("a", json::object{{"k", 1}, {"t", FormatDateTime(i * kSecond)}}, i * kSecond);
  }
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded));
  EXPECT_NE(r.error().message().find("a JOIN holds too many events (the limit is 3)"),
            std::string::npos)
      << r.error().message();
}

TEST(Engine, ReferenceDataLoadsAndIsReplaced) {
  StreamLimits limits;
  limits.max_reference_rows = 2;
  auto q = StreamQuery::Parse("SELECT i.id, r.name FROM input i JOIN names r ON i.id = r.id",
                              limits, {"names", "unused"});
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EXPECT_EQ(q->references(), (std::vector<std::string>{"names"}));
  EXPECT_EQ(q->inputs(), (std::vector<std::string>{"input"}));
  Engine e(*q);
  auto bad = e.SetReference("other", {});
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(), "the query joins no reference data named 'other'");
  auto big = e.SetReference("names", {{{"id", 1}}, {{"id", 2}}, {{"id", 3}}});
  ASSERT_FALSE(big.has_value());
  EXPECT_TRUE(big.error().Is(query::Errc::kLimitExceeded));
  // Without rows, an inner JOIN passes nothing.
  ASSERT_TRUE(e.Push("input", json::object{{"id", 1}}, 0).has_value());
  ASSERT_TRUE(e.SetReference("NAMES", {{{"id", 1}, {"name", "one"}}}).has_value());
  ASSERT_TRUE(e.Push("input", json::object{{"id", 1}}, 1).has_value());
  ASSERT_TRUE(e.SetReference("names", {{{"id", 1}, {"name", "uno"}}}).has_value());
  ASSERT_TRUE(e.Push("input", json::object{{"id", 1}}, 2).has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["default"].size(), 2u);
  EXPECT_EQ(out["default"][0].row, (json::object{{"id", 1}, {"name", "one"}}));
  EXPECT_EQ(out["default"][1].row, (json::object{{"id", 1}, {"name", "uno"}}));
}

// A JOIN of two streams against a nested loop over random events: the same pairs, the same
// unmatched rows (LEFT OUTER), each row at the later time (or when a match could last come),
// and rows in time order.
TEST(Engine, StreamJoinMatchesANestedLoop) {
  struct Ev {
    int id;
    int k;
    Micros t;
  };
  for (auto [lo, hi] : {std::pair{0, 5}, {-5, 5}, {-10, -2}, {3, 8}, {0, 0}}) {
    SCOPED_TRACE(std::to_string(lo) + ".." + std::to_string(hi));
    auto q = StreamQuery::Parse(
        "SELECT a.id AS a, b.id AS b, System.Timestamp() AS t FROM a TIMESTAMP BY t "
        "LEFT JOIN b TIMESTAMP BY t ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN " +
        std::to_string(lo) + " AND " + std::to_string(hi));
    ASSERT_TRUE(q.has_value()) << q.error().message();
    EventTimePolicy p;
    p.late_arrival_tolerance = std::nullopt;
    Engine e(*q, p);
    uint64_t x = 99;
    auto next = [&] {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      return x >> 33;
    };
    std::vector<Ev> as, bs;
    Micros ta = 0, tb = 0, arrival = 0;
    for (int i = 0; i < 600; ++i) {
      bool left = next() % 2 == 0;
      Micros& t = left ? ta : tb;
      t += static_cast<Micros>(next() % 3) * kSecond;  // ties too
      Ev ev{i, static_cast<int>(next() % 4), t};
      (left ? as : bs).push_back(ev);
      arrival = std::max(arrival, t);
      json::object o{{"id", ev.id}, {"k", ev.k}, {"t", FormatDateTime(t)}};
      ASSERT_TRUE(e.Push(left ? "a" : "b", o, arrival).has_value());
    }
    ASSERT_TRUE(e.Flush().has_value());
    std::multiset<std::string> want, got;
    for (const auto& a : as) {
      bool matched = false;
      for (const auto& b : bs) {
        if (a.k == b.k && b.t - a.t >= lo * kSecond && b.t - a.t <= hi * kSecond) {
          matched = true;
          want.insert(json::serialize(
              json::object{{"a", a.id}, {"b", b.id}, {"t", FormatDateTime(std::max(a.t, b.t))}}));
        }
      }
      if (!matched) {
        want.insert(json::serialize(json::object{
            {"a", a.id}, {"b", nullptr}, {"t", FormatDateTime(a.t + std::max(hi, 0) * kSecond)}}));
      }
    }
    Micros last = std::numeric_limits<Micros>::min();
    auto out = e.TakeOutputs();
    for (const auto& row : out["default"]) {
      got.insert(json::serialize(row.row));
      EXPECT_GE(row.timestamp, last);
      last = row.timestamp;
    }
    EXPECT_EQ(got, want);
  }
}

// Push may be given events in a buffer the caller reuses: whatever the engine keeps (reorder
// buffer, GROUP BY values, sliding windows, JOIN sides) it copies. The buffer is overwritten
// after every Push, and the rows must match those of events in the default memory.
TEST(Engine, KeepsNothingInTheCallersMemory) {
  const char* queries[] = {
      "SELECT k, COUNT(*) AS n, MAX(v) AS m INTO o FROM a TIMESTAMP BY t "
      "GROUP BY k, TumblingWindow(second, 2)",
      "SELECT k, MIN(v) AS m INTO o FROM a TIMESTAMP BY t GROUP BY k, SlidingWindow(second, 3)",
      "SELECT k, v, System.Timestamp() AS ts INTO o FROM a TIMESTAMP BY t",
      "SELECT x.k, x.v AS a, y.v AS b INTO o FROM a x TIMESTAMP BY t JOIN a y TIMESTAMP BY t "
      "ON x.k = y.k AND DATEDIFF(second, x, y) BETWEEN 1 AND 3",
  };
  EventTimePolicy p;
  p.late_arrival_tolerance = std::nullopt;
  p.out_of_order_tolerance = 5 * kSecond;
  for (const char* text : queries) {
    SCOPED_TRACE(text);
    auto q = StreamQuery::Parse(text);
    ASSERT_TRUE(q.has_value()) << q.error().message();
    std::vector<std::string> events;
    uint64_t x = 7;
    for (int i = 0; i < 300; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      Micros t = i * kSecond / 4 - static_cast<Micros>((x >> 40) % 4) * kSecond;
      events.push_back(json::serialize(
          json::object{{"k", "key-with-a-long-name-" + std::to_string((x >> 20) % 5)},
                       {"v", "value-" + std::to_string((x >> 10) % 100)},
                       {"t", FormatDateTime(t)}}));
    }
    auto run = [&](bool reuse) {
      Engine e(*q, p);
      alignas(16) unsigned char buffer[8192];
      json::monotonic_resource memory(buffer, sizeof buffer);
      for (size_t i = 0; i < events.size(); ++i) {
        json::value v =
            reuse ? json::parse(events[i], json::storage_ptr(&memory)) : json::parse(events[i]);
        EXPECT_TRUE(e.Push("a", v.as_object(), static_cast<Micros>(i) * kSecond / 4));
        v = nullptr;
        memory.release();
        std::memset(buffer, 0xAB, sizeof buffer);
      }
      EXPECT_TRUE(e.Flush());
      std::multiset<std::string> rows;
      auto out = e.TakeOutputs();
      for (const auto& r : out["o"])
        rows.insert(json::serialize(r.row));
      return rows;
    };
    auto plain = run(false);
    EXPECT_FALSE(plain.empty());
    EXPECT_EQ(run(true), plain);
  }
}

// Every prefix of real queries either parses or fails with a message; nothing crashes.
TEST(StreamQuery, PrefixesOfQueriesFailCleanly) {
  const char* queries[] = {
      "WITH s AS (SELECT deviceId, CAST(t AS float) AS t FROM input TIMESTAMP BY time "
      "WHERE t IS NOT NULL AND name LIKE 'a%') SELECT deviceId, AVG(t) AS a, "
      "CASE WHEN COUNT(DISTINCT t) > 1 THEN 'x' ELSE 'y' END AS c INTO o FROM s GROUP BY "
      "deviceId, HoppingWindow(Duration(second, 10), Hop(second, 5)) HAVING MAX(t) > 2; "
      "SELECT * INTO p FROM input UNION SELECT e.* FROM other AS e",
      "SELECT user, COUNT(*) FROM input GROUP BY user, SessionWindow(second, 5, 60) OVER "
      "(PARTITION BY user) /* c */ -- d",
      "SELECT k, LAG(v, 2, 0) OVER (PARTITION BY k, j LIMIT DURATION(minute, 5) WHEN v > 0) AS p, "
      "ISFIRST(second, 10) OVER (PARTITION BY k) AS f, a.ArrayValue & 3 | ~1 ^ 2 AS b "
      "FROM input i TIMESTAMP BY t CROSS APPLY GetArrayElements(i.arr) AS a "
      "OUTER APPLY GetRecordProperties(a.ArrayValue) AS r "
      "WHERE MAX(v) OVER (LIMIT DURATION(hour, 1)) > 1",
      "SELECT TopOne() OVER (ORDER BY t DESC, v ASC) AS top, CollectTop(2, v) OVER (ORDER BY v) "
      "AS c, PERCENTILE_CONT(0.5) OVER (ORDER BY v DESC) AS m, Collect(v) AS all "
      "INTO o FROM input GROUP BY TumblingWindow(second, 5)",
      "SELECT I1.id, I2.x AS y FROM Input1 I1 TIMESTAMP BY t LEFT OUTER JOIN Input2 AS I2 "
      "TIMESTAMP BY u ON I1.id = I2.id AND DATEDIFF(minute, I1, I2) BETWEEN 0 AND 15 "
      "WHERE I2.id IS NULL",
  };
  for (const char* q : queries) {
    std::string text(q);
    for (size_t n = 0; n <= text.size(); ++n) {
      auto r = StreamQuery::Parse(text.substr(0, n));
      if (!r) {
        EXPECT_FALSE(r.error().message().empty());
      }
    }
    EXPECT_TRUE(StreamQuery::Parse(text).has_value()) << StreamQuery::Parse(text).error().message();
  }
}

// Over shuffled timestamps, every accepted event is counted exactly once by a tumbling window,
// rows come in System.Timestamp() order, and the totals agree with the engine's counters.
TEST(Engine, TumblingCountsEveryAcceptedEventOnce) {
  auto q = StreamQuery::Parse(
      "SELECT k, COUNT(*) AS n INTO o FROM a TIMESTAMP BY t GROUP BY k, TumblingWindow(second, 3)");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  for (auto action : {EventTimePolicy::Action::kAdjust, EventTimePolicy::Action::kDrop}) {
    EventTimePolicy p;
    p.late_arrival_tolerance = 20 * kSecond;
    p.out_of_order_tolerance = 4 * kSecond;
    p.action = action;
    Engine e(*q, p);
    uint64_t x = 12345;
    const int kEvents = 5000;
    for (int i = 0; i < kEvents; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      Micros arrival = i * kSecond / 10;
      Micros t = arrival - static_cast<Micros>((x >> 33) % (30 * kSecond));  // up to 30 s behind
      json::object ev{{"k", static_cast<int64_t>((x >> 20) % 7)}, {"t", FormatDateTime(t)}};
      ASSERT_TRUE(e.Push("a", ev, arrival).has_value());
    }
    ASSERT_TRUE(e.Flush().has_value());
    auto out = e.TakeOutputs();
    int64_t total = 0;
    Micros last = std::numeric_limits<Micros>::min();
    for (const auto& row : out["o"]) {
      total += row.row.at("n").as_int64();
      EXPECT_GE(row.timestamp, last);
      last = row.timestamp;
    }
    const EngineStats& s = e.stats();
    EXPECT_EQ(total + static_cast<int64_t>(s.dropped_late), kEvents);
    if (action == EventTimePolicy::Action::kDrop) {
      EXPECT_GT(s.dropped_late, 0u);
    } else {
      EXPECT_EQ(s.dropped_late, 0u);
      EXPECT_GT(s.adjusted, 0u);
    }
  }
}

// The analytic aggregates answer from a two-stack queue with evictions; over random streams
// (several keys, a WHEN, events of one instant, gaps longer than the duration) they agree with
// recomputing each aggregate from the events themselves.
TEST(Engine, AnalyticAggregatesAgreeWithRecomputation) {
  auto q = StreamQuery::Parse(
      "SELECT id, MIN(v) OVER (PARTITION BY k LIMIT DURATION(second, 5) WHEN ok) AS lo, "
      "MAX(v) OVER (PARTITION BY k LIMIT DURATION(second, 5) WHEN ok) AS hi, "
      "SUM(v) OVER (PARTITION BY k LIMIT DURATION(second, 5) WHEN ok) AS s, "
      "COUNT(*) OVER (PARTITION BY k LIMIT DURATION(second, 5) WHEN ok) AS n, "
      "TopOne(id) OVER (PARTITION BY k ORDER BY v DESC LIMIT DURATION(second, 5) WHEN ok) AS top, "
      "LAG(id, 2) OVER (PARTITION BY k LIMIT DURATION(second, 5) WHEN ok) AS lag2 "
      "INTO o FROM a");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  struct Ev {
    Micros t;
    int64_t id, k, v;
    bool ok;
  };
  std::vector<Ev> events;
  uint64_t x = 99;
  Micros t = kSecond;
  for (int64_t i = 0; i < 3000; ++i) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    uint64_t r = x >> 24;
    if (r % 5 != 0) t += static_cast<Micros>(r % 1500) * 1000 * (r % 97 == 0 ? 20 : 1);
    events.push_back({t, i, static_cast<int64_t>(r % 3), static_cast<int64_t>((r >> 8) % 50),
                      (r >> 16) % 4 != 0});
  }
  Engine e(*q);
  for (const Ev& ev : events) {
    json::object o{{"id", ev.id}, {"k", ev.k}, {"v", ev.v}, {"ok", ev.ok}};
    ASSERT_TRUE(e.Push("a", o, ev.t).has_value());
  }
  ASSERT_TRUE(e.Flush().has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["o"].size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    const Ev& cur = events[i];
    std::vector<const Ev*> window;  // matching events of (t - 5 s, t], oldest first
    for (size_t j = 0; j <= i; ++j) {
      const Ev& o = events[j];
      if (o.k == cur.k && o.ok && o.t > cur.t - 5 * kSecond) window.push_back(&o);
    }
    const json::object& row = out["o"][i].row;
    ASSERT_EQ(row.at("id").as_int64(), cur.id);
    SCOPED_TRACE("event " + std::to_string(i));
    EXPECT_EQ(row.at("n").as_int64(), static_cast<int64_t>(window.size()));
    if (window.empty()) {
      EXPECT_TRUE(row.at("lo").is_null());
      EXPECT_TRUE(row.at("s").is_null());
      EXPECT_TRUE(row.at("top").is_null());
    } else {
      int64_t lo = INT64_MAX, hi = INT64_MIN, sum = 0, top = -1, best = -1;
      for (const Ev* o : window) {
        lo = std::min(lo, o->v);
        hi = std::max(hi, o->v);
        sum += o->v;
        if (o->v > best) best = o->v, top = o->id;  // ties: the earlier
      }
      EXPECT_EQ(row.at("lo").as_int64(), lo);
      EXPECT_EQ(row.at("hi").as_int64(), hi);
      EXPECT_EQ(row.at("s").as_int64(), sum);
      EXPECT_EQ(row.at("top").as_int64(), top);
    }
    // LAG: the matching events before this one (this one excluded).
    std::vector<const Ev*> before;
    for (const Ev* o : window) {
      if (o != &cur) before.push_back(o);
    }
    if (before.size() >= 2) {
      EXPECT_EQ(row.at("lag2").as_int64(), before[before.size() - 2]->id);
    } else {
      EXPECT_TRUE(row.at("lag2").is_null());
    }
  }
}

TEST(Engine, AnalyticMemoryIsBoundedAcrossPartitions) {
  StreamLimits limits;
  limits.max_analytic_events = 100;
  auto q = StreamQuery::Parse(
      "SELECT LAST(v) OVER (PARTITION BY k LIMIT DURATION(second, 1)) AS l INTO o FROM a", limits);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  // A new key every 100 ms: each is forgotten a second later, so at most ~10 are remembered.
  for (int64_t i = 0; i < 5000; ++i) {
    ASSERT_TRUE(e.Push("a", json::object{{"k", i}, {"v", i}}, i * kSecond / 10).has_value()) << i;
  }
  // Keys that keep coming inside the duration exceed the bound.
  Status r;
  for (int64_t i = 0; i < 200 && r; ++i)
    r = e.Push("a", json::object{{"k", -i}, {"v", i}}, 500 * kSecond);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded));
}

}  // namespace
}  // namespace orrery::stream

namespace orrery::stream {
namespace {

Micros At(const char* t) {
  return *ParseDateTime(std::string("2026-01-01T") + t + "Z");
}

TEST(Substreams, AnIdleSubstreamsWindowClosesWithTheGlobalBound) {
  auto q = StreamQuery::Parse(
      "SELECT k, COUNT(*) AS n FROM input TIMESTAMP BY t OVER k GROUP BY k, "
      "TumblingWindow(second, 10)");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EventTimePolicy p;  // late arrival 5 s
  Engine e(*q, p);
  ASSERT_TRUE(
      e.Push("input", json::object{{"k", "a"}, {"t", "2026-01-01T00:00:01Z"}}, At("00:00:01"))
          .has_value());
  // Only b sends from now on; a's window (0, 10] is final once arrival - 5 s passes 10 s.
  ASSERT_TRUE(
      e.Push("input", json::object{{"k", "b"}, {"t", "2026-01-01T00:00:14Z"}}, At("00:00:14"))
          .has_value());
  EXPECT_TRUE(e.TakeOutputs().empty());
  ASSERT_TRUE(
      e.Push("input", json::object{{"k", "b"}, {"t", "2026-01-01T00:00:16Z"}}, At("00:00:16"))
          .has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["default"].size(), 1u);
  EXPECT_EQ(json::serialize(out["default"][0].row), R"({"k":"a","n":1})");
}

TEST(Partitions, EventsWaitForTheOtherPartitionsOrAHeartbeat) {
  auto q = StreamQuery::Parse("SELECT v, PartitionId AS p FROM input");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q, {}, 2);
  ASSERT_TRUE(e.Push("input", 1, json::object{{"v", 1}}, At("00:00:02")).has_value());
  EXPECT_TRUE(e.TakeOutputs().empty());  // partition 0 could still send an earlier event
  ASSERT_TRUE(e.Push("input", 0, json::object{{"v", 0}}, At("00:00:01")).has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["default"].size(), 1u);
  EXPECT_EQ(json::serialize(out["default"][0].row), R"({"v":0,"p":0})");
  ASSERT_TRUE(e.Heartbeat("input", 0, At("00:00:03")).has_value());
  out = e.TakeOutputs();
  ASSERT_EQ(out["default"].size(), 1u);
  EXPECT_EQ(json::serialize(out["default"][0].row), R"({"v":1,"p":1})");
  auto r = e.Push("input", 2, json::object{}, At("00:00:04"));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message().find("has no partition 2"), std::string::npos);
}

TEST(Partitions, ASilentPartitionHoldsABoundedNumberOfEvents) {
  StreamLimits limits;
  limits.max_buffered_events = 3;
  auto q = StreamQuery::Parse("SELECT * FROM input", limits);
  ASSERT_TRUE(q.has_value());
  Engine e(*q, {}, 2);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(e.Push("input", 0, json::object{}, At("00:00:01") + i).has_value());
  auto r = e.Push("input", 0, json::object{}, At("00:00:05"));
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded));
  EXPECT_NE(r.error().message().find("Heartbeat it"), std::string::npos) << r.error().message();
}

TEST(Partitions, HeartbeatsCloseWindowsOfAnIdleInput) {
  // Arrival time: the window closes once every partition's clock passes its end, with no
  // further event. With TIMESTAMP BY: once arrival - late tolerance passes it.
  auto q = StreamQuery::Parse(
      "SELECT COUNT(*) AS n INTO a FROM input GROUP BY TumblingWindow(second, 1);"
      "SELECT COUNT(*) AS n INTO b FROM input TIMESTAMP BY t GROUP BY TumblingWindow(second, 1)");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q, {}, 2);
  json::object ev{{"t", "2026-01-01T00:00:00.5Z"}};
  ASSERT_TRUE(e.Push("input", 0, ev, At("00:00:00.5")).has_value());
  ASSERT_TRUE(e.Heartbeat("input", 0, At("00:00:01.5")).has_value());
  EXPECT_TRUE(e.TakeOutputs().empty());  // partition 1 has said nothing yet
  ASSERT_TRUE(e.Heartbeat("input", 1, At("00:00:01.5")).has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["a"].size(), 1u);
  EXPECT_EQ(json::serialize(out["a"][0].row), R"({"n":1})");
  EXPECT_EQ(out["a"][0].timestamp, At("00:00:01"));
  EXPECT_TRUE(out["b"].empty());  // the late-arrival tolerance (5 s) holds it
  for (uint32_t p : {0u, 1u})
    ASSERT_TRUE(e.Heartbeat("input", p, At("00:00:06.5")).has_value());
  out = e.TakeOutputs();
  ASSERT_EQ(out["b"].size(), 1u);
  EXPECT_EQ(json::serialize(out["b"][0].row), R"({"n":1})");
}

TEST(StreamQuery, StateHorizonAddsWindowsDurationsAndJoinBounds) {
  auto q = StreamQuery::Parse(
      "WITH w AS (SELECT k, COUNT(*) AS n FROM input GROUP BY k, HoppingWindow(second, 10, 5)) "
      "SELECT k, LAG(n) OVER (PARTITION BY k LIMIT DURATION(minute, 1)) AS prev INTO o FROM w");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EXPECT_EQ(q->StateHorizon(), 70 * kSecond);
  auto plain = StreamQuery::Parse("SELECT * FROM input WHERE v > 1");
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->StateHorizon(), 0);
}

// MATCH_RECOGNIZE: rows come out in time order across keys, only once no match still running
// could come before them; LIMIT DURATION bounds what a key holds.
constexpr const char* kOpenEnded =
    "SELECT id, System.Timestamp() AS t INTO o FROM a MATCH_RECOGNIZE ("
    " LIMIT DURATION (second, 10) PARTITION BY id MEASURES Last(B.v) AS v"
    " PATTERN (A B+) DEFINE A AS A.k = 'a', B AS B.k = 'b') AS M";

TEST(MatchRecognize, RowsWaitForEarlierMatchesOfOtherKeys) {
  auto q = StreamQuery::Parse(kOpenEnded);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  auto push = [&](int id, const char* k, int second) {
    ASSERT_TRUE(e.Push("a", json::object{{"id", id}, {"k", k}, {"v", second}}, second * kSecond)
                    .has_value());
  };
  push(1, "a", 1);
  push(1, "b", 2);  // key 1 has a match at 2 that B+ may still extend
  push(2, "a", 3);
  push(2, "b", 4);
  push(2, "x", 5);  // key 2's match (at 4) is over, but key 1's could still end at 2
  EXPECT_TRUE(e.TakeOutputs().empty());
  push(1, "x", 6);  // key 1's is over too: both come out, in time order
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["o"].size(), 2u);
  EXPECT_EQ(json::serialize(out["o"][0].row), R"({"id":1,"t":"1970-01-01T00:00:02.0000000Z"})");
  EXPECT_EQ(json::serialize(out["o"][1].row), R"({"id":2,"t":"1970-01-01T00:00:04.0000000Z"})");
}

TEST(MatchRecognize, LimitDurationEndsAMatchWithoutAnotherEventOfItsKey) {
  auto q = StreamQuery::Parse(kOpenEnded);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  ASSERT_TRUE(e.Push("a", json::object{{"id", 1}, {"k", "a"}}, 1 * kSecond).has_value());
  ASSERT_TRUE(e.Push("a", json::object{{"id", 1}, {"k", "b"}}, 2 * kSecond).has_value());
  // Key 2's event at 10 s: the attempt started at 1 s may still take events before 11 s.
  ASSERT_TRUE(e.Push("a", json::object{{"id", 2}, {"k", "x"}}, 10 * kSecond).has_value());
  EXPECT_TRUE(e.TakeOutputs().empty());
  ASSERT_TRUE(e.Push("a", json::object{{"id", 2}, {"k", "x"}}, 11 * kSecond).has_value());
  auto out = e.TakeOutputs();
  ASSERT_EQ(out["o"].size(), 1u);
  EXPECT_EQ(out["o"][0].timestamp, 2 * kSecond);
}

TEST(MatchRecognize, LimitDurationBoundsPartialMatches) {
  StreamLimits limits;
  limits.max_match_partials = 50;
  // 10 keys, an A every 100 ms each for 1000 s; A+ B keeps two alternatives per attempt (one
  // more A, or B) while no B comes. Within 1 s a key holds ~10 attempts; within 10 s, ~100.
  auto run = [&](int seconds) -> Status {
    auto q = StreamQuery::Parse(
        "SELECT * FROM a MATCH_RECOGNIZE (LIMIT DURATION (second, " + std::to_string(seconds) +
            ") PARTITION BY id MEASURES Last(B.v) AS v PATTERN (A+ B) DEFINE A AS A.k = 'a', "
            "B AS B.k = 'b') AS M",
        limits);
    EXPECT_TRUE(q.has_value()) << q.error().message();
    Engine e(*q);
    Status r;
    for (int i = 0; i < 100'000 && r; ++i)
      r = e.Push("a", json::object{{"id", i % 10}, {"k", "a"}}, i * 10'000);
    if (!r) return r;
    r = e.Flush();
    EXPECT_TRUE(e.TakeOutputs().empty());
    return r;
  };
  Status bounded = run(1);
  EXPECT_TRUE(bounded.has_value()) << bounded.error().message();
  Status over = run(10);
  ASSERT_FALSE(over.has_value());
  EXPECT_TRUE(over.error().Is(query::Errc::kLimitExceeded));
  EXPECT_NE(over.error().message().find("too many partial matches"), std::string::npos)
      << over.error().message();
}

TEST(MatchRecognize, StateHorizonIsTheLimitDuration) {
  auto q = StreamQuery::Parse(kOpenEnded);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  EXPECT_EQ(q->StateHorizon(), 10 * kSecond);
  auto unbounded = StreamQuery::Parse(
      "SELECT * FROM a MATCH_RECOGNIZE (MEASURES Last(A.v) AS v PATTERN (A B) DEFINE A AS "
      "A.v > 1) AS M");
  ASSERT_TRUE(unbounded.has_value()) << unbounded.error().message();
  EXPECT_EQ(unbounded->StateHorizon(), StreamLimits{}.max_window);
}

TEST(MatchRecognize, ParseErrorsHaveLineAndColumn) {
  auto q = StreamQuery::Parse(
      "SELECT * FROM a\nMATCH_RECOGNIZE (MEASURES Last(A.v) AS v\n"
      "  PATTERN (A{3,2}) DEFINE A AS A.v > 1) AS M");
  ASSERT_FALSE(q.has_value());
  EXPECT_TRUE(q.error().Is(query::Errc::kInvalidQuery));
  EXPECT_NE(q.error().message().find("line 3, column 13: a pattern's repetition {n,m} needs"),
            std::string::npos)
      << q.error().message();
}

// MATCH_RECOGNIZE against a backtracking matcher: for each start (in order), the first match in
// priority order (greedy quantifiers, the left side of '|'), over random sequences.
namespace reference {

struct P {
  enum Kind { kSym, kSeq, kAlt, kRep } kind;
  char sym = 0;
  std::vector<P> kids;
  int min = 1, max = 1;  // kRep; max -1: unbounded
};
P Sym(char c) {
  return P{P::kSym, c, {}, 1, 1};
}
P Seq(std::vector<P> k) {
  return P{P::kSeq, 0, std::move(k), 1, 1};
}
P Alt(std::vector<P> k) {
  return P{P::kAlt, 0, std::move(k), 1, 1};
}
P Rep(P k, int min, int max) {
  return P{P::kRep, 0, {std::move(k)}, min, max};
}

// DEFINE A AS k = 'a', B AS k = 'b', C AS k IN ('b', 'c').
bool Fits(char sym, char k) {
  return sym == 'A' ? k == 'a' : sym == 'B' ? k == 'b' : (k == 'b' || k == 'c');
}

using Cont = std::function<bool(size_t)>;
bool Match(const P& p, const std::string& ev, size_t pos, std::string& path, const Cont& k);

bool SeqFrom(const P& p, size_t i, const std::string& ev, size_t pos, std::string& path,
             const Cont& k) {
  if (i == p.kids.size()) return k(pos);
  return Match(p.kids[i], ev, pos, path,
               [&](size_t next) { return SeqFrom(p, i + 1, ev, next, path, k); });
}

bool RepFrom(const P& p, int count, const std::string& ev, size_t pos, std::string& path,
             const Cont& k) {
  if (p.max < 0 || count < p.max) {
    if (Match(p.kids[0], ev, pos, path,
              [&](size_t next) { return RepFrom(p, count + 1, ev, next, path, k); })) {
      return true;
    }
  }
  return count >= p.min && k(pos);
}

bool Match(const P& p, const std::string& ev, size_t pos, std::string& path, const Cont& k) {
  switch (p.kind) {
    case P::kSym:
      if (pos < ev.size() && Fits(p.sym, ev[pos])) {
        path.push_back(p.sym);
        if (k(pos + 1)) return true;
        path.pop_back();
      }
      return false;
    case P::kSeq:
      return SeqFrom(p, 0, ev, pos, path, k);
    case P::kAlt:
      for (const P& c : p.kids) {
        if (Match(c, ev, pos, path, k)) return true;
      }
      return false;
    case P::kRep:
      return RepFrom(p, 0, ev, pos, path, k);
  }
  return false;
}

// (start, symbols) of every match, in start order.
std::vector<std::pair<size_t, std::string>> Matches(const P& p, const std::string& ev,
                                                    bool past_last) {
  std::vector<std::pair<size_t, std::string>> out;
  for (size_t s = 0; s < ev.size(); ++s) {
    std::string path, found;
    bool ok = Match(p, ev, s, path, [&](size_t end) {
      if (end == s) return false;
      found = path;
      return true;
    });
    if (!ok) continue;
    out.emplace_back(s, found);
    if (past_last) s += found.size() - 1;
  }
  return out;
}

}  // namespace reference

TEST(MatchRecognize, AgreesWithABacktrackingMatcher) {
  using namespace reference;
  struct Case {
    const char* pattern;
    P p;
  };
  std::vector<Case> cases = {
      {"A+ B", Seq({Rep(Sym('A'), 1, -1), Sym('B')})},
      {"A* B? C", Seq({Rep(Sym('A'), 0, -1), Rep(Sym('B'), 0, 1), Sym('C')})},
      {"(A | B)+ C", Seq({Rep(Alt({Sym('A'), Sym('B')}), 1, -1), Sym('C')})},
      {"A{1,2} B{2,}", Seq({Rep(Sym('A'), 1, 2), Rep(Sym('B'), 2, -1)})},
      {"(A B | A)+ C", Seq({Rep(Alt({Seq({Sym('A'), Sym('B')}), Sym('A')}), 1, -1), Sym('C')})},
      {"B C+", Seq({Sym('B'), Rep(Sym('C'), 1, -1)})},
      {"A (C | B) B?", Seq({Sym('A'), Alt({Sym('C'), Sym('B')}), Rep(Sym('B'), 0, 1)})},
  };
  uint64_t seed = 12345;
  auto rnd = [&] {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<uint32_t>(seed >> 33);
  };
  for (const Case& c : cases) {
    for (bool past_last : {false, true}) {
      std::string text = std::string("SELECT * INTO o FROM a MATCH_RECOGNIZE (MEASURES ") +
                         "Classifier() AS s AFTER MATCH SKIP " +
                         (past_last ? "PAST LAST ROW" : "TO NEXT ROW") + " PATTERN (" + c.pattern +
                         ") DEFINE ";
      std::string_view pattern = c.pattern;
      const char* defines[] = {"A AS k = 'a'", "B AS k = 'b'", "C AS k IN ('b', 'c')"};
      bool first = true;
      for (int i = 0; i < 3; ++i) {
        if (pattern.find(static_cast<char>('A' + i)) == std::string_view::npos) continue;
        text += (first ? "" : ", ") + std::string(defines[i]);
        first = false;
      }
      text += ") AS M";
      auto q = StreamQuery::Parse(text);
      ASSERT_TRUE(q.has_value()) << q.error().message();
      for (int run = 0; run < 40; ++run) {
        std::string ev;
        size_t n = 1 + rnd() % 14;
        for (size_t i = 0; i < n; ++i)
          ev.push_back("abcx"[rnd() % 4]);
        Engine e(*q);
        for (size_t i = 0; i < n; ++i) {
          std::string k(1, ev[i]);
          ASSERT_TRUE(
              e.Push("a", json::object{{"k", k}}, static_cast<Micros>(i) * kSecond).has_value());
        }
        ASSERT_TRUE(e.Flush().has_value());
        std::multiset<std::pair<size_t, std::string>> got, want;
        auto out = e.TakeOutputs();
        for (const auto& row : out["o"]) {
          std::string s;
          for (const auto& v : row.row.at("s").as_array())
            s += v.as_string().c_str();
          size_t end = static_cast<size_t>(row.timestamp / kSecond);
          got.emplace(end + 1 - s.size(), s);
        }
        for (auto& m : Matches(c.p, ev, past_last))
          want.insert(m);
        EXPECT_EQ(got, want) << c.pattern << (past_last ? " PAST LAST ROW" : " TO NEXT ROW")
                             << " over " << ev;
      }
    }
  }
}

TEST(StreamQuery, PartitionParallelWhenSplitByPartitionOrStateless) {
  auto parallel = [](std::string_view text) {
    auto q = StreamQuery::Parse(text, {}, {"ref"});
    EXPECT_TRUE(q.has_value()) << text << ": " << q.error().message();
    return q && q->PartitionParallel();
  };
  // Split by partition: each partition has its own clock and windows.
  EXPECT_TRUE(
      parallel("SELECT k, COUNT(*) AS n FROM input PARTITION BY PartitionId "
               "GROUP BY k, TumblingWindow(second, 10)"));
  EXPECT_TRUE(
      parallel("SELECT k, COUNT(*) AS n FROM input TIMESTAMP BY t PARTITION BY partitionid "
               "GROUP BY k, PartitionId, TumblingWindow(second, 10)"));
  EXPECT_TRUE(
      parallel("SELECT k, LAG(v) OVER (PARTITION BY k LIMIT DURATION(minute, 1)) AS prev "
               "FROM input TIMESTAMP BY t OVER PartitionId"));
  // Stateless: filters, projections, APPLY, reference joins, and a stateless step reader.
  EXPECT_TRUE(parallel("SELECT * FROM input WHERE v > 1"));
  EXPECT_TRUE(parallel(
      "SELECT e.k, a.ArrayValue AS x FROM input e CROSS APPLY GetArrayElements(e.xs) AS a"));
  EXPECT_TRUE(parallel("SELECT i.k, r.name FROM input i JOIN ref r ON i.k = r.k"));
  EXPECT_TRUE(
      parallel("WITH s AS (SELECT k, v FROM input WHERE v > 1) SELECT k INTO a FROM s "
               "SELECT v INTO b FROM s"));
  EXPECT_TRUE(
      parallel("WITH s AS (SELECT k, COUNT(*) AS n FROM input PARTITION BY PartitionId "
               "GROUP BY k, TumblingWindow(second, 10)) SELECT k, n FROM s WHERE n > 2"));

  // Windows, aggregates and analytic functions over the merged partitions.
  EXPECT_FALSE(
      parallel("SELECT k, COUNT(*) AS n FROM input GROUP BY k, TumblingWindow(second, 10)"));
  EXPECT_FALSE(parallel(
      "SELECT k, COUNT(*) AS n FROM input GROUP BY k, PartitionId, TumblingWindow(second, 10)"));
  EXPECT_FALSE(parallel("SELECT k, LAG(v) OVER (LIMIT DURATION(minute, 1)) AS prev FROM input"));
  // Substreams by another key mix partitions.
  EXPECT_FALSE(
      parallel("SELECT k, COUNT(*) AS n FROM input PARTITION BY k GROUP BY k, "
               "TumblingWindow(second, 10)"));
  // TIMESTAMP BY without a split: the out-of-order policy sees every partition's times.
  EXPECT_FALSE(parallel("SELECT * FROM input TIMESTAMP BY t"));
  // A stream JOIN.
  EXPECT_FALSE(parallel(
      "SELECT a.k FROM input a JOIN other b ON a.k = b.k AND DATEDIFF(second, a, b) BETWEEN 0 "
      "AND 5"));
  // A stateful SELECT over a step: the step's rows of every partition come merged.
  EXPECT_FALSE(
      parallel("WITH s AS (SELECT k, v FROM input PARTITION BY PartitionId) "
               "SELECT k, COUNT(*) AS n FROM s GROUP BY k, TumblingWindow(second, 10)"));
  // One SELECT that does not allow it is enough.
  EXPECT_FALSE(
      parallel("SELECT * INTO a FROM input WHERE v > 1 "
               "SELECT k, COUNT(*) AS n INTO b FROM input GROUP BY k, TumblingWindow(second, 10)"));
}

// A partition's engine, fed only its partition with the others heartbeaten far ahead, produces
// that partition's rows of one engine merging them all.
TEST(Engine, PartitionRunAloneMatchesTheMergedRun) {
  auto q = StreamQuery::Parse(
      "SELECT PartitionId AS p, k, COUNT(*) AS n, System.Timestamp() AS t FROM input "
      "TIMESTAMP BY t PARTITION BY PartitionId GROUP BY PartitionId, k, TumblingWindow(second, "
      "5)");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  ASSERT_TRUE(q->PartitionParallel());
  struct Ev {
    uint32_t p;
    const char* t;
    const char* k;
  };
  std::vector<Ev> evs = {{0, "00:00:01", "a"}, {1, "00:00:02", "a"}, {2, "00:00:00.5", "b"},
                         {0, "00:00:04", "a"}, {1, "00:00:06", "b"}, {2, "00:00:07", "b"},
                         {0, "00:00:09", "a"}, {1, "00:00:11", "a"}, {2, "00:00:12", "a"}};
  auto feed = [&](Engine& e, std::optional<uint32_t> only) {
    Micros arrival = At("00:00:00");
    for (auto& ev : evs) {
      arrival += kSecond;
      if (only && ev.p != *only) continue;
      json::object o{{"t", std::string("2026-01-01T") + ev.t + "Z"}, {"k", ev.k}};
      ASSERT_TRUE(e.Push("input", ev.p, o, arrival).has_value());
    }
    for (uint32_t p = 0; p < 3; ++p) {
      if (!only || p == *only) {
        ASSERT_TRUE(e.Heartbeat("input", p, At("00:00:30")).has_value());
      }
    }
  };
  auto rows = [](Engine& e) {
    std::multiset<std::string> out;
    for (auto& [target, rs] : e.TakeOutputs())
      for (auto& r : rs)
        out.insert(target + json::serialize(r.row));
    return out;
  };
  Engine merged(*q, {}, 3);
  feed(merged, std::nullopt);
  auto want = rows(merged);
  ASSERT_FALSE(want.empty());
  std::multiset<std::string> got;
  for (uint32_t p = 0; p < 3; ++p) {
    Engine alone(*q, {}, 3);
    for (uint32_t other = 0; other < 3; ++other) {
      if (other != p) {
        ASSERT_TRUE(
            alone.Heartbeat("input", other, std::numeric_limits<Micros>::max() / 4).has_value());
      }
    }
    feed(alone, p);
    got.merge(rows(alone));
  }
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace orrery::stream

namespace orrery::stream::internal {
namespace {

double Dms(int d, int m, double s) {
  return (d < 0 ? -1 : 1) * (std::abs(d) + m / 60.0 + s / 3600.0);
}

// Known geodesic distances on WGS 84: exact ones (a degree of the equator, the meridian
// quadrant), the test line of Vincenty's paper (Flinders Peak to Buninyong), ASA's ST_DISTANCE
// example (its page's digits), and an antipodal pair on the equator (where Vincenty's iteration
// fails and the sphere answers, within 0.5%: the geodesic runs over a pole, two quadrants).
TEST(Geo, GeodesicDistancesAgreeWithKnownValues) {
  struct Case {
    LonLat a, b;
    double metres;
    double tolerance;  // relative
  };
  const Case cases[] = {
      {{0, 0}, {1, 0}, 111319.49079327357, 1e-9},
      {{0, 0}, {0, 90}, 10001965.729, 1e-8},
      {{Dms(144, 25, 29.52440), Dms(-37, 57, 3.72030)},
       {Dms(143, 55, 35.38390), Dms(-37, 39, 10.15610)},
       54972.271,
       1e-7},
      {{-5, -5}, {0, 0}, 784028.74077501823, 1e-8},
      {{0, 0}, {180, 0}, 20003931.4586, 5e-3},
      {{10, 20}, {10, 20}, 0, 0},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(std::to_string(c.metres));
    EXPECT_NEAR(GeodesicDistance(c.a, c.b), c.metres, c.metres * c.tolerance);
    EXPECT_NEAR(GeodesicDistance(c.b, c.a), c.metres, c.metres * c.tolerance);
  }
}

TEST(Geo, GeometriesAreBoundedInPositions) {
  auto line = [](size_t n) {
    std::string s = "LINESTRING(0 0";
    for (size_t i = 1; i < n; ++i)
      s += ", " + std::to_string(i % 90) + " 1";
    return json::value(json::string(s + ")"));
  };
  EXPECT_TRUE(ReadGeometry(line(kMaxGeoPositions)).has_value());
  EXPECT_FALSE(ReadGeometry(line(kMaxGeoPositions + 1)).has_value());
  json::array coords;
  for (size_t i = 0; i <= kMaxGeoPositions; ++i)
    coords.push_back(json::array{0, 0});
  EXPECT_FALSE(
      ReadGeometry(json::object{{"type", "LineString"}, {"coordinates", coords}}).has_value());
  EXPECT_FALSE(ReadGeometry(json::value("POINT EMPTY")).has_value());
  EXPECT_FALSE(ReadGeometry(json::value("POINT(1 2) junk")).has_value());
  EXPECT_FALSE(ReadGeometry(json::value("POLYGON((0 0, 1 1))")).has_value());
}

}  // namespace
}  // namespace orrery::stream::internal

namespace orrery::stream {
namespace {

// Seeded readings: `level` plus the sum of three uniform numbers in [-0.5, 0.5] (within ±1.5).
class Readings {
 public:
  explicit Readings(uint64_t seed) : x_(seed) {}
  double Next(double level) {
    double s = 0;
    for (int i = 0; i < 3; ++i) {
      x_ = x_ * 6364136223846793005ull + 1442695040888963407ull;
      s += static_cast<double>(x_ >> 11) / static_cast<double>(1ull << 53) - 0.5;
    }
    return level + s;
  }

 private:
  uint64_t x_;
};

// Runs `select` (reading `v` and `k`) over the values, one a second; the IsAnomaly of each row.
std::vector<int64_t> Flags(const std::string& detector, const std::vector<double>& values,
                           const std::vector<int64_t>& keys = {}) {
  auto q = StreamQuery::Parse("SELECT " + detector + " AS ad INTO o FROM a");
  EXPECT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  for (size_t i = 0; i < values.size(); ++i) {
    json::object ev{{"v", values[i]}, {"k", keys.empty() ? 0 : keys[i]}};
    EXPECT_TRUE(e.Push("a", ev, static_cast<Micros>(i + 1) * kSecond).has_value());
  }
  EXPECT_TRUE(e.Flush().has_value());
  std::vector<int64_t> out;
  auto outputs = e.TakeOutputs();
  for (const auto& row : outputs["o"])
    out.push_back(row.row.at("ad").as_object().at("IsAnomaly").as_int64());
  return out;
}

TEST(AnomalyDetection, SpikesInSteadyNoiseAreFlaggedAndNothingElse) {
  const std::string detector =
      "AnomalyDetection_SpikeAndDip(v, 99.9, 50, 'spikesanddips') OVER (LIMIT DURATION(hour, 1))";
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Readings r(seed);
    std::vector<double> values;
    for (int i = 0; i < 300; ++i)
      values.push_back(r.Next(20));
    values[150] = 27;  // a spike
    values[220] = 13;  // a dip
    auto flags = Flags(detector, values);
    ASSERT_EQ(flags.size(), values.size());
    for (size_t i = 0; i < flags.size(); ++i)
      EXPECT_EQ(flags[i], i == 150 || i == 220 ? 1 : 0) << "event " << i;
  }
}

TEST(AnomalyDetection, ALevelShiftIsAChangePoint) {
  const std::string detector =
      "AnomalyDetection_ChangePoint(v, 99, 40) OVER (LIMIT DURATION(hour, 1))";
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    Readings r(seed);
    std::vector<double> values;
    for (int i = 0; i < 300; ++i)
      values.push_back(r.Next(i < 200 ? 20 : 24));
    auto flags = Flags(detector, values);
    ASSERT_EQ(flags.size(), values.size());
    for (size_t i = 0; i < 200; ++i)
      EXPECT_EQ(flags[i], 0) << "before the shift, event " << i;
    size_t first = 200;
    while (first < flags.size() && flags[first] == 0)
      ++first;
    EXPECT_LT(first, 205u) << "the shift is flagged within five readings";
  }
}

// Each key's results are those of its readings alone: PARTITION BY keys do not share a
// history (nor ChangePoint's martingale).
TEST(AnomalyDetection, PartitionsAreIndependent) {
  for (const std::string fn : {"AnomalyDetection_SpikeAndDip(v, 90, 20, 'spikesanddips')",
                               "AnomalyDetection_ChangePoint(v, 90, 20)"}) {
    SCOPED_TRACE(fn);
    Readings r(42);
    std::vector<double> values;
    std::vector<int64_t> keys;
    uint64_t x = 7;
    for (int i = 0; i < 600; ++i) {
      x = x * 6364136223846793005ull + 1442695040888963407ull;
      int64_t k = static_cast<int64_t>((x >> 33) % 3);
      keys.push_back(k);
      values.push_back(r.Next(10.0 * static_cast<double>(k) + (i > 400 && k == 1 ? 5 : 0)));
    }
    auto together = Flags(fn + " OVER (PARTITION BY k LIMIT DURATION(hour, 1))", values, keys);
    for (int64_t k = 0; k < 3; ++k) {
      std::vector<double> alone;
      std::vector<int64_t> expected;
      for (size_t i = 0; i < values.size(); ++i) {
        if (keys[i] != k) continue;
        alone.push_back(values[i]);
        expected.push_back(together[i]);
      }
      EXPECT_EQ(Flags(fn + " OVER (LIMIT DURATION(hour, 1))", alone), expected) << "key " << k;
    }
  }
}

// A key remembers at most historySize values, within max_analytic_events across keys.
TEST(AnomalyDetection, HistoryIsBounded) {
  StreamLimits limits;
  limits.max_analytic_events = 20;
  auto q = StreamQuery::Parse(
      "SELECT AnomalyDetection_ChangePoint(v, 90, 10) OVER (PARTITION BY k LIMIT DURATION(hour, "
      "1)) AS ad INTO o FROM a",
      limits);
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  for (int64_t i = 0; i < 1000; ++i)
    ASSERT_TRUE(e.Push("a", json::object{{"k", i % 2}, {"v", i % 7}}, i * kSecond).has_value());
  Status r = e.Push("a", json::object{{"k", 2}, {"v", 1}}, 1000 * kSecond);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().Is(query::Errc::kLimitExceeded));
}

}  // namespace
}  // namespace orrery::stream

namespace orrery::stream {
namespace {

// A geofence query keeps exactly the points inside a convex polygon, as a direct half-plane
// test decides them (points on an edge excluded).
TEST(Geo, AGeofenceFindsExactlyThePointsInside) {
  // A hexagon around (10 E, 50 N), counter-clockwise.
  std::vector<std::pair<double, double>> ring;  // lon, lat
  for (int i = 0; i < 6; ++i) {
    double a = 2 * 3.14159265358979323846 * i / 6;
    ring.emplace_back(10 + 0.5 * std::cos(a), 50 + 0.3 * std::sin(a));
  }
  std::string wkt = "POLYGON((";
  for (size_t i = 0; i <= ring.size(); ++i) {
    auto [lon, lat] = ring[i % ring.size()];
    wkt += (i ? ", " : "") + std::to_string(lon) + " " + std::to_string(lat);
  }
  wkt += "))";
  // std::to_string rounds to 6 decimals: test against the rounded ring.
  for (auto& [lon, lat] : ring) {
    lon = std::stod(std::to_string(lon));
    lat = std::stod(std::to_string(lat));
  }
  auto q = StreamQuery::Parse("SELECT id INTO o FROM a WHERE ST_WITHIN(CreatePoint(lat, lon), '" +
                              wkt + "') = 1");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  std::set<int64_t> expected;
  uint64_t x = 5;
  auto next = [&] {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<double>(x >> 11) / static_cast<double>(1ull << 53);
  };
  for (int64_t id = 0; id < 3000; ++id) {
    double lon = 9.4 + 1.2 * next(), lat = 49.6 + 0.8 * next();
    bool inside = true;
    for (size_t i = 0; i < ring.size(); ++i) {
      auto [x1, y1] = ring[i];
      auto [x2, y2] = ring[(i + 1) % ring.size()];
      inside &= (x2 - x1) * (lat - y1) - (y2 - y1) * (lon - x1) > 0;
    }
    if (inside) expected.insert(id);
    ASSERT_TRUE(e.Push("a", json::object{{"id", id}, {"lat", lat}, {"lon", lon}}, id).has_value());
  }
  ASSERT_TRUE(e.Flush().has_value());
  std::set<int64_t> got;
  auto out = e.TakeOutputs();
  for (const auto& row : out["o"])
    got.insert(row.row.at("id").as_int64());
  EXPECT_GT(expected.size(), 500u);
  EXPECT_EQ(got, expected);
}

// Whatever the text or record, the readers and the functions answer (a geometry, or null)
// without reading out of bounds (run under ASan by make test-asan).
TEST(Geo, ArbitraryInputsAreGeometriesOrNull) {
  const std::string alphabet = "POINTLINESTRGYpolygon()(),,. -0123456789e+";
  const std::string valid[] = {"POINT(1 2)", "LINESTRING(0 0, 1 1, 2 0)",
                               "POLYGON((0 0, 1 0, 1 1, 0 1, 0 0), (0.2 0.2, 0.4 0.2, 0.3 0.3))"};
  auto q = StreamQuery::Parse(
      "SELECT ST_DISTANCE(g, h) AS d, ST_WITHIN(g, h) AS w, ST_OVERLAPS(g, h) AS o, "
      "ST_INTERSECTS(g, h) AS i, CreateLineString(g, h) AS l INTO o FROM a");
  ASSERT_TRUE(q.has_value()) << q.error().message();
  Engine e(*q);
  uint64_t x = 17;
  auto next = [&](size_t n) {
    x = x * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<size_t>((x >> 33) % n);
  };
  for (int i = 0; i < 5000; ++i) {
    std::string g, h;
    for (size_t n = next(60); n > 0; --n)
      g += alphabet[next(alphabet.size())];
    const std::string& v = valid[next(3)];
    h = v.substr(0, next(v.size() + 1));  // a prefix of a valid one (often the whole)
    (void)internal::ReadGeometry(json::value(json::string(g)));
    ASSERT_TRUE(e.Push("a", json::object{{"g", g}, {"h", h}}, i).has_value());
    ASSERT_TRUE(e.Push("a", json::object{{"g", v}, {"h", h}}, i).has_value());
  }
  ASSERT_TRUE(e.Flush().has_value());
  EXPECT_EQ(e.TakeOutputs()["o"].size(), 10000u);
}

}  // namespace
}  // namespace orrery::stream

namespace orrery::stream {
namespace {

// StateHorizon's promise for the detectors: an engine fed only the events from (cut - horizon)
// on gives the same rows from `cut` on as one fed everything.
TEST(AnomalyDetection, AReplayFromTheStateHorizonGivesTheSameRows) {
  for (const std::string fn : {"AnomalyDetection_SpikeAndDip(v, 90, 20, 'spikesanddips')",
                               "AnomalyDetection_ChangePoint(v, 90, 20)"}) {
    SCOPED_TRACE(fn);
    auto q = StreamQuery::Parse("SELECT t, " + fn +
                                " OVER (PARTITION BY k LIMIT DURATION(second, 30)) AS ad INTO o "
                                "FROM a");
    ASSERT_TRUE(q.has_value()) << q.error().message();
    Micros horizon = q->StateHorizon();
    Readings r(9);
    std::vector<json::object> events;
    for (int64_t i = 0; i < 400; ++i) {
      int64_t k = i % 2;
      double level = (i / 50) % 2 == 0 ? 20 : 23;  // shifts every 50 seconds
      events.push_back(json::object{{"t", i}, {"k", k}, {"v", r.Next(level + 10.0 * k)}});
    }
    auto run = [&](Micros from) {
      Engine e(*q);
      for (const auto& ev : events) {
        Micros ts = (ev.at("t").as_int64() + 1) * kSecond;
        if (ts >= from) {
          EXPECT_TRUE(e.Push("a", ev, ts).has_value());
        }
      }
      EXPECT_TRUE(e.Flush().has_value());
      std::map<int64_t, json::value> rows;
      auto out = e.TakeOutputs();
      for (const auto& row : out["o"])
        rows[row.row.at("t").as_int64()] = row.row.at("ad");
      return rows;
    };
    auto all = run(0);
    for (Micros cut : {150 * kSecond, 275 * kSecond}) {
      auto replay = run(cut - horizon);
      for (const auto& [t, ad] : all) {
        if ((t + 1) * kSecond < cut) continue;
        EXPECT_EQ(replay[t], ad) << "t " << t << " cut " << cut;
      }
    }
  }
}

}  // namespace
}  // namespace orrery::stream
