#include "mqtt/codec.h"

#include <fmt/format.h>

#include "mqtt/topic.h"

namespace orrery::mqtt {
namespace {

// Thrown inside the decoder only; Decode() turns it into a DecodeError.
struct Violation {
  Reason reason;
  std::string message;
};

[[noreturn]] void Malformed(std::string msg) {
  throw Violation{Reason::kMalformedPacket, std::move(msg)};
}
[[noreturn]] void ProtocolError(std::string msg) {
  throw Violation{Reason::kProtocolError, std::move(msg)};
}

// Where each property may appear (MQTT 5 §2.2.2.2).
enum Where : uint32_t {
  kInConnect = 1u << 0,
  kInConnack = 1u << 1,
  kInPublish = 1u << 2,
  kInWill = 1u << 3,
  kInAck = 1u << 4,  // PUBACK, PUBREC, PUBREL, PUBCOMP
  kInSubscribe = 1u << 5,
  kInSuback = 1u << 6,
  kInUnsubscribe = 1u << 7,
  kInUnsuback = 1u << 8,
  kInDisconnect = 1u << 9,
  kInAuth = 1u << 10,
};

class Reader {
 public:
  explicit Reader(std::string_view d) : d_(d) {}
  size_t left() const { return d_.size() - pos_; }
  bool done() const { return pos_ == d_.size(); }
  uint8_t U8() {
    Need(1);
    return static_cast<uint8_t>(d_[pos_++]);
  }
  uint16_t U16() {
    Need(2);
    uint16_t v = static_cast<uint16_t>((static_cast<uint8_t>(d_[pos_]) << 8) |
                                       static_cast<uint8_t>(d_[pos_ + 1]));
    pos_ += 2;
    return v;
  }
  uint32_t U32() {
    Need(4);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v = (v << 8) | static_cast<uint8_t>(d_[pos_ + static_cast<size_t>(i)]);
    pos_ += 4;
    return v;
  }
  uint32_t Vbi() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      uint8_t b = U8();
      v |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
      if (!(b & 0x80)) return v;
    }
    Malformed("variable byte integer longer than 4 bytes");
  }
  std::string_view Bytes(size_t n) {
    Need(n);
    auto s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string Binary() { return std::string(Bytes(U16())); }
  std::string Utf8(const char* what) {
    std::string_view s = Bytes(U16());
    if (!IsValidUtf8(s)) Malformed(fmt::format("{} is not valid UTF-8", what));
    return std::string(s);
  }
  std::string_view Rest() { return Bytes(left()); }

 private:
  void Need(size_t n) const {
    if (left() < n) Malformed("packet shorter than its fields");
  }
  std::string_view d_;
  size_t pos_ = 0;
};

template <class T>
void SetOnce(std::optional<T>& slot, T v, const char* name) {
  if (slot) ProtocolError(fmt::format("property {} appears twice", name));
  slot = std::move(v);
}

uint8_t Flag01(uint8_t v, const char* name) {
  if (v > 1) ProtocolError(fmt::format("property {} must be 0 or 1", name));
  return v;
}

Properties ReadProperties(Reader& r, uint32_t where) {
  Properties p;
  uint32_t len = r.Vbi();
  if (len > r.left()) Malformed("property length exceeds the packet");
  Reader pr(r.Bytes(len));
  auto allowed = [&](uint32_t mask, const char* name) {
    if (!(where & mask)) Malformed(fmt::format("property {} is not allowed in this packet", name));
  };
  while (!pr.done()) {
    uint32_t id = pr.Vbi();
    switch (id) {
      case 0x01:
        allowed(kInPublish | kInWill, "Payload Format Indicator");
        SetOnce(p.payload_format_indicator, Flag01(pr.U8(), "Payload Format Indicator"),
                "Payload Format Indicator");
        break;
      case 0x02:
        allowed(kInPublish | kInWill, "Message Expiry Interval");
        SetOnce(p.message_expiry_interval, pr.U32(), "Message Expiry Interval");
        break;
      case 0x03:
        allowed(kInPublish | kInWill, "Content Type");
        SetOnce(p.content_type, pr.Utf8("Content Type"), "Content Type");
        break;
      case 0x08: {
        allowed(kInPublish | kInWill, "Response Topic");
        std::string t = pr.Utf8("Response Topic");
        if (!IsValidTopicName(t)) ProtocolError("Response Topic is not a valid topic name");
        SetOnce(p.response_topic, std::move(t), "Response Topic");
        break;
      }
      case 0x09:
        allowed(kInPublish | kInWill, "Correlation Data");
        SetOnce(p.correlation_data, pr.Binary(), "Correlation Data");
        break;
      case 0x0B: {
        allowed(kInPublish | kInSubscribe, "Subscription Identifier");
        uint32_t v = pr.Vbi();
        if (v == 0) ProtocolError("Subscription Identifier 0");
        if ((where & kInSubscribe) && !p.subscription_identifiers.empty()) {
          ProtocolError("Subscription Identifier appears twice");
        }
        p.subscription_identifiers.push_back(v);
        break;
      }
      case 0x11:
        allowed(kInConnect | kInConnack | kInDisconnect, "Session Expiry Interval");
        SetOnce(p.session_expiry_interval, pr.U32(), "Session Expiry Interval");
        break;
      case 0x12:
        allowed(kInConnack, "Assigned Client Identifier");
        SetOnce(p.assigned_client_identifier, pr.Utf8("Assigned Client Identifier"),
                "Assigned Client Identifier");
        break;
      case 0x13:
        allowed(kInConnack, "Server Keep Alive");
        SetOnce(p.server_keep_alive, pr.U16(), "Server Keep Alive");
        break;
      case 0x15:
        allowed(kInConnect | kInConnack | kInAuth, "Authentication Method");
        SetOnce(p.authentication_method, pr.Utf8("Authentication Method"), "Authentication Method");
        break;
      case 0x16:
        allowed(kInConnect | kInConnack | kInAuth, "Authentication Data");
        SetOnce(p.authentication_data, pr.Binary(), "Authentication Data");
        break;
      case 0x17:
        allowed(kInConnect, "Request Problem Information");
        SetOnce(p.request_problem_information, Flag01(pr.U8(), "Request Problem Information"),
                "Request Problem Information");
        break;
      case 0x18:
        allowed(kInWill, "Will Delay Interval");
        SetOnce(p.will_delay_interval, pr.U32(), "Will Delay Interval");
        break;
      case 0x19:
        allowed(kInConnect, "Request Response Information");
        SetOnce(p.request_response_information, Flag01(pr.U8(), "Request Response Information"),
                "Request Response Information");
        break;
      case 0x1A:
        allowed(kInConnack, "Response Information");
        SetOnce(p.response_information, pr.Utf8("Response Information"), "Response Information");
        break;
      case 0x1C:
        allowed(kInConnack | kInDisconnect, "Server Reference");
        SetOnce(p.server_reference, pr.Utf8("Server Reference"), "Server Reference");
        break;
      case 0x1F:
        allowed(kInConnack | kInAck | kInSuback | kInUnsuback | kInDisconnect | kInAuth,
                "Reason String");
        SetOnce(p.reason_string, pr.Utf8("Reason String"), "Reason String");
        break;
      case 0x21: {
        allowed(kInConnect | kInConnack, "Receive Maximum");
        uint16_t v = pr.U16();
        if (v == 0) ProtocolError("Receive Maximum 0");
        SetOnce(p.receive_maximum, v, "Receive Maximum");
        break;
      }
      case 0x22:
        allowed(kInConnect | kInConnack, "Topic Alias Maximum");
        SetOnce(p.topic_alias_maximum, pr.U16(), "Topic Alias Maximum");
        break;
      case 0x23:
        allowed(kInPublish, "Topic Alias");
        SetOnce(p.topic_alias, pr.U16(), "Topic Alias");
        break;
      case 0x24:
        allowed(kInConnack, "Maximum QoS");
        SetOnce(p.maximum_qos, Flag01(pr.U8(), "Maximum QoS"), "Maximum QoS");
        break;
      case 0x25:
        allowed(kInConnack, "Retain Available");
        SetOnce(p.retain_available, Flag01(pr.U8(), "Retain Available"), "Retain Available");
        break;
      case 0x26: {
        std::string k = pr.Utf8("User Property name");
        std::string v = pr.Utf8("User Property value");
        p.user_properties.emplace_back(std::move(k), std::move(v));
        break;
      }
      case 0x27: {
        allowed(kInConnect | kInConnack, "Maximum Packet Size");
        uint32_t v = pr.U32();
        if (v == 0) ProtocolError("Maximum Packet Size 0");
        SetOnce(p.maximum_packet_size, v, "Maximum Packet Size");
        break;
      }
      case 0x28:
        allowed(kInConnack, "Wildcard Subscription Available");
        SetOnce(p.wildcard_subscription_available,
                Flag01(pr.U8(), "Wildcard Subscription Available"),
                "Wildcard Subscription Available");
        break;
      case 0x29:
        allowed(kInConnack, "Subscription Identifier Available");
        SetOnce(p.subscription_identifiers_available,
                Flag01(pr.U8(), "Subscription Identifier Available"),
                "Subscription Identifier Available");
        break;
      case 0x2A:
        allowed(kInConnack, "Shared Subscription Available");
        SetOnce(p.shared_subscription_available, Flag01(pr.U8(), "Shared Subscription Available"),
                "Shared Subscription Available");
        break;
      default:
        Malformed(fmt::format("unknown property identifier 0x{:02x}", id));
    }
  }
  return p;
}

Connect ReadConnect(Reader& r, DecodeError& err) {
  Connect c;
  std::string name = std::string(r.Bytes(r.U16()));
  uint8_t level = r.U8();
  if (name != "MQTT" && name != "MQIsdp") {
    err.connack_version = Version::k311;
    throw Violation{Reason::kUnsupportedProtocolVersion,
                    fmt::format("unknown protocol name '{}'", name)};
  }
  if (name != "MQTT" || (level != 4 && level != 5)) {
    err.connack_version = Version::k311;
    throw Violation{
        Reason::kUnsupportedProtocolVersion,
        fmt::format("unsupported protocol level {} (3.1.1 and 5 are supported)", level)};
  }
  c.version = static_cast<Version>(level);
  err.connack_version = c.version;
  uint8_t flags = r.U8();
  if (flags & 0x01) Malformed("CONNECT reserved flag is set");
  c.clean_start = flags & 0x02;
  bool will = flags & 0x04;
  uint8_t will_qos = (flags >> 3) & 0x03;
  bool will_retain = flags & 0x20;
  bool has_password = flags & 0x40;
  bool has_username = flags & 0x80;
  if (will_qos == 3) Malformed("Will QoS 3");
  if (!will && (will_qos != 0 || will_retain)) Malformed("Will QoS or Retain set without a Will");
  if (c.version == Version::k311 && has_password && !has_username) {
    Malformed("password without user name");
  }
  c.keep_alive = r.U16();
  if (c.version == Version::k5) c.properties = ReadProperties(r, kInConnect);
  c.client_id = r.Utf8("Client Identifier");
  if (will) {
    Will w;
    if (c.version == Version::k5) w.properties = ReadProperties(r, kInWill);
    w.topic = r.Utf8("Will Topic");
    if (!IsValidTopicName(w.topic)) {
      throw Violation{Reason::kTopicNameInvalid, "Will Topic is not a valid topic name"};
    }
    w.payload = r.Binary();
    w.qos = will_qos;
    w.retain = will_retain;
    c.will = std::move(w);
  }
  if (has_username) c.username = r.Utf8("User Name");
  if (has_password) c.password = r.Binary();
  if (!r.done()) Malformed("trailing bytes after CONNECT payload");
  return c;
}

Connack ReadConnack(Reader& r, Version v) {
  Connack c;
  uint8_t flags = r.U8();
  if (flags & 0xFE) Malformed("CONNACK reserved flags set");
  c.session_present = flags & 1;
  uint8_t code = r.U8();
  if (v == Version::k5) {
    c.reason = static_cast<Reason>(code);
    c.properties = ReadProperties(r, kInConnack);
  } else {
    static constexpr Reason k311[] = {Reason::kSuccess,
                                      Reason::kUnsupportedProtocolVersion,
                                      Reason::kClientIdentifierNotValid,
                                      Reason::kServerUnavailable,
                                      Reason::kBadUserNameOrPassword,
                                      Reason::kNotAuthorized};
    if (code > 5) Malformed("unknown CONNACK return code");
    c.reason = k311[code];
  }
  if (!r.done()) Malformed("trailing bytes after CONNACK");
  return c;
}

Publish ReadPublish(Reader& r, Version v, uint8_t flags) {
  Publish p;
  p.dup = flags & 0x08;
  p.qos = (flags >> 1) & 0x03;
  p.retain = flags & 0x01;
  if (p.qos == 3) Malformed("PUBLISH QoS 3");
  if (p.qos == 0 && p.dup) Malformed("DUP set on a QoS 0 PUBLISH");
  std::string_view topic = r.Bytes(r.U16());
  if (!IsValidUtf8(topic)) Malformed("Topic Name is not valid UTF-8");
  p.topic = std::string(topic);
  if (p.qos > 0) {
    p.packet_id = r.U16();
    if (p.packet_id == 0) Malformed("Packet Identifier 0");
  }
  if (v == Version::k5) p.properties = ReadProperties(r, kInPublish);
  if (p.topic.empty()) {
    if (v == Version::k311) Malformed("empty Topic Name");
    if (!p.properties.topic_alias) ProtocolError("empty Topic Name without a Topic Alias");
  } else if (p.topic.find_first_of("+#") != std::string::npos) {
    throw Violation{Reason::kTopicNameInvalid, "Topic Name contains a wildcard"};
  }
  p.payload = std::string(r.Rest());
  return p;
}

Ack ReadAck(Reader& r, Version v, PacketType t) {
  Ack a;
  a.type = t;
  a.packet_id = r.U16();
  if (a.packet_id == 0) Malformed("Packet Identifier 0");
  if (v == Version::k5) {
    if (!r.done()) a.reason = static_cast<Reason>(r.U8());
    if (!r.done()) a.properties = ReadProperties(r, kInAck);
  }
  if (!r.done()) Malformed("trailing bytes after acknowledgement");
  return a;
}

Subscribe ReadSubscribe(Reader& r, Version v) {
  Subscribe s;
  s.packet_id = r.U16();
  if (s.packet_id == 0) Malformed("Packet Identifier 0");
  if (v == Version::k5) s.properties = ReadProperties(r, kInSubscribe);
  while (!r.done()) {
    std::string filter = r.Utf8("Topic Filter");
    uint8_t o = r.U8();
    SubscriptionOptions opts;
    opts.qos = o & 0x03;
    if (opts.qos == 3) Malformed("subscription QoS 3");
    if (v == Version::k311) {
      if (o & 0xFC) Malformed("reserved subscription option bits set");
    } else {
      if (o & 0xC0) Malformed("reserved subscription option bits set");
      opts.no_local = o & 0x04;
      opts.retain_as_published = o & 0x08;
      opts.retain_handling = (o >> 4) & 0x03;
      if (opts.retain_handling == 3) ProtocolError("Retain Handling 3");
    }
    s.filters.emplace_back(std::move(filter), opts);
  }
  if (s.filters.empty()) ProtocolError("SUBSCRIBE without a Topic Filter");
  return s;
}

Suback ReadSuback(Reader& r, Version v) {
  Suback s;
  s.packet_id = r.U16();
  if (v == Version::k5) s.properties = ReadProperties(r, kInSuback);
  while (!r.done()) {
    uint8_t code = r.U8();
    // MQTT 3.1.1 §3.9.3: only 0x00, 0x01, 0x02 and 0x80 exist.
    if (v == Version::k311 && code > 2 && code != 0x80) {
      Malformed(fmt::format("SUBACK return code 0x{:02x}", code));
    }
    s.reasons.push_back(static_cast<Reason>(code));
  }
  return s;
}

Unsubscribe ReadUnsubscribe(Reader& r, Version v) {
  Unsubscribe u;
  u.packet_id = r.U16();
  if (u.packet_id == 0) Malformed("Packet Identifier 0");
  if (v == Version::k5) u.properties = ReadProperties(r, kInUnsubscribe);
  while (!r.done())
    u.filters.push_back(r.Utf8("Topic Filter"));
  if (u.filters.empty()) ProtocolError("UNSUBSCRIBE without a Topic Filter");
  return u;
}

Unsuback ReadUnsuback(Reader& r, Version v) {
  Unsuback u;
  u.packet_id = r.U16();
  if (v == Version::k5) {
    u.properties = ReadProperties(r, kInUnsuback);
    while (!r.done())
      u.reasons.push_back(static_cast<Reason>(r.U8()));
  }
  if (!r.done()) Malformed("trailing bytes after UNSUBACK");
  return u;
}

template <class T>
T ReadReasonAndProps(Reader& r, Version v, uint32_t where, const char* what) {
  T t;
  if (v == Version::k5) {
    if (!r.done()) t.reason = static_cast<Reason>(r.U8());
    if (!r.done()) t.properties = ReadProperties(r, where);
  }
  if (!r.done()) Malformed(fmt::format("trailing bytes after {}", what));
  return t;
}

// ---- encoding ----

void PutU8(std::string& o, uint8_t v) {
  o.push_back(static_cast<char>(v));
}
void PutU16(std::string& o, uint16_t v) {
  o.push_back(static_cast<char>(v >> 8));
  o.push_back(static_cast<char>(v & 0xFF));
}
void PutU32(std::string& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    o.push_back(static_cast<char>((v >> s) & 0xFF));
}
void PutVbi(std::string& o, uint32_t v) {
  do {
    uint8_t b = v & 0x7F;
    v >>= 7;
    if (v) b |= 0x80;
    o.push_back(static_cast<char>(b));
  } while (v);
}
size_t VbiSize(uint32_t v) {
  return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}
void PutStr(std::string& o, std::string_view s) {
  PutU16(o, static_cast<uint16_t>(s.size()));
  o.append(s);
}

void PutPropertiesBody(std::string& o, const Properties& p) {
  auto u8 = [&](uint8_t id, const std::optional<uint8_t>& v) {
    if (v) {
      PutU8(o, id);
      PutU8(o, *v);
    }
  };
  auto u16 = [&](uint8_t id, const std::optional<uint16_t>& v) {
    if (v) {
      PutU8(o, id);
      PutU16(o, *v);
    }
  };
  auto u32 = [&](uint8_t id, const std::optional<uint32_t>& v) {
    if (v) {
      PutU8(o, id);
      PutU32(o, *v);
    }
  };
  auto str = [&](uint8_t id, const std::optional<std::string>& v) {
    if (v) {
      PutU8(o, id);
      PutStr(o, *v);
    }
  };
  u8(0x01, p.payload_format_indicator);
  u32(0x02, p.message_expiry_interval);
  str(0x03, p.content_type);
  str(0x08, p.response_topic);
  str(0x09, p.correlation_data);
  for (uint32_t id : p.subscription_identifiers) {
    PutU8(o, 0x0B);
    PutVbi(o, id);
  }
  u32(0x11, p.session_expiry_interval);
  str(0x12, p.assigned_client_identifier);
  u16(0x13, p.server_keep_alive);
  str(0x15, p.authentication_method);
  str(0x16, p.authentication_data);
  u8(0x17, p.request_problem_information);
  u32(0x18, p.will_delay_interval);
  u8(0x19, p.request_response_information);
  str(0x1A, p.response_information);
  str(0x1C, p.server_reference);
  str(0x1F, p.reason_string);
  u16(0x21, p.receive_maximum);
  u16(0x22, p.topic_alias_maximum);
  u16(0x23, p.topic_alias);
  u8(0x24, p.maximum_qos);
  u8(0x25, p.retain_available);
  for (auto& [k, v] : p.user_properties) {
    PutU8(o, 0x26);
    PutStr(o, k);
    PutStr(o, v);
  }
  u32(0x27, p.maximum_packet_size);
  u8(0x28, p.wildcard_subscription_available);
  u8(0x29, p.subscription_identifiers_available);
  u8(0x2A, p.shared_subscription_available);
}

void PutProperties(std::string& o, const Properties& p) {
  std::string body;
  PutPropertiesBody(body, p);
  PutVbi(o, static_cast<uint32_t>(body.size()));
  o.append(body);
}

size_t PropertiesSize(const Properties* p) {
  if (!p) return 1;
  std::string body;
  PutPropertiesBody(body, *p);
  return VbiSize(static_cast<uint32_t>(body.size())) + body.size();
}

// Writes fixed header + `body`.
void Frame(std::string& out, uint8_t first, const std::string& body) {
  PutU8(out, first);
  PutVbi(out, static_cast<uint32_t>(body.size()));
  out.append(body);
}

bool EmptyProps(const Properties& p) {
  return p == Properties{};
}

}  // namespace

