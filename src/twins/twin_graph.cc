#include "twins/twin_graph.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <optional>
#include <random>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/strings.h"
#include "base/time.h"
#include "dtdl/parser.h"
#include "twins/errc.h"
#include "twins/model_store.h"

namespace orrery::twins {

namespace json = boost::json;

namespace {
constexpr std::string_view kTwinSpace = "dt.twin";
constexpr std::string_view kRelSpace = "dt.rel";
constexpr char kSep = '\x1f';
constexpr size_t kMaxIdBytes = 1024;  // twin and relationship ids
constexpr int kMaxValueDepth = 32;

// W/"<uuid>": a version 4 UUID from a per-thread generator seeded by the system's random
// number generator — etags must be unique, not secret, and RAND_bytes per change cost 7% of a
// patch.
std::string NewEtag() {
  thread_local std::mt19937_64 gen = [] {
    std::string seed = crypto::RandomBytes(32);
    std::seed_seq seq(seed.begin(), seed.end());
    return std::mt19937_64(seq);
  }();
  uint64_t hi = gen(), lo = gen();
  hi = (hi & ~uint64_t{0xF000}) | 0x4000;                  // version 4
  lo = (lo & ~(uint64_t{0xC} << 60)) | uint64_t{8} << 60;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "W/\"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx\"";
  size_t pos = 3;
  for (int i = 0; i < 32; ++i) {
    if (out[pos] == '-') ++pos;
    uint64_t word = i < 16 ? hi : lo;
    out[pos++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xF];
  }
  return out;
}

bool EtagMatches(std::string_view if_match, std::string_view etag) {
  return if_match.empty() || if_match == "*" || if_match == etag;
}

Error Invalid(std::string m) {
  return Error(Errc::kValidationFailed, std::move(m));
}

Status CheckId(std::string_view id, std::string_view what) {
  if (id.empty() || id.size() > kMaxIdBytes || !strings::IsValidUtf8(id)) {
    return Error(Errc::kInvalidArgument,
                 fmt::format("{} id must be 1-{} bytes of UTF-8", what, kMaxIdBytes));
  }
  return Ok();
}

// A parsed model with everything it depends on, for validating twins of it.
struct ModelView {
  dtdl::Model model;
  std::string id;
  bool decommissioned = false;
};

std::string Str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

// RFC 6901 pointer tokens ("/a~1b/c" → {"a/b", "c"}).
Result<std::vector<std::string>> PointerTokens(std::string_view path) {
  if (path.empty() || path[0] != '/') {
    return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' must start with '/'", path));
  }
  std::vector<std::string> out;
  for (auto part : strings::Split(path.substr(1), '/')) {
    std::string t;
    for (size_t i = 0; i < part.size(); ++i) {
      if (part[i] == '~' && i + 1 < part.size() && (part[i + 1] == '0' || part[i + 1] == '1')) {
        t += part[i + 1] == '0' ? '~' : '/';
        ++i;
      } else if (part[i] == '~') {
        return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' has a bad escape", path));
      } else {
        t += part[i];
      }
    }
    out.push_back(std::move(t));
  }
  return out;
}

// Applies one add/replace/remove at `tokens` inside `root`.
Status ApplyOp(json::value& root, std::string_view op, const std::vector<std::string>& tokens,
               const json::value* value, std::string_view path) {
  if (tokens.empty()) return Error(Errc::kJsonPatchInvalid, "the whole document cannot be patched");
  json::value* parent = &root;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) {
    if (auto* o = parent->if_object()) {
      auto* next = o->if_contains(tokens[i]);
      if (!next) {
        return Error(Errc::kJsonPatchInvalid,
                     fmt::format("path '{}': '{}' does not exist", path, tokens[i]));
      }
      parent = next;
    } else if (auto* a = parent->if_array()) {
      size_t idx = 0;
      auto [p, ec] = std::from_chars(tokens[i].data(), tokens[i].data() + tokens[i].size(), idx);
      if (ec != std::errc() || p != tokens[i].data() + tokens[i].size() || idx >= a->size()) {
        return Error(Errc::kJsonPatchInvalid,
                     fmt::format("path '{}': no element {}", path, tokens[i]));
      }
      parent = &(*a)[idx];
    } else {
      return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' goes through a value", path));
    }
  }
  const std::string& last = tokens.back();
  if (auto* o = parent->if_object()) {
    bool exists = o->contains(last);
    if ((op == "replace" || op == "remove") && !exists) {
      return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' does not exist", path));
    }
    if (op == "remove") {
      o->erase(last);
    } else {
      (*o)[last] = *value;
    }
    return Ok();
  }
  if (auto* a = parent->if_array()) {
    size_t idx = a->size();
    if (last != "-") {
      auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), idx);
      if (ec != std::errc() || p != last.data() + last.size()) {
        return Error(Errc::kJsonPatchInvalid,
                     fmt::format("path '{}': '{}' is not an index", path, last));
      }
    }
    if (op == "add") {
      if (idx > a->size())
        return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' is past the end", path));
      a->insert(a->begin() + static_cast<std::ptrdiff_t>(idx), *value);
      return Ok();
    }
    if (idx >= a->size())
      return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' does not exist", path));
    if (op == "remove") {
      a->erase(a->begin() + static_cast<std::ptrdiff_t>(idx));
    } else {
      (*a)[idx] = *value;
    }
    return Ok();
  }
  return Error(Errc::kJsonPatchInvalid, fmt::format("path '{}' goes into a value", path));
}

// Applies a JSON Patch to `doc`. `allow` decides which top-level tokens may be touched.
Status ApplyPatch(json::value& doc, const json::array& patch, size_t max_ops,
                  const std::function<Status(const std::vector<std::string>&)>& allow) {
  if (patch.empty()) return Error(Errc::kJsonPatchInvalid, "the patch is empty");
  if (patch.size() > max_ops) {
    return Error(Errc::kJsonPatchInvalid,
                 fmt::format("{} operations in one patch; the limit is {}", patch.size(), max_ops));
  }
  for (auto& item : patch) {
    auto* o = item.if_object();
    if (!o) return Error(Errc::kJsonPatchInvalid, "each patch operation must be an object");
    std::string op = Str(*o, "op"), path = Str(*o, "path");
    if (op != "add" && op != "replace" && op != "remove") {
      return Error(Errc::kJsonPatchInvalid,
                   fmt::format("operation '{}' is not supported (add, replace, remove)", op));
    }
    const json::value* value = o->if_contains("value");
    if (op != "remove" && !value) {
      return Error(Errc::kJsonPatchInvalid, fmt::format("'{}' of '{}' needs a value", op, path));
    }
    ORRERY_ASSIGN_OR_RETURN(auto tokens, PointerTokens(path));
    ORRERY_TRY(allow(tokens));
    ORRERY_TRY(ApplyOp(doc, op, tokens, value, path));
  }
  return Ok();
}

bool IsIntegral(const json::value& v) {
  if (v.is_int64() || v.is_uint64()) return true;
  if (v.is_double()) {
    double d = v.get_double();
    return std::isfinite(d) && d == std::floor(d);
  }
  return false;
}

double AsDouble(const json::value& v) {
  if (v.is_int64()) return static_cast<double>(v.get_int64());
  if (v.is_uint64()) return static_cast<double>(v.get_uint64());
  return v.get_double();
}

