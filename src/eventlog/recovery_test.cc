// Recovery from damaged files: torn tails, garbage, corruption, interrupted segment creation.
#include <fcntl.h>
#include <unistd.h>

#include <fstream>

#include <gtest/gtest.h>

#include "eventlog/event_log.h"
#include "eventlog/format.h"
#include "eventlog/test_util.h"

namespace orrery::eventlog {
namespace {

using testutil::AppendSync;
using testutil::Completions;
using testutil::ReadAll;
using testutil::TempDir;
using testutil::TestMessage;

class RecoveryTest : public ::testing::Test {
 protected:
  Options MakeOptions() {
    Options o;
    o.partitions = 1;
    o.segment_size = 8192;
    o.index_interval_bytes = 512;
    o.metrics = &registry_;
    return o;
  }
  std::unique_ptr<EventLog> Open() {
    auto log = EventLog::Open(dir_.path(), MakeOptions());
    EXPECT_TRUE(log) << log.error().message();
    return log ? std::move(*log) : nullptr;
  }
  // Appends `n` records "r<i>" and closes the log.
  void Fill(int n) {
    auto log = Open();
    ASSERT_TRUE(log);
    Completions done;
    for (int i = 0; i < n; ++i)
      ASSERT_TRUE(log->Append(TestMessage("d", "r" + std::to_string(i)), done.Callback()));
    ASSERT_TRUE(done.WaitFor(static_cast<size_t>(n)));
  }
  std::vector<std::filesystem::path> Segments() {
    std::vector<std::filesystem::path> out;
    for (const auto& f : std::filesystem::directory_iterator(dir_.path() / "p0")) {
      if (f.path().extension() == ".log") out.push_back(f.path());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  static void AppendBytes(const std::filesystem::path& file, const std::string& bytes) {
    std::ofstream(file, std::ios::binary | std::ios::app) << bytes;
  }
  static void WriteByteAt(const std::filesystem::path& file, uint64_t position, char c) {
    int fd = ::open(file.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, &c, 1, static_cast<off_t>(position)), 1);
    ::close(fd);
  }
  // Checks that records 0..n-1 are all there and intact, and that appends work again.
  void ExpectRecordsThenAppend(EventLog& log, int n) {
    auto events = ReadAll(log, 0);
    ASSERT_EQ(events.size(), static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      EXPECT_EQ(events[static_cast<size_t>(i)].sequence, static_cast<uint64_t>(i));
      EXPECT_EQ(events[static_cast<size_t>(i)].message.body, "r" + std::to_string(i));
    }
    auto r = AppendSync(log, TestMessage("d", "after"));
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(r->sequence, static_cast<uint64_t>(n));
    auto all = ReadAll(log, 0);
    ASSERT_EQ(all.size(), static_cast<size_t>(n) + 1);
    EXPECT_EQ(all.back().message.body, "after");
  }

  TempDir dir_{"recovery"};
  metrics::Registry registry_;
};

TEST_F(RecoveryTest, CleanReopenTruncatesNothing) {
  Fill(300);
  auto log = Open();
  ASSERT_TRUE(log);
  const auto& report = log->recovery()[0];
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_TRUE(report.problem.empty());
  EXPECT_GT(report.segments, 1u);
  ExpectRecordsThenAppend(*log, 300);
}

TEST_F(RecoveryTest, TornTailIsTruncatedToTheLastValidRecord) {
  Fill(300);
  auto last = Segments().back();
  uint64_t size = std::filesystem::file_size(last);
  std::filesystem::resize_file(last, size - 3);  // cut into the last record
  auto log = Open();
  ASSERT_TRUE(log);
  const auto& report = log->recovery()[0];
  EXPECT_GT(report.truncated_bytes, 0u);
  EXPECT_NE(report.problem.find("truncated record"), std::string::npos) << report.problem;
  EXPECT_NE(registry_.Render().find("orrery_eventlog_recovery_truncated_bytes_total " +
                                    std::to_string(report.truncated_bytes)),
            std::string::npos);
  ExpectRecordsThenAppend(*log, 299);
}

TEST_F(RecoveryTest, GarbageAfterTheLastRecordIsCutExactly) {
  Fill(100);
  auto last = Segments().back();
  AppendBytes(last, "this is not a record, just noise from a torn write.....");
  auto log = Open();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].truncated_bytes, 55u);
  ExpectRecordsThenAppend(*log, 100);
}

TEST_F(RecoveryTest, ZeroFilledTailIsCut) {
  // What a filesystem may show after a crash: the size grew but the data never arrived.
  Fill(100);
  AppendBytes(Segments().back(), std::string(4000, '\0'));
  auto log = Open();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].truncated_bytes, 4000u);
  EXPECT_NE(log->recovery()[0].problem.find("invalid record length"), std::string::npos);
  ExpectRecordsThenAppend(*log, 100);
}

