#include "twins/model_store.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

#include "base/time.h"
#include "dtdl/parser.h"
#include "twins/errc.h"

namespace orrery::twins {

namespace json = boost::json;

namespace {
constexpr std::string_view kSpace = "dt.model";
constexpr size_t kMaxDetails = 100;  // DTDL errors reported per failed upload

dtdl::LangMap ReadLangMap(const json::object& o, std::string_view key) {
  dtdl::LangMap m;
  auto* v = o.if_contains(key);
  if (!v) return m;
  if (v->is_string()) {
    m["en"] = std::string(v->get_string());
  } else if (v->is_object()) {
    for (auto& [lang, text] : v->get_object()) {
      if (text.is_string()) m[std::string(lang)] = std::string(text.get_string());
    }
  }
  return m;
}

json::object LangMapJson(const dtdl::LangMap& m) {
  json::object o;
  for (auto& [lang, text] : m)
    o[lang] = text;
  return o;
}

json::array StringsJson(const std::vector<std::string>& v) {
  json::array a;
  for (auto& s : v)
    a.emplace_back(s);
  return a;
}

std::vector<std::string> JsonStrings(const json::value* v) {
  std::vector<std::string> out;
  if (!v || !v->is_array()) return out;
  for (auto& s : v->get_array()) {
    if (s.is_string()) out.emplace_back(s.get_string());
  }
  return out;
}

std::string Encode(const ModelRecord& r) {
  json::object o;
  o["id"] = r.id;
  o["model"] = r.definition;
  o["uploadTime"] = r.upload_time_ms;
  o["decommissioned"] = r.decommissioned;
  o["dependencies"] = StringsJson(r.dependencies);
  return json::serialize(o);
}

// The top-level element an element belongs to.
const std::string& RootOf(const dtdl::Model& m, const std::string& id) {
  const std::string* cur = &id;
  for (int depth = 0; depth < 1000; ++depth) {  // parents form a tree; the bound is a guard
    auto* e = m.Find(*cur);
    if (!e || e->parent.empty()) return *cur;
    cur = &e->parent;
  }
  return *cur;
}

void ForEachReference(const dtdl::Element& e, const std::function<void(const std::string&)>& f) {
  for (const std::string* s : {&e.schema, &e.element_schema, &e.map_key, &e.map_value,
                               &e.value_schema, &e.request, &e.response}) {
    if (!s->empty()) f(*s);
  }
  for (const auto* list :
       {&e.extends, &e.contents, &e.schemas, &e.fields, &e.enum_values, &e.properties}) {
    for (auto& s : *list)
      f(s);
  }
}
}  // namespace

ModelStore::ModelStore(store::KvStore* store, ModelLimits limits, std::function<int64_t()> now_ms)
    : store_(store), limits_(limits), now_ms_(std::move(now_ms)) {}

Result<std::unique_ptr<ModelStore>> ModelStore::Open(store::KvStore* store, ModelLimits limits,
                                                     std::function<int64_t()> now_ms) {
  std::unique_ptr<ModelStore> s(new ModelStore(store, limits, std::move(now_ms)));
  ORRERY_TRY(s->Load());
  return s;
}

Status ModelStore::Load() {
  std::lock_guard lock(mu_);
  Status failure = Ok();
  ORRERY_TRY(store_->Scan(kSpace, "", [&](std::string_view key, std::string_view value) {
    boost::system::error_code ec;
    json::value v = json::parse(value, ec);
    if (ec || !v.is_object() || !v.get_object().contains("model")) {
      failure = Error(Errc::kCorruptState, fmt::format("stored model '{}' does not decode", key));
      return false;
    }
    auto& o = v.get_object();
    ModelRecord r;
    r.id = std::string(key);
    r.definition = o["model"];
    if (r.definition.is_object()) {
      r.display_name = ReadLangMap(r.definition.get_object(), "displayName");
      r.description = ReadLangMap(r.definition.get_object(), "description");
    }
    if (auto* t = o.if_contains("uploadTime"); t && t->is_int64()) r.upload_time_ms = t->as_int64();
    if (auto* d = o.if_contains("decommissioned"); d && d->is_bool())
      r.decommissioned = d->get_bool();
    r.dependencies = JsonStrings(o.if_contains("dependencies"));
    for (auto& d : r.dependencies)
      dependents_[d].push_back(r.id);
    models_.emplace(r.id, std::move(r));
    return true;
  }));
  return failure;
}

Result<std::vector<ModelRecord>> ModelStore::Add(const std::vector<json::value>& models,
                                                 std::vector<std::string>* details) {
  if (models.empty()) return Error(Errc::kInvalidArgument, "the request holds no models");
  if (models.size() > limits_.max_batch) {
    return Error(Errc::kLimitExceeded, fmt::format("{} models in one upload; the limit is {}",
                                                   models.size(), limits_.max_batch));
  }
  std::vector<std::string> texts, ids;
  std::set<std::string> batch_ids;
  for (size_t i = 0; i < models.size(); ++i) {
    auto& m = models[i];
    auto* id = m.is_object() ? m.get_object().if_contains("@id") : nullptr;
    if (!id || !id->is_string()) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("model {} of the upload is not an Interface object with an @id", i));
    }
    std::string text = json::serialize(m);
    if (text.size() > limits_.max_model_bytes) {
      return Error(Errc::kLimitExceeded,
                   fmt::format("model '{}' is {} bytes; the limit is {}", id->get_string(),
                               text.size(), limits_.max_model_bytes));
    }
    if (!batch_ids.emplace(id->get_string()).second) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("model '{}' appears twice in the upload", id->get_string()));
    }
    ids.emplace_back(id->get_string());
    texts.push_back(std::move(text));
  }

  std::lock_guard lock(mu_);
  std::vector<std::string> existing;
  for (auto& id : ids) {
    if (models_.contains(id)) existing.push_back(id);
  }
  if (!existing.empty()) {
    return Error(
        Errc::kModelAlreadyExists,
        fmt::format("a model with the same id already exists: {}", fmt::join(existing, ", ")));
  }
  if (models_.size() + ids.size() > limits_.max_models) {
    return Error(Errc::kLimitExceeded,
                 fmt::format("{} models are stored and {} more were sent; the limit is {}",
                             models_.size(), ids.size(), limits_.max_models));
  }

  // References to stored models resolve through their definitions (mu_ is held).
  dtdl::ParseOptions options;
  options.resolver = [this](const std::vector<std::string>& wanted) {
    std::vector<std::string> out;
    for (auto& w : wanted) {
      if (auto it = models_.find(w); it != models_.end()) {
        out.push_back(json::serialize(it->second.definition));
      }
    }
    return out;
  };
  dtdl::ParseResult parsed = dtdl::Parse(texts, options);
  if (!parsed.ok()) {
    bool version = false;
    std::vector<std::string> lines;
    for (auto& e : parsed.errors) {
      if (e.validation_id.ends_with(":disallowedContextVersion")) version = true;
      if (lines.size() < kMaxDetails) {
        lines.push_back(e.primary_id.empty()
                            ? fmt::format("{}: {}", e.validation_id, e.message)
                            : fmt::format("{}: {} [{}]", e.validation_id, e.message, e.primary_id));
      }
    }
    for (auto& u : parsed.unresolved) {
      if (lines.size() < kMaxDetails) {
        lines.push_back(
            fmt::format("unresolved reference: {} is neither in the upload nor a stored model", u));
      }
    }
    std::string summary =
        lines.empty() ? std::string("the models are not valid DTDL") : lines.front();
    if (lines.size() > 1)
      summary += fmt::format(" (and {} more)", parsed.errors.size() + parsed.unresolved.size() - 1);
    if (details) *details = std::move(lines);
    return Error(version ? Errc::kModelVersionNotSupported : Errc::kDtdlParserError, summary);
  }

  // Dependencies of each uploaded Interface, from the parsed model.
  std::map<std::string, std::set<std::string>> deps;
  for (auto& [eid, e] : parsed.model.elements) {
    const std::string& root = RootOf(parsed.model, eid);
    if (!batch_ids.contains(root)) continue;
    ForEachReference(e, [&](const std::string& ref) {
      const std::string& target_root = RootOf(parsed.model, ref);
      auto* t = parsed.model.Find(target_root);
      if (target_root != root && t && t->kind == dtdl::Kind::kInterface) {
        deps[root].insert(target_root);
      }
    });
  }

  int64_t now = now_ms_();
  std::vector<ModelRecord> added;
  store::WriteBatch batch;
  for (size_t i = 0; i < ids.size(); ++i) {
    ModelRecord r;
    r.id = ids[i];
    r.definition = models[i];
    r.display_name = ReadLangMap(models[i].get_object(), "displayName");
    r.description = ReadLangMap(models[i].get_object(), "description");
    r.upload_time_ms = now;
    r.dependencies.assign(deps[r.id].begin(), deps[r.id].end());
    batch.Put(kSpace, r.id, Encode(r));
    added.push_back(std::move(r));
  }
  if (auto st = store_->Write(std::move(batch), store::Durability::kDurable); !st) {
    return Error(Errc::kUnavailable, "cannot store the models: " + st.error().message());
  }
  for (auto& r : added) {
    for (auto& d : r.dependencies)
      dependents_[d].push_back(r.id);
    models_.emplace(r.id, r);
  }
  return added;
}

