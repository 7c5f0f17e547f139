// Partition-parallel jobs in process: a real RocksDB store, a real event log of 4 partitions
// and the job service (no hub). A PARTITION BY PartitionId windowed query runs as several
// runners and writes exactly the rows of one runner merging every partition (and of a count
// made here); after a restart it resumes from the checkpoint the runners wrote together, with
// the same row ids. A query that is not partition-parallel keeps one runner.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "asa/jobs.h"
#include "eventlog/event_log.h"
#include "store/kv_store.h"
#include "stream/stream_query.h"

namespace orrery::asa {
namespace {
namespace json = boost::json;
namespace fs = std::filesystem;

constexpr uint32_t kPartitions = 4;
constexpr int64_t kT0 = 1'767'225'600'000;  // 2026-01-01T00:00:00Z, ms

constexpr const char* kWindowed =
    "SELECT PartitionId AS p, k, COUNT(*) AS n, System.Timestamp() AS t INTO out FROM telemetry "
    "TIMESTAMP BY ts PARTITION BY PartitionId GROUP BY PartitionId, k, TumblingWindow(second, 10)";
constexpr const char* kMerged =
    "SELECT k, COUNT(*) AS n, System.Timestamp() AS t INTO out FROM telemetry "
    "GROUP BY k, TumblingWindow(second, 10)";

std::string Definition(std::string_view query) {
  json::object d{
      {"query", query},
      {"inputs", json::array{json::object{
                     {"name", "telemetry"}, {"source", "iothub"}, {"serialization", "json"}}}},
      {"outputs", json::array{json::object{{"name", "out"}, {"type", "stream"}}}},
      {"eventOrdering",
       json::object{{"lateArrivalToleranceInSeconds", 5}, {"outOfOrderToleranceInSeconds", 0}}},
  };
  return json::serialize(d);
}

struct Row {
  std::string id;
  std::string body;
};

class ParallelJobs : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("orrery-asa-parallel-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    eventlog::Options lo;
    lo.partitions = kPartitions;
    lo.durability = eventlog::Durability::kOs;
    lo.now_ms = [this] { return log_now_.load(); };
    auto log = eventlog::EventLog::Open(dir_ / "hub-log", lo);
    ASSERT_TRUE(log.has_value()) << log.error().message();
    log_ = std::move(*log);
  }
  void TearDown() override {
    service_.reset();
    store_.reset();
    if (log_) log_->Close();
    log_.reset();
    fs::remove_all(dir_);
  }

  void OpenService(uint32_t workers) {
    service_.reset();
    store_.reset();
    auto store = store::OpenRocksDb({.path = dir_ / "state"});
    ASSERT_TRUE(store.has_value()) << store.error().message();
    store_ = std::move(*store);
    JobServiceOptions o;
    o.dir = dir_ / "asa";
    o.reference_dir = dir_ / "reference";
    o.archive_root = dir_ / "archive";
    o.log = {.partitions = 2, .durability = eventlog::Durability::kOs};
    o.checkpoint_interval_ms = 100;
    o.worker_threads = workers;
    // A minute after the last event, moving: every window has closed, checkpoints come, and
    // events appended later (Append's from_ms ten minutes on) are not late.
    auto start = std::chrono::steady_clock::now();
    o.now_ms = [this, start] {
      return log_now_.load() + 60'000 +
             std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - start)
                 .count();
    };
    auto s = JobService::Open(store_.get(), log_.get(), nullptr, nullptr, nullptr, std::move(o));
    ASSERT_TRUE(s.has_value()) << s.error().message();
    service_ = std::move(*s);
  }

