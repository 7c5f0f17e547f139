// Shared access policies (IoT Hub's and DPS's "Shared access policies"): named keys with
// permissions. Service clients authenticate with SAS tokens signed by a policy key.
//
// Stored in <data-dir>/<schema.subdir>/policies.json, readable by its owner only (0600). The
// first start creates the schema's default policies with random keys (IoT Hub's five for the
// hub, DPS's three for the provisioning service); `orrery hub|dps connection-string` reads (or
// first creates) them without a running server so that scripts can bootstrap.
//
// Thread safety: all methods are safe from any thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/error.h"
#include "hub/errc.h"

namespace orrery::hub {

enum Permission : uint32_t {
  kRegistryRead = 1,
  kRegistryWrite = 2,
  kServiceConnect = 4,
  kDeviceConnect = 8,
};

// "RegistryRead, ServiceConnect" ↔ bits (the hub's permission names).
std::string PermissionsToString(uint32_t permissions);
Result<uint32_t> PermissionsFromString(std::string_view text);

// Which permissions a policy store knows, its defaults, and the permission that some policy
// must keep so that the service stays manageable.
struct PolicySchema {
  std::string subdir;                                         // under the data directory
  std::vector<std::pair<uint32_t, std::string>> permissions;  // bit → name
  std::vector<std::pair<std::string, uint32_t>> defaults;     // created on first start
  uint32_t manage_permission = 0;
  std::string ToString(uint32_t bits) const;
  Result<uint32_t> FromString(std::string_view text) const;
};
// IoT Hub's: RegistryRead, RegistryWrite, ServiceConnect, DeviceConnect; iothubowner, service,
// device, registryRead, registryReadWrite.
const PolicySchema& HubPolicySchema();

struct AccessPolicy {
  std::string name;
  std::string primary_key;    // base64, 32 random bytes
  std::string secondary_key;  // base64, 32 random bytes
  uint32_t permissions = 0;
};

class PolicyStore {
 public:
  // Loads <data_dir>/<subdir>/policies.json, creating it with the default policies when
  // missing. `schema` must outlive the store.
  static Result<std::unique_ptr<PolicyStore>> Open(const std::filesystem::path& data_dir,
                                                   const PolicySchema& schema = HubPolicySchema());
  const PolicySchema& schema() const { return *schema_; }

  std::optional<AccessPolicy> Find(std::string_view name) const;
  std::vector<AccessPolicy> List() const;

  // Management (each change is written to policies.json atomically before it returns):
  // creates or changes a policy's permissions (new policies get random keys; at most 16
  // policies, names as IoT Hub allows: 1–64 letters, digits, '-', '_', '.');
  Result<AccessPolicy> Put(std::string_view name, uint32_t permissions);
  // removes one (kPolicyNotFound; the last policy granting the schema's manage permission —
  // RegistryWrite for the hub — cannot go, so the service stays manageable);
  Status Remove(std::string_view name);
  // replaces its primary or secondary key with a new random one (tokens signed with the old
  // key stop working at once; rotate the one clients are not using, then switch them).
  Result<AccessPolicy> RegenerateKey(std::string_view name, bool secondary);

  // Authenticates a service SAS token (an Authorization header value): `skn` names the policy,
  // the signature verifies with its primary or secondary key (constant time), `sr` is a bare
  // host name (not a device resource), `se` is after `now_s`, and the policy grants every bit
  // of `required`. Errc::kUnauthorized otherwise (kForbidden when only the permission is
  // missing), with a message fit for the client (it never echoes the signature or says which
  // key was tried).
  Result<AccessPolicy> Authenticate(std::string_view authorization, uint32_t required,
                                    int64_t now_s) const;

  // "HostName=<host>;SharedAccessKeyName=<name>;SharedAccessKey=<key>".
  Result<std::string> ConnectionString(std::string_view host_name, std::string_view policy,
                                       bool secondary = false) const;

 private:
  PolicyStore() = default;
  Status Save() const;  // REQUIRES: mu_ held

  const PolicySchema* schema_ = nullptr;
  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::vector<AccessPolicy> policies_;
};

}  // namespace orrery::hub