// RFC 6901: '~' → "~0", '/' → "~1".
std::string PointerEscape(std::string_view token) {
  std::string out;
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

bool IsComponent(const json::value& v) {
  return v.is_object() && v.get_object().contains("$metadata");
}

// The JSON Patch that turns `before`'s properties into `after`'s (members starting with '$'
// are not properties); components (objects with "$metadata") are compared member by member.
void DiffMembers(const json::object& before, const json::object& after, const std::string& prefix,
                 json::array& ops) {
  for (auto& [k, v] : after) {
    if (k.starts_with("$")) continue;
    std::string path = prefix + "/" + PointerEscape(k);
    auto* old = before.if_contains(k);
    if (old && IsComponent(*old) && IsComponent(v)) {
      DiffMembers(old->get_object(), v.get_object(), path, ops);
    } else if (!old) {
      ops.push_back(json::object{{"op", "add"}, {"path", path}, {"value", v}});
    } else if (*old != v) {
      ops.push_back(json::object{{"op", "replace"}, {"path", path}, {"value", v}});
    }
  }
  for (auto& [k, v] : before) {
    if (!k.starts_with("$") && !after.contains(k)) {
      ops.push_back(json::object{{"op", "remove"}, {"path", prefix + "/" + PointerEscape(k)}});
    }
  }
}

std::string MetadataModel(const json::object& twin) {
  auto* m = twin.if_contains("$metadata");
  return m && m->is_object() ? Str(m->get_object(), "$model") : std::string();
}

// A twin replaced in full: its properties' patch, and the model's when it changed.
void DiffTwin(const json::object& before, const json::object& after, const std::string& prefix,
              json::array& ops) {
  std::string was = MetadataModel(before), is = MetadataModel(after);
  if (was != is) {
    ops.push_back(
        json::object{{"op", "replace"}, {"path", prefix + "/$metadata/$model"}, {"value", is}});
  }
  DiffMembers(before, after, prefix, ops);
}

// The patch an update notification carries: as applied, a component's paths prefixed with
// its name.
json::array NotifiedPatch(const json::array& patch, const std::string& component) {
  json::array ops = patch;
  if (component.empty()) return ops;
  for (auto& op : ops) {
    if (auto* path = op.is_object() ? op.get_object().if_contains("path") : nullptr;
        path && path->is_string()) {
      *path = "/" + PointerEscape(component) + std::string(path->get_string());
    }
  }
  return ops;
}

// The body of an update notification, as ADT sends it.
json::object UpdateData(const std::string& model, json::array ops) {
  return json::object{{"modelId", model}, {"patch", std::move(ops)}};
}

}  // namespace

struct TwinGraph::Impl {
  store::KvStore* store;
  const ModelStore* models;
  TwinLimits limits;
  std::function<int64_t()> now_ms;
  ChangeObserver* observer = nullptr;  // set before the first change

  mutable std::mutex model_mu;
  // model id → (upload time, view): a model re-uploaded under the same id after a delete is
  // parsed again.
  mutable std::map<std::string, std::pair<int64_t, std::shared_ptr<const ModelView>>, std::less<>>
      views;  // guarded by model_mu

  mutable std::mutex mu;
  std::map<std::string, json::object, std::less<>> twins;  // guarded by mu
  // source → relationship id → relationship; guarded by mu
  std::map<std::string, std::map<std::string, json::object, std::less<>>, std::less<>> out;
  // target → (source, relationship id); guarded by mu
  std::map<std::string, std::set<std::pair<std::string, std::string>>, std::less<>> in;
  size_t relationships = 0;  // guarded by mu
  // $metadata.$model → twin ids (the model index); guarded by mu
  std::map<std::string, std::set<std::string, std::less<>>, std::less<>> by_model;

  // The property index: for every top-level property holding a primitive value (null,
  // boolean, number, string), the twins by value. A value's key orders by kind, then by
  // value; numbers as doubles — a monotonic image of their exact value, so a lookup with
  // inclusive bounds finds every twin whose value satisfies a condition (and maybe a few
  // more, which the query's own evaluation drops).
  using TwinEntry = std::map<std::string, json::object, std::less<>>::value_type;
  struct IndexKey {
    uint8_t kind = 0;  // 0 null, 1 boolean, 2 number, 3 string
    double number = 0;
    std::string text;
  };
  struct IndexEntry {
    IndexKey key;
    const TwinEntry* twin;  // a node of `twins` (stable while the twin exists); null sorts first
  };
  static std::optional<IndexKey> KeyOf(const json::value& v) {
    switch (v.kind()) {
      case json::kind::null:
        return IndexKey{0, 0, {}};
      case json::kind::bool_:
        return IndexKey{1, v.get_bool() ? 1.0 : 0.0, {}};
      case json::kind::int64:
      case json::kind::uint64:
      case json::kind::double_:
        return IndexKey{2, v.to_number<double>(), {}};
      case json::kind::string:
        return IndexKey{3, 0, std::string(v.get_string())};
      default:
        return std::nullopt;
    }
  }
  static int CompareKeys(const IndexKey& a, const IndexKey& b) {
    if (a.kind != b.kind) return a.kind < b.kind ? -1 : 1;
    if (a.number != b.number) return a.number < b.number ? -1 : 1;
    return a.text.compare(b.text);
  }
  struct IndexLess {
    bool operator()(const IndexEntry& a, const IndexEntry& b) const {
      if (int c = CompareKeys(a.key, b.key); c != 0) return c < 0;
      if (a.twin == nullptr || b.twin == nullptr) return a.twin == nullptr && b.twin != nullptr;
      return a.twin->first < b.twin->first;
    }
  };
  using IndexSet = std::set<IndexEntry, IndexLess>;
  // property name → (value, twin); guarded by mu
  std::map<std::string, IndexSet, std::less<>> by_property;

  static std::string ModelOf(const json::object& twin) { return MetadataModel(twin); }
  // Updates the model and property indexes of the twin stored at `entry` (a node of `twins`)
  // for a change from `before` to `after` (either null): only the members that changed.
  void Index(const TwinEntry& entry, const json::object* before, const json::object* after) {
    const std::string& id = entry.first;
    std::string model_before = before ? ModelOf(*before) : std::string();
    std::string model_after = after ? ModelOf(*after) : std::string();
    if (before && (!after || model_before != model_after)) {
      auto it = by_model.find(model_before);
      if (it != by_model.end()) {
        it->second.erase(id);
        if (it->second.empty()) by_model.erase(it);
      }
    }
    if (after && (!before || model_before != model_after)) by_model[model_after].insert(id);
    if (before) {
      for (auto& [k, v] : *before) {
        if (!k.starts_with("$")) IndexMember(entry, k, &v, after ? after->if_contains(k) : nullptr);
      }
    }
    if (after) {
      for (auto& [k, v] : *after) {
        if (!k.starts_with("$") && !(before && before->contains(k)))
          IndexMember(entry, k, nullptr, &v);
      }
    }
  }
  // The property index for member `k` of the twin at `entry` changing from `was` to `now`
  // (either null).
  void IndexMember(const TwinEntry& entry, std::string_view k, const json::value* was,
                   const json::value* now) {
    if (was && now && *was == *now) return;
    if (was) {
      if (auto key = KeyOf(*was)) {
        if (auto p = by_property.find(k); p != by_property.end()) {
          p->second.erase(IndexEntry{std::move(*key), &entry});
          if (p->second.empty()) by_property.erase(p);
        }
      }
    }
    if (now) {
      if (auto key = KeyOf(*now)) {
        auto p = by_property.find(k);
        if (p == by_property.end()) p = by_property.emplace(std::string(k), IndexSet()).first;
        p->second.insert(IndexEntry{std::move(*key), &entry});
      }
    }
  }

  // Visits the index entries of `f` until `each(const TwinEntry*)` returns false (in index
  // order; a twin at most once per value of `f.values`).
  template <class Each>
  void ScanIndex(const GraphView::PropertyFilter& f, Each&& each) const {
    auto p = by_property.find(std::string_view(f.name));
    if (p == by_property.end()) return;
    const IndexSet& set = p->second;
    if (!f.values.empty()) {
      for (const json::value& v : f.values) {
        auto key = KeyOf(v);
        if (!key) continue;
        for (auto it = set.lower_bound(IndexEntry{*key, nullptr});
             it != set.end() && CompareKeys(it->key, *key) == 0; ++it) {
          if (!each(it->twin)) return;
        }
      }
      return;
    }
    std::optional<IndexKey> lo = f.lo ? KeyOf(*f.lo) : std::nullopt;
    std::optional<IndexKey> hi = f.hi ? KeyOf(*f.hi) : std::nullopt;
    if (!lo && !hi) return;
    uint8_t kind = lo ? lo->kind : hi->kind;
    if (lo && hi && lo->kind != hi->kind) return;  // no value is of both kinds
    IndexKey from = lo ? *lo : IndexKey{kind, -std::numeric_limits<double>::infinity(), {}};
    for (auto it = set.lower_bound(IndexEntry{std::move(from), nullptr});
         it != set.end() && it->key.kind == kind && (!hi || CompareKeys(it->key, *hi) <= 0); ++it) {
      if (!each(it->twin)) return;
    }
  }

  // The parsed view of a model if it is cached and current, else null (never parses).
  std::shared_ptr<const ModelView> CachedView(std::string_view model_id) const {
    auto stamp = models->GetStamp(model_id);
    if (!stamp) return nullptr;
    std::lock_guard lock(model_mu);
    auto it = views.find(model_id);
    if (it == views.end() || it->second.first != stamp->upload_time_ms ||
        it->second.second->decommissioned != stamp->decommissioned) {
      return nullptr;
    }
    return it->second.second;
  }

