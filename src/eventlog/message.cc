#include "eventlog/message.h"

#include <cstring>

#include <fmt/format.h>

namespace orrery::eventlog {
namespace {

constexpr uint8_t kVersion = 1;
constexpr uint8_t kTagEnqueuedTime = 32;
constexpr uint8_t kTagExpiryTime = 33;
constexpr uint8_t kTagProperty = 64;
constexpr uint8_t kTagBody = 127;

// System string properties by tag (1-based: tag i+1 is kStringFields[i]).
constexpr std::string SystemProperties::*kStringFields[] = {
    &SystemProperties::message_id,
    &SystemProperties::correlation_id,
    &SystemProperties::content_type,
    &SystemProperties::content_encoding,
    &SystemProperties::connection_device_id,
    &SystemProperties::connection_module_id,
    &SystemProperties::connection_auth_method,
    &SystemProperties::connection_auth_generation_id,
    &SystemProperties::message_source,
    &SystemProperties::user_id,
    &SystemProperties::to,
    &SystemProperties::route_annotation,
};
constexpr size_t kStringFieldCount = std::size(kStringFields);
static_assert(kStringFieldCount < kTagEnqueuedTime);

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(std::string* out, uint64_t v) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>(static_cast<uint8_t>(v) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

size_t FieldSize(size_t length) {
  return 1 + VarintSize(length) + length;
}

void PutField(std::string* out, uint8_t tag, std::string_view value) {
  out->push_back(static_cast<char>(tag));
  PutVarint(out, value.size());
  out->append(value);
}

void PutInt64Field(std::string* out, uint8_t tag, int64_t v) {
  out->push_back(static_cast<char>(tag));
  PutVarint(out, 8);
  auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i)
    out->push_back(static_cast<char>(static_cast<uint8_t>(u >> (8 * i))));
}

// A bounds-checked cursor over the input; every read either succeeds or reports false.
class Cursor {
 public:
  explicit Cursor(std::string_view in) : in_(in) {}
  bool Done() const { return pos_ == in_.size(); }
  bool Byte(uint8_t* b) {
    if (pos_ >= in_.size()) return false;
    *b = static_cast<uint8_t>(in_[pos_++]);
    return true;
  }
  // A varint of at most 32 bits (5 bytes, the last with no bits beyond 32).
  bool Varint32(uint32_t* v) {
    uint64_t result = 0;
    for (int i = 0; i < 5; ++i) {
      uint8_t b;
      if (!Byte(&b)) return false;
      result |= static_cast<uint64_t>(b & 0x7F) << (7 * i);
      if ((b & 0x80) == 0) {
        if (result > UINT32_MAX) return false;
        *v = static_cast<uint32_t>(result);
        return true;
      }
    }
    return false;
  }
  bool Bytes(size_t n, std::string_view* out) {
    if (n > in_.size() - pos_) return false;
    *out = in_.substr(pos_, n);
    pos_ += n;
    return true;
  }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

Error Corrupt(std::string_view why) {
  return Error(Errc::kCorrupt, fmt::format("malformed message encoding: {}", why));
}

int64_t ReadInt64(std::string_view b) {
  uint64_t u = 0;
  for (int i = 0; i < 8; ++i)
    u |= static_cast<uint64_t>(static_cast<uint8_t>(b[static_cast<size_t>(i)])) << (8 * i);
  return static_cast<int64_t>(u);
}

}  // namespace

Status CheckMessageLimits(const Message& message, std::optional<size_t> encoded_size) {
  if (message.properties.size() > kMaxPropertyCount) {
    return Error(Errc::kTooLarge, fmt::format("{} application properties (at most {})",
                                              message.properties.size(), kMaxPropertyCount));
  }
  for (const auto& [key, value] : message.properties) {
    if (key.size() > kMaxPropertyBytes || value.size() > kMaxPropertyBytes) {
      return Error(Errc::kTooLarge,
                   fmt::format("application property larger than {} bytes", kMaxPropertyBytes));
    }
  }
  for (auto field : kStringFields) {
    if ((message.system.*field).size() > kMaxPropertyBytes) {
      return Error(Errc::kTooLarge,
                   fmt::format("system property larger than {} bytes", kMaxPropertyBytes));
    }
  }
  if ((encoded_size ? *encoded_size : EncodedSize(message)) > kMaxEncodedBytes) {
    return Error(Errc::kTooLarge, fmt::format("message larger than {} bytes", kMaxEncodedBytes));
  }
  return Ok();
}

size_t EncodedSize(const Message& message) {
  size_t n = 1;
  for (auto field : kStringFields) {
    const std::string& s = message.system.*field;
    if (!s.empty()) n += FieldSize(s.size());
  }
  if (message.system.enqueued_time_ms != 0) n += FieldSize(8);
  if (message.system.expiry_time_ms != 0) n += FieldSize(8);
  for (const auto& [key, value] : message.properties) {
    n += FieldSize(VarintSize(key.size()) + key.size() + value.size());
  }
  if (!message.body.empty()) n += FieldSize(message.body.size());
  return n;
}

void Encode(const Message& message, std::string* out) {
  out->reserve(out->size() + EncodedSize(message));
  out->push_back(static_cast<char>(kVersion));
  for (size_t i = 0; i < kStringFieldCount; ++i) {
    const std::string& s = message.system.*kStringFields[i];
    if (!s.empty()) PutField(out, static_cast<uint8_t>(i + 1), s);
  }
  if (message.system.enqueued_time_ms != 0) {
    PutInt64Field(out, kTagEnqueuedTime, message.system.enqueued_time_ms);
  }
  if (message.system.expiry_time_ms != 0) {
    PutInt64Field(out, kTagExpiryTime, message.system.expiry_time_ms);
  }
  for (const auto& [key, value] : message.properties) {
    out->push_back(static_cast<char>(kTagProperty));
    PutVarint(out, VarintSize(key.size()) + key.size() + value.size());
    PutVarint(out, key.size());
    out->append(key);
    out->append(value);
  }
  if (!message.body.empty()) PutField(out, kTagBody, message.body);
}

Result<Message> Decode(std::string_view bytes) {
  if (bytes.size() > kMaxEncodedBytes) return Corrupt("larger than the limit");
  Cursor in(bytes);
  uint8_t version;
  if (!in.Byte(&version)) return Corrupt("empty");
  if (version != kVersion) return Corrupt(fmt::format("unknown version {}", version));
  Message m;
  uint32_t seen_strings = 0;  // bit i: system string field i was present
  bool seen_body = false, seen_enqueued = false, seen_expiry = false;
  while (!in.Done()) {
    uint8_t tag;
    uint32_t length;
    std::string_view value;
    if (!in.Byte(&tag) || !in.Varint32(&length) || !in.Bytes(length, &value)) {
      return Corrupt("truncated field");
    }
    if (tag >= 1 && tag <= kStringFieldCount) {
      uint32_t bit = 1u << (tag - 1);
      if (seen_strings & bit) return Corrupt(fmt::format("duplicate system property {}", tag));
      if (value.size() > kMaxPropertyBytes) return Corrupt("system property too large");
      seen_strings |= bit;
      m.system.*kStringFields[tag - 1] = std::string(value);
    } else if (tag == kTagEnqueuedTime || tag == kTagExpiryTime) {
      bool& seen = tag == kTagEnqueuedTime ? seen_enqueued : seen_expiry;
      if (seen) return Corrupt("duplicate time field");
      if (value.size() != 8) return Corrupt("time field is not 8 bytes");
      seen = true;
      (tag == kTagEnqueuedTime ? m.system.enqueued_time_ms : m.system.expiry_time_ms) =
          ReadInt64(value);
    } else if (tag == kTagProperty) {
      if (m.properties.size() >= kMaxPropertyCount) return Corrupt("too many properties");
      Cursor prop(value);
      uint32_t key_length;
      std::string_view key;
      if (!prop.Varint32(&key_length) || !prop.Bytes(key_length, &key)) {
        return Corrupt("truncated property key");
      }
      std::string_view rest =
          value.substr(static_cast<size_t>(key.data() - value.data()) + key.size());
      if (key.size() > kMaxPropertyBytes || rest.size() > kMaxPropertyBytes) {
        return Corrupt("property too large");
      }
      m.properties.emplace_back(std::string(key), std::string(rest));
    } else if (tag == kTagBody) {
      if (seen_body) return Corrupt("duplicate body");
      seen_body = true;
      m.body = std::string(value);
    }
    // Other tags: fields of a newer version, skipped.
  }
  return m;
}

}  // namespace orrery::eventlog
