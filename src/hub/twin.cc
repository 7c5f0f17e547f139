#include "hub/twin.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/errc.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

constexpr std::string_view kLastUpdated = "$lastUpdated";
constexpr std::string_view kLastUpdatedVersion = "$lastUpdatedVersion";

bool ReadOnlyMember(std::string_view key) {
  return key == "$version" || key == "$metadata";
}

std::string_view SectionName(SectionKind k) {
  switch (k) {
    case SectionKind::kTags:
      return "tags";
    case SectionKind::kDesired:
      return "desired properties";
    case SectionKind::kReported:
      return "reported properties";
  }
  return "twin";
}

Status CheckKey(std::string_view key, const TwinLimits& limits) {
  if (key.empty()) return Error(Errc::kInvalidArgument, "a twin property name is empty");
  if (key.size() > limits.max_key_bytes) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("the twin property name '{}…' is longer than {} bytes",
                             key.substr(0, 32), limits.max_key_bytes));
  }
  if (!strings::IsValidUtf8(key)) {
    return Error(Errc::kInvalidArgument, "a twin property name is not valid UTF-8");
  }
  for (size_t i = 0; i < key.size(); ++i) {
    auto c = static_cast<unsigned char>(key[i]);
    bool c1 = c == 0xC2 && i + 1 < key.size() && static_cast<unsigned char>(key[i + 1]) >= 0x80 &&
              static_cast<unsigned char>(key[i + 1]) <= 0x9F;
    if (c < 0x20 || c == 0x7F || c1 || c == '.' || c == '$' || c == ' ') {
      return Error(Errc::kInvalidArgument,
                   fmt::format("the twin property name '{}' contains a character IoT Hub does not "
                               "allow ('.', '$', space or a control character)",
                               key));
    }
  }
  return Ok();
}

Status CheckValue(const json::value& v, size_t depth, const TwinLimits& limits);

Status CheckObject(const json::object& o, size_t depth, const TwinLimits& limits, bool top) {
  if (depth > limits.max_depth) {
    return Error(
        Errc::kInvalidArgument,
        fmt::format("the twin document nests objects deeper than {} levels", limits.max_depth));
  }
  for (auto& [k, v] : o) {
    if (top && ReadOnlyMember(k)) continue;
    ORRERY_TRY(CheckKey(k, limits));
    ORRERY_TRY(CheckValue(v, depth, limits));
  }
  return Ok();
}

Status CheckValue(const json::value& v, size_t depth, const TwinLimits& limits) {
  if (v.is_object()) return CheckObject(v.get_object(), depth + 1, limits, false);
  if (v.is_string() && v.get_string().size() > limits.max_string_bytes) {
    return Error(Errc::kInvalidArgument, fmt::format("a twin string value is longer than {} bytes",
                                                     limits.max_string_bytes));
  }
  if (v.is_array()) {
    for (auto& e : v.get_array()) {
      if (e.is_array()) {
        return Error(Errc::kInvalidArgument, "twin arrays cannot contain arrays");
      }
      ORRERY_TRY(CheckValue(e, depth, limits));
    }
  }
  return Ok();
}

// Size of a value as a patch would create it: null members of objects are dropped.
size_t CreatedSize(const json::value& v) {
  if (!v.is_object()) return TwinValueSize(v);
  size_t n = 0;
  for (auto& [k, x] : v.get_object()) {
    if (x.is_null()) continue;
    n += k.size() + CreatedSize(x);
  }
  return n;
}

// The change in size that merging `patch` into `cur` would cause.
int64_t SizeDelta(const json::object* cur, const json::object& patch, bool top) {
  int64_t d = 0;
  for (auto& [k, v] : patch) {
    if (top && ReadOnlyMember(k)) continue;
    const json::value* existing = cur ? cur->if_contains(k) : nullptr;
    if (v.is_object() && existing && existing->is_object()) {
      d += SizeDelta(&existing->get_object(), v.get_object(), false);
      continue;
    }
    if (existing) d -= static_cast<int64_t>(k.size() + TwinValueSize(*existing));
    if (!v.is_null()) d += static_cast<int64_t>(k.size() + CreatedSize(v));
  }
  return d;
}

// `when` is the ISO 8601 time of the change: metadata keeps it as the wire shows it, so that
// serialising a twin needs no per-node conversion.
json::object Stamp(const json::value& when, std::optional<int64_t> version) {
  json::object m;
  m[kLastUpdated] = when;
  if (version) m[kLastUpdatedVersion] = *version;
  return m;
}

void StampNode(json::object& meta, const json::value& when, std::optional<int64_t> version) {
  meta[kLastUpdated] = when;
  if (version) meta[kLastUpdatedVersion] = *version;
}