  Result<std::shared_ptr<const ModelView>> View(std::string_view model_id) const {
    // The cached view while the model is the one it was parsed from (its stamp, without
    // copying the definition).
    auto stamp = models->GetStamp(model_id);
    if (!stamp) {
      return Invalid(fmt::format("model '{}' does not exist (upload it first)", model_id));
    }
    {
      std::lock_guard lock(model_mu);
      auto it = views.find(model_id);
      if (it != views.end() && it->second.first == stamp->upload_time_ms) {
        if (it->second.second->decommissioned == stamp->decommissioned) return it->second.second;
      }
    }
    auto record = models->Get(model_id);
    if (!record) {
      return Invalid(fmt::format("model '{}' does not exist (upload it first)", model_id));
    }
    dtdl::ParseOptions options;
    options.resolver = [this](const std::vector<std::string>& ids) {
      return models->Definitions(ids);
    };
    auto parsed = dtdl::Parse({json::serialize(record->definition)}, options);
    if (!parsed.ok()) {
      return Invalid(
          fmt::format("model '{}' no longer resolves against the stored models", model_id));
    }
    auto view = std::make_shared<ModelView>();
    view->model = std::move(parsed.model);
    view->id = std::string(model_id);
    view->decommissioned = record->decommissioned;
    std::lock_guard lock(model_mu);
    views[std::string(model_id)] = {record->upload_time_ms, view};
    return std::shared_ptr<const ModelView>(view);
  }

  // --- validation ---

  Status CheckValue(const dtdl::Model& m, const std::string& schema_id, const json::value& v,
                    const std::string& where, int depth) const {
    if (depth > kMaxValueDepth) return Invalid(fmt::format("{}: nested too deeply", where));
    const dtdl::Element* s = m.Find(schema_id);
    if (!s) return Invalid(fmt::format("{}: schema '{}' is unknown", where, schema_id));
    using dtdl::Kind;
    switch (s->kind) {
      case Kind::kPrimitive:
        return CheckPrimitive(s->name, v, where);
      case Kind::kEnum: {
        for (auto& ev_id : s->enum_values) {
          auto* ev = m.Find(ev_id);
          if (ev && ev->enum_value == v) return Ok();
        }
        return Invalid(fmt::format("{}: {} is not a value of the enum", where, json::serialize(v)));
      }
      case Kind::kObject: {
        auto* o = v.if_object();
        if (!o) return Invalid(fmt::format("{}: expected an object", where));
        for (auto& [k, x] : *o) {
          const dtdl::Element* field = nullptr;
          for (auto& f_id : s->fields) {
            auto* f = m.Find(f_id);
            if (f && f->name == k) field = f;
          }
          if (!field)
            return Invalid(fmt::format("{}: '{}' is not a field of the object", where, k));
          ORRERY_TRY(CheckValue(m, field->schema, x, where + "." + std::string(k), depth + 1));
        }
        return Ok();
      }
      case Kind::kMap: {
        auto* o = v.if_object();
        if (!o) return Invalid(fmt::format("{}: expected a map (an object)", where));
        auto* mv = m.Find(s->map_value);
        if (!mv) return Invalid(fmt::format("{}: the map has no value schema", where));
        for (auto& [k, x] : *o)
          ORRERY_TRY(CheckValue(m, mv->schema, x, where + "." + std::string(k), depth + 1));
        return Ok();
      }
      case Kind::kArray: {
        auto* a = v.if_array();
        if (!a) return Invalid(fmt::format("{}: expected an array", where));
        for (size_t i = 0; i < a->size(); ++i) {
          ORRERY_TRY(CheckValue(m, s->element_schema, (*a)[i], fmt::format("{}[{}]", where, i),
                                depth + 1));
        }
        return Ok();
      }
      default:
        return Invalid(fmt::format("{}: '{}' is not a schema", where, schema_id));
    }
  }

  Status CheckPrimitive(const std::string& name, const json::value& v,
                        const std::string& where) const {
    auto bad = [&](std::string_view expected) {
      return Invalid(fmt::format("{}: {} is not {}", where, json::serialize(v), expected));
    };
    auto in_range = [&](double lo, double hi) { return AsDouble(v) >= lo && AsDouble(v) <= hi; };
    if (name == "boolean") return v.is_bool() ? Ok() : bad("a boolean");
    if (name == "string" || name == "uuid" || name == "bytes") {
      if (!v.is_string()) return bad("a string");
      if (v.get_string().size() > limits.max_string_bytes) {
        return Invalid(fmt::format("{}: a string of {} bytes; the limit is {}", where,
                                   v.get_string().size(), limits.max_string_bytes));
      }
      return Ok();
    }
    if (name == "double" || name == "float" || name == "decimal") {
      return v.is_number() ? Ok() : bad("a number");
    }
    if (name == "integer") {
      return IsIntegral(v) && in_range(-2147483648.0, 2147483647.0) ? Ok() : bad("an integer");
    }
    if (name == "long") return IsIntegral(v) ? Ok() : bad("a long");
    if (name == "short") return IsIntegral(v) && in_range(-32768, 32767) ? Ok() : bad("a short");
    if (name == "byte") return IsIntegral(v) && in_range(-128, 127) ? Ok() : bad("a byte");
    if (name == "unsignedByte")
      return IsIntegral(v) && in_range(0, 255) ? Ok() : bad("an unsigned byte");
    if (name == "unsignedShort")
      return IsIntegral(v) && in_range(0, 65535) ? Ok() : bad("an unsigned short");
    if (name == "unsignedInteger") {
      return IsIntegral(v) && in_range(0, 4294967295.0) ? Ok() : bad("an unsigned integer");
    }
    if (name == "unsignedLong")
      return IsIntegral(v) && AsDouble(v) >= 0 ? Ok() : bad("an unsigned long");
    if (name == "dateTime") {
      return v.is_string() && timeutil::ParseUtcMs(v.get_string()) ? Ok()
                                                                   : bad("an ISO 8601 date-time");
    }
    if (name == "date" || name == "time") {
      return v.is_string() ? Ok() : bad(name == "date" ? "a date" : "a time");
    }
    if (name == "duration") {
      return v.is_string() && v.get_string().starts_with("P") ? Ok() : bad("an ISO 8601 duration");
    }
    // Geospatial schemas (point, lineString, …) are GeoJSON objects.
    return v.is_object() ? Ok() : bad("a GeoJSON object");
  }

  // Validates one member `k` of a twin (or component) object against its Interface `ri`.
  template <class InterfaceIt>
  Status CheckMember(const dtdl::Model& m, const std::string& interface_id, InterfaceIt ri,
                     std::string_view k, const json::value& v, const std::string& where,
                     bool top) const {
    if (k.starts_with("$")) {
      if (k == "$metadata" || (top && (k == "$dtId" || k == "$etag"))) return Ok();
      return Invalid(fmt::format("{}: '{}' is not allowed", where, k));
    }
    if (k.size() > limits.max_property_name_bytes) {
      return Invalid(fmt::format("{}: a property name of {} bytes; the limit is {}", where,
                                 k.size(), limits.max_property_name_bytes));
    }
    auto c = ri->second.contents.find(std::string(k));
    if (c == ri->second.contents.end()) {
      return Invalid(fmt::format("{}: '{}' is not a property of {}", where, k, interface_id));
    }
    auto* e = m.Find(c->second);
    std::string here = where.empty() ? std::string(k) : where + "." + std::string(k);
    if (e->kind == dtdl::Kind::kProperty) return CheckValue(m, e->schema, v, here, 0);
    if (e->kind == dtdl::Kind::kComponent) {
      auto* co = v.if_object();
      if (!co || !co->contains("$metadata") || !co->at("$metadata").is_object()) {
        return Invalid(fmt::format("{}: component '{}' must be an object with \"$metadata\": {{}}",
                                   where.empty() ? interface_id : where, k));
      }
      return CheckMembers(m, e->schema, *co, here, false);
    }
    return Invalid(fmt::format("{}: '{}' is a {} of {}, not a property", where, k,
                               dtdl::KindName(e->kind), interface_id));
  }

  static Error ComponentMissing(const std::string& name, const std::string& interface_id) {
    return Invalid(
        fmt::format("component '{}' of {} must be set (at least \"{}\": "
                    "{{\"$metadata\": {{}}}})",
                    name, interface_id, name));
  }

