#include "hub/policies.h"

#include <cctype>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/files.h"
#include "base/strings.h"
#include "hub/sas.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

AccessPolicy NewPolicy(std::string name, uint32_t permissions) {
  return {std::move(name), crypto::RandomKeyBase64(), crypto::RandomKeyBase64(), permissions};
}

}  // namespace

const PolicySchema& HubPolicySchema() {
  static const PolicySchema schema{
      .subdir = "hub",
      .permissions = {{kRegistryRead, "RegistryRead"},
                      {kRegistryWrite, "RegistryWrite"},
                      {kServiceConnect, "ServiceConnect"},
                      {kDeviceConnect, "DeviceConnect"}},
      .defaults = {{"iothubowner",
                    kRegistryRead | kRegistryWrite | kServiceConnect | kDeviceConnect},
                   {"service", kServiceConnect},
                   {"device", kDeviceConnect},
                   {"registryRead", kRegistryRead},
                   {"registryReadWrite", kRegistryRead | kRegistryWrite}},
      .manage_permission = kRegistryWrite};
  return schema;
}

std::string PolicySchema::ToString(uint32_t bits) const {
  std::string out;
  for (auto& [bit, name] : permissions) {
    if (bits & bit) out += (out.empty() ? "" : ", ") + name;
  }
  return out;
}

Result<uint32_t> PolicySchema::FromString(std::string_view text) const {
  uint32_t bits = 0;
  for (auto piece : strings::Split(text, ',')) {
    piece = strings::Trim(piece);
    if (piece.empty()) continue;
    bool found = false;
    for (auto& [bit, name] : permissions) {
      if (strings::IEquals(piece, name)) {
        bits |= bit;
        found = true;
      }
    }
    if (!found) {
      std::string known;
      for (auto& p : permissions)
        known += (known.empty() ? "" : ", ") + p.second;
      return Error(BaseErrc::kInvalidArgument,
                   fmt::format("unknown permission '{}' ({})", piece, known));
    }
  }
  return bits;
}

std::string PermissionsToString(uint32_t permissions) {
  return HubPolicySchema().ToString(permissions);
}

Result<uint32_t> PermissionsFromString(std::string_view text) {
  return HubPolicySchema().FromString(text);
}

Result<std::unique_ptr<PolicyStore>> PolicyStore::Open(const std::filesystem::path& data_dir,
                                                       const PolicySchema& schema) {
  std::unique_ptr<PolicyStore> store(new PolicyStore());
  store->schema_ = &schema;
  auto dir = data_dir / schema.subdir;
  store->file_ = dir / "policies.json";
  ORRERY_TRY(files::EnsureDirectory(dir, std::filesystem::perms::owner_all));
  std::lock_guard lock(store->mu_);
  if (!std::filesystem::exists(store->file_)) {
    for (auto& [name, bits] : schema.defaults)
      store->policies_.push_back(NewPolicy(name, bits));
    ORRERY_TRY(store->Save());
    return store;
  }
  ORRERY_ASSIGN_OR_RETURN(std::string text, files::ReadFile(store->file_, 1 << 20));
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  auto corrupt = [&](std::string_view why) {
    return Error(Errc::kCorruptState, fmt::format("{}: {}", store->file_.string(), why));
  };
  if (ec || !doc.is_object() || !doc.as_object().contains("policies") ||
      !doc.at("policies").is_array()) {
    return corrupt("not a policies document");
  }
  for (auto& v : doc.at("policies").as_array()) {
    if (!v.is_object()) return corrupt("policy is not an object");
    auto& o = v.as_object();
    auto str = [&](const char* k) -> const json::string* {
      auto* p = o.if_contains(k);
      return p && p->is_string() ? &p->as_string() : nullptr;
    };
    auto *name = str("keyName"), *pk = str("primaryKey"), *sk = str("secondaryKey"),
         *rights = str("rights");
    if (!name || !pk || !sk || !rights) return corrupt("policy lacks a field");
    auto bits = schema.FromString(std::string_view(rights->data(), rights->size()));
    if (!bits) return corrupt(bits.error().message());
    store->policies_.push_back({std::string(*name), std::string(*pk), std::string(*sk), *bits});
  }
  return store;
}

Status PolicyStore::Save() const {
  json::array arr;
  for (auto& p : policies_) {
    // Field names follow IoT Hub's authorizationPolicies.
    arr.push_back(json::object{{"keyName", p.name},
                               {"primaryKey", p.primary_key},
                               {"secondaryKey", p.secondary_key},
                               {"rights", schema_->ToString(p.permissions)}});
  }
  return files::WriteFileAtomic(file_, json::serialize(json::object{{"policies", arr}}) + "\n",
                                files::kSecretPerms);
}

