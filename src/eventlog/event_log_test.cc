#include "eventlog/event_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <map>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "eventlog/test_util.h"

namespace orrery::eventlog {
namespace {

using testutil::AppendSync;
using testutil::Completions;
using testutil::FakeClock;
using testutil::ReadAll;
using testutil::TempDir;
using testutil::TestMessage;

constexpr int64_t kStart = 1'790'000'000'000;  // 2026-09-21, ms since epoch
constexpr int64_t kDay = 24 * 3600 * 1000;

// Holds the sync thread inside a completion callback until opened, so that later appends
// pile up deterministically (group commit, backpressure, visibility tests).
class Gate {
 public:
  AppendCallback Blocker() {
    return [this](const Result<Appended>&) {
      std::unique_lock lock(mu_);
      entered_ = true;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    };
  }
  void WaitEntered() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return entered_; });
  }
  void Open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false;
  bool open_ = false;
};

// A one-shot flag for callbacks run on the sync thread.
class Flag {
 public:
  std::function<void()> Setter() {
    return [this] {
      std::lock_guard lock(mu_);
      ++count_;
      cv_.notify_all();
    };
  }
  bool Wait(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return count_ > 0; });
  }
  int count() {
    std::lock_guard lock(mu_);
    return count_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int count_ = 0;
};

class EventLogTest : public ::testing::Test {
 protected:
  Options BaseOptions() {
    Options o;
    o.now_ms = clock_.Fn();
    o.metrics = &registry_;
    return o;
  }
  std::unique_ptr<EventLog> OpenLog(Options o) {
    auto log = EventLog::Open(dir_.path(), std::move(o));
    EXPECT_TRUE(log) << log.error().message();
    return log ? std::move(*log) : nullptr;
  }

  TempDir dir_{"log"};
  FakeClock clock_{kStart};
  metrics::Registry registry_;
};

TEST(PartitionHashTest, StableAndSpread) {
  // Frozen values: a device's partition must never change across versions or hosts.
  // (XXH3_64bits("device-1") = 17339907882301637797, "thermostat-42" = 7705257891923905990,
  // "" = 3244421341483603138.)
  EXPECT_EQ(PartitionForDevice("device-1", 4), 1u);
  EXPECT_EQ(PartitionForDevice("device-1", 16), 5u);
  EXPECT_EQ(PartitionForDevice("thermostat-42", 4), 2u);
  EXPECT_EQ(PartitionForDevice("thermostat-42", 16), 6u);
  EXPECT_EQ(PartitionForDevice("", 4), 2u);
  EXPECT_EQ(PartitionForDevice("device-1", 1), 0u);
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 4000; ++i)
    ++counts[PartitionForDevice("device-" + std::to_string(i), 4)];
  ASSERT_EQ(counts.size(), 4u);
  for (auto& [p, n] : counts) {
    EXPECT_LT(p, 4u);
    EXPECT_GT(n, 800) << p;  // roughly uniform
  }
}