  // Validates the members of a twin (or component) object against `interface_id`.
  Status CheckMembers(const dtdl::Model& m, const std::string& interface_id, const json::object& o,
                      const std::string& where, bool top) const {
    auto ri = m.interfaces.find(interface_id);
    if (ri == m.interfaces.end())
      return Invalid(fmt::format("{}: '{}' is not an Interface", where, interface_id));
    for (auto& [k, v] : o)
      ORRERY_TRY(CheckMember(m, interface_id, ri, k, v, where, top));
    for (auto& [name, iface] : ri->second.components) {
      if (!o.contains(name)) return ComponentMissing(name, interface_id);
    }
    return Ok();
  }

  // Validates what a patch changed: the members `touched` of `o` (the twin, or one of its
  // components) — present ones as CheckMembers would, removed ones only if they were
  // components (which must stay). The rest was valid when it was stored.
  Status CheckTouched(const dtdl::Model& m, const std::string& interface_id, const json::object& o,
                      const std::string& where, bool top,
                      const std::vector<std::string>& touched) const {
    auto ri = m.interfaces.find(interface_id);
    if (ri == m.interfaces.end())
      return Invalid(fmt::format("{}: '{}' is not an Interface", where, interface_id));
    for (const std::string& k : touched) {
      if (auto* v = o.if_contains(k)) {
        ORRERY_TRY(CheckMember(m, interface_id, ri, k, *v, where, top));
      } else if (ri->second.components.contains(k)) {
        return ComponentMissing(k, interface_id);
      }
    }
    return Ok();
  }

  // --- metadata ---

  // Rewrites `next`'s $metadata after a change from `prev` (null for a new twin): every
  // property whose value changed gets lastUpdateTime = now (and keeps a sourceTime the client
  // set); removed ones lose theirs.
  // `client_meta` may be `next`'s own $metadata: it is read before it is replaced.
  static void StampMetadata(const json::object* prev, json::object& next, const std::string& now,
                            const json::object* client_meta) {
    const json::object* meta = nullptr;
    if (auto* m = next.if_contains("$metadata"); m && m->is_object()) meta = &m->get_object();
    const json::object* prev_meta = nullptr;
    if (prev) {
      if (auto* pm = prev->if_contains("$metadata"); pm && pm->is_object())
        prev_meta = &pm->get_object();
    }
    json::object out;
    out.reserve(next.size() + 1);
    if (meta) {
      if (auto* model = meta->if_contains("$model")) out["$model"] = *model;
    }
    bool changed = false;
    for (auto& [k, v] : next) {
      if (k.starts_with("$")) continue;
      const json::value* before = prev ? prev->if_contains(k) : nullptr;
      const json::object* old_meta = nullptr;
      if (prev_meta) {
        if (auto* x = prev_meta->if_contains(k); x && x->is_object()) old_meta = &x->get_object();
      }
      bool is_component = v.is_object() && v.get_object().contains("$metadata");
      if (is_component) {
        const json::object* prev_c =
            before && before->is_object() ? &before->get_object() : nullptr;
        const json::object* cm = nullptr;
        if (client_meta) {
          if (auto* x = v.get_object().if_contains("$metadata"); x && x->is_object())
            cm = &x->get_object();
        }
        StampMetadata(prev_c, v.get_object(), now, cm);
        continue;
      }
      json::object pm;
      if (!before || *before != v || !old_meta) {
        pm["lastUpdateTime"] = now;
        changed = true;
      } else {
        pm = *old_meta;
      }
      if (client_meta) {
        if (auto* c = client_meta->if_contains(k); c && c->is_object()) {
          if (auto* st = c->get_object().if_contains("sourceTime"); st && st->is_string()) {
            pm["sourceTime"] = *st;
          }
        }
      }
      out[k] = std::move(pm);
    }
    if (prev && !changed) {
      for (auto& [k, v] : *prev) {
        if (!k.starts_with("$") && !next.contains(k)) changed = true;
      }
    }
    const json::value* old_last = prev_meta ? prev_meta->if_contains("$lastUpdateTime") : nullptr;
    out["$lastUpdateTime"] = (changed || !old_last) ? json::value(now) : *old_last;
    next["$metadata"] = std::move(out);
  }

  // --- storage ---

  static std::string RelKey(std::string_view source, std::string_view id) {
    std::string k(source);
    k += kSep;
    k += id;
    return k;
  }

  Status Load() {
    std::lock_guard lock(mu);
    Status failure = Ok();
    auto decode = [&](std::string_view key, std::string_view value, json::object& out) {
      boost::system::error_code ec;
      json::value v = json::parse(value, ec);
      if (ec || !v.is_object()) {
        failure =
            Error(Errc::kCorruptState, fmt::format("stored record '{}' does not decode", key));
        return false;
      }
      out = std::move(v.get_object());
      return true;
    };
    ORRERY_TRY(store->Scan(kTwinSpace, "", [&](std::string_view key, std::string_view value) {
      json::object o;
      if (!decode(key, value, o)) return false;
      auto it = twins.emplace(std::string(key), std::move(o)).first;
      Index(*it, nullptr, &it->second);
      return true;
    }));
    ORRERY_TRY(failure);
    ORRERY_TRY(store->Scan(kRelSpace, "", [&](std::string_view key, std::string_view value) {
      json::object o;
      if (!decode(key, value, o)) return false;
      std::string source = Str(o, "$sourceId"), id = Str(o, "$relationshipId");
      in[Str(o, "$targetId")].emplace(source, id);
      out[source].emplace(id, std::move(o));
      ++relationships;
      return true;
    }));
    return failure;
  }

  // Tells the observer (under the lock, in change order); its outbox record joins `batch`.
  uint64_t Notify(GraphChange::Kind kind, std::string twin_id, std::string rel_id,
                  std::string model_id, json::object data, store::WriteBatch& batch) {
    if (!observer) return 0;
    return observer->OnChange({.kind = kind,
                               .twin_id = std::move(twin_id),
                               .relationship_id = std::move(rel_id),
                               .model_id = std::move(model_id),
                               .data = std::move(data),
                               .time_ms = now_ms()},
                              batch);
  }

  template <class T>
  void Commit(store::WriteBatch batch, T answer, Done<T> done, uint64_t ticket) {
    store->WriteAsync(std::move(batch), [this, ticket, answer = std::move(answer),
                                         done = std::move(done)](Status st) mutable {
      if (observer && ticket) observer->OnCommitted(ticket, st.has_value());
      if (!st) {
        return done(
            Error(Errc::kUnavailable, "the change was not stored: " + st.error().message()));
      }
      done(std::move(answer));
    });
  }
  void CommitVoid(store::WriteBatch batch, Done<void> done, uint64_t ticket) {
    store->WriteAsync(std::move(batch), [this, ticket, done = std::move(done)](Status st) {
      if (observer && ticket) observer->OnCommitted(ticket, st.has_value());
      if (!st)
        return done(
            Error(Errc::kUnavailable, "the change was not stored: " + st.error().message()));
      done(Ok());
    });
  }

  Status CheckSize(const json::object& twin) const {
    size_t n = json::serialize(twin).size();
    if (n > limits.max_twin_bytes) {
      return Invalid(
          fmt::format("the twin is {} bytes; the limit is {}", n, limits.max_twin_bytes));
    }
    return Ok();
  }

  // Validates a twin document (with $metadata.$model) and returns its view.
  Result<std::shared_ptr<const ModelView>> ValidateTwin(const json::object& twin,
                                                        bool creating) const {
    auto* meta = twin.if_contains("$metadata");
    if (!meta || !meta->is_object())
      return Invalid("the twin needs \"$metadata\": {\"$model\": …}");
    std::string model = Str(meta->get_object(), "$model");
    if (model.empty()) return Invalid("the twin needs \"$metadata\": {\"$model\": …}");
    ORRERY_ASSIGN_OR_RETURN(auto view, View(model));
    if (creating && view->decommissioned) {
      return Invalid(fmt::format("model '{}' is decommissioned: new twins cannot use it", model));
    }
    ORRERY_TRY(CheckMembers(view->model, model, twin, "", true));
    ORRERY_TRY(CheckSize(twin));
    return view;
  }

  // Validates a patched twin whose model the patch left alone: only the members `touched` of
  // the twin (`component` empty) or of its component `component`. The size is checked on the
  // stored document.
  Status ValidatePatched(const json::object& twin, const std::string& component,
                         const std::vector<std::string>& touched) const {
    std::string model = ModelOf(twin);
    if (model.empty()) return Invalid("the twin needs \"$metadata\": {\"$model\": …}");
    ORRERY_ASSIGN_OR_RETURN(auto view, View(model));
    const dtdl::Model& m = view->model;
    if (component.empty()) return CheckTouched(m, model, twin, "", true, touched);
    auto ri = m.interfaces.find(model);
    const dtdl::Element* e = nullptr;
    if (ri != m.interfaces.end()) {
      if (auto c = ri->second.contents.find(component); c != ri->second.contents.end())
        e = m.Find(c->second);
    }
    auto* co = twin.if_contains(component);
    if (!e || e->kind != dtdl::Kind::kComponent || !co || !co->is_object()) {
      return CheckMembers(m, model, twin, "", true);  // not a component after all: everything
    }
    return CheckTouched(m, e->schema, co->get_object(), component, false, touched);
  }

