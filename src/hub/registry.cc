#include "hub/registry.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/log.h"
#include "base/time.h"
#include "hub/errc.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

constexpr std::string_view kIdentitySpace = "hub.identity";
constexpr std::string_view kTwinSpace = "hub.twin";

// Activity within this long of the cached twin view does not invalidate it (lastActivityTime
// is rendered with seconds that matter; telemetry at 1 kHz must not rebuild the view each time).
constexpr int64_t kActivityResolutionMs = 1000;

Error NotFound(std::string_view device_id, std::string_view module_id) {
  if (module_id.empty()) {
    return Error(Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", device_id));
  }
  return Error(Errc::kModuleNotFound,
               fmt::format("module '{}' of device '{}' does not exist", module_id, device_id));
}

std::pair<std::string_view, std::string_view> SplitKey(std::string_view key) {
  auto slash = key.find('/');
  if (slash == std::string_view::npos) return {key, {}};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

Error StoreFailed(const Error& e) {
  return Error(Errc::kUnavailable,
               fmt::format("the registry could not be stored: {}", e.message()));
}

}  // namespace

std::string IdentityKey(std::string_view device_id, std::string_view module_id) {
  std::string k(device_id);
  if (!module_id.empty()) {
    k += '/';
    k += module_id;
  }
  return k;
}

struct Registry::Entry {
  std::mutex mu;
  // --- guarded by mu ---
  Identity identity;
  IdentityRuntime runtime;
  Twin twin;
  bool deleted = false;
  std::shared_ptr<const json::object> doc;  // cached service view; null when stale
  int64_t doc_activity_ms = 0;              // runtime.last_activity_ms when doc was built

  IdentityView View() const { return {identity, runtime}; }
  const std::shared_ptr<const json::object>& Doc() {
    if (!doc) {
      doc = std::make_shared<const json::object>(TwinToServiceJson(identity, runtime, twin));
      doc_activity_ms = runtime.last_activity_ms;
    }
    return doc;
  }
};

Registry::Registry(store::KvStore* store, RegistryOptions options)
    : store_(store), options_(std::move(options)) {
  if (!options_.now_ms) options_.now_ms = &timeutil::NowMs;
  if (auto* m = options_.metrics) {
    twin_updates_ = &m->GetCounter("orrery_hub_twin_updates_total",
                                   "Twin changes (tags, desired, reported) made durable.");
    collector_ = metrics::ScopedCollector(*m, [this](metrics::Sink& s) {
      auto st = Statistics();
      s.Gauge("orrery_hub_devices", "Device identities in the registry.", {},
              static_cast<double>(st.total_devices));
      s.Gauge("orrery_hub_modules", "Module identities in the registry.", {},
              static_cast<double>(st.modules));
      s.Gauge("orrery_hub_devices_connected", "Devices connected now.", {},
              static_cast<double>(st.connected_devices));
    });
  }
}

Registry::~Registry() {
  collector_.Reset();
}

Result<std::unique_ptr<Registry>> Registry::Open(store::KvStore* store, RegistryOptions options) {
  std::unique_ptr<Registry> r(new Registry(store, std::move(options)));
  ORRERY_TRY(r->Load());
  return r;
}

Status Registry::Load() {
  size_t corrupt = 0;
  std::unique_lock lock(mu_);
  ORRERY_TRY(store_->Scan(kIdentitySpace, "", [&](std::string_view key, std::string_view value) {
    auto id = DecodeIdentity(value);
    if (!id || IdentityKey(id->device_id, id->module_id) != key) {
      ++corrupt;
      return true;
    }
    auto e = std::make_shared<Entry>();
    e->identity = std::move(*id);
    if (!e->identity.is_module()) ++devices_;
    entries_.emplace(std::string(key), std::move(e));
    return true;
  }));
  ORRERY_TRY(store_->Scan(kTwinSpace, "", [&](std::string_view key, std::string_view value) {
    auto it = entries_.find(key);
    if (it == entries_.end()) return true;
    auto twin = DecodeTwin(value);
    if (!twin) {
      ++corrupt;
      return true;
    }
    it->second->twin = std::move(*twin);
    return true;
  }));
  if (corrupt) {
    log::Get("hub")->error("the registry skipped {} corrupt records", corrupt);
  }
  log::Get("hub")->info("registry: {} devices, {} modules", devices_, entries_.size() - devices_);
  return Ok();
}

Registry::EntryPtr Registry::Find(std::string_view key) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? nullptr : it->second;
}

