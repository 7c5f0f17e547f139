#include "mqtt/codec.h"

#include <gtest/gtest.h>

namespace orrery::mqtt {
namespace {

std::string Enc(const Packet& p, Version v) {
  std::string out;
  Encode(p, v, out);
  return out;
}

Packet Dec(std::string_view bytes, std::optional<Version> v) {
  Packet out;
  size_t used = 0;
  DecodeError err;
  auto st = Decode(bytes, v, {}, out, used, err);
  EXPECT_EQ(st, DecodeStatus::kOk) << err.message;
  EXPECT_EQ(used, bytes.size());
  return out;
}

DecodeError DecErr(std::string_view bytes, std::optional<Version> v, DecodeLimits lim = {}) {
  Packet out;
  size_t used = 0;
  DecodeError err;
  EXPECT_EQ(Decode(bytes, v, lim, out, used, err), DecodeStatus::kError);
  return err;
}

std::string Bytes(std::initializer_list<int> b) {
  std::string s;
  for (int x : b)
    s.push_back(static_cast<char>(x));
  return s;
}

Connect FullConnect(Version v) {
  Connect c;
  c.version = v;
  c.clean_start = false;
  c.keep_alive = 180;
  c.client_id = "dev1/mod1";
  c.username = "localhost/dev1/?api-version=2021-04-12";
  c.password = "SharedAccessSignature sr=x&sig=y&se=1";
  Will w;
  w.topic = "status/dev1";
  w.payload = "offline";
  w.qos = 1;
  w.retain = true;
  if (v == Version::k5) {
    c.properties.session_expiry_interval = 3600;
    c.properties.receive_maximum = 10;
    c.properties.user_properties = {{"a", "1"}, {"a", "2"}};
    w.properties.will_delay_interval = 5;
    w.properties.content_type = "text/plain";
  }
  c.will = w;
  return c;
}

TEST(CodecTest, RoundTripsEveryPacketInBothVersions) {
  for (Version v : {Version::k311, Version::k5}) {
    std::vector<Packet> packets;
    packets.push_back(FullConnect(v));
    Connack ca;
    ca.session_present = true;
    if (v == Version::k5) {
      ca.properties.maximum_qos = 1;
      ca.properties.assigned_client_identifier = "auto-1";
      ca.properties.topic_alias_maximum = 10;
    }
    packets.push_back(ca);
    Publish p;
    p.qos = 2;
    p.dup = true;
    p.retain = true;
    p.topic = "a/b/c";
    p.packet_id = 7;
    p.payload = std::string("\0\1binary", 8);
    if (v == Version::k5) {
      p.properties.message_expiry_interval = 60;
      p.properties.response_topic = "reply/x";
      p.properties.correlation_data = std::string("\0\xff", 2);
      p.properties.subscription_identifiers = {1, 268435455};
      p.properties.user_properties = {{"k", "v"}};
    }
    packets.push_back(p);
    for (auto t :
         {PacketType::kPuback, PacketType::kPubrec, PacketType::kPubrel, PacketType::kPubcomp}) {
      Ack a;
      a.type = t;
      a.packet_id = 65535;
      if (v == Version::k5 && t == PacketType::kPuback) {
        a.reason = Reason::kNoMatchingSubscribers;
        a.properties.reason_string = "nobody";
      }
      packets.push_back(a);
    }
    Subscribe s;
    s.packet_id = 3;
    s.filters = {{"a/+/c", {.qos = 1}}, {"$share/g/x/#", {.qos = 2}}};
    if (v == Version::k5) {
      s.filters[0].second.no_local = true;
      s.filters[0].second.retain_as_published = true;
      s.filters[0].second.retain_handling = 2;
      s.properties.subscription_identifiers = {42};
    }
    packets.push_back(s);
    Suback sa;
    sa.packet_id = 3;
    sa.reasons = {Reason::kGrantedQos1, Reason::kGrantedQos2, Reason::kSuccess};
    packets.push_back(sa);
    Unsubscribe u;
    u.packet_id = 4;
    u.filters = {"a/#", "b"};
    packets.push_back(u);
    Unsuback ua;
    ua.packet_id = 4;
    if (v == Version::k5) ua.reasons = {Reason::kSuccess, Reason::kNoSubscriptionExisted};
    packets.push_back(ua);
    packets.push_back(Pingreq{});
    packets.push_back(Pingresp{});
    Disconnect d;
    if (v == Version::k5) {
      d.reason = Reason::kDisconnectWithWill;
      d.properties.session_expiry_interval = 0;
    }
    packets.push_back(d);
    if (v == Version::k5) {
      Auth au;
      au.reason = Reason::kContinueAuthentication;
      au.properties.authentication_method = "SCRAM";
      au.properties.authentication_data = "xyz";
      packets.push_back(au);
    }
    for (auto& pkt : packets) {
      std::string bytes = Enc(pkt, v);
      std::optional<Version> decode_version = v;
      if (TypeOf(pkt) == PacketType::kConnect) decode_version = std::nullopt;
      EXPECT_EQ(Dec(bytes, decode_version), pkt)
          << "type " << static_cast<int>(TypeOf(pkt)) << " v" << static_cast<int>(v);
    }
  }
}

TEST(CodecTest, PartialInputNeedsMoreAtEverySplit) {
  std::string bytes = Enc(FullConnect(Version::k5), Version::k5);
  for (size_t n = 0; n < bytes.size(); ++n) {
    Packet out;
    size_t used = 0;
    DecodeError err;
    EXPECT_EQ(Decode(std::string_view(bytes).substr(0, n), std::nullopt, {}, out, used, err),
              DecodeStatus::kNeedMore)
        << n;
  }
  // Two packets back to back: the first is decoded alone.
  std::string two = Enc(Pingreq{}, Version::k311) + Enc(Pingreq{}, Version::k311);
  Packet out;
  size_t used = 0;
  DecodeError err;
  ASSERT_EQ(Decode(two, Version::k311, {}, out, used, err), DecodeStatus::kOk);
  EXPECT_EQ(used, 2u);
}

TEST(CodecTest, ConnectViolations) {
  // Reserved flag bit 0 set.
  std::string c = Enc(FullConnect(Version::k311), Version::k311);
  std::string bad = c;
  bad[9] = static_cast<char>(bad[9] | 0x01);
  EXPECT_EQ(DecErr(bad, std::nullopt).reason, Reason::kMalformedPacket);
  // Will QoS 3.
  bad = c;
  bad[9] = static_cast<char>(bad[9] | 0x18);
  EXPECT_EQ(DecErr(bad, std::nullopt).reason, Reason::kMalformedPacket);
  // MQTT 3.1 (MQIsdp, level 3): refuse with a 3.1.1 CONNACK "unacceptable protocol version".
  std::string v31 = Bytes({0x10, 12, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60});
  auto e = DecErr(v31, std::nullopt);
  EXPECT_EQ(e.reason, Reason::kUnsupportedProtocolVersion);
  EXPECT_EQ(e.connack_version, Version::k311);
  // The first packet must be CONNECT; a second CONNECT is a protocol error.
  EXPECT_EQ(DecErr(Enc(Pingreq{}, Version::k311), std::nullopt).reason, Reason::kProtocolError);
  EXPECT_EQ(DecErr(c, Version::k311).reason, Reason::kProtocolError);
  // Password without user name in 3.1.1.
  std::string nouser =
      Bytes({0x10, 16, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x42, 0, 60, 0, 1, 'c', 0, 2, 'p', 'w'});
  EXPECT_EQ(DecErr(nouser, std::nullopt).reason, Reason::kMalformedPacket);
  // Trailing garbage.
  std::string trailing = Bytes({0x10, 14, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c', 'X'});
  EXPECT_EQ(DecErr(trailing, std::nullopt).reason, Reason::kMalformedPacket);
}

TEST(CodecTest, FixedHeaderViolations) {
  // SUBSCRIBE must have flags 0010.
  std::string sub = Bytes({0x80, 6, 0, 1, 0, 1, 'a', 0});
  EXPECT_EQ(DecErr(sub, Version::k311).reason, Reason::kMalformedPacket);
  // Remaining length of 5 bytes.
  std::string len5 = Bytes({0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01});
  EXPECT_EQ(DecErr(len5, Version::k311).reason, Reason::kMalformedPacket);
  // Reserved packet type 0.
  EXPECT_EQ(DecErr(Bytes({0x00, 0}), Version::k311).reason, Reason::kMalformedPacket);
  // AUTH does not exist in 3.1.1.
  EXPECT_EQ(DecErr(Bytes({0xF0, 0}), Version::k311).reason, Reason::kMalformedPacket);
  // PINGREQ with a body.
  EXPECT_EQ(DecErr(Bytes({0xC0, 1, 0}), Version::k311).reason, Reason::kMalformedPacket);
}

TEST(CodecTest, PublishViolations) {
  // QoS 3.
  EXPECT_EQ(DecErr(Bytes({0x36, 5, 0, 1, 'a', 0, 1}), Version::k311).reason,
            Reason::kMalformedPacket);
  // DUP on QoS 0.
  EXPECT_EQ(DecErr(Bytes({0x38, 3, 0, 1, 'a'}), Version::k311).reason, Reason::kMalformedPacket);
  // Packet identifier 0.
  EXPECT_EQ(DecErr(Bytes({0x32, 5, 0, 1, 'a', 0, 0}), Version::k311).reason,
            Reason::kMalformedPacket);
  // Wildcards in a topic name.
  EXPECT_EQ(DecErr(Bytes({0x30, 3, 0, 1, '#'}), Version::k311).reason, Reason::kTopicNameInvalid);
  // Invalid UTF-8, and U+0000.
  EXPECT_EQ(DecErr(Bytes({0x30, 3, 0, 1, 0xC0}), Version::k311).reason, Reason::kMalformedPacket);
  EXPECT_EQ(DecErr(Bytes({0x30, 4, 0, 2, 'a', 0}), Version::k311).reason, Reason::kMalformedPacket);
  // Empty topic: malformed in 3.1.1; in 5 only valid with a Topic Alias.
  EXPECT_EQ(DecErr(Bytes({0x30, 2, 0, 0}), Version::k311).reason, Reason::kMalformedPacket);
  EXPECT_EQ(DecErr(Bytes({0x30, 3, 0, 0, 0}), Version::k5).reason, Reason::kProtocolError);
  auto p = Dec(Bytes({0x30, 6, 0, 0, 3, 0x23, 0, 5}), Version::k5);
  EXPECT_EQ(std::get<Publish>(p).properties.topic_alias, 5);
}

TEST(CodecTest, PropertyViolations) {
  // Topic Alias (0x23) is not allowed in SUBACK → malformed.
  EXPECT_EQ(DecErr(Bytes({0x90, 7, 0, 1, 3, 0x23, 0, 1, 0}), Version::k5).reason,
            Reason::kMalformedPacket);
  // Duplicate Message Expiry Interval → protocol error.
  EXPECT_EQ(
      DecErr(Bytes({0x30, 14, 0, 1, 'a', 10, 2, 0, 0, 0, 1, 2, 0, 0, 0, 1}), Version::k5).reason,
      Reason::kProtocolError);
  // Unknown property identifier.
  EXPECT_EQ(DecErr(Bytes({0x30, 6, 0, 1, 'a', 1, 0x7F, 0}), Version::k5).reason,
            Reason::kMalformedPacket);
  // Property length beyond the packet.
  EXPECT_EQ(DecErr(Bytes({0x30, 5, 0, 1, 'a', 9, 1}), Version::k5).reason,
            Reason::kMalformedPacket);
  // Payload Format Indicator must be 0 or 1.
  EXPECT_EQ(DecErr(Bytes({0x30, 6, 0, 1, 'a', 2, 1, 2}), Version::k5).reason,
            Reason::kProtocolError);
}

TEST(CodecTest, SubscribeViolations) {
  // No filter.
  EXPECT_EQ(DecErr(Bytes({0x82, 2, 0, 1}), Version::k311).reason, Reason::kProtocolError);
  // Reserved option bits in 3.1.1.
  EXPECT_EQ(DecErr(Bytes({0x82, 6, 0, 1, 0, 1, 'a', 0x04}), Version::k311).reason,
            Reason::kMalformedPacket);
  // Retain Handling 3 in 5.
  EXPECT_EQ(DecErr(Bytes({0x82, 7, 0, 1, 0, 0, 1, 'a', 0x30}), Version::k5).reason,
            Reason::kProtocolError);
  // Subscription Identifier 0.
  EXPECT_EQ(DecErr(Bytes({0x82, 9, 0, 1, 2, 0x0B, 0, 0, 1, 'a', 0}), Version::k5).reason,
            Reason::kProtocolError);
  // An invalid filter is not a decode error: the broker answers it in SUBACK.
  auto s = Dec(Bytes({0x82, 7, 0, 1, 0, 2, 'a', '#', 1}), Version::k311);
  EXPECT_EQ(std::get<Subscribe>(s).filters[0].first, "a#");
}

TEST(CodecTest, Suback311AcceptsOnlyItsFourReturnCodes) {
  // Found by the fuzzer: 0xfc is not a 3.1.1 SUBACK return code.
  EXPECT_EQ(DecErr(Bytes({0x90, 4, 0xff, 0xcf, 0xfc, 0x02}), Version::k311).reason,
            Reason::kMalformedPacket);
  auto s = Dec(Bytes({0x90, 5, 0, 1, 0, 2, 0x80}), Version::k311);
  EXPECT_EQ(
      std::get<Suback>(s).reasons,
      (std::vector<Reason>{Reason::kSuccess, Reason::kGrantedQos2, Reason::kUnspecifiedError}));
}

TEST(CodecTest, PacketTooLargeIsDetectedFromTheHeader) {
  std::string big = Bytes({0x30, 0x80, 0x80, 0x01});  // remaining length 16384, not yet arrived
  auto e = DecErr(big, Version::k311, {.max_packet_size = 1000});
  EXPECT_EQ(e.reason, Reason::kPacketTooLarge);
}

TEST(CodecTest, Version311ConnackAndSubackCodes) {
  Connack c;
  c.reason = Reason::kNotAuthorized;
  EXPECT_EQ(Enc(c, Version::k311), Bytes({0x20, 2, 0, 5}));
  c.reason = Reason::kBadUserNameOrPassword;
  EXPECT_EQ(Enc(c, Version::k311), Bytes({0x20, 2, 0, 4}));
  Suback s;
  s.packet_id = 1;
  s.reasons = {Reason::kGrantedQos1, Reason::kTopicFilterInvalid};
  EXPECT_EQ(Enc(s, Version::k311), Bytes({0x90, 4, 0, 1, 1, 0x80}));
}

TEST(CodecTest, PublishSizeMatchesEncoding) {
  Properties p;
  p.user_properties = {{"k", std::string(300, 'v')}};
  for (Version v : {Version::k311, Version::k5}) {
    std::string out;
    EncodePublish(out, v, "t/1", std::string(200, 'x'), 1, false, false, 9, &p);
    EXPECT_EQ(PublishSize(v, "t/1", std::string(200, 'x'), 1, &p), out.size());
  }
}

}  // namespace
}  // namespace orrery::mqtt
