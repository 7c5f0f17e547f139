#include "dps/enrollment.h"

#include <cctype>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/time.h"
#include "dps/errc.h"
#include "hub/json_fields.h"
#include "pki/pki.h"

namespace orrery::dps {
namespace json = boost::json;
using hub::IntField;
using hub::StringField;

namespace {

Error Invalid(std::string message) {
  return Error(Errc::kInvalidArgument, std::move(message));
}

// A member that must be a string when present (null reads as absent).
Result<std::string> OptString(const json::object& o, std::string_view key, std::string_view what) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::string();
  if (!v->is_string()) return Invalid(fmt::format("{} must be a string", what));
  return std::string(v->get_string());
}

Result<const json::object*> OptObject(const json::object& o, std::string_view key,
                                      std::string_view what) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return static_cast<const json::object*>(nullptr);
  if (!v->is_object()) return Invalid(fmt::format("{} must be an object", what));
  return &v->get_object();
}

Result<std::optional<bool>> OptBool(const json::object& o, std::string_view key,
                                    std::string_view what) {
  auto* v = o.if_contains(key);
  if (!v || v->is_null()) return std::optional<bool>();
  if (!v->is_bool()) return Invalid(fmt::format("{} must be true or false", what));
  return std::optional<bool>(v->get_bool());
}

Status CheckKey(const std::string& key, std::string_view which) {
  auto raw = crypto::Base64Decode(key);
  if (!raw) return Invalid(fmt::format("the {} symmetric key is not valid base64", which));
  if (raw->size() < 16 || raw->size() > 64) {
    return Invalid(
        fmt::format("the {} symmetric key must be 16 to 64 bytes (got {})", which, raw->size()));
  }
  return Ok();
}

Result<Certificate> ParseCertificate(std::string_view pem, std::string_view what) {
  auto info = pki::Inspect(pem);
  if (!info) return Invalid(fmt::format("{} is not a PEM X.509 certificate", what));
  Certificate c;
  c.pem = std::string(pem);
  auto sha1 = pki::ThumbprintSha1(pem);
  auto sha256 = pki::ThumbprintSha256(pem);
  if (!sha1 || !sha256) return Invalid(fmt::format("{} is not a PEM X.509 certificate", what));
  c.sha1 = *sha1;
  c.sha256 = *sha256;
  c.subject = info->subject;
  c.subject_cn = info->subject_cn;
  c.not_after_unix = info->not_after_unix;
  c.is_ca = info->is_ca;
  return c;
}

// {"primary":{"certificate":"<PEM>"}, "secondary":{…}} → certificates, primary first.
Result<std::vector<Certificate>> ParseCertificatePair(const json::object& o, std::string_view what,
                                                      bool& elided) {
  std::vector<Certificate> out;
  for (const char* slot : {"primary", "secondary"}) {
    auto name = fmt::format("{}.{}", what, slot);
    ORRERY_ASSIGN_OR_RETURN(auto* c, OptObject(o, slot, name));
    if (!c) continue;
    ORRERY_ASSIGN_OR_RETURN(std::string pem, OptString(*c, "certificate", name + ".certificate"));
    if (pem.empty()) {
      if (c->contains("info")) {  // a GET answer sent back: the stored certificate stays
        elided = true;
        out.emplace_back();  // a placeholder for this slot (ResolveOmitted fills it)
        continue;
      }
      return Invalid(fmt::format("{}.certificate is required (PEM or base64 DER)", name));
    }
    if (pem.find("-----BEGIN") == std::string::npos) {
      // DPS also accepts the base64 of the DER without PEM armour.
      std::string wrapped = "-----BEGIN CERTIFICATE-----\n";
      for (size_t i = 0; i < pem.size(); i += 64)
        wrapped += pem.substr(i, 64) + "\n";
      pem = wrapped + "-----END CERTIFICATE-----\n";
    }
    ORRERY_ASSIGN_OR_RETURN(auto cert, ParseCertificate(pem, name + ".certificate"));
    if (std::string_view(slot) == "secondary" && out.empty()) {  // no primary slot at all
      return Invalid(fmt::format("{} has a secondary certificate but no primary", what));
    }
    out.push_back(std::move(cert));
  }
  return out;
}