bool Registry::EtagMatches(std::string_view if_match, std::string_view etag) {
  if (if_match.size() >= 2 && if_match.front() == '"' && if_match.back() == '"') {
    if_match = if_match.substr(1, if_match.size() - 2);
  }
  return if_match.empty() || if_match == "*" || if_match == etag;
}

void Registry::Create(Identity identity, Done<IdentityView> done) {
  std::string key = IdentityKey(identity.device_id, identity.module_id);
  int64_t now = Now();
  identity.generation_id = NewGenerationId();
  identity.etag_counter = 1;
  identity.etag = EtagForCounter(1);
  identity.created_ms = now;
  identity.status_updated_ms = now;
  store::WriteBatch batch;
  IdentityView view;
  {
    std::unique_lock lock(mu_);
    if (entries_.count(key)) {
      lock.unlock();
      if (identity.is_module()) {
        return done(Error(Errc::kModuleAlreadyExists,
                          fmt::format("module '{}' of device '{}' already exists",
                                      identity.module_id, identity.device_id)));
      }
      return done(Error(Errc::kDeviceAlreadyExists,
                        fmt::format("device '{}' already exists", identity.device_id)));
    }
    if (identity.is_module()) {
      if (!entries_.count(identity.device_id)) {
        lock.unlock();
        return done(NotFound(identity.device_id, {}));
      }
      size_t modules = 0;
      std::string prefix = identity.device_id + "/";
      for (auto it = entries_.lower_bound(prefix);
           it != entries_.end() && it->first.starts_with(prefix); ++it) {
        ++modules;
      }
      if (modules >= options_.max_modules_per_device) {
        lock.unlock();
        return done(Error(Errc::kQuotaExceeded,
                          fmt::format("device '{}' already has {} modules, the most allowed",
                                      identity.device_id, modules)));
      }
    } else if (devices_ >= options_.max_devices) {
      lock.unlock();
      return done(
          Error(Errc::kQuotaExceeded, fmt::format("the registry holds {} devices, the most allowed "
                                                  "(hub.max_devices)",
                                                  devices_)));
    }
    auto e = std::make_shared<Entry>();
    e->identity = std::move(identity);
    e->twin.desired.metadata =
        json::object{{"$lastUpdated", timeutil::FormatUtcMs(now)}, {"$lastUpdatedVersion", 1}};
    e->twin.reported.metadata = json::object{{"$lastUpdated", timeutil::FormatUtcMs(now)}};
    std::lock_guard el(e->mu);
    batch.Put(kIdentitySpace, key, EncodeIdentity(e->identity));
    batch.Put(kTwinSpace, key, EncodeTwin(e->twin));
    if (!e->identity.is_module()) ++devices_;
    view = e->View();
    entries_.emplace(key, e);
    store_->WriteAsync(std::move(batch), [done = std::move(done), view](Status st) mutable {
      if (!st) return done(StoreFailed(st.error()));
      done(std::move(view));
    });
  }
}

void Registry::Update(Identity identity, std::string_view if_match, Done<IdentityView> done) {
  std::string key = IdentityKey(identity.device_id, identity.module_id);
  auto e = Find(key);
  if (!e) return done(NotFound(identity.device_id, identity.module_id));
  std::lock_guard el(e->mu);
  if (e->deleted) return done(NotFound(identity.device_id, identity.module_id));
  if (!EtagMatches(if_match, e->identity.etag)) {
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("If-Match {} does not match the identity's etag \"{}\"", if_match,
                                  e->identity.etag)));
  }
  Identity& cur = e->identity;
  identity.generation_id = cur.generation_id;
  identity.created_ms = cur.created_ms;
  identity.etag_counter = cur.etag_counter + 1;
  identity.etag = EtagForCounter(identity.etag_counter);
  identity.status_updated_ms = identity.enabled != cur.enabled ? Now() : cur.status_updated_ms;
  cur = std::move(identity);
  e->doc.reset();
  store::WriteBatch batch;
  batch.Put(kIdentitySpace, key, EncodeIdentity(cur));
  store_->WriteAsync(std::move(batch), [done = std::move(done), view = e->View()](Status st) {
    if (!st) return done(StoreFailed(st.error()));
    done(view);
  });
}

