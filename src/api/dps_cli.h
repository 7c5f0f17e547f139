// The client side of the provisioning service's REST API (api/dps_api.h): what `orrery dps
// enrollment|enrollment-group|registration|derive-key` run, shaped like `az iot dps
// enrollment|enrollment-group|registration` (api-version 2021-10-01).
//
// The same conventions as the hub's commands (api/service_cli.h), whose connection plumbing
// these share (ResolveServiceConnection with dps::DpsPolicySchema(), ExitCodeFor, PrettyJson):
// every command is blocking, prints the response's JSON pretty-printed to `out`, and returns
//  - BaseErrc::kInvalidArgument for a usage error (a bad flag value, a malformed JSON argument,
//    an unreadable certificate file), found before any request is sent;
//  - BaseErrc::kUnavailable for the server's refusal, with the message
//    "HTTP <status> <errorCode>: <message>" taken from DPS's error body
//    {"errorCode","trackingId","message","timestampUtc"};
//  - net::Fetch's errors for connection and TLS failures.
// Messages never contain keys. `err` carries progress notes only.
#pragma once

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "api/service_cli.h"
#include "base/error.h"

namespace orrery::api {

// An individual enrollment (id = its registration id) or an enrollment group.
struct EnrollmentRef {
  bool group = false;
  std::string id;
};

// Enrollment properties to set; unset ones keep their value (update) or DPS's default
// (create: symmetric-key attestation with keys the server generates, enabled, the service's
// allocation policy over every linked hub, reprovisioning that migrates the device's data).
struct EnrollmentFields {
  std::optional<std::string> attestation;  // symmetricKey | x509 (implied x509 by a cert flag)
  std::optional<std::string> primary_key, secondary_key;  // base64 of 16..64 bytes
  // x509: PEM files. An individual enrollment's go to clientCertificates, a group's to
  // signingCertificates. On update a new primary certificate replaces both (the secondary
  // stays only when given again): the server never returns the PEM it keeps.
  std::optional<std::filesystem::path> certificate, secondary_certificate;
  std::optional<std::string> ca_name;       // groups: caReferences.primary (`orrery hub ca`)
  std::optional<std::string> device_id;     // individual enrollments only
  std::vector<std::string> hubs;            // iotHubs, replaced when non-empty
  std::optional<std::string> allocation;    // hashed | static | geoLatency | custom
  std::optional<std::string> webhook_url;   // customAllocationDefinition (https://)
  std::optional<std::string> initial_twin;  // JSON object text: {"tags":…,"properties":…}
  std::optional<bool> edge;                 // capabilities.iotEdge
  std::optional<bool> disabled;             // provisioningStatus
  std::optional<std::string> reprovision;   // migrate | reset | never
};

struct EnrollmentCreateOptions {
  EnrollmentRef ref;
  EnrollmentFields fields;
};
// PUT /enrollments/{id} (/enrollmentGroups/{id}); prints the new enrollment with its keys.
// Refuses (BaseErrc::kAlreadyExists) when it exists already: update changes one.
Status EnrollmentCreate(const ServiceConnection& c, const EnrollmentCreateOptions& o,
                        std::FILE* out, std::FILE* err);

// GET /enrollments/{id} (/enrollmentGroups/{id}).
Status EnrollmentShow(const ServiceConnection& c, const EnrollmentRef& ref, std::FILE* out,
                      std::FILE* err);

struct EnrollmentListOptions {
  bool group = false;
  std::string query;            // "SELECT * FROM enrollments WHERE …"; empty: all
  std::optional<uint64_t> top;  // at most this many
  uint64_t page_size = 1000;    // rows per request (x-ms-max-item-count; the server caps it)
};
// POST /enrollments/query (/enrollmentGroups/query), page after page (x-ms-continuation)
// until the last or `top` rows; prints one JSON array.
Status EnrollmentList(const ServiceConnection& c, const EnrollmentListOptions& o, std::FILE* out,
                      std::FILE* err);

struct EnrollmentUpdateOptions {
  EnrollmentRef ref;
  EnrollmentFields fields;
  std::string etag;  // If-Match; default: the etag read with the enrollment
};
// GET, change only the given fields, PUT with If-Match (412 when it changed in between).
// REQUIRES: at least one field (else a usage error).
Status EnrollmentUpdate(const ServiceConnection& c, const EnrollmentUpdateOptions& o,
                        std::FILE* out, std::FILE* err);

struct EnrollmentDeleteOptions {
  EnrollmentRef ref;
  std::string etag;  // If-Match; default: whatever it is
};
// DELETE /enrollments/{id} (/enrollmentGroups/{id}); an individual enrollment's registration
// state goes with it.
Status EnrollmentDelete(const ServiceConnection& c, const EnrollmentDeleteOptions& o,
                        std::FILE* out, std::FILE* err);

// GET /registrations/{id}: a device's registration state.
Status RegistrationShow(const ServiceConnection& c, const std::string& registration_id,
                        std::FILE* out, std::FILE* err);

struct RegistrationListOptions {
  std::string group;  // enrollment group id
  std::optional<uint64_t> top;
  uint64_t page_size = 1000;
};
// POST /registrations/{group}/query, every page; prints one JSON array.
Status RegistrationList(const ServiceConnection& c, const RegistrationListOptions& o,
                        std::FILE* out, std::FILE* err);

struct RegistrationDeleteOptions {
  std::string registration_id;
  std::string etag;  // If-Match; default: whatever it is
};
Status RegistrationDelete(const ServiceConnection& c, const RegistrationDeleteOptions& o,
                          std::FILE* out, std::FILE* err);

struct DeriveKeyOptions {
  std::string registration_id;
  std::string key;         // the group's key (base64): derive offline
  std::string group;       // or fetch the key of this symmetric-key enrollment group
  bool secondary = false;  // with `group`: its secondary key
};
// True when DeriveKey needs no connection (the key was given).
inline bool DeriveKeyIsOffline(const DeriveKeyOptions& o) {
  return !o.key.empty();
}
// Prints base64(HMAC-SHA256(base64decode(group key), registration id)), the key a device of
// the group signs its registration with. The group's key comes from POST
// /enrollmentGroups/{id}/attestationmechanism when `group` is given. Exactly one of key and
// group (else a usage error).
Status DeriveKey(const ServiceConnection& c, const DeriveKeyOptions& o, std::FILE* out,
                 std::FILE* err);

}  // namespace orrery::api