Result<Attestation> ParseAttestation(const json::object& o, bool group) {
  ORRERY_ASSIGN_OR_RETURN(std::string type, OptString(o, "type", "attestation.type"));
  Attestation a;
  if (type == "tpm") {
    return Invalid(
        "TPM attestation is not supported by Orrery (use symmetricKey or x509 attestation)");
  }
  if (type == "symmetricKey") {
    a.type = AttestationType::kSymmetricKey;
    ORRERY_ASSIGN_OR_RETURN(auto* k, OptObject(o, "symmetricKey", "attestation.symmetricKey"));
    if (k) {
      ORRERY_ASSIGN_OR_RETURN(a.primary_key, OptString(*k, "primaryKey", "primaryKey"));
      ORRERY_ASSIGN_OR_RETURN(a.secondary_key, OptString(*k, "secondaryKey", "secondaryKey"));
    }
    // DPS generates keys that are sent empty.
    a.keys_generated = a.primary_key.empty() || a.secondary_key.empty();
    if (a.primary_key.empty()) a.primary_key = crypto::RandomKeyBase64(64);
    if (a.secondary_key.empty()) a.secondary_key = crypto::RandomKeyBase64(64);
    ORRERY_TRY(CheckKey(a.primary_key, "primary"));
    ORRERY_TRY(CheckKey(a.secondary_key, "secondary"));
    return a;
  }
  if (type == "x509") {
    a.type = AttestationType::kX509;
    ORRERY_ASSIGN_OR_RETURN(auto* x, OptObject(o, "x509", "attestation.x509"));
    if (!x) return Invalid("attestation.x509 is required for x509 attestation");
    ORRERY_ASSIGN_OR_RETURN(auto* client,
                            OptObject(*x, "clientCertificates", "x509.clientCertificates"));
    ORRERY_ASSIGN_OR_RETURN(auto* signing,
                            OptObject(*x, "signingCertificates", "x509.signingCertificates"));
    ORRERY_ASSIGN_OR_RETURN(auto* refs, OptObject(*x, "caReferences", "x509.caReferences"));
    if (!group) {
      if (signing || refs || !client) {
        return Invalid(
            "an individual enrollment's x509 attestation takes x509.clientCertificates (the "
            "device's own certificate)");
      }
      ORRERY_ASSIGN_OR_RETURN(
          a.client_certificates,
          ParseCertificatePair(*client, "x509.clientCertificates", a.certificates_elided));
      if (a.client_certificates.empty() && !a.certificates_elided) {
        return Invalid("x509.clientCertificates needs a primary certificate");
      }
      return a;
    }
    if (client) {
      return Invalid(
          "an enrollment group's x509 attestation takes x509.signingCertificates or "
          "x509.caReferences, not clientCertificates");
    }
    if (signing) {
      ORRERY_ASSIGN_OR_RETURN(
          a.signing_certificates,
          ParseCertificatePair(*signing, "x509.signingCertificates", a.certificates_elided));
      for (auto& c : a.signing_certificates) {
        if (!c.pem.empty() && !c.is_ca) {
          return Invalid(fmt::format(
              "x509.signingCertificates: '{}' is not a CA certificate (basicConstraints CA:TRUE)",
              c.subject));
        }
      }
    }
    if (refs) {
      for (const char* slot : {"primary", "secondary"}) {
        ORRERY_ASSIGN_OR_RETURN(std::string name,
                                OptString(*refs, slot, fmt::format("x509.caReferences.{}", slot)));
        if (!name.empty()) a.ca_references.push_back(std::move(name));
      }
    }
    if (a.signing_certificates.empty() && a.ca_references.empty() && !a.certificates_elided) {
      return Invalid(
          "an enrollment group's x509 attestation needs x509.signingCertificates.primary or "
          "x509.caReferences.primary");
    }
    return a;
  }
  if (type.empty()) return Invalid("attestation.type is required (symmetricKey or x509)");
  return Invalid(fmt::format("attestation.type '{}' is not one of symmetricKey, x509", type));
}

json::object CertificateInfo(const Certificate& c) {
  return {{"subjectName", c.subject},
          {"sha1Thumbprint", c.sha1},
          {"sha256Thumbprint", c.sha256},
          {"notAfterUtc", timeutil::FormatUtcMs(c.not_after_unix * 1000)},
          {"version", 3}};
}

