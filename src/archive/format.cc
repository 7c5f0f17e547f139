#include "archive/format.h"

#include <algorithm>
#include <unordered_map>

#include <fmt/format.h>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>

#include "archive/errc.h"
#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"

namespace orrery::archive {
namespace {

constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// The length of the UTF-8 sequence a lead byte announces (0: not a lead byte).
size_t SequenceLength(unsigned char lead) {
  if (lead < 0x80) return 1;
  if ((lead & 0xE0) == 0xC0) return 2;
  if ((lead & 0xF0) == 0xE0) return 3;
  if ((lead & 0xF8) == 0xF0) return 4;
  return 0;
}

// Map keys: valid UTF-8 and no U+0000 (libavro's map keys are NUL-terminated C strings).
std::string SanitizeKey(std::string_view key) {
  std::string out = SanitizeUtf8(key);
  for (size_t pos; (pos = out.find('\0')) != std::string::npos;) {
    out.replace(pos, 1, kReplacement);
  }
  return out;
}

// Appends (key, value) to a map in insertion order; a repeated key keeps its first position
// and takes the new value.
class MapBuilder {
 public:
  explicit MapBuilder(std::vector<Property>* out) : out_(out) {}
  void Put(std::string_view key, std::string_view value) {
    std::string k = SanitizeKey(key);
    auto [it, inserted] = index_.try_emplace(k, out_->size());
    if (inserted) {
      out_->emplace_back(std::move(k), SanitizeUtf8(value));
    } else {
      (*out_)[it->second].second = SanitizeUtf8(value);
    }
  }

 private:
  std::vector<Property>* out_;
  std::unordered_map<std::string, size_t> index_;
};

bool IsJson(std::string_view text) {
  // Bodies are bounded by the event log's record limit; the arena makes validation cheap.
  boost::json::monotonic_resource arena;
  boost::json::parse_options options;
  options.max_depth = 128;
  boost::system::error_code ec;
  boost::json::parse(boost::json::string_view(text.data(), text.size()), ec, &arena, options);
  return !ec;
}

bool DeclaresJsonBody(const eventlog::SystemProperties& s) {
  return strings::IEquals(strings::Trim(s.content_type), "application/json") &&
         strings::IEquals(strings::Trim(s.content_encoding), "utf-8");
}

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(*out), "\\u{:04x}", static_cast<unsigned>(c));
        } else {
          out->push_back(c);
        }
    }
  }
  out->push_back('"');
}

void AppendJsonObject(const std::vector<Property>& map, std::string* out) {
  out->push_back('{');
  for (size_t i = 0; i < map.size(); ++i) {
    if (i) out->push_back(',');
    AppendJsonString(map[i].first, out);
    out->push_back(':');
    AppendJsonString(map[i].second, out);
  }
  out->push_back('}');
}

}  // namespace

Result<Encoding> ParseEncoding(std::string_view name) {
  if (strings::IEquals(name, "avro")) return Encoding::kAvro;
  if (strings::IEquals(name, "avrodeflate")) return Encoding::kAvroDeflate;
  if (strings::IEquals(name, "json")) return Encoding::kJson;
  return Error(Errc::kInvalidArgument,
               fmt::format("unknown encoding '{}' (avro, avroDeflate or json)", name));
}

std::string_view EncodingName(Encoding e) {
  switch (e) {
    case Encoding::kAvro:
      return "avro";
    case Encoding::kAvroDeflate:
      return "avroDeflate";
    case Encoding::kJson:
      return "json";
  }
  return "avro";
}

std::string_view FileExtension(Encoding e) {
  return e == Encoding::kJson ? ".json" : ".avro";
}

std::string FormatEnqueuedTime(int64_t ms_since_epoch) {
  // FormatUtcMs ends in ".mmmZ"; .NET's "o" format, which IoT Hub writes, has 7 digits.
  std::string text = timeutil::FormatUtcMs(ms_since_epoch);
  text.insert(text.size() - 1, "0000");
  return text;
}

std::string SanitizeUtf8(std::string_view s) {
  if (strings::IsValidUtf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 16);
  size_t i = 0;
  while (i < s.size()) {
    size_t n = SequenceLength(static_cast<unsigned char>(s[i]));
    if (n != 0 && i + n <= s.size() && strings::IsValidUtf8(s.substr(i, n))) {
      out.append(s.substr(i, n));
      i += n;
    } else {
      out.append(kReplacement);
      ++i;
    }
  }
  return out;
}

Record MakeRecord(const eventlog::Event& event, std::span<const Property> enrichments) {
  const eventlog::Message& m = event.message;
  const eventlog::SystemProperties& s = m.system;
  Record r;
  r.enqueued_time_utc = FormatEnqueuedTime(event.enqueued_ms);

  MapBuilder properties(&r.properties);
  for (const auto& [key, value] : m.properties)
    properties.Put(key, value);
  for (const auto& [key, value] : enrichments)
    properties.Put(key, value);

  MapBuilder system(&r.system_properties);
  auto put = [&](std::string_view key, const std::string& value) {
    if (!value.empty()) system.Put(key, value);
  };
  put("messageId", s.message_id);
  put("correlationId", s.correlation_id);
  put("userId", s.user_id);
  put("to", s.to);
  put("connectionDeviceId", s.connection_device_id);
  put("connectionModuleId", s.connection_module_id);
  put("connectionAuthMethod", s.connection_auth_method);
  put("connectionDeviceGenerationId", s.connection_auth_generation_id);
  put("contentType", s.content_type);
  put("contentEncoding", s.content_encoding);
  put("enqueuedTime", r.enqueued_time_utc);

  r.body = m.body;
  r.declares_json = DeclaresJsonBody(s);
  return r;
}

bool InlinesJsonBody(const Record& record) {
  // Parsed only here: Avro files never pay for it.
  return record.declares_json && IsJson(record.body);
}

void AppendJsonLine(const Record& record, std::string* out) {
  out->append(R"({"EnqueuedTimeUtc":)");
  AppendJsonString(record.enqueued_time_utc, out);
  out->append(R"(,"Properties":)");
  AppendJsonObject(record.properties, out);
  out->append(R"(,"SystemProperties":)");
  AppendJsonObject(record.system_properties, out);
  out->append(R"(,"Body":)");
  if (InlinesJsonBody(record)) {
    // Valid JSON has line breaks only as whitespace between tokens: spaces keep it one line.
    size_t start = out->size();
    out->append(strings::Trim(record.body));
    std::replace_if(
        out->begin() + static_cast<std::ptrdiff_t>(start), out->end(),
        [](char c) { return c == '\n' || c == '\r'; }, ' ');
  } else {
    out->push_back('"');
    out->append(crypto::Base64Encode(record.body));
    out->push_back('"');
  }
  out->append("}\n");
}

}  // namespace orrery::archive
