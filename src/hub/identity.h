// Device and module identities of the identity registry, in IoT Hub's data model: id rules,
// status, authentication (SAS keys, self-signed thumbprints, CA-signed certificates),
// generationId, etag, capabilities — and their JSON form on the service REST API (wire
// contract §4.4), which is also how they are stored.
//
// Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/fwd.hpp>

#include "base/error.h"

namespace orrery::hub {

enum class AuthType { kSas, kSelfSigned, kCertificateAuthority, kNone };
std::string_view AuthTypeName(AuthType t);  // "sas", "selfSigned", ...

struct Authentication {
  AuthType type = AuthType::kSas;
  std::string primary_key, secondary_key;                // base64 (sas)
  std::string primary_thumbprint, secondary_thumbprint;  // upper-case hex (selfSigned)
};

// Whether `id` is a valid device or module id: 1..128 ASCII letters, digits and
// - : . + % _ # * ? ! ( ) , = @ ; $ '
bool IsValidId(std::string_view id);
// The same check with the reason, for error messages ("device id ...").
Status CheckId(std::string_view id, std::string_view what);

struct Identity {
  std::string device_id;
  std::string module_id;  // empty for a device
  std::string generation_id;
  std::string etag;  // base64 of a counter, as IoT Hub's "MQ==" style
  uint64_t etag_counter = 0;
  bool enabled = true;
  std::string status_reason;
  int64_t status_updated_ms = 0;
  Authentication auth;
  bool iot_edge = false;
  std::string managed_by;  // modules
  std::string device_scope;
  std::vector<std::string> parent_scopes;
  int64_t created_ms = 0;

  bool is_module() const { return !module_id.empty(); }
};

// Runtime facts that the registry reports with an identity but does not store durably.
struct IdentityRuntime {
  bool connected = false;
  int64_t connection_state_updated_ms = 0;
  int64_t last_activity_ms = 0;
  uint64_t c2d_message_count = 0;  // queued cloud-to-device messages
};

// Parses a device or module description from the service API (PUT /devices/{id}[/modules/
// {mid}]): normalises IoT Hub's way — missing authentication means SAS, empty keys are
// generated, thumbprints without a type mean selfSigned — and validates keys (base64, 16..64
// bytes) and thumbprints (40 or 64 hex digits). `device_id`/`module_id` come from the path
// (the body's must match when present). kInvalidArgument says what is wrong.
Result<Identity> IdentityFromJson(const boost::json::value& body, std::string_view device_id,
                                  std::string_view module_id);

// The service API's JSON for an identity (keys included: the caller must hold RegistryRead).
boost::json::object IdentityToJson(const Identity& id, const IdentityRuntime& rt);

// The stored form (a superset of the API form, without runtime fields) and its inverse.
std::string EncodeIdentity(const Identity& id);
Result<Identity> DecodeIdentity(std::string_view bytes);

// A fresh IoT Hub-style generation id (18 decimal digits).
std::string NewGenerationId();
// "MQ==" style etag for a counter value.
std::string EtagForCounter(uint64_t counter);

}  // namespace orrery::hub