json::object CertificatePairJson(const std::vector<Certificate>& certs, bool stored) {
  json::object out;
  for (size_t i = 0; i < certs.size() && i < 2; ++i) {
    json::object slot{{"info", CertificateInfo(certs[i])}};
    if (stored) slot["certificate"] = certs[i].pem;
    out[i == 0 ? "primary" : "secondary"] = std::move(slot);
  }
  return out;
}

Result<AllocationPolicy> ParseAllocation(std::string_view s) {
  if (s.empty()) return AllocationPolicy::kDefault;
  if (s == "hashed") return AllocationPolicy::kHashed;
  if (s == "static") return AllocationPolicy::kStatic;
  if (s == "custom") return AllocationPolicy::kCustom;
  if (s == "geoLatency") return AllocationPolicy::kGeoLatency;
  return Invalid(
      fmt::format("allocationPolicy '{}' is not one of hashed, geoLatency, static, custom", s));
}

Status CheckInitialTwin(const json::object& twin) {
  for (auto& [k, v] : twin) {
    if (k != "tags" && k != "properties") {
      return Invalid(fmt::format("initialTwin.{} is not allowed (tags, properties.desired)",
                                 std::string_view(k)));
    }
    if (!v.is_object() && !v.is_null()) {
      return Invalid(fmt::format("initialTwin.{} must be an object", std::string_view(k)));
    }
  }
  if (auto* p = twin.if_contains("properties"); p && p->is_object()) {
    for (auto& [k, v] : p->get_object()) {
      if (k != "desired") {
        return Invalid(fmt::format(
            "initialTwin.properties.{} is not allowed (only desired properties can be set)",
            std::string_view(k)));
      }
      if (!v.is_object() && !v.is_null()) {
        return Invalid("initialTwin.properties.desired must be an object");
      }
    }
  }
  if (json::serialize(twin).size() > kMaxInitialTwinBytes) {
    return Invalid(fmt::format("initialTwin is larger than {} bytes", kMaxInitialTwinBytes));
  }
  return Ok();
}

}  // namespace

std::string_view AttestationTypeName(AttestationType t) {
  return t == AttestationType::kX509 ? "x509" : "symmetricKey";
}

std::string_view AllocationPolicyName(AllocationPolicy p) {
  switch (p) {
    case AllocationPolicy::kHashed:
      return "hashed";
    case AllocationPolicy::kStatic:
      return "static";
    case AllocationPolicy::kCustom:
      return "custom";
    case AllocationPolicy::kGeoLatency:
      return "geoLatency";
    case AllocationPolicy::kDefault:
      break;
  }
  return "";
}

Status CheckId(std::string_view id, std::string_view what) {
  if (id.empty() || id.size() > kMaxIdLength) {
    return Invalid(fmt::format("{} must be 1 to {} characters", what, kMaxIdLength));
  }
  for (char c : id) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_' ||
          c == ':')) {
      return Invalid(
          fmt::format("{} '{}' may only hold letters, digits, '-', '.', '_' and ':'", what, id));
    }
  }
  return Ok();
}

