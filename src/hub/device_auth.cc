#include "hub/device_auth.h"

#include <fmt/format.h>

#include "base/crypto.h"
#include "hub/certificates.h"
#include "hub/errc.h"
#include "hub/policies.h"
#include "hub/registry.h"
#include "hub/sas.h"

namespace orrery::hub {

namespace {

Error Refused(std::string message) {
  return Error(Errc::kUnauthorized, std::move(message));
}

std::string Describe(std::string_view device_id, std::string_view module_id) {
  if (module_id.empty()) return fmt::format("device '{}'", device_id);
  return fmt::format("module '{}/{}'", device_id, module_id);
}

// The identity a device token's decoded `sr` claims: "<host>/devices/<d>[/modules/<m>]".
bool ResourceNames(std::string_view resource, std::string_view device_id,
                   std::string_view module_id) {
  auto at = resource.find("/devices/");
  if (at == std::string_view::npos) return false;
  std::string_view rest = resource.substr(at + 9);
  std::string expected(device_id);
  if (!module_id.empty()) expected += "/modules/" + std::string(module_id);
  // Azure lower-cases nothing here; tolerate a trailing '/'.
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  return rest == expected;
}

}  // namespace

std::string DeviceIdentity::key() const {
  return IdentityKey(device_id, module_id);
}

std::string DeviceIdentity::AuthMethodJson() const {
  std::string_view type = method == AuthType::kSas ? "sas" : "x509Certificate";
  std::string_view issuer = method == AuthType::kCertificateAuthority ? "external" : "iothub";
  return fmt::format(R"({{"scope":"{}","type":"{}","issuer":"{}","acceptingIpFilterRule":null}})",
                     module_id.empty() ? "device" : "module", type, issuer);
}

std::string ThumbprintSha1Der(std::string_view der) {
  return crypto::HexEncode(crypto::Sha1(der), /*upper=*/true);
}

std::string ThumbprintSha256Der(std::string_view der) {
  return crypto::HexEncode(crypto::Sha256(der), /*upper=*/true);
}

Result<DeviceIdentity> AuthenticateDevice(const Registry& registry, const PolicyStore& policies,
                                          const CaStore* cas, const DeviceCredentials& c,
                                          int64_t now_s) {
  const std::string who = Describe(c.device_id, c.module_id);
  auto view = registry.Get(c.device_id, c.module_id);
  if (!view) return Refused(fmt::format("{} is not registered", who));
  const Identity& id = view->identity;
  if (!c.module_id.empty()) {
    auto parent = registry.Get(c.device_id);
    if (!parent || !parent->identity.enabled) {
      return Refused(fmt::format("device '{}' is disabled", c.device_id));
    }
  } else if (!id.enabled) {
    return Refused(fmt::format("{} is disabled", who));
  }
  DeviceIdentity out;
  out.device_id = id.device_id;
  out.module_id = id.module_id;
  out.generation_id = id.generation_id;

  if (c.sas_token) {
    auto token = ParseSasToken(*c.sas_token);
    if (!token) return Refused(fmt::format("{}: {}", who, token.error().message()));
    if (!ResourceNames(token->resource, c.device_id, c.module_id)) {
      return Refused(fmt::format("the SAS token's resource '{}' is not {}", token->resource, who));
    }
    if (token->expiry <= now_s) return Refused(fmt::format("{}: the SAS token has expired", who));
    bool ok = false;
    if (!token->key_name.empty()) {
      // A token signed by a shared access policy with DeviceConnect (IoT Hub allows this).
      auto policy = policies.Find(token->key_name);
      ok = policy && (policy->permissions & kDeviceConnect) &&
           (SasSignatureMatches(*token, policy->primary_key) ||
            SasSignatureMatches(*token, policy->secondary_key));
      out.policy = token->key_name;
    } else if (id.auth.type == AuthType::kSas) {
      ok = SasSignatureMatches(*token, id.auth.primary_key) ||
           SasSignatureMatches(*token, id.auth.secondary_key);
    } else {
      return Refused(fmt::format("{} authenticates with {} credentials, not a SAS token", who,
                                 AuthTypeName(id.auth.type)));
    }
    if (!ok) return Refused(fmt::format("{}: the SAS token's signature does not verify", who));
    out.method = AuthType::kSas;
    out.token_expiry_s = token->expiry;
    return out;
  }

  if (c.client_cert_chain_der && !c.client_cert_chain_der->empty() &&
      id.auth.type == AuthType::kCertificateAuthority) {
    if (!cas) return Refused(fmt::format("{}: no CA certificates are configured", who));
    // The leaf's CN names the identity: the device id (a module: its module id).
    auto ca = cas->Authenticate(*c.client_cert_chain_der,
                                c.module_id.empty() ? c.device_id : c.module_id);
    if (!ca) return Refused(fmt::format("{}: {}", who, ca.error().message()));
    out.method = AuthType::kCertificateAuthority;
    return out;
  }
  if (c.client_cert_chain_der && !c.client_cert_chain_der->empty()) {
    if (id.auth.type != AuthType::kSelfSigned) {
      return Refused(
          fmt::format("{} presented a client certificate but is registered with {} authentication",
                      who, AuthTypeName(id.auth.type)));
    }
    const std::string& leaf = c.client_cert_chain_der->front();
    std::string sha1 = ThumbprintSha1Der(leaf), sha256 = ThumbprintSha256Der(leaf);
    auto matches = [&](const std::string& registered) {
      if (registered.empty()) return false;
      return crypto::ConstantTimeEqual(registered, registered.size() == 40 ? sha1 : sha256);
    };
    if (!matches(id.auth.primary_thumbprint) && !matches(id.auth.secondary_thumbprint)) {
      return Refused(fmt::format(
          "{}: the client certificate's thumbprint {} is not registered for it", who, sha1));
    }
    out.method = AuthType::kSelfSigned;
    return out;
  }
  return Refused(fmt::format("{} sent no credentials (a SAS token or a client certificate)", who));
}

}  // namespace orrery::hub