TEST_F(EventLogTest, AppendsAndReadsBackInOrder) {
  auto log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  EXPECT_EQ(log->partition_count(), 4u);
  uint32_t p = log->PartitionFor("dev-a");
  std::vector<Appended> appended;
  for (int i = 0; i < 10; ++i) {
    auto m = TestMessage("dev-a", "body-" + std::to_string(i));
    m.system.message_id = "id-" + std::to_string(i);
    auto r = AppendSync(*log, m);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->partition, p);
    EXPECT_EQ(r->sequence, static_cast<uint64_t>(i));
    EXPECT_EQ(r->enqueued_ms, kStart);
    appended.push_back(*r);
  }
  auto events = ReadAll(*log, p);
  ASSERT_EQ(events.size(), 10u);
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].sequence, i);
    EXPECT_EQ(events[i].offset, appended[i].offset);
    EXPECT_EQ(events[i].message.body, "body-" + std::to_string(i));
    EXPECT_EQ(events[i].message.system.message_id, "id-" + std::to_string(i));
    EXPECT_EQ(events[i].message.system.connection_device_id, "dev-a");
    EXPECT_EQ(events[i].message.system.enqueued_time_ms, kStart);
    EXPECT_EQ(events[i].message.properties, (decltype(events[i].message.properties){{"k", "v"}}));
  }
  EXPECT_EQ(appended[0].offset, 0u);
  EXPECT_LT(appended[0].offset, appended[1].offset);
  auto props = log->GetPartitionProperties(p).value();
  EXPECT_EQ(props.beginning_sequence, 0u);
  EXPECT_EQ(props.next_sequence, 10u);
  EXPECT_FALSE(props.empty);
  EXPECT_EQ(props.last_offset, appended[9].offset);
  EXPECT_EQ(props.last_enqueued_ms, kStart);
  // Other partitions are untouched.
  EXPECT_TRUE(log->GetPartitionProperties((p + 1) % 4)->empty);

  // Reopening keeps everything and continues the sequence.
  log.reset();
  log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  EXPECT_EQ(ReadAll(*log, p).size(), 10u);
  auto r = AppendSync(*log, TestMessage("dev-a", "after"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sequence, 10u);
  EXPECT_GT(r->offset, appended[9].offset);
}

TEST_F(EventLogTest, EnqueuedTimeNeverGoesBackwards) {
  auto log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  auto a = AppendSync(*log, TestMessage("d", "1")).value();
  clock_.Advance(-5000);  // wall clock stepped back
  auto b = AppendSync(*log, TestMessage("d", "2")).value();
  EXPECT_EQ(b.enqueued_ms, a.enqueued_ms);
  clock_.Advance(10000);
  auto c = AppendSync(*log, TestMessage("d", "3")).value();
  EXPECT_EQ(c.enqueued_ms, kStart + 5000);
}

TEST_F(EventLogTest, ValidatesOptionsAndFixesThePartitionCount) {
  Options o = BaseOptions();
  o.partitions = 0;
  EXPECT_TRUE(EventLog::Open(dir_.path(), o).error().Is(Errc::kInvalidArgument));
  o.partitions = 129;
  EXPECT_TRUE(EventLog::Open(dir_.path(), o).error().Is(Errc::kInvalidArgument));
  o.partitions = 4;
  o.max_record_bytes = o.max_pending_bytes;
  EXPECT_TRUE(EventLog::Open(dir_.path(), o).error().Is(Errc::kInvalidArgument));

  o = BaseOptions();
  o.partitions = 8;
  {
    auto log = OpenLog(o);
    ASSERT_TRUE(log);
    // A second open of the same directory is refused while the first is open.
    auto second = EventLog::Open(dir_.path(), o);
    ASSERT_FALSE(second);
    EXPECT_TRUE(second.error().Is(Errc::kLocked));
  }
  o.partitions = 4;
  auto mismatch = EventLog::Open(dir_.path(), o);
  ASSERT_FALSE(mismatch);
  EXPECT_TRUE(mismatch.error().Is(Errc::kPartitionMismatch));
  EXPECT_NE(mismatch.error().message().find("8 partitions"), std::string::npos);
  o.partitions = 8;
  EXPECT_TRUE(EventLog::Open(dir_.path(), o));
}

TEST_F(EventLogTest, RejectsOversizedMessagesAndBadPartitions) {
  Options o = BaseOptions();
  o.max_record_bytes = 1024;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  auto r = log->Append(TestMessage("d", std::string(2000, 'x')), nullptr);
  ASSERT_FALSE(r);
  EXPECT_TRUE(r.error().Is(Errc::kTooLarge));
  EXPECT_TRUE(
      log->AppendToPartition(4, TestMessage("d", "x"), nullptr).error().Is(Errc::kInvalidArgument));
  EXPECT_TRUE(log->OpenReader(4, Position::Earliest()).error().Is(Errc::kInvalidArgument));
}

