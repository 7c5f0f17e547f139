// The identity registry and the twins: every device and module identity with its twin, held
// in memory (an ordered map, so listings and queries page in id order) and written through to
// the state store. A write completes — and its callback runs — only once it is durable
// (group-committed fsync), so an acknowledged registry or twin change survives kill -9.
//
// Keys: a device is "<deviceId>", a module "<deviceId>/<moduleId>" ('/' is not an id
// character, so keys are unambiguous and a device's modules sort right after it).
// Keyspaces in the store: "hub.identity" and "hub.twin", both by that key.
//
// Thread safety: every method is safe from any thread. The map has a shared mutex; each entry
// has its own mutex, held while its change is queued to the store so that writes to one key
// reach the store in the order they were applied. Completion callbacks run on the store's
// writer thread: post to your own executor from there, never block.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "hub/identity.h"
#include "hub/twin.h"
#include "store/kv_store.h"

namespace orrery::hub {

struct RegistryOptions {
  size_t max_devices = 1'000'000;
  size_t max_modules_per_device = 50;
  TwinLimits twin_limits;
  std::function<int64_t()> now_ms;  // wall clock in ms (injectable for tests)
  metrics::Registry* metrics = nullptr;
};

// "<device>" or "<device>/<module>".
std::string IdentityKey(std::string_view device_id, std::string_view module_id = {});

struct IdentityView {
  Identity identity;
  IdentityRuntime runtime;
};

// The result of a twin change.
struct TwinChange {
  // The service view after the change, serialised (service API changes only), and its etag.
  std::string twin_json;
  std::string etag;
  // When desired properties changed: what to push to a connected device (the applied patch
  // with "$version"); empty otherwise.
  boost::json::object desired_push;
  int64_t reported_version = 0;  // after a reported patch
  uint64_t twin_version = 0;     // the twin's "version" after the change
  // What changed, for twin-change events: {"tags":…} and/or {"properties":{"desired"|
  // "reported": patch with "$version"}}.
  boost::json::object event;
};

struct RegistryStatistics {
  uint64_t total_devices = 0, enabled_devices = 0, disabled_devices = 0;
  uint64_t modules = 0, connected_devices = 0, connected_modules = 0;
};

template <class T>
using Done = std::function<void(Result<T>)>;

class Registry {
 public:
  // Loads every identity and twin from the store. `store` must outlive the registry.
  static Result<std::unique_ptr<Registry>> Open(store::KvStore* store, RegistryOptions options);
  ~Registry();

  // ---- identities (service API) ----
  // Creates an identity (with a new generationId and etag). kDeviceAlreadyExists /
  // kModuleAlreadyExists, kDeviceNotFound (a module of a missing device), kQuotaExceeded.
  void Create(Identity identity, Done<IdentityView> done);
  // Replaces an existing identity (status, authentication, capabilities...) when `if_match`
  // is empty, "*" or its current etag (quotes allowed); keeps generationId; new etag.
  void Update(Identity identity, std::string_view if_match, Done<IdentityView> done);
  // Deletes an identity and its twin (a device: also its modules).
  void Delete(std::string_view device_id, std::string_view module_id, std::string_view if_match,
              Done<void> done);

  std::optional<IdentityView> Get(std::string_view device_id,
                                  std::string_view module_id = {}) const;
  // Devices in id order, at most `max`.
  std::vector<IdentityView> ListDevices(size_t max) const;
  std::vector<IdentityView> ListModules(std::string_view device_id) const;
  RegistryStatistics Statistics() const;
  size_t device_count() const;

  // ---- twins ----
  // The service view (wire contract §4.4). kDeviceNotFound / kModuleNotFound.
  Result<boost::json::object> GetTwin(std::string_view device_id,
                                      std::string_view module_id = {}) const;
  // The device view {"desired":…, "reported":…}.
  Result<boost::json::object> GetDeviceTwin(std::string_view key) const;
  // PATCH /twins/{id}: `patch` may hold "tags" and "properties": {"desired": …}; other
  // members are ignored (as IoT Hub does). kPreconditionFailed when `if_match` is set and not
  // "*" or the twin's etag.
  void UpdateTwin(std::string_view key, const boost::json::object& patch, std::string_view if_match,
                  Done<TwinChange> done);
  // PUT /twins/{id}: replaces tags and desired properties.
  void ReplaceTwin(std::string_view key, const boost::json::object& twin, std::string_view if_match,
                   Done<TwinChange> done);
  // A device's reported-properties patch.
  void UpdateReported(std::string_view key, const boost::json::object& patch,
                      Done<TwinChange> done);

  // ---- runtime state (not durable) ----
  void SetConnected(std::string_view key, bool connected);
  void Touch(std::string_view key);  // lastActivityTime = now
  void SetC2dCount(std::string_view key, uint64_t count);
  // Records the model id a device announced (durable, asynchronously) when it changed.
  void SetModelId(std::string_view key, std::string_view model_id);

  // The cached service view of one twin (null when the identity does not exist); shared, so
  // the caller may keep it while the twin changes (routing's $twin conditions).
  std::shared_ptr<const boost::json::object> CachedTwin(std::string_view key) const;

  // Visits twins in key order, starting after `after` (empty: from the start): devices only,
  // or modules only. The document is the cached service view; `visit` returns false to stop.
  // Runs under the map's shared lock: `visit` must be quick and must not call the registry.
  void VisitTwins(bool modules, std::string_view after,
                  const std::function<bool(const std::string& key,
                                           const boost::json::object& twin)>& visit) const;

  const RegistryOptions& options() const { return options_; }
  int64_t Now() const { return options_.now_ms(); }

 private:
  struct Entry;
  using EntryPtr = std::shared_ptr<Entry>;
  explicit Registry(store::KvStore* store, RegistryOptions options);
  Status Load();
  EntryPtr Find(std::string_view key) const;
  static bool EtagMatches(std::string_view if_match, std::string_view etag);
  void PersistTwin(Entry& e, store::WriteBatch& batch);
  void CommitTwinChange(const EntryPtr& e, store::WriteBatch batch, TwinChange change,
                        Done<TwinChange> done);

  store::KvStore* store_;
  RegistryOptions options_;
  mutable std::shared_mutex mu_;
  std::map<std::string, EntryPtr, std::less<>> entries_;  // guarded by mu_
  size_t devices_ = 0;                                    // guarded by mu_
  metrics::ScopedCollector collector_;
  metrics::Counter* twin_updates_ = nullptr;
};

}  // namespace orrery::hub