void Registry::Delete(std::string_view device_id, std::string_view module_id,
                      std::string_view if_match, Done<void> done) {
  std::string key = IdentityKey(device_id, module_id);
  store::WriteBatch batch;
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find(key);
    if (it == entries_.end()) {
      lock.unlock();
      return done(NotFound(device_id, module_id));
    }
    {
      std::lock_guard el(it->second->mu);
      if (!EtagMatches(if_match, it->second->identity.etag)) {
        lock.unlock();
        return done(Error(Errc::kPreconditionFailed,
                          fmt::format("If-Match {} does not match the identity's etag", if_match)));
      }
    }
    std::vector<std::string> keys{key};
    if (module_id.empty()) {
      std::string prefix = key + "/";
      for (auto m = entries_.lower_bound(prefix);
           m != entries_.end() && m->first.starts_with(prefix); ++m) {
        keys.push_back(m->first);
      }
      --devices_;
    }
    for (auto& k : keys) {
      auto e = entries_.find(k);
      {
        std::lock_guard el(e->second->mu);
        e->second->deleted = true;
        batch.Delete(kIdentitySpace, k);
        batch.Delete(kTwinSpace, k);
      }
      entries_.erase(e);
    }
    store_->WriteAsync(std::move(batch), [done = std::move(done)](Status st) {
      if (!st) return done(StoreFailed(st.error()));
      done(Ok());
    });
  }
}

std::optional<IdentityView> Registry::Get(std::string_view device_id,
                                          std::string_view module_id) const {
  auto e = Find(IdentityKey(device_id, module_id));
  if (!e) return std::nullopt;
  std::lock_guard el(e->mu);
  if (e->deleted) return std::nullopt;
  return e->View();
}

std::vector<IdentityView> Registry::ListDevices(size_t max) const {
  std::vector<IdentityView> out;
  std::shared_lock lock(mu_);
  for (auto& [key, e] : entries_) {
    if (out.size() >= max) break;
    std::lock_guard el(e->mu);
    if (!e->identity.is_module()) out.push_back(e->View());
  }
  return out;
}

std::vector<IdentityView> Registry::ListModules(std::string_view device_id) const {
  std::vector<IdentityView> out;
  std::string prefix = std::string(device_id) + "/";
  std::shared_lock lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.starts_with(prefix); ++it) {
    std::lock_guard el(it->second->mu);
    out.push_back(it->second->View());
  }
  return out;
}

RegistryStatistics Registry::Statistics() const {
  RegistryStatistics s;
  std::shared_lock lock(mu_);
  for (auto& [key, e] : entries_) {
    std::lock_guard el(e->mu);
    if (e->identity.is_module()) {
      ++s.modules;
      if (e->runtime.connected) ++s.connected_modules;
    } else {
      ++s.total_devices;
      ++(e->identity.enabled ? s.enabled_devices : s.disabled_devices);
      if (e->runtime.connected) ++s.connected_devices;
    }
  }
  return s;
}

size_t Registry::device_count() const {
  std::shared_lock lock(mu_);
  return devices_;
}

Result<json::object> Registry::GetTwin(std::string_view device_id,
                                       std::string_view module_id) const {
  auto e = Find(IdentityKey(device_id, module_id));
  if (!e) return NotFound(device_id, module_id);
  std::lock_guard el(e->mu);
  if (e->deleted) return NotFound(device_id, module_id);
  return *e->Doc();
}

Result<json::object> Registry::GetDeviceTwin(std::string_view key) const {
  auto e = Find(key);
  auto [d, m] = SplitKey(key);
  if (!e) return NotFound(d, m);
  std::lock_guard el(e->mu);
  if (e->deleted) return NotFound(d, m);
  return TwinToDeviceJson(e->twin);
}

