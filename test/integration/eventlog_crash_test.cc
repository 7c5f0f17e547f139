// Crash test for the event log: a child appends under load from several threads and prints
// every acknowledged record; we SIGKILL it at random moments (during recovery, right after
// start, in the middle of the load), many times over the same directory, and after each kill
// check that every record ever acknowledged is present and intact, that sequence numbers are
// contiguous, and that the log accepts appends again.
//
// SIGKILL alone never tears a write on Linux (the page cache outlives the process), so in
// half of the cycles we also simulate a power cut: each partition's active segment loses a
// random part of what follows its last acknowledged record (possibly mid-record), sometimes
// with garbage in its place. Data before that point was fdatasynced before it was
// acknowledged, so a real power cut could not take it either.
#include <signal.h>

#include <cinttypes>
#include <fstream>
#include <map>
#include <random>
#include <string>

#include <gtest/gtest.h>
#include <xxhash.h>

#include "base/files.h"
#include "eventlog/event_log.h"
#include "eventlog/format.h"
#include "eventlog/test_util.h"
#include "test/support/process.h"

namespace orrery::eventlog {
namespace {

using orrery::testing::Process;
using orrery::testing::TempDir;

// Must match CrashOptions() in eventlog_crash_child.cc.
Options CrashOptions() {
  Options o;
  o.partitions = 4;
  o.segment_size = 256 * 1024;
  o.max_pending_bytes = 1 << 20;
  o.max_record_bytes = 16 * 1024;
  return o;
}

struct Ack {
  uint32_t partition = 0;
  uint64_t sequence = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t hash = 0;
};

struct Acked {
  uint64_t hash;
  uint64_t end_offset;  // offset just past the record
};
using AckMap = std::map<std::pair<uint32_t, uint64_t>, Acked>;

// Complete "ack" lines of the child's output (a line cut by the kill has no newline).
std::vector<Ack> ParseAcks(const std::string& output, std::string* problems) {
  std::vector<Ack> acks;
  size_t start = 0;
  while (true) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) break;
    std::string line = output.substr(start, end - start);
    start = end + 1;
    if (line.rfind("ack ", 0) == 0) {
      unsigned long long n, seq, offset, size, hash;
      unsigned partition;
      if (std::sscanf(line.c_str(), "ack %llu %u %llu %llu %llu %llx", &n, &partition, &seq,
                      &offset, &size, &hash) == 6) {
        acks.push_back({partition, seq, offset, size, hash});
      } else {
        *problems += "unparsable: " + line + "\n";
      }
    } else if (line.rfind("ready", 0) != 0) {
      *problems += line + "\n";  // errors, failed appends
    }
  }
  return acks;
}

// Cuts every partition's active segment at a random point after its last acknowledged
// record; returns the bytes removed.
uint64_t SimulatePowerCut(const std::filesystem::path& log_dir, const AckMap& acked,
                          std::mt19937& rng) {
  uint64_t removed = 0;
  for (uint32_t p = 0; p < 4; ++p) {
    auto dir = log_dir / ("p" + std::to_string(p));
    std::vector<std::filesystem::path> segments;
    for (const auto& f : std::filesystem::directory_iterator(dir)) {
      if (f.path().extension() == ".log") segments.push_back(f.path());
    }
    EXPECT_FALSE(segments.empty());
    if (segments.empty()) continue;
    std::sort(segments.begin(), segments.end());
    const auto& last = segments.back();
    auto bytes = files::ReadFile(last, 1 << 30);
    EXPECT_TRUE(bytes);
    auto header = format::DecodeSegmentHeader(*bytes);
    if (!header) continue;  // a creation cut short by the kill: recovery removes it
    uint64_t durable_end = 0;
    for (auto it = acked.lower_bound({p, 0}); it != acked.end() && it->first.first == p; ++it) {
      durable_end = std::max(durable_end, it->second.end_offset);
    }
    uint64_t min_pos = format::kSegmentHeaderSize;
    if (durable_end > header->base_offset) {
      min_pos += durable_end - header->base_offset;
    }
    uint64_t size = bytes->size();
    EXPECT_LE(min_pos, size) << last << " is shorter than its acknowledged records";
    if (min_pos >= size) continue;
    uint64_t cut = min_pos + rng() % (size - min_pos + 1);
    std::string kept = bytes->substr(0, cut);
    if (rng() % 2) {
      std::string garbage(1 + rng() % 200, '\0');
      if (rng() % 2) {
        for (auto& c : garbage)
          c = static_cast<char>(rng());
      }
      kept += garbage;
    }
    removed += size - cut;
    std::ofstream(last, std::ios::binary | std::ios::trunc) << kept;
  }
  return removed;
}

