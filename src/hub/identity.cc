#include "hub/identity.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/time.h"
#include "hub/errc.h"
#include "hub/json_fields.h"

namespace orrery::hub {
namespace json = boost::json;

namespace {

Error Invalid(std::string message) {
  return Error(Errc::kInvalidArgument, std::move(message));
}

bool IdChar(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  static constexpr std::string_view kSpecial = "-:.+%_#*?!(),=@;$'";
  return kSpecial.find(c) != std::string_view::npos;
}

// Reads an optional string member; a non-string non-null value is an error.
Result<std::string> OptString(const json::object& o, std::string_view key, std::string_view what) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::string();
  if (!v->is_string()) return Invalid(fmt::format("{} must be a string", what));
  return std::string(v->get_string());
}

Status CheckKey(const std::string& key, std::string_view which) {
  auto raw = crypto::Base64Decode(key);
  if (!raw) return Invalid(fmt::format("the {} key is not valid base64", which));
  if (raw->size() < 16 || raw->size() > 64) {
    return Invalid(fmt::format("the {} key must be 16 to 64 bytes (got {})", which, raw->size()));
  }
  return Ok();
}

Result<std::string> NormaliseThumbprint(std::string t, std::string_view which) {
  std::string out;
  for (char c : t) {
    if (c == ':' || c == ' ') continue;  // accept "AB:CD:..." as openssl prints it
    if (!std::isxdigit(static_cast<unsigned char>(c))) {
      return Invalid(fmt::format("the {} thumbprint must be hexadecimal", which));
    }
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (!out.empty() && out.size() != 40 && out.size() != 64) {
    return Invalid(fmt::format(
        "the {} thumbprint must be a SHA-1 (40 hex digits) or SHA-256 (64) fingerprint", which));
  }
  return out;
}

Result<AuthType> ParseAuthType(std::string_view s) {
  if (s == "sas") return AuthType::kSas;
  if (s == "selfSigned") return AuthType::kSelfSigned;
  if (s == "certificateAuthority") return AuthType::kCertificateAuthority;
  if (s == "none") return AuthType::kNone;
  return Invalid(fmt::format(
      "authentication.type '{}' is not one of sas, selfSigned, certificateAuthority, none", s));
}

Result<Authentication> ParseAuthentication(const json::value* v) {
  Authentication a;
  if (!v || v->is_null()) {
    a.primary_key = crypto::RandomKeyBase64();
    a.secondary_key = crypto::RandomKeyBase64();
    return a;
  }
  if (!v->is_object()) return Invalid("authentication must be an object");
  const auto& o = v->get_object();
  std::string primary_thumb, secondary_thumb;
  if (auto* t = o.if_contains("x509Thumbprint"); t && !t->is_null()) {
    if (!t->is_object()) return Invalid("authentication.x509Thumbprint must be an object");
    ORRERY_ASSIGN_OR_RETURN(primary_thumb,
                            OptString(t->get_object(), "primaryThumbprint", "primaryThumbprint"));
    ORRERY_ASSIGN_OR_RETURN(
        secondary_thumb, OptString(t->get_object(), "secondaryThumbprint", "secondaryThumbprint"));
  }
  std::string primary_key, secondary_key;
  if (auto* k = o.if_contains("symmetricKey"); k && !k->is_null()) {
    if (!k->is_object()) return Invalid("authentication.symmetricKey must be an object");
    ORRERY_ASSIGN_OR_RETURN(primary_key, OptString(k->get_object(), "primaryKey", "primaryKey"));
    ORRERY_ASSIGN_OR_RETURN(secondary_key,
                            OptString(k->get_object(), "secondaryKey", "secondaryKey"));
  }
  ORRERY_ASSIGN_OR_RETURN(std::string type, OptString(o, "type", "authentication.type"));
  if (type.empty())
    type = (!primary_thumb.empty() || !secondary_thumb.empty()) ? "selfSigned" : "sas";
  ORRERY_ASSIGN_OR_RETURN(a.type, ParseAuthType(type));
  switch (a.type) {
    case AuthType::kSas:
      a.primary_key = primary_key.empty() ? crypto::RandomKeyBase64() : primary_key;
      a.secondary_key = secondary_key.empty() ? crypto::RandomKeyBase64() : secondary_key;
      ORRERY_TRY(CheckKey(a.primary_key, "primary"));
      ORRERY_TRY(CheckKey(a.secondary_key, "secondary"));
      break;
    case AuthType::kSelfSigned: {
      ORRERY_ASSIGN_OR_RETURN(a.primary_thumbprint, NormaliseThumbprint(primary_thumb, "primary"));
      ORRERY_ASSIGN_OR_RETURN(a.secondary_thumbprint,
                              NormaliseThumbprint(secondary_thumb, "secondary"));
      if (a.primary_thumbprint.empty()) {
        return Invalid("selfSigned authentication needs x509Thumbprint.primaryThumbprint");
      }
      break;
    }
    case AuthType::kCertificateAuthority:
    case AuthType::kNone:
      break;
  }
  return a;
}

json::value NullOr(const std::string& s) {
  if (s.empty()) return nullptr;
  return json::value(s);
}

}  // namespace

std::string_view AuthTypeName(AuthType t) {
  switch (t) {
    case AuthType::kSas:
      return "sas";
    case AuthType::kSelfSigned:
      return "selfSigned";
    case AuthType::kCertificateAuthority:
      return "certificateAuthority";
    case AuthType::kNone:
      return "none";
  }
  return "none";
}

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    if (!IdChar(c)) return false;
  }
  return true;
}