void Registry::PersistTwin(Entry& e, store::WriteBatch& batch) {
  e.doc.reset();
  batch.Put(kTwinSpace, IdentityKey(e.identity.device_id, e.identity.module_id),
            EncodeTwin(e.twin));
}

void Registry::CommitTwinChange(const EntryPtr& e, store::WriteBatch batch, TwinChange change,
                                Done<TwinChange> done) {
  (void)e;
  if (twin_updates_) twin_updates_->Inc();
  store_->WriteAsync(std::move(batch),
                     [done = std::move(done), change = std::move(change)](Status st) mutable {
                       if (!st) return done(StoreFailed(st.error()));
                       done(std::move(change));
                     });
}

void Registry::UpdateTwin(std::string_view key, const json::object& patch,
                          std::string_view if_match, Done<TwinChange> done) {
  auto [d, m] = SplitKey(key);
  const json::object* tags = nullptr;
  const json::object* desired = nullptr;
  if (auto* t = patch.if_contains("tags"); t && !t->is_null()) {
    if (!t->is_object()) return done(Error(Errc::kInvalidArgument, "tags must be an object"));
    tags = &t->get_object();
  }
  if (auto* p = patch.if_contains("properties"); p && !p->is_null()) {
    if (!p->is_object()) {
      return done(Error(Errc::kInvalidArgument, "properties must be an object"));
    }
    if (p->get_object().contains("reported")) {
      return done(Error(Errc::kInvalidArgument,
                        "reported properties are written by the device, not the service"));
    }
    if (auto* x = p->get_object().if_contains("desired"); x && !x->is_null()) {
      if (!x->is_object()) {
        return done(Error(Errc::kInvalidArgument, "properties.desired must be an object"));
      }
      desired = &x->get_object();
    }
  }
  auto e = Find(key);
  if (!e) return done(NotFound(d, m));
  std::lock_guard el(e->mu);
  if (e->deleted) return done(NotFound(d, m));
  if (!EtagMatches(if_match, e->twin.etag())) {
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("If-Match {} does not match the twin's etag \"{}\"", if_match,
                                  e->twin.etag())));
  }
  const auto& limits = options_.twin_limits;
  if (tags) {
    if (auto st = CheckPatch(e->twin, SectionKind::kTags, *tags, limits); !st) {
      return done(st.error());
    }
  }
  if (desired) {
    if (auto st = CheckPatch(e->twin, SectionKind::kDesired, *desired, limits); !st) {
      return done(st.error());
    }
  }
  int64_t now = Now();
  TwinChange change;
  if (tags) change.event["tags"] = ApplyPatch(e->twin, SectionKind::kTags, *tags, now);
  if (desired) {
    change.desired_push = ApplyPatch(e->twin, SectionKind::kDesired, *desired, now);
    change.desired_push["$version"] = e->twin.desired.version;
    change.event["properties"] = json::object{{"desired", change.desired_push}};
  }
  change.twin_version = e->twin.version;
  store::WriteBatch batch;
  PersistTwin(*e, batch);
  // Serialised here, on the caller's thread: the store's writer thread only completes.
  change.twin_json = SerializeServiceTwin(e->identity, e->runtime, e->twin);
  change.etag = e->twin.etag();
  CommitTwinChange(e, std::move(batch), std::move(change), std::move(done));
}