// Builds metadata for a freshly created value.
json::object CreatedMetadata(const json::value& v, const json::value& when,
                             std::optional<int64_t> version) {
  json::object m = Stamp(when, version);
  if (v.is_object()) {
    for (auto& [k, x] : v.get_object()) {
      if (x.is_null()) continue;
      m[k] = CreatedMetadata(x, when, version);
    }
  }
  return m;
}

json::value StripNulls(const json::value& v) {
  if (!v.is_object()) return v;
  json::object o;
  for (auto& [k, x] : v.get_object()) {
    if (!x.is_null()) o[k] = StripNulls(x);
  }
  return o;
}

// Merges `patch` into `cur`, keeping `meta` (may be null for tags) in step.
void Merge(json::object& cur, json::object* meta, const json::object& patch,
           const json::value& when, std::optional<int64_t> version, bool top) {
  for (auto& [k, v] : patch) {
    if (top && ReadOnlyMember(k)) continue;
    if (v.is_null()) {
      cur.erase(k);
      if (meta) meta->erase(k);
      continue;
    }
    json::value* existing = cur.if_contains(k);
    if (v.is_object() && existing && existing->is_object()) {
      json::object* child_meta = nullptr;
      if (meta) {
        json::value& m = (*meta)[k];
        if (!m.is_object()) m = Stamp(when, version);
        child_meta = &m.get_object();
        StampNode(*child_meta, when, version);
      }
      Merge(existing->get_object(), child_meta, v.get_object(), when, version, false);
      continue;
    }
    cur[k] = StripNulls(v);
    if (meta) (*meta)[k] = CreatedMetadata(v, when, version);
  }
}

size_t ObjectSize(const json::object& o) {
  size_t n = 0;
  for (auto& [k, v] : o)
    n += k.size() + TwinValueSize(v);
  return n;
}

Status CheckSize(size_t current, int64_t delta, size_t limit, SectionKind kind) {
  int64_t after = static_cast<int64_t>(current) + delta;
  if (after > static_cast<int64_t>(limit)) {
    return Error(Errc::kTooLarge,
                 fmt::format("the update would make the {} {} bytes, beyond the {}-byte limit",
                             SectionName(kind), after, limit));
  }
  return Ok();
}

size_t LimitFor(SectionKind kind, const TwinLimits& limits) {
  switch (kind) {
    case SectionKind::kTags:
      return limits.tags_bytes;
    case SectionKind::kDesired:
      return limits.desired_bytes;
    case SectionKind::kReported:
      return limits.reported_bytes;
  }
  return 0;
}

bool DecodeSection(const json::value* v, TwinSection& s) {
  if (!v || !v->is_object()) return false;
  auto& o = v->get_object();
  auto* values = o.if_contains("values");
  auto* meta = o.if_contains("metadata");
  auto* version = o.if_contains("version");
  if (!values || !values->is_object() || !meta || !meta->is_object() || !version ||
      !version->is_int64()) {
    return false;
  }
  s.values = values->get_object();
  s.metadata = meta->get_object();
  s.version = version->get_int64();
  s.size = ObjectSize(s.values);
  return true;
}

}  // namespace

size_t TwinValueSize(const json::value& v) {
  switch (v.kind()) {
    case json::kind::string:
      return v.get_string().size();
    case json::kind::int64:
    case json::kind::uint64:
    case json::kind::double_:
      return 8;
    case json::kind::bool_:
      return 4;
    case json::kind::null:
      return 0;
    case json::kind::object:
      return ObjectSize(v.get_object());
    case json::kind::array: {
      size_t n = 0;
      for (auto& e : v.get_array())
        n += TwinValueSize(e);
      return n;
    }
  }
  return 0;
}

std::string Twin::etag() const {
  std::string raw(8, '\0');
  for (int i = 0; i < 8; ++i)
    raw[static_cast<size_t>(i)] = static_cast<char>((etag_counter >> (56 - 8 * i)) & 0xFF);
  return crypto::Base64Encode(raw);
}

Status CheckPatch(const Twin& twin, SectionKind kind, const json::object& patch,
                  const TwinLimits& limits) {
  ORRERY_TRY(CheckObject(patch, 1, limits, true));
  const json::object* cur = nullptr;
  size_t size = 0;
  switch (kind) {
    case SectionKind::kTags:
      cur = &twin.tags;
      size = twin.tags_size;
      break;
    case SectionKind::kDesired:
      cur = &twin.desired.values;
      size = twin.desired.size;
      break;
    case SectionKind::kReported:
      cur = &twin.reported.values;
      size = twin.reported.size;
      break;
  }
  return CheckSize(size, SizeDelta(cur, patch, true), LimitFor(kind, limits), kind);
}