TEST_F(EventLogTest, RollsSegmentsAndSeeksBySequence) {
  Options o = BaseOptions();
  o.partitions = 1;
  o.segment_size = 4096;
  o.index_interval_bytes = 512;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  Completions done;
  constexpr int kCount = 600;
  for (int i = 0; i < kCount; ++i) {
    ASSERT_TRUE(log->Append(TestMessage("d", "payload-" + std::to_string(i) + std::string(60, '.')),
                            done.Callback()));
  }
  ASSERT_TRUE(done.WaitFor(kCount));
  auto props = log->GetPartitionProperties(0).value();
  EXPECT_GT(props.segments, 10u);
  EXPECT_EQ(props.next_sequence, static_cast<uint64_t>(kCount));
  // No segment grows beyond the roll size (every record is much smaller).
  for (const auto& f : std::filesystem::directory_iterator(dir_.path() / "p0")) {
    if (f.path().extension() == ".log") {
      EXPECT_LE(f.file_size(), 4096u) << f.path();
    }
  }

  auto check_seeks = [&](EventLog& l) {
    for (uint64_t target : {0ull, 1ull, 37ull, 299ull, 300ull, 598ull, 599ull}) {
      auto reader = l.OpenReader(0, Position::Sequence(target)).value();
      auto batch = reader->TryRead(3).value();
      ASSERT_FALSE(batch.events.empty()) << target;
      EXPECT_EQ(batch.events[0].sequence, target);
      EXPECT_EQ(batch.events[0].message.body.substr(0, 8 + std::to_string(target).size()),
                "payload-" + std::to_string(target));
    }
    auto all = ReadAll(l, 0);
    ASSERT_EQ(all.size(), static_cast<size_t>(kCount));
    for (size_t i = 0; i < all.size(); ++i)
      ASSERT_EQ(all[i].sequence, i);
  };
  check_seeks(*log);

  // Reopen: sealed segments come back from their .idx files...
  log.reset();
  log = OpenLog(o);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].rebuilt_indexes, 0u);
  check_seeks(*log);
  // ...and are rebuilt by scanning when an index is missing or damaged.
  log.reset();
  std::vector<std::filesystem::path> indexes;
  for (const auto& f : std::filesystem::directory_iterator(dir_.path() / "p0")) {
    if (f.path().extension() == ".idx") indexes.push_back(f.path());
  }
  ASSERT_GE(indexes.size(), 2u);
  std::sort(indexes.begin(), indexes.end());
  std::filesystem::remove(indexes[0]);
  std::filesystem::resize_file(indexes[1], 10);
  log = OpenLog(o);
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].rebuilt_indexes, 2u);
  check_seeks(*log);
}

TEST_F(EventLogTest, SeeksByEnqueuedTime) {
  Options o = BaseOptions();
  o.partitions = 1;
  o.segment_size = 4096;
  o.index_interval_bytes = 256;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  // 200 records, one second apart, across many segments.
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(AppendSync(*log, TestMessage("d", std::string(50, 'a') + std::to_string(i))));
    clock_.Advance(1000);
  }
  for (int i : {0, 1, 50, 123, 199}) {
    auto reader = log->OpenReader(0, Position::EnqueuedTime(kStart + i * 1000)).value();
    auto batch = reader->TryRead(1).value();
    ASSERT_EQ(batch.events.size(), 1u) << i;
    EXPECT_EQ(batch.events[0].sequence, static_cast<uint64_t>(i));
    // Between two records: the later one.
    reader = log->OpenReader(0, Position::EnqueuedTime(kStart + i * 1000 - 500)).value();
    batch = reader->TryRead(1).value();
    ASSERT_EQ(batch.events.size(), 1u);
    EXPECT_EQ(batch.events[0].sequence, static_cast<uint64_t>(i));
  }
  // Before everything: the earliest. After everything: nothing until a new record arrives.
  EXPECT_EQ(log->OpenReader(0, Position::EnqueuedTime(0)).value()->next_sequence(), 0u);
  auto future = log->OpenReader(0, Position::EnqueuedTime(kStart + 10'000'000)).value();
  EXPECT_EQ(future->next_sequence(), 200u);
  EXPECT_TRUE(future->TryRead(10)->events.empty());
  ASSERT_TRUE(AppendSync(*log, TestMessage("d", "new")));
  auto batch = future->TryRead(10).value();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].message.body, "new");
}

