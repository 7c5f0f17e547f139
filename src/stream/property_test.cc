// The property issue 9 asks for: the same input gives the same output whatever the batch
// boundaries (when TakeOutputs collects, where heartbeats fall) and the interleaving of the
// partitions' calls. Randomized but seeded and bounded: each seed makes a workload, runs it
// once partition after partition, then in random interleavings, and compares the rows (with
// their System.Timestamp()) as multisets. A query with PARTITION BY PartitionId must also give
// the union of running each partition alone.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "stream/stream_query.h"

namespace orrery::stream {
namespace {

namespace json = boost::json;

struct Ev {
  std::string input;
  uint32_t partition;
  Micros arrival;
  json::object body;
};

using Multiset = std::map<std::string, int>;  // "target\ttimestamp\trow" → count

Micros Base() {
  return *ParseDateTime("2026-01-01T00:00:00Z");
}

// Per partition, arrivals never decrease; event times lag them by up to 8 s (disorder within
// a partition and across them); keys a…d, values 0…99, ids 0…9 for the join.
std::vector<Ev> Workload(std::mt19937& rng, uint32_t partitions,
                         const std::vector<std::string>& inputs, size_t count) {
  std::vector<Ev> out;
  std::vector<Micros> arrival(partitions * inputs.size(), Base());
  for (size_t i = 0; i < count; ++i) {
    size_t in = rng() % inputs.size();
    uint32_t p = static_cast<uint32_t>(rng() % partitions);
    Micros& a = arrival[in * partitions + p];
    a += static_cast<Micros>(rng() % 3000) * 1000;  // 0…3 s, ties included
    Micros t = a - static_cast<Micros>(rng() % 8000) * 1000;
    json::object body{{"k", std::string(1, static_cast<char>('a' + rng() % 4))},
                      {"v", static_cast<int64_t>(rng() % 100)},
                      {"id", static_cast<int64_t>(rng() % 10)},
                      {"time", FormatDateTime(t)}};
    out.push_back(Ev{inputs[in], p, a, std::move(body)});
  }
  return out;
}

void Collect(Engine& e, Multiset& into) {
  for (auto& [target, rows] : e.TakeOutputs()) {
    for (auto& r : rows)
      ++into[target + "\t" + FormatDateTime(r.timestamp) + "\t" + json::serialize(r.row)];
  }
}

// Runs `events` in the order of `order` (indexes into events), collecting outputs after a
// random number of calls and sending heartbeats (never past a partition's next arrival).
Multiset RunOnce(const StreamQuery& q, const EventTimePolicy& policy, uint32_t partitions,
                 const std::vector<Ev>& events, const std::vector<size_t>& order,
                 std::mt19937* rng) {
  Engine e(q, policy, partitions);
  Multiset out;
  for (size_t i : order) {
    const Ev& ev = events[i];
    if (rng && (*rng)() % 4 == 0) {
      auto h = e.Heartbeat(ev.input, ev.partition,
                           ev.arrival - static_cast<Micros>((*rng)() % 2) * kSecond);
      EXPECT_TRUE(h.has_value()) << h.error().message();
    }
    auto r = e.Push(ev.input, ev.partition, ev.body, ev.arrival);
    EXPECT_TRUE(r.has_value()) << r.error().message();
    if (rng && (*rng)() % 7 == 0) Collect(e, out);
  }
  auto r = e.Flush();
  EXPECT_TRUE(r.has_value()) << r.error().message();
  Collect(e, out);
  return out;
}

// A random interleaving that keeps each (input, partition)'s own order.
std::vector<size_t> Interleave(const std::vector<Ev>& events, std::mt19937& rng) {
  std::map<std::pair<std::string, uint32_t>, std::vector<size_t>> lanes;
  for (size_t i = 0; i < events.size(); ++i)
    lanes[{events[i].input, events[i].partition}].push_back(i);
  std::vector<std::pair<std::vector<size_t>*, size_t>> heads;
  for (auto& [k, v] : lanes)
    heads.emplace_back(&v, 0);
  std::vector<size_t> out;
  while (!heads.empty()) {
    size_t h = rng() % heads.size();
    out.push_back((*heads[h].first)[heads[h].second++]);
    if (heads[h].second == heads[h].first->size())
      heads.erase(heads.begin() + static_cast<long>(h));
  }
  return out;
}

// Partition after partition (each input's partitions in turn).
std::vector<size_t> Sequential(const std::vector<Ev>& events) {
  std::vector<size_t> out(events.size());
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = i;
  std::stable_sort(out.begin(), out.end(), [&](size_t a, size_t b) {
    return std::tie(events[a].input, events[a].partition) <
           std::tie(events[b].input, events[b].partition);
  });
  return out;
}

struct Named {
  const char* name;
  const char* text;
  std::vector<std::string> inputs;
};

const std::vector<Named>& Queries() {
  static const std::vector<Named> q = {
      {"filter",
       "SELECT k, v, PartitionId AS p FROM input TIMESTAMP BY time WHERE v > 30",
       {"input"}},
      {"tumbling",
       "SELECT k, COUNT(*) AS n, AVG(v) AS a, System.Timestamp() AS t FROM input TIMESTAMP BY time "
       "GROUP BY k, TumblingWindow(second, 5)",
       {"input"}},
      {"hopping",
       "SELECT MAX(v) AS hi, MIN(v) AS lo FROM input TIMESTAMP BY time GROUP BY "
       "HoppingWindow(second, 10, 3)",
       {"input"}},
      {"sliding",
       "SELECT k, SUM(v) AS s FROM input TIMESTAMP BY time GROUP BY k, SlidingWindow(second, 4)",
       {"input"}},
      {"session",
       "SELECT k, COUNT(*) AS n FROM input TIMESTAMP BY time "
       "GROUP BY k, SessionWindow(second, 4, 30) OVER (PARTITION BY k)",
       {"input"}},
      {"join",
       "SELECT a.id, a.v AS av, b.v AS bv FROM a TIMESTAMP BY time JOIN b TIMESTAMP BY time "
       "ON a.id = b.id AND DATEDIFF(second, a, b) BETWEEN 0 AND 5",
       {"a", "b"}},
      {"left join",
       "SELECT a.id, b.v AS bv FROM a TIMESTAMP BY time LEFT JOIN b TIMESTAMP BY time "
       "ON a.id = b.id AND DATEDIFF(second, a, b) BETWEEN -2 AND 2",
       {"a", "b"}},
      {"analytic",
       "SELECT k, v, LAG(v) OVER (PARTITION BY k LIMIT DURATION(second, 10)) AS prev, "
       "SUM(v) OVER (PARTITION BY k LIMIT DURATION(second, 6)) AS recent, "
       "ISFIRST(second, 5) OVER (PARTITION BY k) AS first FROM input TIMESTAMP BY time",
       {"input"}},
      {"steps",
       "WITH w AS (SELECT k, COUNT(*) AS n FROM input TIMESTAMP BY time GROUP BY k, "
       "TumblingWindow(second, 4)) "
       "SELECT SUM(n) AS total FROM w GROUP BY TumblingWindow(second, 8)",
       {"input"}},
      {"windows",
       "SELECT System.Window().Id AS w, COUNT(*) AS n FROM input TIMESTAMP BY time "
       "GROUP BY Windows(Window('t', TumblingWindow(second, 5)), Window('h', HoppingWindow(second, "
       "6, 2)))",
       {"input"}},
      {"substreams",
       "SELECT k, COUNT(*) AS n, System.Timestamp() AS t FROM input TIMESTAMP BY time OVER k "
       "GROUP BY k, TumblingWindow(second, 5)",
       {"input"}},
      {"partitioned",
       "SELECT PartitionId, k, COUNT(*) AS n, SUM(v) AS s FROM input TIMESTAMP BY time PARTITION "
       "BY PartitionId "
       "GROUP BY PartitionId, k, TumblingWindow(second, 5)",
       {"input"}},
      {"match",
       "SELECT *, System.Timestamp() AS t FROM input TIMESTAMP BY time MATCH_RECOGNIZE ("
       "LIMIT DURATION (second, 6) PARTITION BY k MEASURES First(Lo.v) AS lo, Max(Hi.v) AS hi, "
       "Classifier() AS c PATTERN (Lo Hi+ Lo) DEFINE Lo AS Lo.v < 50, Hi AS Hi.v >= 50) AS M",
       {"input"}},
      {"match step",
       "WITH m AS (SELECT * FROM input TIMESTAMP BY time MATCH_RECOGNIZE (PARTITION BY k "
       "MEASURES Last(B.v) AS v AFTER MATCH SKIP PAST LAST ROW PATTERN (A B+) "
       "DEFINE A AS A.v < 30, B AS B.v > Last(A.v)) AS M) "
       "SELECT k, COUNT(*) AS n, MAX(v) AS top FROM m GROUP BY k, TumblingWindow(second, 5)",
       {"input"}},
  };
  return q;
}

std::string Show(const Multiset& m) {
  std::string out;
  for (const auto& [row, n] : m)
    out += std::to_string(n) + "× " + row + "\n";
  return out;
}

TEST(StreamProperty, SameOutputWhateverBatchesAndInterleavings) {
  constexpr int kSeeds = 12;
  constexpr int kInterleavings = 4;
  for (const auto& named : Queries()) {
    auto q = StreamQuery::Parse(named.text);
    ASSERT_TRUE(q.has_value()) << named.name << ": " << q.error().message();
    for (int seed = 0; seed < kSeeds; ++seed) {
      SCOPED_TRACE(std::string(named.name) + ", seed " + std::to_string(seed));
      std::mt19937 rng(static_cast<uint32_t>(seed) * 7919u + 1);
      uint32_t partitions = 1 + static_cast<uint32_t>(rng() % 4);
      EventTimePolicy policy;
      policy.late_arrival_tolerance =
          seed % 3 == 0 ? std::nullopt : std::optional<Micros>((2 + rng() % 6) * kSecond);
      policy.out_of_order_tolerance = static_cast<Micros>(rng() % 4) * kSecond;
      policy.action = seed % 2 ? EventTimePolicy::Action::kDrop : EventTimePolicy::Action::kAdjust;
      std::vector<Ev> events = Workload(rng, partitions, named.inputs, 60 + rng() % 100);
      Multiset base = RunOnce(*q, policy, partitions, events, Sequential(events), nullptr);
      size_t rows = 0;
      for (const auto& [row, n] : base)
        rows += static_cast<size_t>(n);
      for (int k = 0; k < kInterleavings; ++k) {
        Multiset other = RunOnce(*q, policy, partitions, events, Interleave(events, rng), &rng);
        ASSERT_EQ(base, other) << "expected\n" << Show(base) << "got\n" << Show(other);
      }
      if (std::string(named.name) == "partitioned" && partitions > 1) {
        // Partitions are independent: the union of each partition's run alone.
        Multiset alone;
        for (uint32_t p = 0; p < partitions; ++p) {
          std::vector<Ev> mine;
          for (const auto& ev : events) {
            if (ev.partition == p) mine.push_back(ev);
          }
          for (auto& [row, n] : RunOnce(*q, policy, partitions, mine, Sequential(mine), nullptr))
            alone[row] += n;
        }
        ASSERT_EQ(base, alone) << "expected\n" << Show(base) << "got\n" << Show(alone);
      }
      if (seed == 0) {
        EXPECT_GT(rows, 0u) << named.name << " produced nothing: a weak workload";
      }
    }
  }
}

}  // namespace
}  // namespace orrery::stream