Result<AccessPolicy> PolicyStore::Authenticate(std::string_view authorization, uint32_t required,
                                               int64_t now_s) const {
  ORRERY_ASSIGN_OR_RETURN(SasToken token, ParseSasToken(authorization));
  if (token.key_name.empty()) {
    return Error(Errc::kUnauthorized,
                 "the SAS token names no shared access policy ('skn'); sign it with a policy key");
  }
  if (token.resource.empty() || token.resource.find('/') != std::string::npos) {
    return Error(Errc::kUnauthorized, "a service SAS token's 'sr' must be the hub's host name");
  }
  if (token.expiry <= now_s) return Error(Errc::kUnauthorized, "the SAS token has expired");
  auto policy = Find(token.key_name);
  // One message for an unknown policy and a bad signature: do not confirm which policies exist.
  if (!policy || !(SasSignatureMatches(token, policy->primary_key) ||
                   SasSignatureMatches(token, policy->secondary_key))) {
    return Error(Errc::kUnauthorized, "the SAS token's signature does not verify");
  }
  if ((policy->permissions & required) != required) {
    return Error(Errc::kForbidden, fmt::format("policy '{}' lacks the {} permission", policy->name,
                                               schema_->ToString(required & ~policy->permissions)));
  }
  return *policy;
}

namespace {
constexpr size_t kMaxPolicies = 16;

Status CheckPolicyName(std::string_view name) {
  bool ok = !name.empty() && name.size() <= 64;
  for (char c : name) {
    ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  }
  if (ok) return Ok();
  return Error(Errc::kInvalidArgument,
               fmt::format("policy name '{}' must be 1-64 letters, digits, '-', '_' or '.'", name));
}
}  // namespace

Result<AccessPolicy> PolicyStore::Put(std::string_view name, uint32_t permissions) {
  ORRERY_TRY(CheckPolicyName(name));
  if (permissions == 0) {
    return Error(Errc::kInvalidArgument, "a policy needs at least one permission");
  }
  std::lock_guard lock(mu_);
  auto before = policies_;
  AccessPolicy* p = nullptr;
  for (auto& x : policies_) {
    if (x.name == name) p = &x;
  }
  if (!p) {
    if (policies_.size() >= kMaxPolicies) {
      return Error(Errc::kQuotaExceeded,
                   fmt::format("{} shared access policies exist, the most allowed", kMaxPolicies));
    }
    policies_.push_back(NewPolicy(std::string(name), permissions));
    p = &policies_.back();
  } else {
    p->permissions = permissions;
  }
  AccessPolicy out = *p;
  bool manageable = false;
  for (auto& x : policies_)
    manageable = manageable || (x.permissions & schema_->manage_permission);
  if (!manageable) {
    policies_ = std::move(before);
    return Error(Errc::kInvalidArgument,
                 fmt::format("no policy would keep the {} permission",
                             schema_->ToString(schema_->manage_permission)));
  }
  if (auto st = Save(); !st) {
    policies_ = std::move(before);
    return st.error();
  }
  return out;
}

Status PolicyStore::Remove(std::string_view name) {
  std::lock_guard lock(mu_);
  auto before = policies_;
  auto n = std::erase_if(policies_, [&](const AccessPolicy& p) { return p.name == name; });
  if (n == 0) {
    return Error(Errc::kPolicyNotFound, fmt::format("no shared access policy named '{}'", name));
  }
  bool manageable = false;
  for (auto& x : policies_)
    manageable = manageable || (x.permissions & schema_->manage_permission);
  if (!manageable) {
    policies_ = std::move(before);
    return Error(Errc::kInvalidArgument,
                 fmt::format("'{}' is the last policy with {}; it cannot be removed", name,
                             schema_->ToString(schema_->manage_permission)));
  }
  if (auto st = Save(); !st) {
    policies_ = std::move(before);
    return st.error();
  }
  return Ok();
}

Result<AccessPolicy> PolicyStore::RegenerateKey(std::string_view name, bool secondary) {
  std::lock_guard lock(mu_);
  for (auto& p : policies_) {
    if (p.name != name) continue;
    std::string old = secondary ? p.secondary_key : p.primary_key;
    (secondary ? p.secondary_key : p.primary_key) = crypto::RandomKeyBase64();
    if (auto st = Save(); !st) {
      (secondary ? p.secondary_key : p.primary_key) = std::move(old);
      return st.error();
    }
    return p;
  }
  return Error(Errc::kPolicyNotFound, fmt::format("no shared access policy named '{}'", name));
}

std::optional<AccessPolicy> PolicyStore::Find(std::string_view name) const {
  std::lock_guard lock(mu_);
  for (auto& p : policies_) {
    if (p.name == name) return p;
  }
  return std::nullopt;
}

std::vector<AccessPolicy> PolicyStore::List() const {
  std::lock_guard lock(mu_);
  return policies_;
}

Result<std::string> PolicyStore::ConnectionString(std::string_view host_name,
                                                  std::string_view policy, bool secondary) const {
  auto p = Find(policy);
  if (!p) {
    return Error(Errc::kPolicyNotFound, fmt::format("no shared access policy named '{}'", policy));
  }
  return fmt::format("HostName={};SharedAccessKeyName={};SharedAccessKey={}", host_name, p->name,
                     secondary ? p->secondary_key : p->primary_key);
}

}  // namespace orrery::hub