json::object ApplyPatch(Twin& twin, SectionKind kind, const json::object& patch, int64_t now_ms) {
  const json::value when(timeutil::FormatUtcMs(now_ms));
  json::object applied;
  for (auto& [k, v] : patch) {
    if (!ReadOnlyMember(k)) applied[k] = v;
  }
  if (kind == SectionKind::kTags) {
    twin.tags_size = static_cast<size_t>(static_cast<int64_t>(twin.tags_size) +
                                         SizeDelta(&twin.tags, patch, true));
    Merge(twin.tags, nullptr, patch, when, std::nullopt, true);
    ++twin.etag_counter;
  } else {
    TwinSection& s = kind == SectionKind::kDesired ? twin.desired : twin.reported;
    s.size = static_cast<size_t>(static_cast<int64_t>(s.size) + SizeDelta(&s.values, patch, true));
    ++s.version;
    std::optional<int64_t> version;
    if (kind == SectionKind::kDesired) {
      version = s.version;
      ++twin.etag_counter;
    }
    Merge(s.values, &s.metadata, patch, when, version, true);
    StampNode(s.metadata, when, version);
  }
  ++twin.version;
  return applied;
}

Result<json::object> ReplaceTwin(Twin& twin, const json::object& replacement,
                                 const TwinLimits& limits, int64_t now_ms) {
  const json::value when(timeutil::FormatUtcMs(now_ms));
  const json::object* tags = nullptr;
  const json::object* desired = nullptr;
  if (auto* t = replacement.if_contains("tags"); t && !t->is_null()) {
    if (!t->is_object()) return Error(Errc::kInvalidArgument, "tags must be an object");
    tags = &t->get_object();
  }
  if (auto* p = replacement.if_contains("properties"); p && !p->is_null()) {
    if (!p->is_object()) return Error(Errc::kInvalidArgument, "properties must be an object");
    if (auto* d = p->get_object().if_contains("desired"); d && !d->is_null()) {
      if (!d->is_object()) {
        return Error(Errc::kInvalidArgument, "properties.desired must be an object");
      }
      desired = &d->get_object();
    }
  }
  // Validate both before changing either.
  if (tags) {
    ORRERY_TRY(CheckObject(*tags, 1, limits, true));
    ORRERY_TRY(
        CheckSize(0, SizeDelta(nullptr, *tags, true), limits.tags_bytes, SectionKind::kTags));
  }
  if (desired) {
    ORRERY_TRY(CheckObject(*desired, 1, limits, true));
    ORRERY_TRY(CheckSize(0, SizeDelta(nullptr, *desired, true), limits.desired_bytes,
                         SectionKind::kDesired));
  }
  json::object push;
  if (tags) {
    twin.tags.clear();
    twin.tags_size = 0;
    Merge(twin.tags, nullptr, *tags, when, std::nullopt, true);
    twin.tags_size = ObjectSize(twin.tags);
  }
  if (desired) {
    TwinSection& s = twin.desired;
    for (auto& [k, v] : s.values) {
      if (!desired->contains(k)) push[k] = nullptr;
    }
    ++s.version;
    s.values.clear();
    s.metadata.clear();
    Merge(s.values, &s.metadata, *desired, when, s.version, true);
    StampNode(s.metadata, when, s.version);
    s.size = ObjectSize(s.values);
    for (auto& [k, v] : s.values)
      push[k] = v;
  }
  if (tags || desired) {
    ++twin.version;
    ++twin.etag_counter;
  }
  return push;
}

json::object SectionToServiceJson(const TwinSection& s, bool desired) {
  json::object o = s.values;
  json::object meta = s.metadata;
  if (!meta.contains(kLastUpdated)) meta[kLastUpdated] = timeutil::FormatUtcMs(0);
  if (desired && !meta.contains(kLastUpdatedVersion)) meta[kLastUpdatedVersion] = s.version;
  o["$metadata"] = std::move(meta);
  o["$version"] = s.version;
  return o;
}

json::object SectionToDeviceJson(const TwinSection& s) {
  json::object o = s.values;
  o["$version"] = s.version;
  return o;
}

json::object TwinToDeviceJson(const Twin& twin) {
  return json::object{{"desired", SectionToDeviceJson(twin.desired)},
                      {"reported", SectionToDeviceJson(twin.reported)}};
}