const char* ReasonName(Reason r) {
  switch (r) {
    case Reason::kSuccess:
      return "Success";
    case Reason::kGrantedQos1:
      return "Granted QoS 1";
    case Reason::kGrantedQos2:
      return "Granted QoS 2";
    case Reason::kDisconnectWithWill:
      return "Disconnect with Will Message";
    case Reason::kNoMatchingSubscribers:
      return "No matching subscribers";
    case Reason::kNoSubscriptionExisted:
      return "No subscription existed";
    case Reason::kContinueAuthentication:
      return "Continue authentication";
    case Reason::kReauthenticate:
      return "Re-authenticate";
    case Reason::kUnspecifiedError:
      return "Unspecified error";
    case Reason::kMalformedPacket:
      return "Malformed Packet";
    case Reason::kProtocolError:
      return "Protocol Error";
    case Reason::kImplementationSpecificError:
      return "Implementation specific error";
    case Reason::kUnsupportedProtocolVersion:
      return "Unsupported Protocol Version";
    case Reason::kClientIdentifierNotValid:
      return "Client Identifier not valid";
    case Reason::kBadUserNameOrPassword:
      return "Bad User Name or Password";
    case Reason::kNotAuthorized:
      return "Not authorized";
    case Reason::kServerUnavailable:
      return "Server unavailable";
    case Reason::kServerBusy:
      return "Server busy";
    case Reason::kBanned:
      return "Banned";
    case Reason::kServerShuttingDown:
      return "Server shutting down";
    case Reason::kBadAuthenticationMethod:
      return "Bad authentication method";
    case Reason::kKeepAliveTimeout:
      return "Keep Alive timeout";
    case Reason::kSessionTakenOver:
      return "Session taken over";
    case Reason::kTopicFilterInvalid:
      return "Topic Filter invalid";
    case Reason::kTopicNameInvalid:
      return "Topic Name invalid";
    case Reason::kPacketIdentifierInUse:
      return "Packet Identifier in use";
    case Reason::kPacketIdentifierNotFound:
      return "Packet Identifier not found";
    case Reason::kReceiveMaximumExceeded:
      return "Receive Maximum exceeded";
    case Reason::kTopicAliasInvalid:
      return "Topic Alias invalid";
    case Reason::kPacketTooLarge:
      return "Packet too large";
    case Reason::kMessageRateTooHigh:
      return "Message rate too high";
    case Reason::kQuotaExceeded:
      return "Quota exceeded";
    case Reason::kAdministrativeAction:
      return "Administrative action";
    case Reason::kPayloadFormatInvalid:
      return "Payload format invalid";
    case Reason::kRetainNotSupported:
      return "Retain not supported";
    case Reason::kQosNotSupported:
      return "QoS not supported";
    case Reason::kUseAnotherServer:
      return "Use another server";
    case Reason::kServerMoved:
      return "Server moved";
    case Reason::kSharedSubscriptionsNotSupported:
      return "Shared Subscriptions not supported";
    case Reason::kConnectionRateExceeded:
      return "Connection rate exceeded";
    case Reason::kMaximumConnectTime:
      return "Maximum connect time";
    case Reason::kSubscriptionIdentifiersNotSupported:
      return "Subscription Identifiers not supported";
    case Reason::kWildcardSubscriptionsNotSupported:
      return "Wildcard Subscriptions not supported";
  }
  return "Unknown reason";
}

