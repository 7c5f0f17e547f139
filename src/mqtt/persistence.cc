#include "mqtt/persistence.h"

#include "mqtt/codec.h"

namespace orrery::mqtt::persist {
namespace {

void PutU8(std::string& o, uint8_t v) {
  o.push_back(static_cast<char>(v));
}
void PutU16(std::string& o, uint16_t v) {
  PutU8(o, static_cast<uint8_t>(v >> 8));
  PutU8(o, static_cast<uint8_t>(v));
}
void PutU32(std::string& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8)
    PutU8(o, static_cast<uint8_t>(v >> s));
}
void PutU64(std::string& o, uint64_t v) {
  for (int s = 56; s >= 0; s -= 8)
    PutU8(o, static_cast<uint8_t>(v >> s));
}
void PutStr(std::string& o, std::string_view s) {
  PutU32(o, static_cast<uint32_t>(s.size()));
  o.append(s);
}

class In {
 public:
  explicit In(std::string_view d) : d_(d) {}
  bool ok() const { return ok_; }
  size_t left() const { return d_.size() - pos_; }
  uint64_t U(int bytes) {
    if (left() < static_cast<size_t>(bytes)) {
      ok_ = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i)
      v = (v << 8) | static_cast<uint8_t>(d_[pos_++]);
    return v;
  }
  std::string_view Str() {
    uint64_t n = U(4);
    if (!ok_ || left() < n) {
      ok_ = false;
      return {};
    }
    auto s = d_.substr(pos_, n);
    pos_ += n;
    return s;
  }
  std::string_view Rest() {
    auto s = d_.substr(pos_);
    pos_ = d_.size();
    return s;
  }

 private:
  std::string_view d_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace

std::string QueuePrefix(std::string_view client_id) {
  std::string k(client_id);
  k.push_back('\0');
  return k;
}

std::string QueueKey(std::string_view client_id, uint64_t seq) {
  std::string k = QueuePrefix(client_id);
  PutU64(k, seq);
  return k;
}

std::string EncodeMessage(const Outgoing& out, std::optional<Inflight::State> state,
                          uint16_t packet_id) {
  const Message& m = *out.message;
  std::string o;
  PutU8(o, 1);  // format
  PutU8(o, out.qos);
  PutU8(o, out.retain ? 1 : 0);
  PutU8(o, state ? static_cast<uint8_t>(static_cast<uint8_t>(*state) + 1) : 0);
  PutU16(o, packet_id);
  PutU8(o, m.qos);
  PutU8(o, m.retain ? 1 : 0);
  PutU64(o, static_cast<uint64_t>(m.expires_at_ms));
  PutU32(o, static_cast<uint32_t>(out.subscription_ids.size()));
  for (uint32_t id : out.subscription_ids)
    PutU32(o, id);
  PutStr(o, m.publisher);
  // The topic, payload and properties as an MQTT 5 PUBLISH: the codec already validates them.
  std::string pub;
  EncodePublish(pub, Version::k5, m.topic, m.payload, 0, false, false, 0, m.properties.get());
  o.append(pub);
  return o;
}

std::optional<StoredMessage> DecodeMessage(std::string_view bytes) {
  In in(bytes);
  if (in.U(1) != 1) return std::nullopt;
  StoredMessage s;
  s.out.qos = static_cast<uint8_t>(in.U(1));
  s.out.retain = in.U(1) != 0;
  uint64_t state = in.U(1);
  s.packet_id = static_cast<uint16_t>(in.U(2));
  auto msg = std::make_shared<Message>();
  msg->qos = static_cast<uint8_t>(in.U(1));
  msg->retain = in.U(1) != 0;
  msg->expires_at_ms = static_cast<int64_t>(in.U(8));
  uint64_t n = in.U(4);
  if (!in.ok() || n > 1024 || state > 3 || s.out.qos > 2 || msg->qos > 2) return std::nullopt;
  for (uint64_t i = 0; i < n; ++i)
    s.out.subscription_ids.push_back(static_cast<uint32_t>(in.U(4)));
  msg->publisher = std::string(in.Str());
  if (!in.ok()) return std::nullopt;
  if (state) s.state = static_cast<Inflight::State>(state - 1);
  Packet p;
  size_t used = 0;
  DecodeError err;
  std::string_view rest = in.Rest();
  if (Decode(rest, Version::k5, {}, p, used, err) != DecodeStatus::kOk || used != rest.size() ||
      !std::holds_alternative<Publish>(p)) {
    return std::nullopt;
  }
  auto& pub = std::get<Publish>(p);
  msg->topic = std::move(pub.topic);
  msg->payload = std::move(pub.payload);
  if (!(pub.properties == Properties{})) {
    msg->properties = std::make_unique<Properties>(std::move(pub.properties));
  }
  s.out.message = std::move(msg);
  return s;
}

std::string EncodeSession(const Session& s) {
  std::string o;
  PutU8(o, 1);
  PutU8(o, static_cast<uint8_t>(s.version));
  PutU32(o, s.expiry_s);
  PutU64(o, static_cast<uint64_t>(s.disconnected_at_ms));
  PutU16(o, s.next_packet_id);
  PutU64(o, s.next_store_seq);
  PutU32(o, static_cast<uint32_t>(s.subscriptions.size()));
  for (auto& [filter, sub] : s.subscriptions) {
    PutStr(o, filter);
    const auto& op = sub.options;
    PutU8(o, static_cast<uint8_t>(op.qos | (op.no_local ? 4 : 0) |
                                  (op.retain_as_published ? 8 : 0) | (op.retain_handling << 4)));
    PutU32(o, sub.subscription_id);
  }
  return o;
}

bool DecodeSession(std::string_view bytes, Session& s) {
  In in(bytes);
  if (in.U(1) != 1) return false;
  uint64_t version = in.U(1);
  if (version != 4 && version != 5) return false;
  s.version = static_cast<Version>(version);
  s.expiry_s = static_cast<uint32_t>(in.U(4));
  s.disconnected_at_ms = static_cast<int64_t>(in.U(8));
  s.next_packet_id = static_cast<uint16_t>(in.U(2));
  if (s.next_packet_id == 0) s.next_packet_id = 1;
  s.next_store_seq = in.U(8);
  uint64_t n = in.U(4);
  if (!in.ok() || n > 1'000'000) return false;
  for (uint64_t i = 0; i < n; ++i) {
    std::string filter(in.Str());
    uint8_t o = static_cast<uint8_t>(in.U(1));
    SubRecord r;
    r.options.qos = o & 3;
    r.options.no_local = o & 4;
    r.options.retain_as_published = o & 8;
    r.options.retain_handling = (o >> 4) & 3;
    r.subscription_id = static_cast<uint32_t>(in.U(4));
    if (!in.ok() || r.options.qos > 2) return false;
    s.subscriptions[filter] = r;
  }
  return in.ok();
}

}  // namespace orrery::mqtt::persist
