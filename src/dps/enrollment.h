// The provisioning service's data model, in DPS's shapes (wire contract §6, api-version
// 2021-10-01): individual enrollments, enrollment groups, their attestation mechanisms, and
// device registration states — with validation, normalisation and their JSON forms (which are
// also how they are stored).
//
// Pure values and functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include "base/error.h"

namespace orrery::dps {

enum class AttestationType { kSymmetricKey, kX509 };
std::string_view AttestationTypeName(AttestationType t);  // "symmetricKey", "x509"

// An uploaded X.509 certificate with what DPS reports about it ("info").
struct Certificate {
  std::string pem;
  std::string sha1, sha256;  // upper-case hex thumbprints
  std::string subject, subject_cn;
  int64_t not_after_unix = 0;
  bool is_ca = false;
};

struct Attestation {
  AttestationType type = AttestationType::kSymmetricKey;
  std::string primary_key, secondary_key;  // symmetricKey: base64 (16..64 bytes)
  // x509, individual: clientCertificates (the device's own leaf); group: signingCertificates
  // (a root or intermediate CA uploaded with the group) or caReferences (names of CAs
  // registered and verified with `orrery hub ca`). Primary first; a secondary may follow.
  std::vector<Certificate> client_certificates;
  std::vector<Certificate> signing_certificates;
  std::vector<std::string> ca_references;
  // What the body left out, for an update to keep the stored values: keys sent empty (and
  // generated here), certificates sent back as their "info" only (as GET reports them; such
  // a slot holds a placeholder with an empty pem until ResolveOmitted).
  bool keys_generated = false;
  bool certificates_elided = false;
};

// Settles what the body left out before an enrollment is stored: an update of `stored` (same
// attestation type) keeps the keys sent empty and, slot by slot, the certificates sent back as
// "info" only; anything left out with nothing stored to keep is dropped (keys stay generated).
// REQUIRES: called once on every parsed enrollment before it is stored or encoded.
void ResolveOmitted(Attestation& parsed, const Attestation* stored);

enum class AllocationPolicy { kDefault, kHashed, kStatic, kCustom, kGeoLatency };
std::string_view AllocationPolicyName(AllocationPolicy p);  // "hashed", ... ("" for kDefault)

// An individual enrollment (group = false, id = registrationId) or an enrollment group
// (group = true, id = enrollmentGroupId).
struct Enrollment {
  bool group = false;
  std::string id;
  std::string device_id;  // individual only; empty = the registration id
  Attestation attestation;
  bool enabled = true;
  bool iot_edge = false;
  std::optional<boost::json::object> initial_twin;  // {"tags":…, "properties":{"desired":…}}
  bool update_hub_assignment = true, migrate_device_data = true;  // reprovisionPolicy
  AllocationPolicy allocation = AllocationPolicy::kDefault;
  std::vector<std::string> iot_hubs;             // host names the allocation may choose from
  std::string iot_hub_host_name;                 // the legacy single-hub field
  std::string webhook_url, webhook_api_version;  // customAllocationDefinition
  std::string etag;
  uint64_t etag_counter = 0;
  int64_t created_ms = 0, updated_ms = 0;
};

// Limits of the data model (Azure DPS's where it documents them).
inline constexpr size_t kMaxIdLength = 128;
inline constexpr size_t kMaxInitialTwinBytes = 32 * 1024;
inline constexpr size_t kMaxPayloadBytes = 4 * 1024;

// A registration id or enrollment group id: 1..128 of a-z A-Z 0-9 - . _ : (DPS's set).
Status CheckId(std::string_view id, std::string_view what);

// Parses an enrollment from the service API body (PUT /enrollments/{id} or
// /enrollmentGroups/{id}); `path_id` is authoritative (the body's id must match when present).
// Normalises DPS's way: empty symmetric keys are generated; certificates are parsed (and a
// group's signing certificates must be CAs); TPM attestation is refused (not supported).
// kInvalidArgument says what is wrong.
Result<Enrollment> EnrollmentFromJson(const boost::json::value& body, bool group,
                                      std::string_view path_id);
// The API form. `with_keys`: include the symmetric keys (attestation mechanism, create/update
// answers, and what the store keeps); certificates are reported by their "info" and, in the
// stored form (`stored`), their PEM.
boost::json::object EnrollmentToJson(const Enrollment& e, bool with_keys = true,
                                     bool stored = false);
boost::json::object AttestationToJson(const Attestation& a, bool group, bool with_keys,
                                      bool stored = false);

std::string EncodeEnrollment(const Enrollment& e);
Result<Enrollment> DecodeEnrollment(std::string_view bytes, bool group);

enum class RegistrationStatus { kUnassigned, kAssigning, kAssigned, kFailed, kDisabled };
std::string_view RegistrationStatusName(RegistrationStatus s);

// A device registration state (DeviceRegistrationState), kept per registration id.
struct Registration {
  std::string registration_id;
  std::string device_id;
  std::string assigned_hub;
  RegistrationStatus status = RegistrationStatus::kUnassigned;
  std::string substatus;  // initialAssignment, deviceDataMigrated, deviceDataReset, ...
  int64_t created_ms = 0, updated_ms = 0;
  std::string etag;
  uint64_t etag_counter = 0;
  int error_code = 0;
  std::string error_message;
  std::string operation_id;  // the last registration's operation
  std::string group_id;      // the enrollment group it came through (empty: individual)
  AttestationType attestation = AttestationType::kSymmetricKey;
  std::string thumbprint;                     // x509: the presented leaf's SHA-1 thumbprint
  std::optional<boost::json::value> payload;  // returned by a custom allocation
};

// The API form (registrationState in operation results, GET /registrations/{id}).
boost::json::object RegistrationToJson(const Registration& r);
std::string EncodeRegistration(const Registration& r);
Result<Registration> DecodeRegistration(std::string_view bytes);

// A group member's symmetric key: base64(HMAC-SHA256(base64decode(group_key), registration
// id)) — the derivation DPS documents and its samples use. kInvalidArgument for a bad key.
Result<std::string> DeriveDeviceKey(std::string_view group_key_base64,
                                    std::string_view registration_id);

// "MQ==" style etags, as the hub uses.
std::string EtagFor(uint64_t counter);

}  // namespace orrery::dps