PacketType TypeOf(const Packet& p) {
  struct V {
    PacketType operator()(const Connect&) const { return PacketType::kConnect; }
    PacketType operator()(const Connack&) const { return PacketType::kConnack; }
    PacketType operator()(const Publish&) const { return PacketType::kPublish; }
    PacketType operator()(const Ack& a) const { return a.type; }
    PacketType operator()(const Subscribe&) const { return PacketType::kSubscribe; }
    PacketType operator()(const Suback&) const { return PacketType::kSuback; }
    PacketType operator()(const Unsubscribe&) const { return PacketType::kUnsubscribe; }
    PacketType operator()(const Unsuback&) const { return PacketType::kUnsuback; }
    PacketType operator()(const Pingreq&) const { return PacketType::kPingreq; }
    PacketType operator()(const Pingresp&) const { return PacketType::kPingresp; }
    PacketType operator()(const Disconnect&) const { return PacketType::kDisconnect; }
    PacketType operator()(const Auth&) const { return PacketType::kAuth; }
  };
  return std::visit(V{}, p);
}

DecodeStatus Decode(std::string_view data, std::optional<Version> version,
                    const DecodeLimits& limits, Packet& out, size_t& consumed, DecodeError& error) {
  consumed = 0;
  if (data.size() < 2) return DecodeStatus::kNeedMore;
  // Fixed header: type/flags, then the remaining length (1–4 bytes).
  uint32_t remaining = 0;
  size_t header = 1;
  for (int i = 0;; ++i) {
    if (header >= data.size()) return DecodeStatus::kNeedMore;
    uint8_t b = static_cast<uint8_t>(data[header++]);
    remaining |= static_cast<uint32_t>(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) break;
    if (i == 3) {
      error = {Reason::kMalformedPacket, "remaining length longer than 4 bytes", std::nullopt};
      return DecodeStatus::kError;
    }
  }
  uint8_t first = static_cast<uint8_t>(data[0]);
  auto type = static_cast<PacketType>(first >> 4);
  uint8_t flags = first & 0x0F;
  size_t total = header + remaining;
  if (total > limits.max_packet_size) {
    error = {
        Reason::kPacketTooLarge,
        fmt::format("packet of {} bytes exceeds the maximum of {}", total, limits.max_packet_size),
        std::nullopt};
    return DecodeStatus::kError;
  }
  if (data.size() < total) return DecodeStatus::kNeedMore;

  error = {};
  try {
    if (!version && type != PacketType::kConnect) {
      ProtocolError("the first packet must be CONNECT");
    }
    if (version && type == PacketType::kConnect) ProtocolError("a second CONNECT");
    uint8_t expected_flags = 0;
    if (type == PacketType::kPubrel || type == PacketType::kSubscribe ||
        type == PacketType::kUnsubscribe) {
      expected_flags = 0x02;
    }
    if (type != PacketType::kPublish && flags != expected_flags) {
      Malformed(fmt::format("invalid fixed header flags 0x{:x} for packet type {}", flags,
                            static_cast<int>(type)));
    }
    Reader r(data.substr(header, remaining));
    Version v = version.value_or(Version::k311);
    switch (type) {
      case PacketType::kConnect:
        out = ReadConnect(r, error);
        break;
      case PacketType::kConnack:
        out = ReadConnack(r, v);
        break;
      case PacketType::kPublish:
        out = ReadPublish(r, v, flags);
        break;
      case PacketType::kPuback:
      case PacketType::kPubrec:
      case PacketType::kPubrel:
      case PacketType::kPubcomp:
        out = ReadAck(r, v, type);
        break;
      case PacketType::kSubscribe:
        out = ReadSubscribe(r, v);
        break;
      case PacketType::kSuback:
        out = ReadSuback(r, v);
        break;
      case PacketType::kUnsubscribe:
        out = ReadUnsubscribe(r, v);
        break;
      case PacketType::kUnsuback:
        out = ReadUnsuback(r, v);
        break;
      case PacketType::kPingreq:
        if (remaining) Malformed("PINGREQ with a body");
        out = Pingreq{};
        break;
      case PacketType::kPingresp:
        if (remaining) Malformed("PINGRESP with a body");
        out = Pingresp{};
        break;
      case PacketType::kDisconnect:
        out = ReadReasonAndProps<Disconnect>(r, v, kInDisconnect, "DISCONNECT");
        break;
      case PacketType::kAuth:
        if (v != Version::k5) Malformed("AUTH is not an MQTT 3.1.1 packet");
        out = ReadReasonAndProps<Auth>(r, v, kInAuth, "AUTH");
        break;
      default:
        Malformed("reserved packet type 0");
    }
  } catch (const Violation& viol) {
    error.reason = viol.reason;
    error.message = viol.message;
    return DecodeStatus::kError;
  }
  consumed = total;
  return DecodeStatus::kOk;
}