Status CheckId(std::string_view id, std::string_view what) {
  if (id.empty()) return Invalid(fmt::format("the {} is empty", what));
  if (id.size() > 128) return Invalid(fmt::format("the {} is longer than 128 characters", what));
  for (char c : id) {
    if (!IdChar(c)) {
      return Invalid(fmt::format(
          "the {} '{}' contains a character IoT Hub does not allow; use ASCII letters, digits "
          "and - : . + % _ # * ? ! ( ) , = @ ; $ '",
          what, id.size() <= 128 ? std::string(id) : std::string(id.substr(0, 128))));
    }
  }
  return Ok();
}

Result<Identity> IdentityFromJson(const json::value& body, std::string_view device_id,
                                  std::string_view module_id) {
  ORRERY_TRY(CheckId(device_id, "device id"));
  if (!module_id.empty()) ORRERY_TRY(CheckId(module_id, "module id"));
  if (!body.is_object()) return Invalid("the body must be a JSON object");
  const auto& o = body.get_object();
  Identity id;
  id.device_id = std::string(device_id);
  id.module_id = std::string(module_id);
  ORRERY_ASSIGN_OR_RETURN(std::string body_device, OptString(o, "deviceId", "deviceId"));
  if (!body_device.empty() && body_device != device_id) {
    return Invalid(fmt::format("deviceId '{}' in the body does not match '{}' in the path",
                               body_device, device_id));
  }
  if (!module_id.empty()) {
    ORRERY_ASSIGN_OR_RETURN(std::string body_module, OptString(o, "moduleId", "moduleId"));
    if (!body_module.empty() && body_module != module_id) {
      return Invalid(fmt::format("moduleId '{}' in the body does not match '{}' in the path",
                                 body_module, module_id));
    }
    ORRERY_ASSIGN_OR_RETURN(id.managed_by, OptString(o, "managedBy", "managedBy"));
  }
  // Modules have no status of their own in IoT Hub (their device's applies): ignore it.
  ORRERY_ASSIGN_OR_RETURN(std::string status,
                          OptString(o, module_id.empty() ? "status" : "", "status"));
  if (status.empty() || status == "enabled" || status == "Enabled") {
    id.enabled = true;
  } else if (status == "disabled" || status == "Disabled") {
    id.enabled = false;
  } else {
    return Invalid(fmt::format("status '{}' is neither enabled nor disabled", status));
  }
  ORRERY_ASSIGN_OR_RETURN(id.status_reason, OptString(o, "statusReason", "statusReason"));
  if (id.status_reason.size() > 128) return Invalid("statusReason is longer than 128 characters");
  ORRERY_ASSIGN_OR_RETURN(id.auth, ParseAuthentication(o.if_contains("authentication")));
  if (auto* c = o.if_contains("capabilities"); c && !c->is_null()) {
    if (!c->is_object()) return Invalid("capabilities must be an object");
    if (auto* e = c->get_object().if_contains("iotEdge"); e && !e->is_null()) {
      if (!e->is_bool()) return Invalid("capabilities.iotEdge must be true or false");
      id.iot_edge = e->get_bool();
    }
  }
  ORRERY_ASSIGN_OR_RETURN(id.device_scope, OptString(o, "deviceScope", "deviceScope"));
  if (auto* p = o.if_contains("parentScopes"); p && !p->is_null()) {
    if (!p->is_array()) return Invalid("parentScopes must be an array of strings");
    for (auto& s : p->get_array()) {
      if (!s.is_string()) return Invalid("parentScopes must be an array of strings");
      id.parent_scopes.emplace_back(s.get_string());
    }
  }
  return id;
}