  // The current time as ADT writes it; formatted once per millisecond and thread.
  std::string NowText() const {
    thread_local std::pair<int64_t, std::string> last{std::numeric_limits<int64_t>::min(), {}};
    int64_t ms = now_ms();
    if (ms != last.first) last = {ms, timeutil::FormatUtcMs(ms)};
    return last.second;
  }

  // The fast path of a patch whose every operation names a top-level property ("/p", add,
  // replace or remove, no component value): applied to the stored twin in place under the
  // lock — no copy of the twin — after validating the values it sets, with the metadata of
  // the changed properties stamped as StampMetadata would. Returns the change to queue (with the
  // lock still held: the caller commits it) or, having changed nothing, nullopt for any other
  // patch and for any refusal (a missing path, an invalid value, the size limit, the etag):
  // the general path then answers it, with its messages.
  struct InPlace {
    std::unique_lock<std::mutex> lock;  // the graph's, held until the change is queued
    store::WriteBatch batch;            // the twin's new document
    std::string etag;
  };
  std::optional<InPlace> PatchInPlace(const std::string& id, const json::array& patch,
                                      const std::string& if_match, bool parse_model = true) {
    if (patch.empty() || patch.size() > limits.max_patch_operations) return std::nullopt;
    struct Op {
      std::string_view op, key;
      const json::value* value;
    };
    std::vector<Op> ops;
    ops.reserve(patch.size());
    for (const json::value& item : patch) {
      const json::object* o = item.if_object();
      if (!o) return std::nullopt;
      const json::value* op = o->if_contains("op");
      const json::value* path = o->if_contains("path");
      if (!op || !op->is_string() || !path || !path->is_string()) return std::nullopt;
      std::string_view p = path->get_string(), name = op->get_string();
      if (p.size() < 2 || p[0] != '/' || p[1] == '$' ||
          p.find_first_of("/~", 1) != std::string_view::npos) {
        return std::nullopt;
      }
      const json::value* value = o->if_contains("value");
      if (name == "remove") {
        value = nullptr;
      } else if ((name != "add" && name != "replace") || !value ||
                 (value->is_object() && value->get_object().contains("$metadata"))) {
        return std::nullopt;
      }
      ops.push_back({name, p.substr(1), value});
    }
    std::string now = NowText();
    std::string etag = NewEtag();
    std::unique_lock lock(mu);
    auto it = twins.find(id);
    if (it == twins.end()) return std::nullopt;
    // The model's view if it is cached; else it is parsed outside the lock (once).
    std::string model = ModelOf(it->second);
    std::shared_ptr<const ModelView> view = CachedView(model);
    if (!view) {
      lock.unlock();
      if (!parse_model || !View(model)) return std::nullopt;
      return PatchInPlace(id, patch, if_match, false);
    }
    const dtdl::Model& m = view->model;
    auto ri = m.interfaces.find(model);
    if (ri == m.interfaces.end()) return std::nullopt;
    json::object& twin = it->second;
    const json::value* meta_value = twin.if_contains("$metadata");
    if (!meta_value || !meta_value->is_object() || !EtagMatches(if_match, Str(twin, "$etag"))) {
      return std::nullopt;
    }
    // The outcome of the operations in order: each touched key's final value (null: removed).
    std::vector<std::pair<std::string_view, const json::value*>> final;
    for (const Op& op : ops) {
      auto f = std::find_if(final.begin(), final.end(), [&](auto& x) { return x.first == op.key; });
      bool exists = f != final.end() ? f->second != nullptr : twin.contains(op.key);
      if (op.op != "add" && !exists) return std::nullopt;
      if (f == final.end()) f = final.insert(final.end(), {op.key, nullptr});
      f->second = op.value;
    }
    for (auto& [k, v] : final) {
      if (v ? !CheckMember(m, model, ri, k, *v, "", true)
            : ri->second.components.contains(std::string(k))) {
        return std::nullopt;
      }
    }
    // Apply, keeping what it replaces.
    struct Undo {
      std::string_view key;
      bool changed = false;
      std::optional<json::value> value, meta;
    };
    std::vector<Undo> undo(final.size());
    bool changed = false;
    for (size_t i = 0; i < final.size(); ++i) {
      auto [k, v] = final[i];
      Undo& u = undo[i];
      u.key = k;
      json::value* cur = twin.if_contains(k);
      if (!v && !cur) continue;  // added, then removed
      // (The metadata is looked up each time: an insertion may move the twin's table.)
      const json::value* cur_meta = twin.at("$metadata").get_object().if_contains(k);
      bool has_meta = cur_meta && cur_meta->is_object();
      if (v && cur && *cur == *v && has_meta) continue;  // the same value: no change
      u.changed = changed = true;
      if (cur) u.value = std::move(*cur);
      if (v) {
        twin[k] = *v;
      } else {
        twin.erase(k);
      }
    }
    json::object& meta = twin["$metadata"].as_object();  // the twin's table may have moved
    std::optional<json::value> last_update;
    if (const json::value* l = meta.if_contains("$lastUpdateTime")) last_update = *l;
    bool meta_grew = false;
    for (Undo& u : undo) {
      if (!u.changed) continue;
      json::value* cur_meta = meta.if_contains(u.key);
      if (cur_meta) u.meta = std::move(*cur_meta);
      if (!twin.contains(u.key)) {
        meta.erase(u.key);
        continue;
      }
      json::object pm;
      pm["lastUpdateTime"] = now;
      if (u.meta && u.meta->is_object()) {
        if (auto* st = u.meta->get_object().if_contains("sourceTime"); st && st->is_string())
          pm["sourceTime"] = *st;
      }
      meta_grew = meta_grew || !cur_meta;
      meta[u.key] = std::move(pm);
    }
    if (changed || !last_update) {
      if (meta_grew) meta.erase("$lastUpdateTime");  // kept last
      meta["$lastUpdateTime"] = now;
    }
    json::value old_etag = twin["$etag"];
    twin["$etag"] = etag;
    std::string text = json::serialize(twin);
    if (text.size() > limits.max_twin_bytes) {
      // Undo, for the general path to refuse with its message.
      twin["$etag"] = std::move(old_etag);
      json::object& md = twin["$metadata"].as_object();
      if (last_update) {
        md["$lastUpdateTime"] = std::move(*last_update);
      } else {
        md.erase("$lastUpdateTime");
      }
      for (Undo& u : undo) {
        if (!u.changed) continue;
        if (u.meta) {
          md[u.key] = std::move(*u.meta);
        } else {
          md.erase(u.key);
        }
      }
      for (Undo& u : undo) {
        if (!u.changed) continue;
        if (u.value) {
          twin[u.key] = std::move(*u.value);
        } else {
          twin.erase(u.key);
        }
      }
      return std::nullopt;
    }
    for (Undo& u : undo) {
      if (u.changed)
        IndexMember(*it, u.key, u.value ? &*u.value : nullptr, twin.if_contains(u.key));
    }
    InPlace out{std::move(lock), {}, std::move(etag)};
    out.batch.Put(kTwinSpace, id, text);
    return out;
  }
};