TEST_F(EventLogTest, LatestReaderSeesOnlyNewRecords) {
  auto log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  uint32_t p = log->PartitionFor("d");
  ASSERT_TRUE(AppendSync(*log, TestMessage("d", "old")));
  auto reader = log->OpenReader(p, Position::Latest()).value();
  EXPECT_TRUE(reader->TryRead(10)->events.empty());
  ASSERT_TRUE(AppendSync(*log, TestMessage("d", "new")));
  auto batch = reader->TryRead(10).value();
  ASSERT_EQ(batch.events.size(), 1u);
  EXPECT_EQ(batch.events[0].message.body, "new");
}

TEST_F(EventLogTest, BlockingReadWakesOnAppendAndHonoursDeadline) {
  auto log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  uint32_t p = log->PartitionFor("d");
  auto reader = log->OpenReader(p, Position::Earliest()).value();
  // Nothing there: returns empty at the deadline.
  auto empty = reader->Read(10, std::chrono::steady_clock::now() + std::chrono::milliseconds(20));
  ASSERT_TRUE(empty);
  EXPECT_TRUE(empty->events.empty());

  std::optional<Result<ReadBatch>> got;
  std::thread t([&] { got = reader->Read(10, std::chrono::steady_clock::time_point::max()); });
  ASSERT_TRUE(log->Append(TestMessage("d", "wake"), nullptr));
  t.join();
  ASSERT_TRUE(got && *got);
  ASSERT_EQ((*got)->events.size(), 1u);
  EXPECT_EQ((*got)->events[0].message.body, "wake");
}

TEST_F(EventLogTest, ReadableHookFiresOnceWhenDataArrives) {
  auto log = OpenLog(BaseOptions());
  ASSERT_TRUE(log);
  uint32_t p = log->PartitionFor("d");
  auto reader = log->OpenReader(p, Position::Earliest()).value();
  Flag flag;
  ASSERT_TRUE(reader->NotifyWhenReadable(flag.Setter()));
  ASSERT_TRUE(log->Append(TestMessage("d", "x"), nullptr));
  ASSERT_TRUE(flag.Wait());
  // Data is available now: registering again is refused so the caller reads instead.
  EXPECT_FALSE(reader->NotifyWhenReadable(flag.Setter()));
  EXPECT_EQ(reader->TryRead(10)->events.size(), 1u);
  ASSERT_TRUE(AppendSync(*log, TestMessage("d", "y")));
  EXPECT_EQ(flag.count(), 1);  // one-shot
}

TEST_F(EventLogTest, ReadersSeeOnlyDurableRecords) {
  Options o = BaseOptions();
  o.partitions = 1;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  auto reader = log->OpenReader(0, Position::Earliest()).value();
  Gate gate;
  ASSERT_TRUE(log->Append(TestMessage("d", "first"), gate.Blocker()));
  gate.WaitEntered();  // "first" is durable; the sync thread is parked in its callback
  Completions done;
  ASSERT_TRUE(log->Append(TestMessage("d", "second"), done.Callback()));
  auto batch = reader->TryRead(10).value();
  ASSERT_EQ(batch.events.size(), 1u);  // "second" is accepted but not durable yet
  EXPECT_EQ(batch.events[0].message.body, "first");
  gate.Open();
  ASSERT_TRUE(done.WaitFor(1));
  EXPECT_EQ(reader->TryRead(10)->events.size(), 1u);
}

