// Device and module authentication, shared by every device protocol (MQTT CONNECT, device
// HTTPS requests): SAS tokens exactly as the wire contract (§1.2) describes them, and X.509
// client certificates matched by thumbprint (selfSigned identities).
//
// Thread safety: pure functions over the (thread-safe) registry and policy store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/error.h"
#include "hub/identity.h"

namespace orrery::hub {

class Registry;
class PolicyStore;
class CaStore;

// Who a device connection or request is, once authenticated.
struct DeviceIdentity {
  std::string device_id;
  std::string module_id;  // empty for a device
  std::string generation_id;
  AuthType method =
      AuthType::kSas;  // kSas (key or DeviceConnect policy), kSelfSigned, kCertificateAuthority
  std::string policy;  // the DeviceConnect policy that signed the token, if any
  int64_t token_expiry_s = 0;  // SAS: when the credential stops being valid; 0 = never

  std::string key() const;  // the registry key
  // iothub-connection-auth-method, as IoT Hub writes it on telemetry.
  std::string AuthMethodJson() const;
};

struct DeviceCredentials {
  std::string_view device_id;
  std::string_view module_id;
  std::optional<std::string_view> sas_token;  // "SharedAccessSignature sr=…"
  const std::vector<std::string>* client_cert_chain_der = nullptr;  // leaf first
};

// Authenticates the claimed identity. Refusals are Errc::kUnauthorized with a message fit
// for the log and the client (it never echoes a signature or key): unknown identity, wrong
// or expired token, a token for another identity, a disabled device, a certificate whose
// thumbprint is not registered or that does not chain to a verified CA (`cas`, nullable).
Result<DeviceIdentity> AuthenticateDevice(const Registry& registry, const PolicyStore& policies,
                                          const CaStore* cas, const DeviceCredentials& credentials,
                                          int64_t now_s);

// Upper-case hex SHA-1 and SHA-256 of a DER certificate (IoT Hub's thumbprint forms).
std::string ThumbprintSha1Der(std::string_view der);
std::string ThumbprintSha256Der(std::string_view der);

}  // namespace orrery::hub