TwinGraph::TwinGraph(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TwinGraph::~TwinGraph() = default;

void TwinGraph::SetObserver(ChangeObserver* observer) {
  std::lock_guard lock(impl_->mu);
  impl_->observer = observer;
}

Result<std::unique_ptr<TwinGraph>> TwinGraph::Open(store::KvStore* store, const ModelStore* models,
                                                   TwinLimits limits,
                                                   std::function<int64_t()> now_ms) {
  auto impl = std::make_unique<Impl>();
  impl->store = store;
  impl->models = models;
  impl->limits = limits;
  impl->now_ms = std::move(now_ms);
  ORRERY_TRY(impl->Load());
  return std::unique_ptr<TwinGraph>(new TwinGraph(std::move(impl)));
}

void TwinGraph::PutTwin(std::string id, json::object body, std::string if_none_match,
                        Done<json::object> done) {
  auto& d = *impl_;
  if (auto st = CheckId(id, "twin"); !st) return done(st.error());
  // Validation parses models: before the lock.
  body.erase("$etag");
  body["$dtId"] = id;
  auto view = d.ValidateTwin(body, true);
  if (!view) return done(view.error());
  std::unique_lock lock(d.mu);
  auto it = d.twins.find(id);
  if (it != d.twins.end() && if_none_match == "*") {
    lock.unlock();
    return done(Error(Errc::kPreconditionFailed, fmt::format("twin '{}' exists already", id)));
  }
  if (it == d.twins.end() && d.twins.size() >= d.limits.max_twins) {
    lock.unlock();
    return done(Error(Errc::kLimitExceeded,
                      fmt::format("the graph holds {} twins, the limit", d.limits.max_twins)));
  }
  json::object client_meta = body["$metadata"].as_object();
  std::string now = timeutil::FormatUtcMs(d.now_ms());
  Impl::StampMetadata(it == d.twins.end() ? nullptr : &it->second, body, now, &client_meta);
  body["$etag"] = NewEtag();
  // Key order as ADT writes it: $dtId, $etag, then the rest.
  json::object twin{{"$dtId", id}, {"$etag", body["$etag"]}};
  for (auto& [k, v] : body) {
    if (k != "$dtId" && k != "$etag") twin[k] = v;
  }
  store::WriteBatch batch;
  batch.Put(kTwinSpace, id, json::serialize(twin));
  uint64_t ticket = 0;
  bool fresh = it == d.twins.end();
  if (d.observer) {
    std::string model = Impl::ModelOf(twin);
    if (fresh) {
      ticket = d.Notify(GraphChange::Kind::kTwinCreate, id, "", model, twin, batch);
    } else {
      json::array ops;
      DiffTwin(it->second, twin, "", ops);
      ticket =
          d.Notify(GraphChange::Kind::kTwinUpdate, id, "", model, UpdateData(model, ops), batch);
    }
  }
  if (fresh) it = d.twins.emplace(id, json::object()).first;
  d.Index(*it, fresh ? nullptr : &it->second, &twin);
  it->second = twin;
  d.Commit(std::move(batch), std::move(twin), std::move(done), ticket);
}

Result<json::object> TwinGraph::GetTwin(std::string_view id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->twins.find(id);
  if (it == impl_->twins.end()) {
    return Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", id));
  }
  return it->second;
}

namespace {
// The part of a twin a patch may change at `component` ("" = the twin itself).
Status AllowTwinPath(const std::vector<std::string>& t, bool component) {
  if (t.empty()) return Error(Errc::kJsonPatchInvalid, "the whole twin cannot be patched");
  if (t[0].starts_with("$")) {
    if (!component && t.size() == 2 && t[0] == "$metadata" && t[1] == "$model") return Ok();
    if (t[0] == "$metadata" && t.size() == 3 && t[2] == "sourceTime") return Ok();
    return Error(Errc::kJsonPatchInvalid,
                 fmt::format("'/{}' cannot be patched (properties, components and "
                             "/$metadata/$model can)",
                             fmt::join(t, "/")));
  }
  return Ok();
}
}  // namespace

void TwinGraph::PatchTwin(std::string id, json::array patch, std::string if_match,
                          Done<std::string> done) {
  PatchComponent(std::move(id), "", std::move(patch), std::move(if_match), std::move(done));
}

void TwinGraph::PatchComponent(std::string id, std::string component, json::array patch,
                               std::string if_match, Done<std::string> done) {
  auto& d = *impl_;
  if (component.empty()) {
    if (auto in_place = d.PatchInPlace(id, patch, if_match)) {
      // Applied; queued while the graph's lock is held, as below.
      uint64_t ticket = 0;
      if (d.observer) {
        std::string model = Impl::ModelOf(d.twins.find(id)->second);
        ticket = d.Notify(GraphChange::Kind::kTwinUpdate, id, "", model,
                          UpdateData(model, NotifiedPatch(patch, "")), in_place->batch);
      }
      d.Commit(std::move(in_place->batch), std::move(in_place->etag), std::move(done), ticket);
      return;
    }
  }
  // One copy of the stored twin, patched outside the lock; the change is applied under it
  // if the twin has not changed meanwhile.
  json::value doc;
  std::string etag;
  {
    std::unique_lock lock(d.mu);
    auto it = d.twins.find(id);
    if (it == d.twins.end()) {
      lock.unlock();
      return done(
          Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", id)));
    }
    etag = Str(it->second, "$etag");
    if (!EtagMatches(if_match, etag)) {
      lock.unlock();
      return done(Error(Errc::kPreconditionFailed, "If-Match does not match the twin's etag"));
    }
    doc = it->second;
  }
  json::value* target = &doc;
  if (!component.empty()) {
    auto* c = doc.get_object().if_contains(component);
    if (!c || !c->is_object() || !c->get_object().contains("$metadata")) {
      return done(Error(Errc::kComponentNotFound,
                        fmt::format("twin '{}' has no component '{}'", id, component)));
    }
    target = c;
  }
  // Client-set sourceTimes live in $metadata/<prop>/sourceTime; StampMetadata reads them.
  std::vector<std::string> touched;  // members of `target` the patch changes
  bool model_changed = false;
  auto st =
      ApplyPatch(*target, patch, d.limits.max_patch_operations,
                 [&](const std::vector<std::string>& t) -> Status {
                   ORRERY_TRY(AllowTwinPath(t, !component.empty()));
                   if (t[0] == "$metadata") {
                     model_changed = model_changed || t.size() == 2;  // /$metadata/$model
                   } else if (std::find(touched.begin(), touched.end(), t[0]) == touched.end()) {
                     touched.push_back(t[0]);
                   }
                   return Ok();
                 });
  if (!st) return done(st.error());
  auto& next = doc.get_object();
  next["$dtId"] = id;
  if (model_changed) {
    auto view = d.ValidateTwin(next, false);  // another model: the whole twin
    if (!view) return done(view.error());
  } else if (auto valid = d.ValidatePatched(next, component, touched); !valid) {
    return done(valid.error());
  }
  std::string now = d.NowText();
  std::string new_etag = NewEtag();
  std::unique_lock lock(d.mu);
  auto it = d.twins.find(id);
  if (it == d.twins.end() || Str(it->second, "$etag") != etag) {
    // Changed or deleted meanwhile: the caller's view is stale.
    lock.unlock();
    return done(
        Error(Errc::kPreconditionFailed, "the twin changed while the patch was applied; retry"));
  }
  const json::value* client_meta = next.if_contains("$metadata");
  Impl::StampMetadata(
      &it->second, next, now,
      client_meta && client_meta->is_object() ? &client_meta->get_object() : nullptr);
  next["$etag"] = new_etag;
  std::string text = json::serialize(next);
  if (text.size() > d.limits.max_twin_bytes) {
    lock.unlock();
    return done(Invalid(fmt::format("the twin is {} bytes; the limit is {}", text.size(),
                                    d.limits.max_twin_bytes)));
  }
  store::WriteBatch batch;
  batch.Put(kTwinSpace, id, text);
  uint64_t ticket = 0;
  if (d.observer) {
    std::string model = Impl::ModelOf(next);
    ticket = d.Notify(GraphChange::Kind::kTwinUpdate, id, "", model,
                      UpdateData(model, NotifiedPatch(patch, component)), batch);
  }
  d.Index(*it, &it->second, &next);
  it->second = std::move(next);
  d.Commit(std::move(batch), std::move(new_etag), std::move(done), ticket);
}

void TwinGraph::DeleteTwin(std::string id, std::string if_match, Done<void> done) {
  auto& d = *impl_;
  std::unique_lock lock(d.mu);
  auto it = d.twins.find(id);
  if (it == d.twins.end()) {
    lock.unlock();
    return done(
        Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", id)));
  }
  if (!EtagMatches(if_match, Str(it->second, "$etag"))) {
    lock.unlock();
    return done(Error(Errc::kPreconditionFailed, "If-Match does not match the twin's etag"));
  }
  auto o = d.out.find(id);
  auto i = d.in.find(id);
  size_t n_out = o == d.out.end() ? 0 : o->second.size();
  size_t n_in = i == d.in.end() ? 0 : i->second.size();
  if (n_out + n_in > 0) {
    lock.unlock();
    return done(Error(Errc::kRelationshipsNotDeleted,
                      fmt::format("twin '{}' has {} outgoing and {} incoming relationships: delete "
                                  "them first",
                                  id, n_out, n_in)));
  }
  store::WriteBatch batch;
  batch.Delete(kTwinSpace, id);
  uint64_t ticket = d.Notify(GraphChange::Kind::kTwinDelete, id, "", Impl::ModelOf(it->second),
                             it->second, batch);
  d.Index(*it, &it->second, nullptr);
  d.twins.erase(it);
  d.CommitVoid(std::move(batch), std::move(done), ticket);
}

Result<json::object> TwinGraph::GetComponent(std::string_view id,
                                             std::string_view component) const {
  ORRERY_ASSIGN_OR_RETURN(json::object twin, GetTwin(id));
  auto* c = twin.if_contains(component);
  if (!c || !c->is_object() || !c->get_object().contains("$metadata")) {
    return Error(Errc::kComponentNotFound,
                 fmt::format("twin '{}' has no component '{}'", id, component));
  }
  return c->get_object();
}

void TwinGraph::PutRelationship(std::string source, std::string rel_id, json::object body,
                                std::string if_none_match, Done<json::object> done) {
  auto& d = *impl_;
  if (auto st = CheckId(source, "twin"); !st) return done(st.error());
  if (auto st = CheckId(rel_id, "relationship"); !st) return done(st.error());
  std::string name = Str(body, "$relationshipName"), target = Str(body, "$targetId");
  if (name.empty() || target.empty()) {
    return done(Invalid("a relationship needs \"$relationshipName\" and \"$targetId\""));
  }
  std::string src_model, dst_model;  // all validation needs of the twins
  {
    std::lock_guard lock(d.mu);
    auto s = d.twins.find(source);
    if (s == d.twins.end()) {
      return done(
          Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", source)));
    }
    auto t = d.twins.find(target);
    if (t == d.twins.end()) {
      return done(Invalid(fmt::format("the target twin '{}' does not exist", target)));
    }
    src_model = Impl::ModelOf(s->second);
    dst_model = Impl::ModelOf(t->second);
  }
  auto view = d.View(src_model);
  if (!view) return done(view.error());
  const auto& m = (*view)->model;
  auto ri = m.interfaces.find(src_model);
  const dtdl::Element* rel = nullptr;
  if (ri != m.interfaces.end()) {
    if (auto c = ri->second.contents.find(name); c != ri->second.contents.end())
      rel = m.Find(c->second);
  }
  if (!rel || rel->kind != dtdl::Kind::kRelationship) {
    return done(Invalid(fmt::format("'{}' is not a relationship of {}", name, src_model)));
  }
  if (!rel->target.empty() && rel->target != dst_model) {
    auto tv = d.View(dst_model);
    bool ok = false;
    if (tv) {
      auto tri = (*tv)->model.interfaces.find(dst_model);
      ok = tri != (*tv)->model.interfaces.end() &&
           std::find(tri->second.ancestors.begin(), tri->second.ancestors.end(), rel->target) !=
               tri->second.ancestors.end();
    }
    if (!ok) {
      return done(Invalid(fmt::format("relationship '{}' must target a twin of {}; '{}' is a {}",
                                      name, rel->target, target, dst_model)));
    }
  }
  for (auto& [k, v] : body) {
    if (k.starts_with("$")) {
      if (k == "$relationshipName" || k == "$targetId" || k == "$relationshipId" ||
          k == "$sourceId" || k == "$etag") {
        continue;
      }
      return done(Invalid(fmt::format("'{}' is not allowed in a relationship", k)));
    }
    const dtdl::Element* prop = nullptr;
    for (auto& p_id : rel->properties) {
      auto* p = m.Find(p_id);
      if (p && p->name == k) prop = p;
    }
    if (!prop)
      return done(Invalid(fmt::format("'{}' is not a property of relationship '{}'", k, name)));
    if (auto st = d.CheckValue(m, prop->schema, v, name + "." + std::string(k), 0); !st) {
      return done(st.error());
    }
  }
  json::object r{{"$relationshipId", rel_id},
                 {"$etag", NewEtag()},
                 {"$sourceId", source},
                 {"$relationshipName", name},
                 {"$targetId", target}};
  for (auto& [k, v] : body) {
    if (!k.starts_with("$")) r[k] = v;
  }
  if (json::serialize(r).size() > d.limits.max_twin_bytes) {
    return done(
        Invalid(fmt::format("the relationship is larger than {} bytes", d.limits.max_twin_bytes)));
  }
  std::unique_lock lock(d.mu);
  if (!d.twins.contains(source) || !d.twins.contains(target)) {
    lock.unlock();
    return done(Invalid("the source or target twin was deleted meanwhile"));
  }
  auto& mine = d.out[source];
  auto existing = mine.find(rel_id);
  if (existing != mine.end() && if_none_match == "*") {
    lock.unlock();
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("relationship '{}' of '{}' exists already", rel_id, source)));
  }
  json::object before;  // the replaced relationship, for the update notification
  if (existing != mine.end()) before = existing->second;
  bool creating = existing == mine.end();
  if (existing == mine.end()) {
    size_t same_name = 0;
    if (rel->max_multiplicity) {
      for (auto& [rid, o] : mine) {
        auto* n = o.if_contains("$relationshipName");
        same_name += n && n->is_string() && n->get_string() == name;
      }
    }
    std::string why;
    if (rel->max_multiplicity && static_cast<int64_t>(same_name) >= *rel->max_multiplicity) {
      why = fmt::format("'{}' allows at most {} relationships named '{}'", src_model,
                        *rel->max_multiplicity, name);
    } else if (mine.size() >= d.limits.max_outgoing) {
      why = fmt::format("twin '{}' has {} outgoing relationships, the limit", source,
                        d.limits.max_outgoing);
    } else if (d.in[target].size() >= d.limits.max_incoming) {
      why = fmt::format("twin '{}' has {} incoming relationships, the limit", target,
                        d.limits.max_incoming);
    } else if (d.relationships >= d.limits.max_relationships) {
      why = fmt::format("the graph holds {} relationships, the limit", d.limits.max_relationships);
    }
    if (!why.empty()) {
      if (mine.empty()) d.out.erase(source);
      lock.unlock();
      return done(Error(Errc::kLimitExceeded, why));
    }
    ++d.relationships;
  } else {
    d.in[Str(existing->second, "$targetId")].erase({source, rel_id});
  }
  d.in[target].emplace(source, rel_id);
  mine[rel_id] = r;
  store::WriteBatch batch;
  batch.Put(kRelSpace, Impl::RelKey(source, rel_id), json::serialize(r));
  uint64_t ticket = 0;
  if (d.observer) {
    if (creating) {
      ticket =
          d.Notify(GraphChange::Kind::kRelationshipCreate, source, rel_id, src_model, r, batch);
    } else {
      json::array ops;
      DiffMembers(before, r, "", ops);
      ticket = d.Notify(GraphChange::Kind::kRelationshipUpdate, source, rel_id, src_model,
                        UpdateData(src_model, ops), batch);
    }
  }
  d.Commit(std::move(batch), std::move(r), std::move(done), ticket);
}

Result<json::object> TwinGraph::GetRelationship(std::string_view source,
                                                std::string_view rel_id) const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->twins.contains(source)) {
    return Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", source));
  }
  auto o = impl_->out.find(source);
  if (o != impl_->out.end()) {
    if (auto r = o->second.find(rel_id); r != o->second.end()) return r->second;
  }
  return Error(Errc::kRelationshipNotFound,
               fmt::format("twin '{}' has no relationship '{}'", source, rel_id));
}