TEST_F(EventLogTest, WrittenReadersSeeRecordsBeforeTheirSync) {
  Options o = BaseOptions();
  o.partitions = 1;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  auto durable = log->OpenReader(0, Position::Earliest()).value();
  auto written = log->OpenReader(0, Position::Earliest(), Visibility::kWritten).value();
  Gate gate;
  ASSERT_TRUE(log->Append(TestMessage("d", "first"), gate.Blocker()));
  gate.WaitEntered();  // the sync thread is parked: nothing after "first" becomes durable
  Completions done;
  ASSERT_TRUE(log->Append(TestMessage("d", "second"), done.Callback()));
  ASSERT_TRUE(log->Append(TestMessage("d", "third"), done.Callback()));
  std::vector<std::string> bodies;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (bodies.size() < 3 && std::chrono::steady_clock::now() < deadline) {
    for (auto& e : written->Read(10, deadline).value().events)
      bodies.push_back(e.message.body);
  }
  EXPECT_EQ(bodies, (std::vector<std::string>{"first", "second", "third"}));
  EXPECT_EQ(written->durable_next(), 1u);
  EXPECT_EQ(durable->TryRead(10)->events.size(), 1u);
  EXPECT_TRUE(durable->TryRead(10)->events.empty());
  EXPECT_EQ(log->GetPartitionProperties(0)->next_sequence, 1u);
  // What arrives while the sync is still parked is written at once too, and wakes the reader.
  Flag flag;
  ASSERT_TRUE(written->NotifyWhenReadable(flag.Setter()));
  ASSERT_TRUE(log->Append(TestMessage("d", "fourth"), done.Callback()));
  ASSERT_TRUE(flag.Wait());
  EXPECT_EQ(written->TryRead(10)->events.at(0).message.body, "fourth");
  EXPECT_EQ(written->durable_next(), 1u);
  gate.Open();
  ASSERT_TRUE(done.WaitFor(3));
  EXPECT_EQ(written->durable_next(), 4u);
  EXPECT_EQ(durable->TryRead(10)->events.size(), 3u);
  // "second" to "fourth" were gathered into the round waiting for the parked sync: one commit.
  EXPECT_EQ(log->commit_stats().commits, 2u);
  auto props = log->GetPartitionProperties(0).value();
  EXPECT_EQ(props.next_sequence, 4u);
  EXPECT_EQ(props.last_offset, done.ok().back().offset);
}

TEST_F(EventLogTest, GroupCommitCoversEverythingQueuedDuringASync) {
  Options o = BaseOptions();
  o.partitions = 1;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  Gate gate;
  ASSERT_TRUE(log->Append(TestMessage("d", "first"), gate.Blocker()));
  gate.WaitEntered();
  Completions done;
  for (int i = 0; i < 200; ++i)
    ASSERT_TRUE(log->Append(TestMessage("d", std::to_string(i)), done.Callback()));
  gate.Open();
  ASSERT_TRUE(done.WaitFor(200));
  auto stats = log->commit_stats();
  EXPECT_EQ(stats.records, 201u);
  // One commit for "first"; the 200 gathered while its callback held the sync thread went
  // into at most two more: the round the writer wrote meanwhile, and the rest.
  EXPECT_LE(stats.commits, 3u);
  EXPECT_EQ(stats.fsyncs, stats.commits);
  auto ok = done.ok();
  ASSERT_EQ(ok.size(), 200u);
  for (size_t i = 0; i < ok.size(); ++i)
    EXPECT_EQ(ok[i].sequence, i + 1);
}