TEST(EventLogCrashTest, NothingAcknowledgedIsLostAcrossKillsAndPowerCuts) {
  TempDir dir("eventlog-crash");
  auto log_dir = dir.path() / "eventlog";
  std::random_device rd;
  unsigned seed = rd();
  std::printf("seed %u\n", seed);
  std::mt19937 rng(seed);

  AckMap acked;  // every record ever acknowledged, across cycles
  uint64_t total_truncated = 0, total_cut = 0;
  constexpr int kCycles = 24;
  for (int cycle = 0; cycle < kCycles; ++cycle) {
    auto child = Process::Spawn({ORRERY_EVENTLOG_CRASH_CHILD, log_dir.string(), "4"});
    int mode = static_cast<int>(rng() % 6);
    if (mode == 0) {
      // Kill at once: often during Open, i.e. while recovering the previous cycle's damage.
    } else if (mode == 1) {
      ASSERT_TRUE(child->WaitForOutput("ready")) << child->output();
    } else {
      ASSERT_TRUE(child->WaitForOutput("ready")) << child->output();
      uint64_t k = 1 + rng() % 3000;
      ASSERT_TRUE(child->WaitForOutput("ack " + std::to_string(k) + " ")) << child->output();
    }
    child->Signal(SIGKILL);
    auto code = child->Wait();
    ASSERT_TRUE(code);
    EXPECT_EQ(*code, 128 + SIGKILL) << child->output();

    std::string problems;
    auto acks = ParseAcks(child->output(), &problems);
    EXPECT_TRUE(problems.empty()) << problems;
    for (const auto& a : acks) {
      auto [it, inserted] =
          acked.emplace(std::make_pair(a.partition, a.sequence), Acked{a.hash, a.offset + a.size});
      ASSERT_TRUE(inserted || it->second.hash == a.hash)
          << "sequence " << a.sequence << " of partition " << a.partition
          << " acknowledged twice with different bodies";
    }
    bool power_cut = rng() % 2 == 0;
    if (power_cut && std::filesystem::exists(log_dir / "p3")) {
      total_cut += SimulatePowerCut(log_dir, acked, rng);
    }

    // Reopen in this process: recovery, then every acknowledged record must be there.
    auto opened = EventLog::Open(log_dir, CrashOptions());
    ASSERT_TRUE(opened) << opened.error().ToString();
    auto& log = **opened;
    uint64_t truncated = 0;
    for (const auto& r : log.recovery())
      truncated += r.truncated_bytes;
    total_truncated += truncated;
    std::map<std::pair<uint32_t, uint64_t>, uint64_t> stored;
    for (uint32_t p = 0; p < 4; ++p) {
      auto reader = log.OpenReader(p, Position::Earliest()).value();
      uint64_t expected = 0;
      while (true) {
        auto batch = reader->TryRead(4096);
        ASSERT_TRUE(batch) << batch.error().ToString();
        ASSERT_EQ(batch->skipped, 0u);
        if (batch->events.empty()) break;
        for (const auto& e : batch->events) {
          ASSERT_EQ(e.sequence, expected++) << "gap in partition " << p;
          const auto& body = e.message.body;
          stored[{p, e.sequence}] = XXH64(body.data(), body.size(), 0);
          ASSERT_EQ(log.PartitionFor(e.message.system.connection_device_id), p);
        }
      }
    }
    size_t missing = 0, damaged = 0;
    for (const auto& [key, a] : acked) {
      auto it = stored.find(key);
      if (it == stored.end()) {
        ++missing;
      } else if (it->second != a.hash) {
        ++damaged;
      }
    }
    ASSERT_EQ(missing, 0u) << "cycle " << cycle << ": acknowledged records lost";
    ASSERT_EQ(damaged, 0u) << "cycle " << cycle << ": acknowledged records changed";

    // And the log takes appends again.
    Message m;
    m.system.connection_device_id = "verifier";
    m.body = "cycle " + std::to_string(cycle);
    auto appended = testutil::AppendSync(log, m);
    ASSERT_TRUE(appended) << appended.error().ToString();
    acked[{appended->partition, appended->sequence}] =
        Acked{XXH64(m.body.data(), m.body.size(), 0),
              appended->offset + format::kRecordHeaderSize + EncodedSize(m)};
    std::printf("cycle %2d: mode %d%s, %5zu acks (%6zu in total), %6zu records stored, %6" PRIu64
                " torn bytes truncated\n",
                cycle, mode, power_cut ? " + power cut" : "", acks.size(), acked.size(),
                stored.size(), truncated);
  }
  std::printf("over all cycles: %" PRIu64 " bytes cut by simulated power loss, %" PRIu64
              " torn bytes truncated by recovery\n",
              total_cut, total_truncated);
}

}  // namespace
}  // namespace orrery::eventlog
