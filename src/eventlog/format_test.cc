#include "eventlog/format.h"

#include <random>

#include <gtest/gtest.h>

namespace orrery::eventlog::format {
namespace {

TEST(FormatTest, SegmentHeaderRoundTripsAndDetectsDamage) {
  SegmentHeader h{3, 12345, 987654321, 1'790'000'000'000};
  std::string bytes = EncodeSegmentHeader(h);
  ASSERT_EQ(bytes.size(), kSegmentHeaderSize);
  auto back = DecodeSegmentHeader(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, h);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x10;
    EXPECT_FALSE(DecodeSegmentHeader(bad)) << i;
  }
  EXPECT_FALSE(DecodeSegmentHeader(bytes.substr(0, 47)));
  EXPECT_FALSE(DecodeSegmentHeader(std::string(48, '\0')));
}

TEST(FormatTest, RecordSealAndCheck) {
  std::string buf;
  AppendRecordPrefix(&buf, 5);
  buf += "hello";
  EXPECT_EQ(RecordBodyLength(buf.data()), 5u);
  ChecksumBody(buf.data());
  SealRecord(buf.data(), 77, 1234);
  RecordHeader h;
  std::string_view body;
  ASSERT_EQ(CheckRecord(buf, &h, &body), RecordStatus::kOk);
  EXPECT_EQ(h.sequence, 77u);
  EXPECT_EQ(h.enqueued_ms, 1234);
  EXPECT_EQ(h.length, 5u);
  EXPECT_EQ(body, "hello");

  // Every single-bit flip is caught; every truncation is reported as such.
  for (size_t i = 0; i < buf.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bad = buf;
      bad[i] = static_cast<char>(bad[i] ^ (1 << bit));
      EXPECT_NE(CheckRecord(bad, &h, &body), RecordStatus::kOk) << i << "/" << bit;
    }
  }
  for (size_t cut = 0; cut < buf.size(); ++cut) {
    EXPECT_EQ(CheckRecord(std::string_view(buf).substr(0, cut), &h, &body),
              RecordStatus::kTruncated)
        << cut;
  }
  std::string zeros(64, '\0');
  EXPECT_EQ(CheckRecord(zeros, &h, &body), RecordStatus::kBadLength);
  std::string huge = buf;
  huge[7] = '\x7f';  // length far beyond kMaxRecordBody
  EXPECT_EQ(CheckRecord(huge, &h, &body), RecordStatus::kBadLength);
}

TEST(FormatTest, IndexRoundTripsAndRejectsDamage) {
  IndexFile index;
  index.segment_size = 100000;
  index.next_sequence = 500;
  index.last_ms = 99;
  index.last_position = 99000;
  index.entries = {{10, 1, 48}, {200, 5, 40000}, {400, 99, 80000}};
  std::string bytes = EncodeIndex(index);
  auto back = DecodeIndex(bytes);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, index);
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::string bad = bytes;
    bad[i] ^= 0x01;
    EXPECT_FALSE(DecodeIndex(bad)) << i;
  }
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    EXPECT_FALSE(DecodeIndex(std::string_view(bytes).substr(0, cut))) << cut;
  }
  IndexFile unordered = index;
  std::swap(unordered.entries[0], unordered.entries[1]);
  EXPECT_FALSE(DecodeIndex(EncodeIndex(unordered)));
  IndexFile beyond = index;
  beyond.entries.push_back({600, 100, 90000});  // sequence >= next_sequence
  EXPECT_FALSE(DecodeIndex(EncodeIndex(beyond)));

  std::mt19937 rng(1);
  for (int i = 0; i < 5000; ++i) {
    std::string noise(rng() % 200, '\0');
    for (auto& c : noise)
      c = static_cast<char>(rng());
    (void)DecodeIndex(noise);
    (void)DecodeSegmentHeader(noise);
  }
}

TEST(FormatTest, SegmentFileNames) {
  EXPECT_EQ(SegmentFileName(42), "00000000000000000042.log");
  EXPECT_EQ(IndexFileName(42), "00000000000000000042.idx");
  EXPECT_EQ(ParseSegmentFileName("00000000000000000042.log"), 42u);
  EXPECT_EQ(ParseSegmentFileName(SegmentFileName(UINT64_MAX)), UINT64_MAX);
  EXPECT_FALSE(ParseSegmentFileName("99999999999999999999.log"));  // beyond 64 bits
  EXPECT_FALSE(ParseSegmentFileName("00000000000000000042.idx"));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000042.log"));
  EXPECT_FALSE(ParseSegmentFileName("0000000000000000004x.log"));
}

}  // namespace
}  // namespace orrery::eventlog::format