TEST_F(RecoveryTest, CorruptRecordInTheActiveSegmentCutsFromThere) {
  Fill(300);
  auto last = Segments().back();
  // Find the active segment's records; flip a byte in the body of its third record.
  std::shared_ptr<EventLog> probe = Open();
  ASSERT_TRUE(probe);
  auto props = probe->GetPartitionProperties(0).value();
  probe.reset();
  uint64_t first_in_active = *format::ParseSegmentFileName(last.filename().string());
  ASSERT_LT(first_in_active + 3, props.next_sequence);
  // Records are equal-sized within a run of equal-length bodies; find the third by scanning.
  std::ifstream in(last, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t pos = format::kSegmentHeaderSize;
  for (int i = 0; i < 2; ++i)
    pos += format::kRecordHeaderSize + format::RecordBodyLength(bytes.data() + pos);
  WriteByteAt(last, pos + format::kRecordHeaderSize + 2, '\x5a');
  auto log = Open();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].truncated_bytes, bytes.size() - pos);
  EXPECT_NE(log->recovery()[0].problem.find("CRC"), std::string::npos);
  ExpectRecordsThenAppend(*log, static_cast<int>(first_in_active) + 2);
}

TEST_F(RecoveryTest, InterruptedSegmentCreationIsRemoved) {
  Fill(300);
  auto segments = Segments();
  auto log = Open();
  ASSERT_TRUE(log);
  uint64_t next = log->GetPartitionProperties(0)->next_sequence;
  log.reset();
  // A crash while rolling: the next segment exists with a partial header.
  auto torn = dir_.path() / "p0" / format::SegmentFileName(next);
  format::SegmentHeader h{0, next, 0, 0};
  AppendBytes(torn, format::EncodeSegmentHeader(h).substr(0, 20));
  log = Open();
  ASSERT_TRUE(log);
  EXPECT_EQ(log->recovery()[0].removed_segments, 1u);
  ExpectRecordsThenAppend(*log, 300);
}

TEST_F(RecoveryTest, DamagedSealedSegmentIsAClearError) {
  Fill(300);
  auto segments = Segments();
  ASSERT_GT(segments.size(), 2u);
  // A sealed segment with a bad record and no index to vouch for it: not a torn tail (sealed
  // segments are fsynced before the next exists) but disk damage, which must not be hidden.
  std::filesystem::path index = segments[0];
  index.replace_extension(".idx");
  std::filesystem::remove(index);
  WriteByteAt(segments[0], format::kSegmentHeaderSize + format::kRecordHeaderSize + 1, '\x01');
  auto log = EventLog::Open(dir_.path(), MakeOptions());
  ASSERT_FALSE(log);
  EXPECT_TRUE(log.error().Is(Errc::kCorrupt));
  EXPECT_NE(log.error().message().find(segments[0].filename().string()), std::string::npos);
}

TEST_F(RecoveryTest, MissingMiddleSegmentIsAClearError) {
  Fill(300);
  auto segments = Segments();
  ASSERT_GT(segments.size(), 2u);
  std::filesystem::remove(segments[1]);
  auto log = EventLog::Open(dir_.path(), MakeOptions());
  ASSERT_FALSE(log);
  EXPECT_TRUE(log.error().Is(Errc::kCorrupt));
  EXPECT_NE(log.error().message().find("previous segment ends"), std::string::npos);
}

TEST_F(RecoveryTest, RandomCutsAlwaysRecoverAPrefix) {
  Fill(200);
  auto last = Segments().back();
  std::ifstream in(last, std::ios::binary);
  std::string original((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  uint64_t base = *format::ParseSegmentFileName(last.filename().string());
  // Every cut point within the last few records yields a valid prefix and a working log.
  auto originals = Segments();
  for (size_t cut = original.size() - 200; cut < original.size(); cut += 7) {
    for (const auto& f : Segments()) {  // drop segments rolled by the previous round's append
      if (std::find(originals.begin(), originals.end(), f) == originals.end()) {
        std::filesystem::remove(f);
      }
    }
    std::ofstream(last, std::ios::binary | std::ios::trunc) << original.substr(0, cut);
    auto log = Open();
    ASSERT_TRUE(log);
    auto events = ReadAll(*log, 0);
    ASSERT_GE(events.size(), base);
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i].sequence, i);
      ASSERT_EQ(events[i].message.body, "r" + std::to_string(i));
    }
    ASSERT_TRUE(AppendSync(*log, TestMessage("d", "x")));
    log.reset();
  }
}

}  // namespace
}  // namespace orrery::eventlog