void Registry::ReplaceTwin(std::string_view key, const json::object& twin,
                           std::string_view if_match, Done<TwinChange> done) {
  auto [d, m] = SplitKey(key);
  auto e = Find(key);
  if (!e) return done(NotFound(d, m));
  std::lock_guard el(e->mu);
  if (e->deleted) return done(NotFound(d, m));
  if (!EtagMatches(if_match, e->twin.etag())) {
    return done(Error(Errc::kPreconditionFailed,
                      fmt::format("If-Match {} does not match the twin's etag \"{}\"", if_match,
                                  e->twin.etag())));
  }
  int64_t desired_before = e->twin.desired.version;
  auto push = hub::ReplaceTwin(e->twin, twin, options_.twin_limits, Now());
  if (!push) return done(push.error());
  TwinChange change;
  if (e->twin.desired.version != desired_before) {
    change.desired_push = std::move(*push);
    change.desired_push["$version"] = e->twin.desired.version;
    change.event["properties"] = json::object{{"desired", change.desired_push}};
  }
  change.event["tags"] = e->twin.tags;
  change.twin_version = e->twin.version;
  store::WriteBatch batch;
  PersistTwin(*e, batch);
  // Serialised here, on the caller's thread: the store's writer thread only completes.
  change.twin_json = SerializeServiceTwin(e->identity, e->runtime, e->twin);
  change.etag = e->twin.etag();
  CommitTwinChange(e, std::move(batch), std::move(change), std::move(done));
}

void Registry::UpdateReported(std::string_view key, const json::object& patch,
                              Done<TwinChange> done) {
  auto [d, m] = SplitKey(key);
  auto e = Find(key);
  if (!e) return done(NotFound(d, m));
  std::lock_guard el(e->mu);
  if (e->deleted) return done(NotFound(d, m));
  if (auto st = CheckPatch(e->twin, SectionKind::kReported, patch, options_.twin_limits); !st) {
    return done(st.error());
  }
  TwinChange change;
  json::object applied = ApplyPatch(e->twin, SectionKind::kReported, patch, Now());
  change.reported_version = e->twin.reported.version;
  applied["$version"] = e->twin.reported.version;
  change.event["properties"] = json::object{{"reported", std::move(applied)}};
  change.twin_version = e->twin.version;
  store::WriteBatch batch;
  PersistTwin(*e, batch);
  CommitTwinChange(e, std::move(batch), std::move(change), std::move(done));
}

void Registry::SetConnected(std::string_view key, bool connected) {
  auto e = Find(key);
  if (!e) return;
  std::lock_guard el(e->mu);
  int64_t now = Now();
  e->runtime.connected = connected;
  e->runtime.connection_state_updated_ms = now;
  e->runtime.last_activity_ms = now;
  e->doc.reset();
}

void Registry::Touch(std::string_view key) {
  auto e = Find(key);
  if (!e) return;
  std::lock_guard el(e->mu);
  e->runtime.last_activity_ms = Now();
  if (e->runtime.last_activity_ms - e->doc_activity_ms >= kActivityResolutionMs) e->doc.reset();
}

void Registry::SetC2dCount(std::string_view key, uint64_t count) {
  auto e = Find(key);
  if (!e) return;
  std::lock_guard el(e->mu);
  if (e->runtime.c2d_message_count != count) {
    e->runtime.c2d_message_count = count;
    e->doc.reset();
  }
}

void Registry::SetModelId(std::string_view key, std::string_view model_id) {
  auto e = Find(key);
  if (!e) return;
  std::lock_guard el(e->mu);
  if (e->deleted || e->twin.model_id == model_id) return;
  e->twin.model_id = std::string(model_id);
  store::WriteBatch batch;
  PersistTwin(*e, batch);
  store_->WriteAsync(std::move(batch), [](Status st) {
    if (!st) log::Get("hub")->error("could not store a model id: {}", st.error().message());
  });
}

std::shared_ptr<const json::object> Registry::CachedTwin(std::string_view key) const {
  auto e = Find(key);
  if (!e) return nullptr;
  std::lock_guard el(e->mu);
  if (e->deleted) return nullptr;
  return e->Doc();
}

void Registry::VisitTwins(
    bool modules, std::string_view after,
    const std::function<bool(const std::string& key, const json::object& twin)>& visit) const {
  std::shared_lock lock(mu_);
  auto it = after.empty() ? entries_.begin() : entries_.upper_bound(after);
  for (; it != entries_.end(); ++it) {
    bool is_module = it->first.find('/') != std::string::npos;
    if (is_module != modules) continue;
    std::shared_ptr<const json::object> doc;
    {
      std::lock_guard el(it->second->mu);
      doc = it->second->Doc();
    }
    if (!visit(it->first, *doc)) break;
  }
}

}  // namespace orrery::hub