void TwinGraph::PatchRelationship(std::string source, std::string rel_id, json::array patch,
                                  std::string if_match, Done<std::string> done) {
  auto current = GetRelationship(source, rel_id);
  if (!current) return done(current.error());
  if (!EtagMatches(if_match, Str(*current, "$etag"))) {
    return done(
        Error(Errc::kPreconditionFailed, "If-Match does not match the relationship's etag"));
  }
  json::value doc = *current;
  auto st = ApplyPatch(doc, patch, impl_->limits.max_patch_operations,
                       [](const std::vector<std::string>& t) -> Status {
                         if (!t.empty() && t[0].starts_with("$")) {
                           return Error(Errc::kJsonPatchInvalid,
                                        fmt::format("'/{}' cannot be patched (only properties can)",
                                                    fmt::join(t, "/")));
                         }
                         return Ok();
                       });
  if (!st) return done(st.error());
  // Re-validate through PutRelationship's checks; the etag check there is ours.
  PutRelationship(std::move(source), std::move(rel_id), std::move(doc.get_object()), "",
                  [done = std::move(done)](Result<json::object> r) {
                    if (!r) return done(r.error());
                    done(Str(*r, "$etag"));
                  });
}

void TwinGraph::DeleteRelationship(std::string source, std::string rel_id, std::string if_match,
                                   Done<void> done) {
  auto& d = *impl_;
  std::unique_lock lock(d.mu);
  if (!d.twins.contains(source)) {
    lock.unlock();
    return done(
        Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", source)));
  }
  auto o = d.out.find(source);
  if (o == d.out.end() || !o->second.contains(rel_id)) {
    lock.unlock();
    return done(Error(Errc::kRelationshipNotFound,
                      fmt::format("twin '{}' has no relationship '{}'", source, rel_id)));
  }
  auto r = o->second.find(rel_id);
  if (!EtagMatches(if_match, Str(r->second, "$etag"))) {
    lock.unlock();
    return done(
        Error(Errc::kPreconditionFailed, "If-Match does not match the relationship's etag"));
  }
  std::string target = Str(r->second, "$targetId");
  store::WriteBatch batch;
  batch.Delete(kRelSpace, Impl::RelKey(source, rel_id));
  uint64_t ticket = d.Notify(GraphChange::Kind::kRelationshipDelete, source, rel_id,
                             Impl::ModelOf(d.twins.find(source)->second), r->second, batch);
  if (auto i = d.in.find(target); i != d.in.end()) {
    i->second.erase({source, rel_id});
    if (i->second.empty()) d.in.erase(i);
  }
  o->second.erase(r);
  if (o->second.empty()) d.out.erase(o);
  --d.relationships;
  d.CommitVoid(std::move(batch), std::move(done), ticket);
}

Result<std::vector<json::object>> TwinGraph::ListRelationships(std::string_view source,
                                                               std::string_view name,
                                                               std::string_view after,
                                                               size_t max) const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->twins.contains(source)) {
    return Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", source));
  }
  std::vector<json::object> out;
  auto o = impl_->out.find(source);
  if (o == impl_->out.end()) return out;
  for (auto it = o->second.upper_bound(after); it != o->second.end() && out.size() < max; ++it) {
    if (name.empty() || Str(it->second, "$relationshipName") == name) out.push_back(it->second);
  }
  return out;
}