std::optional<ModelRecord> ModelStore::Get(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(id);
  if (it == models_.end()) return std::nullopt;
  return it->second;
}

std::optional<ModelStore::Stamp> ModelStore::GetStamp(std::string_view id) const {
  std::lock_guard lock(mu_);
  auto it = models_.find(id);
  if (it == models_.end()) return std::nullopt;
  return Stamp{it->second.upload_time_ms, it->second.decommissioned};
}

Result<std::vector<ModelRecord>> ModelStore::List(const ListOptions& options,
                                                  std::string_view after, size_t max) const {
  if (options.dependencies_for.size() > limits_.max_dependencies_for) {
    return Error(Errc::kLimitExceeded,
                 fmt::format("{} ids in dependenciesFor; the limit is {}",
                             options.dependencies_for.size(), limits_.max_dependencies_for));
  }
  std::lock_guard lock(mu_);
  std::vector<ModelRecord> out;
  if (options.dependencies_for.empty()) {
    for (auto it = models_.upper_bound(after); it != models_.end() && out.size() < max; ++it)
      out.push_back(it->second);
    return out;
  }
  std::set<std::string> wanted;
  std::vector<std::string> todo;
  for (auto& id : options.dependencies_for) {
    if (!models_.contains(id)) {
      return Error(Errc::kModelNotFound, fmt::format("there is no model '{}'", id));
    }
    if (wanted.insert(id).second) todo.push_back(id);
  }
  while (!todo.empty()) {
    std::string id = std::move(todo.back());
    todo.pop_back();
    auto it = models_.find(id);
    if (it == models_.end()) continue;
    for (auto& d : it->second.dependencies) {
      if (wanted.insert(d).second) todo.push_back(d);
    }
  }
  for (auto it = wanted.upper_bound(std::string(after)); it != wanted.end() && out.size() < max;
       ++it) {
    if (auto m = models_.find(*it); m != models_.end()) out.push_back(m->second);
  }
  return out;
}