uint8_t ConnackReturnCode311(Reason r) {
  switch (r) {
    case Reason::kSuccess:
      return 0;
    case Reason::kUnsupportedProtocolVersion:
      return 1;
    case Reason::kClientIdentifierNotValid:
      return 2;
    case Reason::kBadUserNameOrPassword:
    case Reason::kBadAuthenticationMethod:
      return 4;
    case Reason::kNotAuthorized:
    case Reason::kBanned:
      return 5;
    default:
      return 3;  // Server unavailable
  }
}

size_t PublishSize(Version version, std::string_view topic, std::string_view payload, uint8_t qos,
                   const Properties* properties) {
  size_t body = 2 + topic.size() + (qos ? 2 : 0) + payload.size();
  if (version == Version::k5) body += PropertiesSize(properties);
  return 1 + VbiSize(static_cast<uint32_t>(body)) + body;
}

void EncodePublish(std::string& out, Version version, std::string_view topic,
                   std::string_view payload, uint8_t qos, bool retain, bool dup, uint16_t packet_id,
                   const Properties* properties) {
  std::string props;
  if (version == Version::k5) {
    if (properties) {
      PutProperties(props, *properties);
    } else {
      props.push_back('\0');
    }
  }
  size_t body = 2 + topic.size() + (qos ? 2 : 0) + props.size() + payload.size();
  PutU8(out, static_cast<uint8_t>(0x30 | (dup ? 0x08 : 0) | (qos << 1) | (retain ? 1 : 0)));
  PutVbi(out, static_cast<uint32_t>(body));
  PutStr(out, topic);
  if (qos) PutU16(out, packet_id);
  out.append(props);
  out.append(payload);
}