  // `n` events per partition from `from_ms` on, 100 ms apart, keys a/b/c; returns the windows'
  // counts as the query computes them: {p, k, window end (ms)} → n.
  std::map<std::tuple<uint32_t, std::string, int64_t>, int> Append(int n, int64_t from_ms) {
    std::map<std::tuple<uint32_t, std::string, int64_t>, int> want;
    std::atomic<int> pending{0};
    for (int i = 0; i < n; ++i) {
      int64_t t = from_ms + i * 100;
      log_now_ = t;
      for (uint32_t p = 0; p < kPartitions; ++p) {
        // Keys differ per partition so that partitions' windows differ.
        std::string k(1, static_cast<char>('a' + (i * (p + 1)) % 3));
        eventlog::Message m;
        m.body = json::serialize(json::object{
            {"ts", stream::FormatDateTime((t - static_cast<int64_t>(p) * 7) * 1000)}, {"k", k}});
        m.system.content_type = "application/json";
        m.system.message_source = "Telemetry";
        m.system.connection_device_id = "d" + std::to_string(p);
        ++pending;
        auto st = log_->AppendToPartition(p, m, [&pending, t](const Result<eventlog::Appended>& r) {
          EXPECT_TRUE(r.has_value());
          if (r) {
            EXPECT_EQ(r->enqueued_ms, t);  // the event's arrival, as the test counts it
          }
          --pending;
        });
        EXPECT_TRUE(st.has_value()) << st.error().message();
        int64_t ts = t - static_cast<int64_t>(p) * 7;
        int64_t end = (ts + 9'999) / 10'000 * 10'000;  // windows are (end - 10 s, end]
        ++want[{p, k, end}];
      }
      // The log stamps enqueued times when it commits: each step's events before the next.
      for (int w = 0; w < 20'000 && pending.load() > 0; ++w)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      EXPECT_EQ(pending.load(), 0);
    }
    return want;
  }

  // The rows job `name` wrote to the hub's log, waiting (bounded) until `count` are distinct.
  std::vector<Row> RowsOf(const std::string& name, size_t count) {
    std::vector<Row> rows;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      rows.clear();
      for (uint32_t p = 0; p < kPartitions; ++p) {
        auto reader = log_->OpenReader(p, eventlog::Position::Earliest());
        EXPECT_TRUE(reader.has_value());
        if (!reader) return rows;
        while (true) {
          auto batch = (*reader)->TryRead(1024);
          if (!batch || batch->events.empty()) break;
          for (auto& e : batch->events) {
            if (e.message.system.message_source != "asa") continue;
            bool mine = false;
            for (auto& [k, v] : e.message.properties)
              mine |= k == "asa-job" && v == name;
            if (mine) rows.push_back({e.message.system.message_id, e.message.body});
          }
        }
      }
      if (Distinct(rows) >= count) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return rows;
  }

  json::object Metrics(const std::string& name) {
    auto j = service_->Get(name);
    EXPECT_TRUE(j.has_value());
    if (!j) return {};
    return j->at("metrics").as_object();
  }

  // Waits (bounded) until the job has written a checkpoint.
  bool Checkpointed(const std::string& name) {
    for (int i = 0; i < 1500; ++i) {
      if (Metrics(name).contains("lastCheckpointTime")) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  void Run(const std::string& name, std::string_view query) {
    auto created = service_->Create(name, json::parse(Definition(query)));
    ASSERT_TRUE(created.has_value()) << created.error().message();
    StartFrom from{.mode = StartFrom::Mode::kCustomTime, .time_ms = kT0 - 1000};
    auto started = service_->Start(name, from);
    ASSERT_TRUE(started.has_value()) << started.error().message();
  }

  static size_t Distinct(const std::vector<Row>& rows) {
    std::set<std::string> bodies;
    for (auto& r : rows)
      bodies.insert(r.body);
    return bodies.size();
  }
  static std::multiset<std::string> Bodies(const std::vector<Row>& rows) {
    std::multiset<std::string> out;
    for (auto& r : rows)
      out.insert(r.body);
    return out;
  }
  static std::multiset<std::string> Expected(
      const std::map<std::tuple<uint32_t, std::string, int64_t>, int>& want) {
    std::multiset<std::string> out;
    for (auto& [key, n] : want) {
      auto& [p, k, end] = key;
      out.insert(json::serialize(
          json::object{{"p", p}, {"k", k}, {"n", n}, {"t", stream::FormatDateTime(end * 1000)}}));
    }
    return out;
  }

  fs::path dir_;
  std::atomic<int64_t> log_now_{kT0};
  std::unique_ptr<eventlog::EventLog> log_;
  std::unique_ptr<store::KvStore> store_;
  std::unique_ptr<JobService> service_;
};

TEST_F(ParallelJobs, PartitionByPartitionIdRunsAsSeveralRunnersWithTheRowsOfOne) {
  auto want = Append(300, kT0);  // 30 s per partition: windows of 10 s
  auto expected = Expected(want);

  OpenService(4);
  Run("par", kWindowed);
  auto par = RowsOf("par", expected.size());
  EXPECT_EQ(Metrics("par").at("runners").to_number<int64_t>(), 4);
  EXPECT_TRUE(Metrics("par").at("partitionParallel").as_bool());
  EXPECT_EQ(Metrics("par").at("partitionClocks").as_array().size(), kPartitions);
  ASSERT_TRUE(service_->Stop("par").has_value());

  OpenService(1);
  Run("one", kWindowed);
  auto one = RowsOf("one", expected.size());
  EXPECT_EQ(Metrics("one").at("runners").to_number<int64_t>(), 1);
  ASSERT_TRUE(service_->Stop("one").has_value());

  EXPECT_EQ(Bodies(par), expected);
  EXPECT_EQ(Bodies(one), expected);
  // Ids: one per row, distinct.
  std::set<std::string> ids;
  for (auto& r : par)
    ids.insert(r.id);
  EXPECT_EQ(ids.size(), par.size());
}

TEST_F(ParallelJobs, AQueryMergingPartitionsKeepsOneRunner) {
  Append(50, kT0);
  OpenService(4);
  Run("merged", kMerged);
  auto rows = RowsOf("merged", 1);
  EXPECT_FALSE(rows.empty());
  EXPECT_EQ(Metrics("merged").at("runners").to_number<int64_t>(), 1);
  EXPECT_FALSE(Metrics("merged").at("partitionParallel").as_bool());
}

TEST_F(ParallelJobs, RunnersResumeFromTheirSharedCheckpointWithTheSameIds) {
  auto first = Append(300, kT0);
  OpenService(3);  // 3 runners over 4 partitions: runner 0 reads partitions 0 and 3
  Run("par", kWindowed);
  auto before = RowsOf("par", Expected(first).size());
  ASSERT_EQ(Bodies(before), Expected(first));
  EXPECT_EQ(Metrics("par").at("runners").to_number<int64_t>(), 3);
  ASSERT_TRUE(Checkpointed("par"));
  service_->Stop();  // as a crash leaves it: the job stays Running, its checkpoint stands

  // More events, in later windows; the job resumes from its checkpoint.
  auto second = Append(200, kT0 + 600'000);
  auto all = Expected(first);
  for (auto& b : Expected(second))
    all.insert(b);
  OpenService(3);
  auto rows = RowsOf("par", all.size());
  // Every row at least once; a row repeated (produced since the checkpoint) has its id.
  std::set<std::string> distinct;
  std::map<std::string, std::set<std::string>> ids;
  for (auto& r : rows) {
    distinct.insert(r.body);
    ids[r.body].insert(r.id);
  }
  EXPECT_EQ(distinct, std::set<std::string>(all.begin(), all.end()));
  for (auto& [body, set] : ids)
    EXPECT_EQ(set.size(), 1u) << body;
  // It resumed (replaying its state horizon) rather than starting from now.
  EXPECT_GT(Metrics("par").at("replayedEvents").to_number<uint64_t>(), 0u);
}

// asa.worker_threads changed between runs (3 runners, then 2, then 1): each run takes its
// partitions' entries from the shared checkpoint, whatever K wrote them, and no window is lost.
TEST_F(ParallelJobs, ResumingWithAnotherWorkerCountLosesNoWindow) {
  auto all = Expected(Append(300, kT0));
  OpenService(3);
  Run("par", kWindowed);
  ASSERT_EQ(Distinct(RowsOf("par", all.size())),
            std::set<std::string>(all.begin(), all.end()).size());
  ASSERT_TRUE(Checkpointed("par"));
  service_->Stop();  // a crash: the job stays Running

  int64_t from = kT0;
  for (uint32_t workers : {2u, 1u}) {
    from += 600'000;
    for (auto& b : Expected(Append(200, from)))
      all.insert(b);
    OpenService(workers);
    auto rows = RowsOf("par", std::set<std::string>(all.begin(), all.end()).size());
    EXPECT_EQ(Metrics("par").at("runners").to_number<int64_t>(), workers);
    std::set<std::string> distinct;
    for (auto& r : rows)
      distinct.insert(r.body);
    std::set<std::string> want(all.begin(), all.end());
    for (auto& b : distinct)
      EXPECT_TRUE(want.count(b)) << workers << " workers: unexpected row " << b;
    for (auto& b : want)
      EXPECT_TRUE(distinct.count(b)) << workers << " workers: missing row " << b;
    EXPECT_GT(Metrics("par").at("replayedEvents").to_number<uint64_t>(), 0u);
    ASSERT_TRUE(Checkpointed("par"));
    service_->Stop();
  }
}

// Not a test: events/s of one runner against several (run with
// --gtest_also_run_disabled_tests --gtest_filter='*Throughput*').
TEST_F(ParallelJobs, DISABLED_Throughput) {
  constexpr int kSteps = 25'000;  // × 4 partitions
  std::atomic<int> pending{0};
  for (int i = 0; i < kSteps; ++i) {
    log_now_ = kT0 + i * 10;
    for (uint32_t p = 0; p < kPartitions; ++p) {
      eventlog::Message m;
      m.body =
          json::serialize(json::object{{"ts", stream::FormatDateTime((kT0 + i * 10) * 1000)},
                                       {"k", std::string(1, static_cast<char>('a' + i % 20))}});
      m.system.message_source = "Telemetry";
      ++pending;
      ASSERT_TRUE(log_->AppendToPartition(
                          p, m, [&pending](const Result<eventlog::Appended>&) { --pending; })
                      .has_value());
    }
  }
  while (pending.load() > 0)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (uint32_t workers : {1u, 2u, 4u}) {
    OpenService(workers);
    std::string name = "job-w" + std::to_string(workers);
    auto t0 = std::chrono::steady_clock::now();
    Run(name, kWindowed);
    uint64_t total = uint64_t{kSteps} * kPartitions;
    while (Metrics(name).at("inputEvents").to_number<uint64_t>() < total)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("worker_threads=%u runners=%lld: %.0f events/s\n", workers,
                static_cast<long long>(Metrics(name).at("runners").to_number<int64_t>()),
                static_cast<double>(total) / s);
    ASSERT_TRUE(service_->Stop(name).has_value());
  }
}

}  // namespace
}  // namespace orrery::asa