std::string TwinGraph::IncomingKey(const json::object& entry) {
  return Impl::RelKey(Str(entry, "$sourceId"), Str(entry, "$relationshipId"));
}

Result<std::vector<json::object>> TwinGraph::ListIncoming(std::string_view target,
                                                          std::string_view after,
                                                          size_t max) const {
  std::lock_guard lock(impl_->mu);
  if (!impl_->twins.contains(target)) {
    return Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", target));
  }
  std::vector<json::object> out;
  auto i = impl_->in.find(target);
  if (i == impl_->in.end()) return out;
  auto sep = after.find(kSep);
  std::pair<std::string, std::string> from{
      std::string(after.substr(0, sep)),
      sep == std::string_view::npos ? "" : std::string(after.substr(sep + 1))};
  auto it = after.empty() ? i->second.begin() : i->second.upper_bound(from);
  for (; it != i->second.end() && out.size() < max; ++it) {
    auto& r = impl_->out.at(it->first).at(it->second);
    out.push_back(
        json::object{{"$relationshipId", it->second},
                     {"$sourceId", it->first},
                     {"$relationshipName", r.at("$relationshipName")},
                     {"$relationshipLink",
                      fmt::format("/digitaltwins/{}/relationships/{}",
                                  strings::UrlEncode(it->first), strings::UrlEncode(it->second))}});
  }
  return out;
}

namespace {
// GraphView over the graph's maps; the caller holds the graph's lock.
class LockedView final : public GraphView {
 public:
  explicit LockedView(const TwinGraph::Impl& d) : d_(d) {}
  void ForEachTwin(const Visit& visit) const override {
    for (auto& [id, t] : d_.twins) {
      if (!visit(t)) return;
    }
  }
  void ForEachTwinOfModel(std::string_view model, bool exact, const Visit& visit) const override {
    // The models the graph's twins use are few: pick those that are of `model`, then merge
    // their (sorted) id sets so the visit stays in $dtId order.
    std::vector<const std::set<std::string, std::less<>>*> sets;
    for (auto& [m, ids] : d_.by_model) {
      if (IsOfModel(m, model, exact)) sets.push_back(&ids);
    }
    if (sets.size() == 1) {
      for (auto& id : *sets[0]) {
        if (!visit(d_.twins.at(id))) return;
      }
      return;
    }
    std::set<std::string_view> ids;
    for (auto* s : sets)
      ids.insert(s->begin(), s->end());
    for (auto id : ids) {
      if (!visit(d_.twins.find(id)->second)) return;
    }
  }
  const json::object* Twin(std::string_view id) const override {
    auto it = d_.twins.find(id);
    return it == d_.twins.end() ? nullptr : &it->second;
  }
  std::optional<size_t> CountTwinsOfModel(std::string_view model, bool exact) const override {
    size_t n = 0;
    for (auto& [m, ids] : d_.by_model) {
      if (IsOfModel(m, model, exact)) n += ids.size();
    }
    return n;
  }
  bool ForEachTwinByProperty(const PropertyFilter& f, const Visit& visit) const override {
    std::vector<const TwinGraph::Impl::TwinEntry*> hits;
    d_.ScanIndex(f, [&](const TwinGraph::Impl::TwinEntry* t) {
      hits.push_back(t);
      return true;
    });
    std::sort(hits.begin(), hits.end(), [](auto* a, auto* b) { return a->first < b->first; });
    hits.erase(std::unique(hits.begin(), hits.end()), hits.end());
    for (auto* t : hits) {
      if (!visit(t->second)) break;
    }
    return true;
  }
  std::optional<size_t> CountTwinsByProperty(const PropertyFilter& f, size_t cap) const override {
    size_t n = 0;
    if (cap == 0) return 0;
    d_.ScanIndex(f, [&](const TwinGraph::Impl::TwinEntry*) { return ++n < cap; });
    return n;
  }
  void ForEachRelationship(const Visit& visit) const override {
    for (auto& [src, rels] : d_.out) {
      for (auto& [id, r] : rels) {
        if (!visit(r)) return;
      }
    }
  }
  void ForEachOutgoing(std::string_view source, std::string_view name,
                       const Visit& visit) const override {
    auto o = d_.out.find(source);
    if (o == d_.out.end()) return;
    for (auto& [id, r] : o->second) {
      if (!name.empty() && Str(r, "$relationshipName") != name) continue;
      if (!visit(r)) return;
    }
  }
  void ForEachIncoming(std::string_view target, std::string_view name,
                       const Visit& visit) const override {
    auto i = d_.in.find(target);
    if (i == d_.in.end()) return;
    for (auto& [src, id] : i->second) {
      auto& r = d_.out.at(src).at(id);
      if (!name.empty() && Str(r, "$relationshipName") != name) continue;
      if (!visit(r)) return;
    }
  }
  bool IsOfModel(std::string_view twin_model, std::string_view model, bool exact) const override {
    if (twin_model == model) return true;
    if (exact) return false;
    auto view = d_.View(twin_model);
    if (!view) return false;
    auto ri = (*view)->model.interfaces.find(std::string(twin_model));
    if (ri == (*view)->model.interfaces.end()) return false;
    return std::find(ri->second.ancestors.begin(), ri->second.ancestors.end(), model) !=
           ri->second.ancestors.end();
  }

 private:
  const TwinGraph::Impl& d_;
};
}  // namespace

void TwinGraph::Read(const std::function<void(const GraphView&)>& f) const {
  std::lock_guard lock(impl_->mu);
  LockedView view(*impl_);
  f(view);
}

Result<std::string> TwinGraph::ModelOf(std::string_view id) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->twins.find(id);
  if (it == impl_->twins.end()) {
    return Error(Errc::kDigitalTwinNotFound, fmt::format("there is no digital twin '{}'", id));
  }
  return Impl::ModelOf(it->second);
}

Result<std::string> TwinGraph::ComponentModel(std::string_view id,
                                              std::string_view component) const {
  ORRERY_ASSIGN_OR_RETURN(std::string model, ModelOf(id));
  ORRERY_ASSIGN_OR_RETURN(auto view, impl_->View(model));
  auto ri = view->model.interfaces.find(model);
  if (ri != view->model.interfaces.end()) {
    for (auto& [name, iface] : ri->second.components) {
      if (name == component) return iface;
    }
  }
  return Error(Errc::kComponentNotFound,
               fmt::format("twin '{}' ({}) has no component '{}'", id, model, component));
}

size_t TwinGraph::twin_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->twins.size();
}

size_t TwinGraph::relationship_count() const {
  std::lock_guard lock(impl_->mu);
  return impl_->relationships;
}

}  // namespace orrery::twins