namespace {

// Appends `{…values, "$metadata":…, "$version":n}` without copying the section: its values
// are serialised and the closing brace reopened.
void AppendSection(std::string& out, const TwinSection& s) {
  std::string v = json::serialize(s.values);
  out.append(v, 0, v.size() - 1);
  if (v.size() > 2) out += ',';
  out += "\"$metadata\":";
  out += json::serialize(s.metadata);
  out += ",\"$version\":";
  out += std::to_string(s.version);
  out += '}';
}

void AppendMember(std::string& out, std::string_view key, std::string_view json_text) {
  out += ",\"";
  out += key;
  out += "\":";
  out += json_text;
}

}  // namespace

std::string SerializeServiceTwin(const Identity& id, const IdentityRuntime& rt, const Twin& twin) {
  // The small fields as an object, the large parts spliced in as text.
  json::object head;
  head["deviceId"] = id.device_id;
  if (id.is_module()) head["moduleId"] = id.module_id;
  head["etag"] = twin.etag();
  head["deviceEtag"] = id.etag;
  head["status"] = id.enabled ? "enabled" : "disabled";
  head["statusReason"] =
      id.status_reason.empty() ? json::value(nullptr) : json::value(id.status_reason);
  head["statusUpdateTime"] = timeutil::FormatUtcMs(id.status_updated_ms);
  head["connectionState"] = rt.connected ? "Connected" : "Disconnected";
  head["lastActivityTime"] = timeutil::FormatUtcMs(rt.last_activity_ms);
  head["cloudToDeviceMessageCount"] = rt.c2d_message_count;
  head["authenticationType"] = AuthTypeName(id.auth.type);
  head["x509Thumbprint"] =
      json::object{{"primaryThumbprint", id.auth.primary_thumbprint.empty()
                                             ? json::value(nullptr)
                                             : json::value(id.auth.primary_thumbprint)},
                   {"secondaryThumbprint", id.auth.secondary_thumbprint.empty()
                                               ? json::value(nullptr)
                                               : json::value(id.auth.secondary_thumbprint)}};
  head["modelId"] = twin.model_id;
  head["version"] = twin.version;
  if (!id.is_module()) {
    head["capabilities"] = json::object{{"iotEdge", id.iot_edge}};
    if (!id.device_scope.empty()) head["deviceScope"] = id.device_scope;
    json::array parents;
    for (auto& p : id.parent_scopes)
      parents.emplace_back(p);
    head["parentScopes"] = std::move(parents);
  }
  std::string out = json::serialize(head);
  out.pop_back();
  AppendMember(out, "tags", json::serialize(twin.tags));
  out += ",\"properties\":{\"desired\":";
  AppendSection(out, twin.desired);
  out += ",\"reported\":";
  AppendSection(out, twin.reported);
  out += "}}";
  return out;
}

json::object TwinToServiceJson(const Identity& id, const IdentityRuntime& rt, const Twin& twin) {
  return json::parse(SerializeServiceTwin(id, rt, twin)).as_object();
}

std::string EncodeTwin(const Twin& twin) {
  // Written on every change: serialised piece by piece, without copying the sections.
  auto section = [](const TwinSection& sec) {
    return "{\"values\":" + json::serialize(sec.values) +
           ",\"metadata\":" + json::serialize(sec.metadata) +
           ",\"version\":" + std::to_string(sec.version) + "}";
  };
  std::string out = "{\"tags\":" + json::serialize(twin.tags);
  AppendMember(out, "desired", section(twin.desired));
  AppendMember(out, "reported", section(twin.reported));
  AppendMember(out, "version", std::to_string(twin.version));
  AppendMember(out, "etag", std::to_string(twin.etag_counter));
  AppendMember(out, "modelId", json::serialize(json::string(twin.model_id)));
  out += '}';
  return out;
}

Result<Twin> DecodeTwin(std::string_view bytes) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return Error(Errc::kCorruptState, "a stored twin is not JSON");
  auto& o = v.get_object();
  Twin t;
  auto* tags = o.if_contains("tags");
  auto* version = o.if_contains("version");
  auto* etag = o.if_contains("etag");
  if (!tags || !tags->is_object() || !DecodeSection(o.if_contains("desired"), t.desired) ||
      !DecodeSection(o.if_contains("reported"), t.reported) || !version || !etag) {
    return Error(Errc::kCorruptState, "a stored twin lacks a section");
  }
  t.tags = tags->get_object();
  t.tags_size = ObjectSize(t.tags);
  t.version = version->to_number<uint64_t>(ec);
  t.etag_counter = etag->to_number<uint64_t>(ec);
  if (ec) return Error(Errc::kCorruptState, "a stored twin has a bad version");
  if (auto* m = o.if_contains("modelId"); m && m->is_string()) t.model_id = m->get_string();
  return t;
}

}  // namespace orrery::hub