Result<Enrollment> EnrollmentFromJson(const json::value& body, bool group,
                                      std::string_view path_id) {
  if (!body.is_object()) return Invalid("the enrollment must be a JSON object");
  const auto& o = body.get_object();
  Enrollment e;
  e.group = group;
  const char* id_field = group ? "enrollmentGroupId" : "registrationId";
  ORRERY_TRY(CheckId(path_id, id_field));
  ORRERY_ASSIGN_OR_RETURN(std::string body_id, OptString(o, id_field, id_field));
  if (!body_id.empty() && body_id != path_id) {
    return Invalid(
        fmt::format("the body's {} '{}' is not the path's '{}'", id_field, body_id, path_id));
  }
  e.id = std::string(path_id);
  if (!group) {
    ORRERY_ASSIGN_OR_RETURN(e.device_id, OptString(o, "deviceId", "deviceId"));
    if (!e.device_id.empty() && e.device_id.size() > kMaxIdLength) {
      return Invalid(fmt::format("deviceId must be at most {} characters", kMaxIdLength));
    }
  }
  ORRERY_ASSIGN_OR_RETURN(auto* att, OptObject(o, "attestation", "attestation"));
  if (!att) return Invalid("attestation is required");
  ORRERY_ASSIGN_OR_RETURN(e.attestation, ParseAttestation(*att, group));
  ORRERY_ASSIGN_OR_RETURN(std::string status,
                          OptString(o, "provisioningStatus", "provisioningStatus"));
  if (status == "disabled") {
    e.enabled = false;
  } else if (!status.empty() && status != "enabled") {
    return Invalid(fmt::format("provisioningStatus '{}' is not one of enabled, disabled", status));
  }
  ORRERY_ASSIGN_OR_RETURN(auto* caps, OptObject(o, "capabilities", "capabilities"));
  if (caps) {
    ORRERY_ASSIGN_OR_RETURN(auto edge, OptBool(*caps, "iotEdge", "capabilities.iotEdge"));
    e.iot_edge = edge.value_or(false);
  }
  ORRERY_ASSIGN_OR_RETURN(auto* twin, OptObject(o, "initialTwin", "initialTwin"));
  if (twin) {
    ORRERY_TRY(CheckInitialTwin(*twin));
    e.initial_twin = *twin;
  }
  ORRERY_ASSIGN_OR_RETURN(auto* repro, OptObject(o, "reprovisionPolicy", "reprovisionPolicy"));
  if (repro) {
    ORRERY_ASSIGN_OR_RETURN(auto update, OptBool(*repro, "updateHubAssignment",
                                                 "reprovisionPolicy.updateHubAssignment"));
    ORRERY_ASSIGN_OR_RETURN(
        auto migrate, OptBool(*repro, "migrateDeviceData", "reprovisionPolicy.migrateDeviceData"));
    e.update_hub_assignment = update.value_or(true);
    e.migrate_device_data = migrate.value_or(true);
  }
  ORRERY_ASSIGN_OR_RETURN(std::string policy, OptString(o, "allocationPolicy", "allocationPolicy"));
  ORRERY_ASSIGN_OR_RETURN(e.allocation, ParseAllocation(policy));
  if (auto* hubs = o.if_contains("iotHubs"); hubs && !hubs->is_null()) {
    if (!hubs->is_array()) return Invalid("iotHubs must be an array of hub host names");
    for (auto& h : hubs->get_array()) {
      if (!h.is_string() || h.get_string().empty()) {
        return Invalid("iotHubs must be an array of hub host names");
      }
      e.iot_hubs.emplace_back(h.get_string());
    }
    if (e.iot_hubs.size() > 50) return Invalid("iotHubs may name at most 50 hubs");
  }
  ORRERY_ASSIGN_OR_RETURN(e.iot_hub_host_name, OptString(o, "iotHubHostName", "iotHubHostName"));
  ORRERY_ASSIGN_OR_RETURN(auto* custom,
                          OptObject(o, "customAllocationDefinition", "customAllocationDefinition"));
  if (custom) {
    ORRERY_ASSIGN_OR_RETURN(
        e.webhook_url, OptString(*custom, "webhookUrl", "customAllocationDefinition.webhookUrl"));
    ORRERY_ASSIGN_OR_RETURN(
        e.webhook_api_version,
        OptString(*custom, "apiVersion", "customAllocationDefinition.apiVersion"));
  }
  if (e.allocation == AllocationPolicy::kCustom) {
    if (e.webhook_url.empty()) {
      return Invalid("allocationPolicy custom needs customAllocationDefinition.webhookUrl");
    }
    if (!e.webhook_url.starts_with("https://")) {
      return Invalid("customAllocationDefinition.webhookUrl must be an https:// URL");
    }
  }
  if (e.allocation == AllocationPolicy::kStatic && e.iot_hubs.size() > 1) {
    return Invalid("allocationPolicy static takes exactly one hub in iotHubs");
  }
  ORRERY_ASSIGN_OR_RETURN(e.etag, OptString(o, "etag", "etag"));
  return e;
}

void ResolveOmitted(Attestation& parsed, const Attestation* stored) {
  bool same = stored && stored->type == parsed.type;
  if (parsed.keys_generated && same) {
    parsed.primary_key = stored->primary_key;
    parsed.secondary_key = stored->secondary_key;
  }
  parsed.keys_generated = false;
  // Each slot sent back as "info" only takes the stored certificate of that slot.
  auto fill = [&](std::vector<Certificate>& mine, const std::vector<Certificate>* theirs) {
    for (size_t i = 0; i < mine.size(); ++i) {
      if (mine[i].pem.empty() && theirs && i < theirs->size()) mine[i] = (*theirs)[i];
    }
    std::erase_if(mine, [](const Certificate& c) { return c.pem.empty(); });
  };
  fill(parsed.client_certificates, same ? &stored->client_certificates : nullptr);
  fill(parsed.signing_certificates, same ? &stored->signing_certificates : nullptr);
  parsed.certificates_elided = false;
}