json::object IdentityToJson(const Identity& id, const IdentityRuntime& rt) {
  json::object o;
  o["deviceId"] = id.device_id;
  if (id.is_module()) {
    o["moduleId"] = id.module_id;
    o["managedBy"] = NullOr(id.managed_by);
  }
  o["generationId"] = id.generation_id;
  o["etag"] = id.etag;
  o["connectionState"] = rt.connected ? "Connected" : "Disconnected";
  if (!id.is_module()) {
    o["status"] = id.enabled ? "enabled" : "disabled";
    o["statusReason"] = NullOr(id.status_reason);
    o["statusUpdatedTime"] = timeutil::FormatUtcMs(id.status_updated_ms);
  }
  o["connectionStateUpdatedTime"] = timeutil::FormatUtcMs(rt.connection_state_updated_ms);
  o["lastActivityTime"] = timeutil::FormatUtcMs(rt.last_activity_ms);
  o["cloudToDeviceMessageCount"] = rt.c2d_message_count;
  json::object auth;
  auth["type"] = AuthTypeName(id.auth.type);
  auth["symmetricKey"] = json::object{{"primaryKey", NullOr(id.auth.primary_key)},
                                      {"secondaryKey", NullOr(id.auth.secondary_key)}};
  auth["x509Thumbprint"] =
      json::object{{"primaryThumbprint", NullOr(id.auth.primary_thumbprint)},
                   {"secondaryThumbprint", NullOr(id.auth.secondary_thumbprint)}};
  o["authentication"] = std::move(auth);
  if (!id.is_module()) {
    o["capabilities"] = json::object{{"iotEdge", id.iot_edge}};
    if (!id.device_scope.empty()) o["deviceScope"] = id.device_scope;
    json::array parents;
    for (auto& p : id.parent_scopes)
      parents.emplace_back(p);
    o["parentScopes"] = std::move(parents);
  }
  return o;
}

std::string EncodeIdentity(const Identity& id) {
  json::object o = IdentityToJson(id, {});
  o.erase("connectionState");
  o.erase("connectionStateUpdatedTime");
  o.erase("lastActivityTime");
  o.erase("cloudToDeviceMessageCount");
  o["etagCounter"] = id.etag_counter;
  o["statusUpdatedMs"] = id.status_updated_ms;
  o["createdMs"] = id.created_ms;
  o["status"] = id.enabled ? "enabled" : "disabled";
  o["statusReason"] = id.status_reason;
  o["capabilities"] = json::object{{"iotEdge", id.iot_edge}};
  return json::serialize(o);
}

Result<Identity> DecodeIdentity(std::string_view bytes) {
  boost::system::error_code ec;
  json::value v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return Error(Errc::kCorruptState, "a stored identity is not JSON");
  const auto& o = v.get_object();
  auto str = [&](std::string_view k) { return StringField(o, k); };
  auto num = [&](std::string_view k) { return IntField(o, k); };
  std::string device = str("deviceId"), module = str("moduleId");
  auto parsed = IdentityFromJson(v, device, module);
  if (!parsed) {
    return Error(Errc::kCorruptState,
                 fmt::format("stored identity '{}': {}", device, parsed.error().message()));
  }
  Identity id = std::move(*parsed);
  id.generation_id = str("generationId");
  id.etag_counter = static_cast<uint64_t>(num("etagCounter"));
  id.etag = EtagForCounter(id.etag_counter);
  id.status_updated_ms = num("statusUpdatedMs");
  id.created_ms = num("createdMs");
  return id;
}

std::string NewGenerationId() {
  std::string raw = crypto::RandomBytes(8);
  uint64_t n = 0;
  for (char c : raw)
    n = (n << 8) | static_cast<uint8_t>(c);
  // IoT Hub's generation ids are 18-digit decimals starting with 63..., like .NET ticks.
  return fmt::format("63{:016d}", n % 10'000'000'000'000'000ull);
}

std::string EtagForCounter(uint64_t counter) {
  return crypto::Base64Encode(std::to_string(counter));
}

}  // namespace orrery::hub