TEST_F(EventLogTest, ManyProducerThreadsKeepPerDeviceOrder) {
  Options o = BaseOptions();
  o.now_ms = nullptr;  // real clock
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  constexpr int kThreads = 8, kPerThread = 1500;
  Completions done;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        auto m = TestMessage("device-" + std::to_string(t), std::to_string(i));
        while (true) {
          auto r = log->Append(m, done.Callback());
          if (r) break;
          ASSERT_TRUE(r.error().Is(Errc::kBackpressure)) << r.error().message();
          std::this_thread::yield();
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(done.WaitFor(kThreads * kPerThread));
  EXPECT_TRUE(done.errors().empty());

  size_t total = 0;
  std::map<std::string, int> last_by_device;
  for (uint32_t p = 0; p < 4; ++p) {
    auto events = ReadAll(*log, p);
    total += events.size();
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].sequence, i);
      const auto& device = events[i].message.system.connection_device_id;
      EXPECT_EQ(log->PartitionFor(device), p);
      int n = std::stoi(events[i].message.body);
      auto it = last_by_device.find(device);
      if (it != last_by_device.end()) {
        EXPECT_EQ(n, it->second + 1) << device;
      }
      last_by_device[device] = n;
    }
  }
  EXPECT_EQ(total, static_cast<size_t>(kThreads * kPerThread));
  auto stats = log->commit_stats();
  EXPECT_EQ(stats.records, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_LE(stats.commits, stats.records);
}

TEST_F(EventLogTest, BackpressureRefusesThenResumes) {
  Options o = BaseOptions();
  o.partitions = 1;
  o.max_pending_bytes = 64 * 1024;
  o.max_record_bytes = 4096;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  Gate gate;
  ASSERT_TRUE(log->Append(TestMessage("d", "first"), gate.Blocker()));
  gate.WaitEntered();
  // The sync thread is parked: appends accumulate until the limit, then are refused.
  Completions done;
  int accepted = 0;
  Status refused = Ok();
  for (int i = 0; i < 10000; ++i) {
    refused = log->Append(TestMessage("d", std::string(1000, 'x')), done.Callback());
    if (!refused) break;
    ++accepted;
  }
  ASSERT_FALSE(refused);
  EXPECT_TRUE(refused.error().Is(Errc::kBackpressure));
  EXPECT_GT(accepted, 20);
  EXPECT_LE(log->pending_bytes(), o.max_pending_bytes);
  EXPECT_NE(registry_.Render().find("orrery_eventlog_backpressure_total 1"), std::string::npos);

  Flag writable;
  ASSERT_TRUE(log->NotifyWhenWritable(writable.Setter()));
  gate.Open();
  ASSERT_TRUE(writable.Wait());
  ASSERT_TRUE(done.WaitFor(static_cast<size_t>(accepted)));
  EXPECT_EQ(writable.count(), 1);
  EXPECT_TRUE(log->Append(TestMessage("d", "again"), done.Callback()));
  ASSERT_TRUE(done.WaitFor(static_cast<size_t>(accepted) + 1));
  // Below half the limit: registering is refused (append now instead).
  EXPECT_FALSE(log->NotifyWhenWritable(writable.Setter()));
}

