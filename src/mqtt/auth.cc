#include "mqtt/auth.h"

#include <openssl/evp.h>

#include <charconv>

#include <fmt/format.h>
#include <toml++/toml.h>

#include "base/crypto.h"
#include "base/strings.h"
#include "mqtt/topic.h"

namespace orrery::mqtt {
namespace {

std::string Pbkdf2(std::string_view password, std::string_view salt, int iterations) {
  std::string out(64, '\0');
  PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                    reinterpret_cast<const unsigned char*>(salt.data()),
                    static_cast<int>(salt.size()), iterations, EVP_sha512(), 64,
                    reinterpret_cast<unsigned char*>(out.data()));
  return out;
}

std::string Substitute(std::string_view pattern, const ClientInfo& c) {
  std::string out;
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() &&
        (pattern[i + 1] == 'u' || pattern[i + 1] == 'c')) {
      // A name containing wildcards or '/' must not widen the pattern: such names never match.
      const std::string& v = pattern[i + 1] == 'u' ? c.username : c.client_id;
      if (v.find_first_of("+#/") != std::string::npos || v.empty()) return {};
      out += v;
      ++i;
    } else {
      out += pattern[i];
    }
  }
  return out;
}

}  // namespace

std::string HashPassword(std::string_view password, int iterations) {
  std::string salt = crypto::RandomBytes(16);
  return fmt::format("$pbkdf2-sha512${}${}${}", iterations, crypto::Base64Encode(salt),
                     crypto::Base64Encode(Pbkdf2(password, salt, iterations)));
}

bool VerifyPassword(std::string_view password, std::string_view hash) {
  auto parts = strings::Split(hash, '$');
  if (parts.size() != 5 || !parts[0].empty() || parts[1] != "pbkdf2-sha512") return false;
  int iterations = 0;
  auto [p, ec] = std::from_chars(parts[2].data(), parts[2].data() + parts[2].size(), iterations);
  if (ec != std::errc() || iterations < 1 || iterations > 10'000'000) return false;
  auto salt = crypto::Base64Decode(parts[3]);
  auto expect = crypto::Base64Decode(parts[4]);
  if (!salt || !expect || expect->size() != 64) return false;
  return crypto::ConstantTimeEqual(Pbkdf2(password, *salt, iterations), *expect);
}

bool FilterCovers(std::string_view acl, std::string_view filter) {
  auto a = strings::Split(acl, '/');
  auto f = strings::Split(filter, '/');
  // The root-wildcard rule for '$' topics applies to ACLs too.
  if (!f.empty() && !f[0].empty() && f[0][0] == '$' && !a.empty() && (a[0] == "+" || a[0] == "#")) {
    return false;
  }
  size_t i = 0;
  for (; i < a.size(); ++i) {
    if (a[i] == "#") return true;
    if (i >= f.size()) return false;
    if (f[i] == "#") return false;
    if (a[i] == "+") continue;
    if (f[i] == "+" || a[i] != f[i]) return false;
  }
  return i == f.size();
}

ConfigAuth::ConfigAuth(bool allow_anonymous, std::vector<User> users, std::vector<Acl> acls)
    : allow_anonymous_(allow_anonymous), users_(std::move(users)), acls_(std::move(acls)) {}

Result<std::shared_ptr<ConfigAuth>> ConfigAuth::Load(const std::string& path,
                                                     bool allow_anonymous_default) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return Error(BaseErrc::kParse,
                 fmt::format("{}: line {}: {}", path, e.source().begin.line, e.description()));
  }
  bool anon = t["allow_anonymous"].value_or(allow_anonymous_default);
  std::vector<User> users;
  std::vector<Acl> acls;
  if (auto* arr = t["user"].as_array()) {
    for (auto& node : *arr) {
      auto* u = node.as_table();
      auto name = u ? (*u)["name"].value<std::string>() : std::nullopt;
      auto hash = u ? (*u)["password_hash"].value<std::string>() : std::nullopt;
      if (!name || !hash || name->empty()) {
        return Error(BaseErrc::kInvalidArgument,
                     fmt::format("{}: every [[user]] needs name and password_hash", path));
      }
      if (strings::Split(*hash, '$').size() != 5) {
        return Error(BaseErrc::kInvalidArgument,
                     fmt::format("{}: user '{}': password_hash is not a $pbkdf2-sha512$ hash "
                                 "(make one with `orrery mqtt passwd`)",
                                 path, *name));
      }
      users.push_back({*name, *hash});
    }
  }
  if (auto* arr = t["acl"].as_array()) {
    for (auto& node : *arr) {
      auto* a = node.as_table();
      auto topic = a ? (*a)["topic"].value<std::string>() : std::nullopt;
      auto access = a ? (*a)["access"].value<std::string>() : std::nullopt;
      if (!topic || !access || !IsValidTopicFilter(*topic)) {
        return Error(BaseErrc::kInvalidArgument,
                     fmt::format("{}: every [[acl]] needs a valid topic filter and access", path));
      }
      Acl acl;
      auto user = (*a)["user"].value<std::string>();
      if (user && !user->empty()) acl.user = *user;
      acl.pattern = *topic;
      if (*access == "read") {
        acl.read = true;
      } else if (*access == "write") {
        acl.write = true;
      } else if (*access == "readwrite") {
        acl.read = acl.write = true;
      } else {
        return Error(BaseErrc::kInvalidArgument,
                     fmt::format("{}: acl access must be read, write or readwrite", path));
      }
      acls.push_back(std::move(acl));
    }
  }
  return std::make_shared<ConfigAuth>(anon, std::move(users), std::move(acls));
}

void ConfigAuth::Authenticate(const ConnectInfo& info, std::function<void(AuthResult)> done) {
  if (!info.username) {
    if (allow_anonymous_) return done({Reason::kSuccess, "", nullptr, ""});
    return done({Reason::kNotAuthorized, "", nullptr, "anonymous clients are not allowed"});
  }
  for (auto& u : users_) {
    if (u.name == *info.username) {
      if (info.password && VerifyPassword(*info.password, u.password_hash)) {
        return done({Reason::kSuccess, u.name, nullptr, ""});
      }
      break;
    }
  }
  if (users_.empty() && allow_anonymous_) {
    // No user database: a user name is just a label, as with mosquitto's defaults.
    return done({Reason::kSuccess, *info.username, nullptr, ""});
  }
  done({Reason::kBadUserNameOrPassword, "", nullptr, "bad user name or password"});
}

bool ConfigAuth::Allowed(const ClientInfo& c, std::string_view target, bool write,
                         bool is_filter) const {
  if (acls_.empty()) return true;
  bool authenticated = !c.principal.empty();
  for (auto& acl : acls_) {
    bool applies =
        acl.user ? (*acl.user == "*" ? authenticated : (authenticated && *acl.user == c.principal))
                 : !authenticated;
    if (!applies || (write ? !acl.write : !acl.read)) continue;
    std::string pattern = Substitute(acl.pattern, c);
    if (pattern.empty()) continue;
    if (is_filter ? FilterCovers(pattern, target) : TopicMatches(pattern, target)) return true;
  }
  return false;
}

Access ConfigAuth::CanPublish(const ClientInfo& client, std::string_view topic) {
  return Allowed(client, topic, true, false) ? Access::kAllow : Access::kDeny;
}

Access ConfigAuth::CanSubscribe(const ClientInfo& client, std::string_view filter) {
  return Allowed(client, SplitShared(filter).filter, false, true) ? Access::kAllow : Access::kDeny;
}

}  // namespace orrery::mqtt