void Encode(const Packet& packet, Version v, std::string& out) {
  const bool v5 = v == Version::k5;
  std::string b;
  switch (TypeOf(packet)) {
    case PacketType::kConnect: {
      auto& c = std::get<Connect>(packet);
      PutStr(b, "MQTT");
      PutU8(b, static_cast<uint8_t>(c.version));
      uint8_t flags = 0;
      if (c.clean_start) flags |= 0x02;
      if (c.will)
        flags |= static_cast<uint8_t>(0x04 | (c.will->qos << 3) | (c.will->retain ? 0x20 : 0));
      if (c.password) flags |= 0x40;
      if (c.username) flags |= 0x80;
      PutU8(b, flags);
      PutU16(b, c.keep_alive);
      if (c.version == Version::k5) PutProperties(b, c.properties);
      PutStr(b, c.client_id);
      if (c.will) {
        if (c.version == Version::k5) PutProperties(b, c.will->properties);
        PutStr(b, c.will->topic);
        PutStr(b, c.will->payload);
      }
      if (c.username) PutStr(b, *c.username);
      if (c.password) PutStr(b, *c.password);
      Frame(out, 0x10, b);
      return;
    }
    case PacketType::kConnack: {
      auto& c = std::get<Connack>(packet);
      PutU8(b, c.session_present ? 1 : 0);
      if (v5) {
        PutU8(b, static_cast<uint8_t>(c.reason));
        PutProperties(b, c.properties);
      } else {
        PutU8(b, ConnackReturnCode311(c.reason));
      }
      Frame(out, 0x20, b);
      return;
    }
    case PacketType::kPublish: {
      auto& p = std::get<Publish>(packet);
      EncodePublish(out, v, p.topic, p.payload, p.qos, p.retain, p.dup, p.packet_id,
                    v5 ? &p.properties : nullptr);
      return;
    }
    case PacketType::kPuback:
    case PacketType::kPubrec:
    case PacketType::kPubrel:
    case PacketType::kPubcomp: {
      auto& a = std::get<Ack>(packet);
      PutU16(b, a.packet_id);
      if (v5 && (a.reason != Reason::kSuccess || !EmptyProps(a.properties))) {
        PutU8(b, static_cast<uint8_t>(a.reason));
        if (!EmptyProps(a.properties)) PutProperties(b, a.properties);
      }
      uint8_t first = static_cast<uint8_t>(static_cast<uint8_t>(a.type) << 4);
      if (a.type == PacketType::kPubrel) first |= 0x02;
      Frame(out, first, b);
      return;
    }
    case PacketType::kSubscribe: {
      auto& s = std::get<Subscribe>(packet);
      PutU16(b, s.packet_id);
      if (v5) PutProperties(b, s.properties);
      for (auto& [f, o] : s.filters) {
        PutStr(b, f);
        uint8_t opt = o.qos;
        if (v5) {
          opt |= static_cast<uint8_t>((o.no_local ? 0x04 : 0) | (o.retain_as_published ? 0x08 : 0) |
                                      (o.retain_handling << 4));
        }
        PutU8(b, opt);
      }
      Frame(out, 0x82, b);
      return;
    }
    case PacketType::kSuback: {
      auto& s = std::get<Suback>(packet);
      PutU16(b, s.packet_id);
      if (v5) PutProperties(b, s.properties);
      for (Reason r : s.reasons) {
        uint8_t code = static_cast<uint8_t>(r);
        if (!v5 && code >= 0x80) code = 0x80;
        PutU8(b, code);
      }
      Frame(out, 0x90, b);
      return;
    }
    case PacketType::kUnsubscribe: {
      auto& u = std::get<Unsubscribe>(packet);
      PutU16(b, u.packet_id);
      if (v5) PutProperties(b, u.properties);
      for (auto& f : u.filters)
        PutStr(b, f);
      Frame(out, 0xA2, b);
      return;
    }
    case PacketType::kUnsuback: {
      auto& u = std::get<Unsuback>(packet);
      PutU16(b, u.packet_id);
      if (v5) {
        PutProperties(b, u.properties);
        for (Reason r : u.reasons)
          PutU8(b, static_cast<uint8_t>(r));
      }
      Frame(out, 0xB0, b);
      return;
    }
    case PacketType::kPingreq:
      Frame(out, 0xC0, b);
      return;
    case PacketType::kPingresp:
      Frame(out, 0xD0, b);
      return;
    case PacketType::kDisconnect: {
      auto& d = std::get<Disconnect>(packet);
      if (v5 && (d.reason != Reason::kSuccess || !EmptyProps(d.properties))) {
        PutU8(b, static_cast<uint8_t>(d.reason));
        if (!EmptyProps(d.properties)) PutProperties(b, d.properties);
      }
      Frame(out, 0xE0, b);
      return;
    }
    case PacketType::kAuth: {
      auto& a = std::get<Auth>(packet);
      if (a.reason != Reason::kSuccess || !EmptyProps(a.properties)) {
        PutU8(b, static_cast<uint8_t>(a.reason));
        PutProperties(b, a.properties);
      }
      Frame(out, 0xF0, b);
      return;
    }
  }
}

}  // namespace orrery::mqtt