TEST_F(EventLogTest, RetentionByTimeDeletesOldSegmentsAndMovesReadersOn) {
  Options o = BaseOptions();
  o.partitions = 1;
  o.segment_size = 4096;
  o.retention_ms = kDay;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  Completions done;
  for (int i = 0; i < 300; ++i)
    ASSERT_TRUE(log->Append(TestMessage("d", std::string(100, 'o')), done.Callback()));
  ASSERT_TRUE(done.WaitFor(300));
  auto reader = log->OpenReader(0, Position::Earliest()).value();
  ASSERT_EQ(reader->TryRead(5)->events.size(), 5u);  // positioned inside the first segment

  clock_.Advance(kDay / 2);
  EXPECT_EQ(log->EnforceRetention().value(), 0u);  // nothing old enough yet
  ASSERT_TRUE(AppendSync(*log, TestMessage("d", "fresh")));
  clock_.Advance(kDay / 2 + 1);
  // The 300 old records are now beyond retention; "fresh" (in the active segment) is not.
  size_t deleted = log->EnforceRetention().value();
  EXPECT_GT(deleted, 5u);
  auto props = log->GetPartitionProperties(0).value();
  EXPECT_GT(props.beginning_sequence, 5u);
  EXPECT_EQ(props.next_sequence, 301u);
  EXPECT_NE(registry_.Render().find("orrery_eventlog_retention_deleted_segments_total " +
                                    std::to_string(deleted)),
            std::string::npos);

  // The reader's segment is gone: it moves to the earliest record and says how far it jumped.
  auto batch = reader->TryRead(1000).value();
  EXPECT_EQ(batch.skipped, props.beginning_sequence - 5);
  ASSERT_FALSE(batch.events.empty());
  EXPECT_EQ(batch.events.front().sequence, props.beginning_sequence);
  EXPECT_EQ(batch.events.back().message.body, "fresh");

  // Once even the active segment's newest record is old, it is rolled and deleted too.
  clock_.Advance(2 * kDay);
  EXPECT_GE(log->EnforceRetention().value(), 1u);
  props = log->GetPartitionProperties(0).value();
  EXPECT_TRUE(props.empty);
  EXPECT_EQ(props.beginning_sequence, 301u);
  EXPECT_EQ(props.segments, 1u);
  auto r = AppendSync(*log, TestMessage("d", "later"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->sequence, 301u);

  // And the result survives a restart.
  log.reset();
  log = OpenLog(o);
  ASSERT_TRUE(log);
  auto events = ReadAll(*log, 0);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].sequence, 301u);
}

TEST_F(EventLogTest, RetentionBySize) {
  Options o = BaseOptions();
  o.partitions = 2;
  o.segment_size = 4096;
  o.max_bytes = 2 * 16 * 1024;  // 16 KiB per partition
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  Completions done;
  for (int i = 0; i < 1000; ++i) {
    ASSERT_TRUE(log->AppendToPartition(static_cast<uint32_t>(i % 2),
                                       TestMessage("d", std::string(100, 's')), done.Callback()));
  }
  ASSERT_TRUE(done.WaitFor(1000));
  EXPECT_GT(log->GetPartitionProperties(0)->bytes_on_disk, 16u * 1024);
  EXPECT_GT(log->EnforceRetention().value(), 0u);
  for (uint32_t p = 0; p < 2; ++p) {
    auto props = log->GetPartitionProperties(p).value();
    EXPECT_LE(props.bytes_on_disk, 16u * 1024) << p;
    EXPECT_GT(props.bytes_on_disk, 16u * 1024 - 4096) << p;  // only whole segments went
    EXPECT_EQ(props.next_sequence, 500u);
    auto events = ReadAll(*log, p);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.front().sequence, props.beginning_sequence);
    EXPECT_EQ(events.back().sequence, 499u);
  }
}

