#include "identity/principals.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/files.h"
#include "base/time.h"
#include "identity/token.h"

namespace orrery::identity {

namespace json = boost::json;

namespace {
// Serialises writers across processes (the server and `orrery identity sp …`).
class FileLock {
 public:
  static Result<FileLock> Take(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || ::flock(fd, LOCK_EX) != 0) {
      if (fd >= 0) ::close(fd);
      return Error(Errc::kIo,
                   fmt::format("cannot lock {}: {}", path.string(), std::strerror(errno)));
    }
    FileLock l;
    l.fd_ = fd;
    return l;
  }
  FileLock(FileLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  ~FileLock() {
    if (fd_ >= 0) ::close(fd_);  // closing releases the flock
  }

 private:
  FileLock() = default;
  int fd_ = -1;
};

bool ValidName(std::string_view n) {
  if (n.empty() || n.size() > 64) return false;
  return std::all_of(n.begin(), n.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

std::string Hash(std::string_view salt, std::string_view secret) {
  return crypto::Sha256(std::string(salt) + std::string(secret));
}
}  // namespace

Result<uint32_t> ParseRoles(const std::vector<std::string>& names) {
  uint32_t roles = 0;
  for (auto& n : names) {
    if (n == "owner" || n == "Azure Digital Twins Data Owner") {
      roles |= kOwner;
    } else if (n == "reader" || n == "Azure Digital Twins Data Reader") {
      roles |= kReader;
    } else {
      return Error(Errc::kInvalidArgument,
                   fmt::format("unknown role '{}' (roles: owner, reader)", n));
    }
  }
  if (roles == 0) return Error(Errc::kInvalidArgument, "a principal needs a role: owner or reader");
  return roles;
}

std::vector<std::string> RoleNames(uint32_t roles) {
  std::vector<std::string> out;
  if (roles & kOwner) out.emplace_back("owner");
  if (roles & kReader) out.emplace_back("reader");
  return out;
}

PrincipalStore::PrincipalStore(std::filesystem::path dir)
    : dir_(std::move(dir)), file_(dir_ / "principals.json") {}

Status PrincipalStore::Reload() {
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) {
    if (errno != ENOENT) {
      return Error(Errc::kIo,
                   fmt::format("cannot stat {}: {}", file_.string(), std::strerror(errno)));
    }
    principals_.clear();
    loaded_ = true;
    loaded_version_ = {};
    return Ok();
  }
  Version version{
      .inode = static_cast<uint64_t>(st.st_ino),
      .mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec,
      .size = static_cast<int64_t>(st.st_size)};
  if (loaded_ && version == loaded_version_) return Ok();
  ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(file_, 1 << 20));
  boost::system::error_code jec;
  json::value v = json::parse(text, jec);
  auto* list = !jec && v.is_object() ? v.get_object().if_contains("principals") : nullptr;
  if (!list || !list->is_array()) {
    return Error(Errc::kIo, fmt::format("{} is not a principals file", file_.string()));
  }
  std::vector<Principal> loaded;
  for (auto& item : list->get_array()) {
    if (!item.is_object()) continue;
    auto& o = item.get_object();
    Principal p;
    auto str = [&](std::string_view k) {
      auto* x = o.if_contains(k);
      return x && x->is_string() ? std::string(x->get_string()) : std::string();
    };
    p.client_id = str("clientId");
    p.name = str("displayName");
    auto salt = crypto::Base64Decode(str("salt"));
    auto hash = crypto::Base64Decode(str("secretHash"));
    if (p.client_id.empty() || !salt || !hash || hash->size() != 32) {
      return Error(Errc::kIo, fmt::format("{}: a principal record is damaged", file_.string()));
    }
    p.salt = std::move(*salt);
    p.secret_hash = std::move(*hash);
    std::vector<std::string> roles;
    if (auto* r = o.if_contains("roles"); r && r->is_array()) {
      for (auto& x : r->get_array()) {
        if (x.is_string()) roles.emplace_back(x.get_string());
      }
    }
    auto bits = ParseRoles(roles);
    p.roles = bits ? *bits : 0;
    p.created_ms = timeutil::ParseUtcMs(str("created")).value_or(0);
    loaded.push_back(std::move(p));
  }
  principals_ = std::move(loaded);
  loaded_version_ = version;
  loaded_ = true;
  return Ok();
}

Status PrincipalStore::Save() {
  json::array list;
  for (auto& p : principals_) {
    json::array roles;
    for (auto& r : RoleNames(p.roles))
      roles.emplace_back(r);
    list.push_back(json::object{{"clientId", p.client_id},
                                {"displayName", p.name},
                                {"roles", std::move(roles)},
                                {"created", timeutil::FormatUtcMs(p.created_ms)},
                                {"salt", crypto::Base64Encode(p.salt)},
                                {"secretHash", crypto::Base64Encode(p.secret_hash)}});
  }
  std::string text = json::serialize(json::object{{"principals", std::move(list)}}) + "\n";
  ORRERY_TRY(files::WriteFileAtomic(file_, text, files::kSecretPerms));
  loaded_ = false;  // the next call stats the new file
  return Reload();
}

Result<PrincipalStore::Created> PrincipalStore::Create(std::string_view name, uint32_t roles) {
  if (!ValidName(name)) {
    return Error(
        Errc::kInvalidArgument,
        fmt::format("principal name '{}' must be 1-64 letters, digits, '.', '_' or '-'", name));
  }
  if (roles == 0 || (roles & ~(kOwner | kReader)) != 0) {
    return Error(Errc::kInvalidArgument, "a principal needs a role: owner or reader");
  }
  ORRERY_TRY(files::EnsureDirectory(dir_, std::filesystem::perms::owner_all));
  std::lock_guard lock(mu_);
  ORRERY_ASSIGN_OR_RETURN(FileLock flock, FileLock::Take(dir_ / "principals.lock"));
  loaded_ = false;  // another process may have written within our mtime's resolution
  ORRERY_TRY(Reload());
  for (auto& p : principals_) {
    if (p.name == name) {
      return Error(Errc::kInvalidArgument,
                   fmt::format("a principal named '{}' exists already ({})", name, p.client_id));
    }
  }
  if (principals_.size() >= kMaxPrincipals) {
    return Error(Errc::kLimitExceeded,
                 fmt::format("there are {} principals already; the limit is {}", principals_.size(),
                             kMaxPrincipals));
  }
  Created c;
  c.secret = Base64UrlEncode(crypto::RandomBytes(30));
  c.principal = Principal{.client_id = crypto::RandomUuid(),
                          .name = std::string(name),
                          .roles = roles,
                          .created_ms = timeutil::NowMs(),
                          .salt = crypto::RandomBytes(16)};
  c.principal.secret_hash = Hash(c.principal.salt, c.secret);
  principals_.push_back(c.principal);
  if (auto st = Save(); !st) {
    principals_.pop_back();
    return st.error();
  }
  return c;
}

Status PrincipalStore::Remove(std::string_view key) {
  std::lock_guard lock(mu_);
  ORRERY_ASSIGN_OR_RETURN(FileLock flock, FileLock::Take(dir_ / "principals.lock"));
  loaded_ = false;
  ORRERY_TRY(Reload());
  auto it = std::find_if(principals_.begin(), principals_.end(),
                         [&](const Principal& p) { return p.client_id == key || p.name == key; });
  if (it == principals_.end()) {
    return Error(Errc::kNotFound, fmt::format("there is no principal '{}'", key));
  }
  principals_.erase(it);
  return Save();
}

Result<std::vector<Principal>> PrincipalStore::List() {
  std::lock_guard lock(mu_);
  ORRERY_TRY(Reload());
  return principals_;
}

Result<Principal> PrincipalStore::Authenticate(std::string_view client_id,
                                               std::string_view secret) {
  std::lock_guard lock(mu_);
  ORRERY_TRY(Reload());
  for (auto& p : principals_) {
    if (p.client_id != client_id) continue;  // ids are not secret
    if (crypto::ConstantTimeEqual(Hash(p.salt, secret), p.secret_hash) && p.roles != 0) return p;
    break;
  }
  return Error(Errc::kUnauthorized, "invalid client id or secret");
}

}  // namespace orrery::identity
