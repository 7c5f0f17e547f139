// Service principals: applications that get access tokens with the OAuth 2.0 client
// credentials grant (client id + secret), each with data-plane roles — "owner" (Azure Digital
// Twins Data Owner: read and write) or "reader" (Azure Digital Twins Data Reader).
//
// Stored in <dir>/principals.json (0600) with salted SHA-256 hashes of the secrets only: a
// secret is shown once, when created. Secrets are 30 random bytes, so a fast hash is enough
// (there is nothing to brute-force). `orrery identity sp create|list|delete` edit the file
// without a running server (changes are serialised by an flock on <dir>/principals.lock);
// the server sees them at the next token request (it re-reads the file when it changed).
//
// Thread safety: every method is safe from any thread (one mutex).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"

namespace orrery::identity {

enum Role : uint32_t {
  kReader = 1,
  kOwner = 2,  // includes reading
};
// "owner", "reader" (Azure's role names "Azure Digital Twins Data Owner|Reader" too).
Result<uint32_t> ParseRoles(const std::vector<std::string>& names);
std::vector<std::string> RoleNames(uint32_t roles);

struct Principal {
  std::string client_id;  // a GUID
  std::string name;       // display name: 1–64 of [A-Za-z0-9._-]
  uint32_t roles = 0;
  int64_t created_ms = 0;
  std::string salt;         // raw bytes
  std::string secret_hash;  // SHA-256(salt || secret), raw bytes
};

inline constexpr size_t kMaxPrincipals = 100;

class PrincipalStore {
 public:
  explicit PrincipalStore(std::filesystem::path dir);

  // A new principal and its secret (the only time the secret is known). kInvalidArgument for
  // a bad name or role, kLimitExceeded beyond kMaxPrincipals, kIo.
  struct Created {
    Principal principal;
    std::string secret;
  };
  Result<Created> Create(std::string_view name, uint32_t roles);
  // Deletes by client id or name (kNotFound).
  Status Remove(std::string_view client_id_or_name);
  Result<std::vector<Principal>> List();
  // The principal whose id and secret these are; kUnauthorized otherwise (the same message
  // whether the id or the secret was wrong). Compares in constant time.
  Result<Principal> Authenticate(std::string_view client_id, std::string_view secret);

 private:
  Status Reload();  // REQUIRES: mu_ held
  Status Save();    // REQUIRES: mu_ held and the flock taken

  std::filesystem::path dir_, file_;
  std::mutex mu_;
  std::vector<Principal> principals_;  // guarded by mu_
  // What identifies the file's version: every save replaces it (a new inode), so a change is
  // seen even within the file system's timestamp granularity.
  struct Version {
    uint64_t inode = 0;
    int64_t mtime_ns = 0;
    int64_t size = -1;
    bool operator==(const Version&) const = default;
  };
  Version loaded_version_{};  // guarded by mu_
  bool loaded_ = false;       // guarded by mu_
};

}  // namespace orrery::identity