TEST_F(EventLogTest, ConsumerGroupCheckpointsAndLag) {
  Options o = BaseOptions();
  o.partitions = 2;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE(log->AppendToPartition(0, TestMessage("d", std::to_string(i)), nullptr));
  Completions done;  // completions run in order: when the last is durable, all are
  ASSERT_TRUE(log->AppendToPartition(0, TestMessage("d", "10"), done.Callback()));
  ASSERT_TRUE(done.WaitFor(1));

  auto& groups = log->consumer_groups();
  ASSERT_TRUE(groups.Create("analytics"));
  auto reader = log->OpenReaderAtCheckpoint("analytics", 0, Position::Earliest()).value();
  auto batch = reader->TryRead(4).value();
  ASSERT_EQ(batch.events.size(), 4u);
  ASSERT_TRUE(groups.Checkpoint("analytics", 0, reader->next_sequence()));

  std::string text = registry_.Render();
  EXPECT_NE(text.find("orrery_eventlog_consumer_lag{group=\"analytics\",partition=\"0\"} 7"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("orrery_eventlog_consumer_lag{group=\"$Default\",partition=\"0\"} 11"),
            std::string::npos);
  EXPECT_NE(text.find("orrery_eventlog_disk_bytes{partition=\"0\"}"), std::string::npos);
  EXPECT_NE(text.find("orrery_eventlog_appended_records_total{partition=\"0\"} 11"),
            std::string::npos);
  EXPECT_NE(text.find("orrery_eventlog_append_latency_seconds_count"), std::string::npos);
  EXPECT_NE(text.find("orrery_eventlog_commit_records_count"), std::string::npos);

  // A consumer restarting from the checkpoint resumes where it stopped.
  log.reset();
  log = OpenLog(o);
  ASSERT_TRUE(log);
  reader = log->OpenReaderAtCheckpoint("analytics", 0, Position::Earliest()).value();
  batch = reader->TryRead(100).value();
  ASSERT_EQ(batch.events.size(), 7u);
  EXPECT_EQ(batch.events[0].sequence, 4u);
  EXPECT_TRUE(log->OpenReaderAtCheckpoint("missing", 0, Position::Earliest())
                  .error()
                  .Is(Errc::kGroupNotFound));
}

TEST_F(EventLogTest, CloseDrainsAcceptedAppendsAndWakesEveryone) {
  Options o = BaseOptions();
  o.partitions = 1;
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  auto reader = log->OpenReader(0, Position::Earliest()).value();
  Flag readable;
  ASSERT_TRUE(reader->NotifyWhenReadable(readable.Setter()));
  auto idle = log->OpenReader(0, Position::Sequence(1000)).value();
  Flag idle_hook;
  ASSERT_TRUE(idle->NotifyWhenReadable(idle_hook.Setter()));
  Completions done;
  for (int i = 0; i < 50; ++i)
    ASSERT_TRUE(log->Append(TestMessage("d", std::to_string(i)), done.Callback()));
  log->Close();
  EXPECT_TRUE(done.WaitFor(50, std::chrono::seconds(0)));  // all ran before Close returned
  EXPECT_TRUE(done.errors().empty());
  EXPECT_TRUE(readable.Wait(std::chrono::seconds(0)));
  EXPECT_TRUE(idle_hook.Wait(std::chrono::seconds(0)));
  EXPECT_TRUE(log->Append(TestMessage("d", "late"), nullptr).error().Is(Errc::kClosed));
  EXPECT_FALSE(log->NotifyWhenWritable([] {}));
  // Readers drain what is durable, then report kClosed.
  auto batch = reader->Read(1000, std::chrono::steady_clock::time_point::max()).value();
  EXPECT_EQ(batch.events.size(), 50u);
  EXPECT_TRUE(reader->TryRead(10).error().Is(Errc::kClosed));
  EXPECT_TRUE(log->EnforceRetention().error().Is(Errc::kClosed));
  log.reset();
  EXPECT_TRUE(reader->TryRead(10).error().Is(Errc::kClosed));  // outlives the log
}

TEST_F(EventLogTest, OsDurabilityWorksWithoutFsync) {
  Options o = BaseOptions();
  o.durability = Durability::kOs;
  {
    auto log = OpenLog(o);
    ASSERT_TRUE(log);
    for (int i = 0; i < 20; ++i)
      ASSERT_TRUE(AppendSync(*log, TestMessage("d", std::to_string(i))));
    EXPECT_EQ(log->commit_stats().fsyncs, 0u);
  }
  auto log = OpenLog(o);
  ASSERT_TRUE(log);
  EXPECT_EQ(ReadAll(*log, log->PartitionFor("d")).size(), 20u);
  EXPECT_EQ(ParseDurability("os").value(), Durability::kOs);
  EXPECT_EQ(ParseDurability("fsync").value(), Durability::kFsync);
  EXPECT_FALSE(ParseDurability("never"));
}

}  // namespace
}  // namespace orrery::eventlog
