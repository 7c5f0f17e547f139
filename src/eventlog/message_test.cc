#include "eventlog/message.h"

#include <random>

#include <gtest/gtest.h>

namespace orrery::eventlog {
namespace {

Message FullMessage() {
  Message m;
  m.body = std::string("{\"temperature\": 21.5}\0binary\xff", 30);
  m.properties = {{"alert", "high"}, {"", ""}, {"alert", "again"}, {"k\0ey", "v"}};
  auto& s = m.system;
  s.message_id = "msg-1";
  s.correlation_id = "corr-1";
  s.content_type = "application/json";
  s.content_encoding = "utf-8";
  s.connection_device_id = "device-1";
  s.connection_module_id = "module-1";
  s.connection_auth_method = R"({"scope":"device","type":"sas","issuer":"iothub"})";
  s.connection_auth_generation_id = "637000000000000000";
  s.message_source = "Telemetry";
  s.user_id = "user";
  s.to = "/devices/device-1/messages/events";
  s.enqueued_time_ms = 1'790'000'000'123;
  s.expiry_time_ms = -5;
  return m;
}

TEST(MessageTest, RoundTripsEveryField) {
  Message m = FullMessage();
  std::string bytes = Encode(m);
  EXPECT_EQ(bytes.size(), EncodedSize(m));
  auto back = Decode(bytes);
  ASSERT_TRUE(back) << back.error().message();
  EXPECT_EQ(*back, m);
}

TEST(MessageTest, EmptyMessageIsOneByte) {
  Message m;
  EXPECT_EQ(Encode(m).size(), 1u);
  auto back = Decode(Encode(m));
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, m);
}

TEST(MessageTest, EncodingIsStable) {
  // A fixed message encodes to fixed bytes: the format is persisted, so changes must be
  // deliberate (new tags), never accidental.
  Message m;
  m.body = "hi";
  m.properties = {{"a", "b"}};
  m.system.connection_device_id = "d";
  m.system.enqueued_time_ms = 1;
  EXPECT_EQ(Encode(m), std::string("\x01"
                                   "\x05\x01"
                                   "d"
                                   "\x20\x08\x01\x00\x00\x00\x00\x00\x00\x00"
                                   "\x40\x03\x01"
                                   "ab"
                                   "\x7f\x02"
                                   "hi",
                                   23));
}

TEST(MessageTest, SkipsUnknownTags) {
  std::string bytes = Encode(FullMessage());
  bytes += std::string("\x50\x03xyz", 5);  // a tag from a future version
  auto back = Decode(bytes);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, FullMessage());
}

TEST(MessageTest, RejectsMalformedInput) {
  const std::string bad[] = {
      std::string(),               // empty
      std::string("\x02", 1),      // unknown version
      std::string("\x01\x05", 2),  // tag without length
      std::string("\x01\x05\x05"
                  "ab",
                  5),                                      // length beyond input
      std::string("\x01\x05\xff\xff\xff\xff\x7f", 7),      // varint beyond 32 bits
      std::string("\x01\x05\x80\x80\x80\x80\x80\x01", 8),  // varint too long
      std::string("\x01\x05\x01"
                  "a"
                  "\x05\x01"
                  "b",
                  7),  // duplicate system property
      std::string("\x01\x20\x04"
                  "abcd",
                  7),  // time field not 8 bytes
      std::string("\x01\x40\x02\x05"
                  "a",
                  5),                  // property key beyond its field
      std::string("\x01\x40\x00", 3),  // property without key length
      std::string("\x01\x7f\x01"
                  "a"
                  "\x7f\x01"
                  "b",
                  7),  // duplicate body
  };
  for (const auto& b : bad) {
    auto r = Decode(b);
    EXPECT_FALSE(r) << testing::PrintToString(b);
    if (!r) {
      EXPECT_TRUE(r.error().Is(Errc::kCorrupt));
    }
  }
}

TEST(MessageTest, EnforcesLimits) {
  Message m;
  m.properties.resize(kMaxPropertyCount + 1);
  EXPECT_TRUE(CheckMessageLimits(m).error().Is(Errc::kTooLarge));
  // The decoder enforces the same bound on hostile input.
  std::string bytes = Encode(m);
  EXPECT_FALSE(Decode(bytes));
  m.properties.resize(1);
  m.properties[0].second.assign(kMaxPropertyBytes + 1, 'x');
  EXPECT_FALSE(CheckMessageLimits(m));
  EXPECT_FALSE(Decode(Encode(m)));
  m.properties.clear();
  m.system.to.assign(kMaxPropertyBytes + 1, 'x');
  EXPECT_FALSE(CheckMessageLimits(m));
  EXPECT_FALSE(Decode(Encode(m)));
  EXPECT_TRUE(CheckMessageLimits(FullMessage()));
}

TEST(MessageTest, HostileBytesNeverCrash) {
  // Random bytes, and every truncation and single-byte corruption of a valid encoding: the
  // decoder must return (OK or kCorrupt) without reading out of bounds (ASan checks that).
  std::mt19937 rng(42);
  for (int i = 0; i < 20000; ++i) {
    std::string bytes(rng() % 64, '\0');
    for (auto& c : bytes)
      c = static_cast<char>(rng());
    if (!bytes.empty() && rng() % 2) bytes[0] = 1;
    (void)Decode(bytes);
  }
  std::string valid = Encode(FullMessage());
  for (size_t cut = 0; cut < valid.size(); ++cut) {
    (void)Decode(std::string_view(valid).substr(0, cut));
  }
  for (size_t at = 0; at < valid.size(); ++at) {
    for (int v : {0x00, 0x7f, 0x80, 0xff}) {
      std::string corrupt = valid;
      corrupt[at] = static_cast<char>(v);
      auto r = Decode(corrupt);
      if (!r) {
        EXPECT_TRUE(r.error().Is(Errc::kCorrupt));
      }
    }
  }
}

}  // namespace
}  // namespace orrery::eventlog