Status ModelStore::Decommission(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = models_.find(id);
  if (it == models_.end())
    return Error(Errc::kModelNotFound, fmt::format("there is no model '{}'", id));
  if (it->second.decommissioned) return Ok();
  ModelRecord r = it->second;
  r.decommissioned = true;
  store::WriteBatch batch;
  batch.Put(kSpace, r.id, Encode(r));
  if (auto st = store_->Write(std::move(batch), store::Durability::kDurable); !st) {
    return Error(Errc::kUnavailable, "cannot store the model: " + st.error().message());
  }
  it->second.decommissioned = true;
  return Ok();
}

Status ModelStore::Delete(std::string_view id) {
  std::lock_guard lock(mu_);
  auto it = models_.find(id);
  if (it == models_.end())
    return Error(Errc::kModelNotFound, fmt::format("there is no model '{}'", id));
  if (auto d = dependents_.find(id); d != dependents_.end() && !d->second.empty()) {
    std::vector<std::string> names(d->second.begin(),
                                   d->second.begin() + std::min<size_t>(d->second.size(), 10));
    return Error(Errc::kModelReferencesNotDeleted,
                 fmt::format("model '{}' is referenced by {} other model{}: {}{}", id,
                             d->second.size(), d->second.size() == 1 ? "" : "s",
                             fmt::join(names, ", "), d->second.size() > names.size() ? ", …" : ""));
  }
  store::WriteBatch batch;
  batch.Delete(kSpace, it->first);
  if (auto st = store_->Write(std::move(batch), store::Durability::kDurable); !st) {
    return Error(Errc::kUnavailable, "cannot delete the model: " + st.error().message());
  }
  for (auto& dep : it->second.dependencies) {
    auto d = dependents_.find(dep);
    if (d == dependents_.end()) continue;
    std::erase(d->second, it->first);
    if (d->second.empty()) dependents_.erase(d);
  }
  models_.erase(it);
  return Ok();
}

size_t ModelStore::size() const {
  std::lock_guard lock(mu_);
  return models_.size();
}

std::vector<std::string> ModelStore::Definitions(const std::vector<std::string>& ids) const {
  std::lock_guard lock(mu_);
  std::vector<std::string> out;
  for (auto& id : ids) {
    if (auto it = models_.find(id); it != models_.end()) {
      out.push_back(json::serialize(it->second.definition));
    }
  }
  return out;
}

json::object ToModelData(const ModelRecord& r, bool include_definition) {
  json::object o;
  o["id"] = r.id;
  if (!r.display_name.empty()) o["displayName"] = LangMapJson(r.display_name);
  if (!r.description.empty()) o["description"] = LangMapJson(r.description);
  o["uploadTime"] = timeutil::FormatUtcMs(r.upload_time_ms);
  o["decommissioned"] = r.decommissioned;
  if (include_definition) o["model"] = r.definition;
  return o;
}

}  // namespace orrery::twins