json::object AttestationToJson(const Attestation& a, bool group, bool with_keys, bool stored) {
  json::object out{{"type", AttestationTypeName(a.type)}};
  if (a.type == AttestationType::kSymmetricKey) {
    if (with_keys) {
      out["symmetricKey"] =
          json::object{{"primaryKey", a.primary_key}, {"secondaryKey", a.secondary_key}};
    } else {
      out["symmetricKey"] = json::object{{"primaryKey", nullptr}, {"secondaryKey", nullptr}};
    }
    return out;
  }
  json::object x;
  if (!group) {
    x["clientCertificates"] = CertificatePairJson(a.client_certificates, stored);
  } else {
    if (!a.signing_certificates.empty()) {
      x["signingCertificates"] = CertificatePairJson(a.signing_certificates, stored);
    }
    if (!a.ca_references.empty()) {
      json::object refs{{"primary", a.ca_references[0]}};
      if (a.ca_references.size() > 1) refs["secondary"] = a.ca_references[1];
      x["caReferences"] = std::move(refs);
    }
  }
  out["x509"] = std::move(x);
  return out;
}

json::object EnrollmentToJson(const Enrollment& e, bool with_keys, bool stored) {
  json::object o;
  if (e.group) {
    o["enrollmentGroupId"] = e.id;
  } else {
    o["registrationId"] = e.id;
    if (!e.device_id.empty()) o["deviceId"] = e.device_id;
  }
  o["attestation"] = AttestationToJson(e.attestation, e.group, with_keys, stored);
  o["capabilities"] = json::object{{"iotEdge", e.iot_edge}};
  if (!e.iot_hub_host_name.empty()) o["iotHubHostName"] = e.iot_hub_host_name;
  if (e.initial_twin) o["initialTwin"] = *e.initial_twin;
  o["etag"] = e.etag;
  o["provisioningStatus"] = e.enabled ? "enabled" : "disabled";
  o["reprovisionPolicy"] = json::object{{"updateHubAssignment", e.update_hub_assignment},
                                        {"migrateDeviceData", e.migrate_device_data}};
  o["createdDateTimeUtc"] = timeutil::FormatUtcMs(e.created_ms);
  o["lastUpdatedDateTimeUtc"] = timeutil::FormatUtcMs(e.updated_ms);
  if (e.allocation != AllocationPolicy::kDefault) {
    o["allocationPolicy"] = AllocationPolicyName(e.allocation);
  }
  json::array hubs;
  for (auto& h : e.iot_hubs)
    hubs.emplace_back(h);
  o["iotHubs"] = std::move(hubs);
  if (!e.webhook_url.empty()) {
    o["customAllocationDefinition"] =
        json::object{{"webhookUrl", e.webhook_url}, {"apiVersion", e.webhook_api_version}};
  }
  if (stored) o["etagCounter"] = e.etag_counter;
  return o;
}

std::string EncodeEnrollment(const Enrollment& e) {
  return json::serialize(EnrollmentToJson(e, true, true));
}

Result<Enrollment> DecodeEnrollment(std::string_view bytes, bool group) {
  boost::system::error_code ec;
  auto v = json::parse(bytes, ec);
  if (ec || !v.is_object()) return Error(Errc::kCorruptState, "a stored enrollment is not JSON");
  const auto& o = v.get_object();
  std::string id = StringField(o, group ? "enrollmentGroupId" : "registrationId");
  auto e = EnrollmentFromJson(v, group, id);
  if (!e) {
    return Error(Errc::kCorruptState,
                 fmt::format("stored enrollment '{}': {}", id, e.error().message()));
  }
  e->etag_counter = static_cast<uint64_t>(IntField(o, "etagCounter"));
  e->etag = EtagFor(e->etag_counter);
  if (auto ms = timeutil::ParseUtcMs(StringField(o, "createdDateTimeUtc"))) e->created_ms = *ms;
  if (auto ms = timeutil::ParseUtcMs(StringField(o, "lastUpdatedDateTimeUtc"))) {
    e->updated_ms = *ms;
  }
  return e;
}

std::string_view RegistrationStatusName(RegistrationStatus s) {
  switch (s) {
    case RegistrationStatus::kUnassigned:
      return "unassigned";
    case RegistrationStatus::kAssigning:
      return "assigning";
    case RegistrationStatus::kAssigned:
      return "assigned";
    case RegistrationStatus::kFailed:
      return "failed";
    case RegistrationStatus::kDisabled:
      return "disabled";
  }
  return "unassigned";
}

json::object RegistrationToJson(const Registration& r) {
  json::object o{{"registrationId", r.registration_id},
                 {"createdDateTimeUtc", timeutil::FormatUtcMs(r.created_ms)},
                 {"lastUpdatedDateTimeUtc", timeutil::FormatUtcMs(r.updated_ms)},
                 {"status", RegistrationStatusName(r.status)},
                 {"etag", r.etag}};
  if (!r.assigned_hub.empty()) o["assignedHub"] = r.assigned_hub;
  if (!r.device_id.empty()) o["deviceId"] = r.device_id;
  if (!r.substatus.empty()) o["substatus"] = r.substatus;
  if (r.error_code != 0) {
    o["errorCode"] = r.error_code;
    o["errorMessage"] = r.error_message;
  }
  if (r.attestation == AttestationType::kX509) {
    json::object x;
    if (!r.group_id.empty()) x["enrollmentGroupId"] = r.group_id;
    if (!r.thumbprint.empty()) {
      x["certificateInfo"] = json::object{{"sha1Thumbprint", r.thumbprint}};
    }
    o["x509"] = std::move(x);
  } else {
    json::object k;
    if (!r.group_id.empty()) k["enrollmentGroupId"] = r.group_id;
    o["symmetricKey"] = std::move(k);
  }
  if (r.payload) o["payload"] = *r.payload;
  return o;
}

std::string EncodeRegistration(const Registration& r) {
  auto o = RegistrationToJson(r);
  o["etagCounter"] = r.etag_counter;
  o["operationId"] = r.operation_id;
  o["groupId"] = r.group_id;
  o["thumbprint"] = r.thumbprint;
  o["createdMs"] = r.created_ms;
  o["updatedMs"] = r.updated_ms;
  return json::serialize(o);
}

Result<Registration> DecodeRegistration(std::string_view bytes) {
  boost::system::error_code ec;
  auto v = json::parse(bytes, ec);
  if (ec || !v.is_object()) {
    return Error(Errc::kCorruptState, "a stored registration state is not JSON");
  }
  const auto& o = v.get_object();
  Registration r;
  r.registration_id = StringField(o, "registrationId");
  r.device_id = StringField(o, "deviceId");
  r.assigned_hub = StringField(o, "assignedHub");
  std::string status = StringField(o, "status");
  for (auto s : {RegistrationStatus::kUnassigned, RegistrationStatus::kAssigning,
                 RegistrationStatus::kAssigned, RegistrationStatus::kFailed,
                 RegistrationStatus::kDisabled}) {
    if (status == RegistrationStatusName(s)) r.status = s;
  }
  r.substatus = StringField(o, "substatus");
  r.created_ms = IntField(o, "createdMs");
  r.updated_ms = IntField(o, "updatedMs");
  r.etag_counter = static_cast<uint64_t>(IntField(o, "etagCounter"));
  r.etag = EtagFor(r.etag_counter);
  r.error_code = static_cast<int>(IntField(o, "errorCode"));
  r.error_message = StringField(o, "errorMessage");
  r.operation_id = StringField(o, "operationId");
  r.group_id = StringField(o, "groupId");
  r.thumbprint = StringField(o, "thumbprint");
  r.attestation = o.contains("x509") ? AttestationType::kX509 : AttestationType::kSymmetricKey;
  if (auto* p = o.if_contains("payload")) r.payload = *p;
  return r;
}

Result<std::string> DeriveDeviceKey(std::string_view group_key_base64,
                                    std::string_view registration_id) {
  auto key = crypto::Base64Decode(group_key_base64);
  if (!key) return Invalid("the group key is not valid base64");
  return crypto::Base64Encode(crypto::HmacSha256(*key, registration_id));
}

std::string EtagFor(uint64_t counter) {
  return crypto::Base64Encode(std::to_string(counter));
}

}  // namespace orrery::dps
