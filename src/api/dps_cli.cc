#include "api/dps_cli.h"

#include <algorithm>
#include <initializer_list>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/cli_http.h"
#include "base/crypto.h"
#include "base/files.h"
#include "base/strings.h"
#include "dps/enrollment.h"
#include "net/http_client.h"

namespace orrery::api {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kApiVersion = "2021-10-01";
using cli::kJsonType;
constexpr std::chrono::milliseconds kRequestTimeout = 30s;
constexpr size_t kMaxPemFile = 64 << 10;
constexpr size_t kProgressFrom = 1000;  // rows read before progress notes start

using cli::BodyJson;
using cli::BodyObject;
using cli::JsonArg;
using cli::OneLine;
using cli::Print;
using cli::Refusal;
using cli::Request;
using cli::Str;
using cli::Usage;

Result<net::HttpResponse> Send(const ServiceConnection& c, Request r) {
  return cli::Send(c, std::move(r), kApiVersion);
}

Result<net::HttpResponse> Exchange(const ServiceConnection& c, Request r) {
  return cli::Exchange(c, std::move(r), kApiVersion);
}

Result<net::HttpResponse> SendJson(const ServiceConnection& c, std::string method, std::string path,
                                   const json::value& body, std::string if_match = {}) {
  Request r{.method = std::move(method), .path = std::move(path), .body = json::serialize(body)};
  if (!if_match.empty()) r.headers.Set("If-Match", std::move(if_match));
  return Send(c, std::move(r));
}

Result<net::HttpResponse> Get(const ServiceConnection& c, std::string path) {
  return Send(c, {.method = "GET", .path = std::move(path)});
}

// The If-Match value for an etag as the user gave it (quoted or not); empty stays empty.
std::string IfMatch(std::string_view etag) {
  if (etag.empty()) return {};
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
  return fmt::format("\"{}\"", etag);
}

json::object& Member(json::object& o, std::string_view key) {
  json::value& v = o[key];
  if (!v.is_object()) v = json::object();
  return v.get_object();
}

// `value` spelled as one of `allowed` (case-insensitively), in the allowed spelling.
std::optional<std::string> Canonical(std::string_view value,
                                     std::initializer_list<std::string_view> allowed) {
  for (auto a : allowed) {
    if (strings::IEquals(value, a)) return std::string(a);
  }
  return std::nullopt;
}

std::string PathOf(const EnrollmentRef& ref) {
  return fmt::format("/{}/{}", ref.group ? "enrollmentGroups" : "enrollments",
                     strings::UrlEncode(ref.id));
}

std::string Describe(const EnrollmentRef& ref) {
  return fmt::format("{} '{}'", ref.group ? "enrollment group" : "enrollment", ref.id);
}

// A registration or enrollment group id as DPS takes them, as a usage error when not.
Status CheckIdArg(std::string_view id, std::string_view what) {
  if (auto st = dps::CheckId(id, what); !st) return Usage(st.error().message());
  return Ok();
}

// A symmetric key flag: base64 of 16..64 bytes (the message never repeats the key).
Status CheckKeyArg(std::string_view key, std::string_view flag) {
  auto raw = crypto::Base64Decode(key);
  if (!raw || raw->size() < 16 || raw->size() > 64) {
    return Usage(fmt::format("{} must be the base64 of 16 to 64 bytes", flag));
  }
  return Ok();
}

Result<std::string> ReadPem(const std::filesystem::path& file, std::string_view flag) {
  auto text = files::ReadFile(file, kMaxPemFile);
  if (!text) {
    return Usage(
        fmt::format("{}: cannot read {}: {}", flag, file.string(), text.error().message()));
  }
  if (text->find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
    return Usage(fmt::format("{}: {} is not a PEM certificate", flag, file.string()));
  }
  return std::move(*text);
}

bool Empty(const EnrollmentFields& f) {
  return !f.attestation && !f.primary_key && !f.secondary_key && !f.certificate &&
         !f.secondary_certificate && !f.ca_name && !f.device_id && f.hubs.empty() &&
         !f.allocation && !f.webhook_url && !f.initial_twin && !f.edge && !f.disabled &&
         !f.reprovision;
}

// {"primary":{"certificate":<PEM>}[, "secondary":{…}]} from the certificate flags.
Result<json::object> CertificatePair(const EnrollmentFields& f) {
  json::object pair;
  ORRERY_ASSIGN_OR_RETURN(std::string primary, ReadPem(*f.certificate, "--certificate"));
  pair["primary"] = json::object{{"certificate", std::move(primary)}};
  if (f.secondary_certificate) {
    ORRERY_ASSIGN_OR_RETURN(std::string secondary,
                            ReadPem(*f.secondary_certificate, "--secondary-certificate"));
    pair["secondary"] = json::object{{"certificate", std::move(secondary)}};
  }
  return pair;
}

// The flags on their own: everything that can be checked without the enrollment as it is.
Status CheckFields(const EnrollmentFields& f, bool group, bool create) {
  if (group && f.device_id) {
    return Usage("enrollment groups have no device id: their devices take their registration ids");
  }
  if (!group && f.ca_name) {
    return Usage(
        "--ca-name is for enrollment groups; an individual enrollment takes the device's own "
        "--certificate");
  }
  if (f.attestation && !Canonical(*f.attestation, {"symmetricKey", "x509"})) {
    return Usage(
        fmt::format("--attestation takes symmetricKey or x509, not '{}'", OneLine(*f.attestation)));
  }
  bool key_flags = f.primary_key || f.secondary_key;
  bool cert_flags = f.certificate || f.secondary_certificate || f.ca_name;
  if (key_flags && cert_flags) {
    return Usage(
        "keys are for symmetricKey attestation, certificates and --ca-name for x509: not both");
  }
  if (f.attestation && cert_flags && strings::IEquals(*f.attestation, "symmetricKey")) {
    return Usage("--certificate, --secondary-certificate and --ca-name are for x509 attestation");
  }
  if (f.attestation && key_flags && strings::IEquals(*f.attestation, "x509")) {
    return Usage("--primary-key and --secondary-key are for symmetricKey attestation");
  }
  if (f.primary_key) ORRERY_TRY(CheckKeyArg(*f.primary_key, "--primary-key"));
  if (f.secondary_key) ORRERY_TRY(CheckKeyArg(*f.secondary_key, "--secondary-key"));
  if (f.secondary_certificate && !f.certificate) {
    return Usage(
        create ? "--secondary-certificate needs --certificate (the primary)"
               : "--secondary-certificate needs --certificate too: a new primary replaces both, "
                 "and the server never hands back the certificates it keeps");
  }
  if (f.certificate) ORRERY_TRY(ReadPem(*f.certificate, "--certificate"));
  if (f.secondary_certificate) {
    ORRERY_TRY(ReadPem(*f.secondary_certificate, "--secondary-certificate"));
  }
  if (f.device_id && (f.device_id->empty() || f.device_id->size() > dps::kMaxIdLength)) {
    return Usage(fmt::format("--device-id must be 1 to {} characters", dps::kMaxIdLength));
  }
  for (auto& h : f.hubs) {
    if (h.empty() || h.find_first_of("/: ") != std::string::npos) {
      return Usage(fmt::format("--hub takes a hub's host name (like hub.example.com), not '{}'",
                               OneLine(h)));
    }
  }
  if (f.allocation && !Canonical(*f.allocation, {"hashed", "static", "geoLatency", "custom"})) {
    return Usage(fmt::format("--allocation takes hashed, static, geoLatency or custom, not '{}'",
                             OneLine(*f.allocation)));
  }
  if (f.webhook_url && !f.webhook_url->starts_with("https://")) {
    return Usage("--webhook-url must be an https:// URL");
  }
  if (f.initial_twin) {
    boost::system::error_code ec;
    json::value twin = json::parse(*f.initial_twin, ec);
    if (ec) return Usage(fmt::format("--initial-twin is not valid JSON: {}", ec.message()));
    if (!twin.is_object()) {
      return Usage(
          R"(--initial-twin must be a JSON object: {"tags":{…},"properties":{"desired":{…}}})");
    }
  }
  if (f.reprovision && !Canonical(*f.reprovision, {"migrate", "reset", "never"})) {
    return Usage(fmt::format("--reprovision takes migrate, reset or never, not '{}'",
                             OneLine(*f.reprovision)));
  }
  if (create) {
    if (f.allocation && strings::IEquals(*f.allocation, "custom") && !f.webhook_url) {
      return Usage("--allocation custom needs --webhook-url https://…");
    }
    if (f.allocation && strings::IEquals(*f.allocation, "static") && f.hubs.size() > 1) {
      return Usage("--allocation static takes one --hub");
    }
    bool x509 = f.attestation ? strings::IEquals(*f.attestation, "x509") : cert_flags;
    if (x509 && !f.certificate && !f.ca_name) {
      return Usage(group ? "x509 attestation of a group needs --certificate (its CA's PEM) or "
                           "--ca-name (a CA registered with `orrery hub ca`)"
                         : "x509 attestation needs --certificate (the device's PEM)");
    }
  }
  return Ok();
}

// Writes the attestation flags into `e` (an enrollment's JSON: empty for create, as read for
// update). A new attestation type replaces the attestation; the same one is changed in place,
// so that what the flags leave out (keys, certificates sent back by their info) is kept.
// REQUIRES: CheckFields(f) passed.
Status ApplyAttestation(json::object& e, const EnrollmentFields& f, bool group, bool create) {
  bool key_flags = f.primary_key || f.secondary_key;
  bool cert_flags = f.certificate || f.secondary_certificate || f.ca_name;
  if (!key_flags && !cert_flags && !f.attestation) return Ok();
  std::string current;
  if (auto* a = e.if_contains("attestation"); a && a->is_object()) {
    current = Str(a->get_object(), "type");
  }
  std::string type;
  if (f.attestation) {
    type = *Canonical(*f.attestation, {"symmetricKey", "x509"});
  } else if (create || current.empty()) {
    type = cert_flags ? "x509" : "symmetricKey";
  } else {
    type = current;
    if (type == "symmetricKey" && cert_flags) {
      return Usage(
          "it uses symmetricKey attestation: add --attestation x509 to switch it to "
          "certificates");
    }
    if (type == "x509" && key_flags) {
      return Usage("it uses x509 attestation: add --attestation symmetricKey to switch it to keys");
    }
  }
  const char* certs = group ? "signingCertificates" : "clientCertificates";

  if (create || type != current) {
    json::object a{{"type", type}};
    if (type == "symmetricKey") {
      json::object keys;  // what is left out, the server generates
      if (f.primary_key) keys["primaryKey"] = *f.primary_key;
      if (f.secondary_key) keys["secondaryKey"] = *f.secondary_key;
      a["symmetricKey"] = std::move(keys);
    } else {
      if (!f.certificate && !f.ca_name) {
        return Usage(group ? "x509 attestation of a group needs --certificate (its CA's PEM) or "
                             "--ca-name (a CA registered with `orrery hub ca`)"
                           : "x509 attestation needs --certificate (the device's PEM)");
      }
      json::object x;
      if (f.certificate) {
        ORRERY_ASSIGN_OR_RETURN(x[certs], CertificatePair(f));
      }
      if (f.ca_name) x["caReferences"] = json::object{{"primary", *f.ca_name}};
      a["x509"] = std::move(x);
    }
    e["attestation"] = std::move(a);
    return Ok();
  }

  json::object& a = Member(e, "attestation");
  if (type == "symmetricKey") {
    json::object& keys = Member(a, "symmetricKey");
    if (f.primary_key) keys["primaryKey"] = *f.primary_key;
    if (f.secondary_key) keys["secondaryKey"] = *f.secondary_key;
    return Ok();
  }
  json::object& x = Member(a, "x509");
  if (f.certificate) {
    ORRERY_ASSIGN_OR_RETURN(x[certs], CertificatePair(f));
  }
  if (f.ca_name) Member(x, "caReferences")["primary"] = *f.ca_name;
  return Ok();
}

// Writes the given fields into an enrollment's JSON (DPS's IndividualEnrollment and
// EnrollmentGroup shapes), then checks what the result needs (for update, the enrollment as
// it was counts too). REQUIRES: CheckFields(f) passed.
Status ApplyFields(json::object& e, const EnrollmentFields& f, bool group, bool create) {
  ORRERY_TRY(ApplyAttestation(e, f, group, create));
  if (f.device_id) e["deviceId"] = *f.device_id;
  if (!f.hubs.empty()) {
    json::array hubs;
    for (auto& h : f.hubs)
      hubs.emplace_back(h);
    e["iotHubs"] = std::move(hubs);
  }
  if (f.allocation) {
    e["allocationPolicy"] = *Canonical(*f.allocation, {"hashed", "static", "geoLatency", "custom"});
  }
  if (f.webhook_url) {
    e["customAllocationDefinition"] =
        json::object{{"webhookUrl", *f.webhook_url}, {"apiVersion", kApiVersion}};
  }
  if (f.initial_twin) e["initialTwin"] = json::parse(*f.initial_twin);
  if (f.edge) Member(e, "capabilities")["iotEdge"] = *f.edge;
  if (f.disabled) e["provisioningStatus"] = *f.disabled ? "disabled" : "enabled";
  if (f.reprovision) {
    std::string r = *Canonical(*f.reprovision, {"migrate", "reset", "never"});
    e["reprovisionPolicy"] =
        json::object{{"updateHubAssignment", r != "never"}, {"migrateDeviceData", r == "migrate"}};
  }

  std::string allocation = Str(e, "allocationPolicy");
  std::string webhook;
  if (auto* d = e.if_contains("customAllocationDefinition"); d && d->is_object()) {
    webhook = Str(d->get_object(), "webhookUrl");
  }
  if (allocation == "custom" && webhook.empty()) {
    return Usage("--allocation custom needs --webhook-url https://…");
  }
  if (f.webhook_url && allocation != "custom") {
    return Usage("--webhook-url is for --allocation custom");
  }
  if (auto* hubs = e.if_contains("iotHubs");
      allocation == "static" && hubs && hubs->is_array() && hubs->get_array().size() > 1) {
    return Usage("--allocation static takes one --hub");
  }
  return Ok();
}

// POST `path` with `spec` page by page (x-ms-max-item-count, x-ms-continuation: absent on the
// last page) and prints every row as one JSON array.
Status ListPages(const ServiceConnection& c, const std::string& path, const json::object& spec,
                 std::optional<uint64_t> top, uint64_t page_size, std::string_view noun,
                 std::FILE* out, std::FILE* err) {
  if (top && *top == 0) return Usage("--top must be a positive number");
  if (page_size == 0) return Usage("--page-size must be a positive number");
  json::array rows;
  std::string continuation;
  for (;;) {
    uint64_t want = top ? std::min<uint64_t>(page_size, *top - rows.size()) : page_size;
    Request r{.method = "POST", .path = path, .body = json::serialize(spec)};
    r.headers.Set("x-ms-max-item-count", std::to_string(want));
    if (!continuation.empty()) r.headers.Set("x-ms-continuation", continuation);
    ORRERY_ASSIGN_OR_RETURN(auto response, Send(c, std::move(r)));
    ORRERY_ASSIGN_OR_RETURN(json::value page, BodyJson(response));
    if (!page.is_array()) return Error(BaseErrc::kParse, "the server's answer is not a JSON array");
    for (auto& row : page.get_array()) {
      if (top && rows.size() >= *top) break;
      rows.push_back(std::move(row));
    }
    auto next = response.headers.Get("x-ms-continuation");
    if (!next || next->empty() || page.get_array().empty() || (top && rows.size() >= *top)) break;
    continuation = std::string(*next);
    if (rows.size() >= kProgressFrom) {
      fmt::print(err, "{} {} so far, reading on...\n", rows.size(), noun);
      std::fflush(err);
    }
  }
  fmt::print(out, "{}\n", PrettyJson(rows));
  std::fflush(out);
  return Ok();
}

}  // namespace

// ---------------------------------------------------------------- enrollments

Status EnrollmentCreate(const ServiceConnection& c, const EnrollmentCreateOptions& o,
                        std::FILE* out, std::FILE*) {
  ORRERY_TRY(CheckIdArg(o.ref.id, o.ref.group ? "the enrollment group id" : "the registration id"));
  ORRERY_TRY(CheckFields(o.fields, o.ref.group, /*create=*/true));
  json::object e{{o.ref.group ? "enrollmentGroupId" : "registrationId", o.ref.id}};
  ORRERY_TRY(ApplyFields(e, o.fields, o.ref.group, /*create=*/true));
  if (!e.contains("attestation")) e["attestation"] = json::object{{"type", "symmetricKey"}};
  // A PUT without If-Match replaces what exists: make sure nothing does (keys included).
  ORRERY_ASSIGN_OR_RETURN(auto existing, Exchange(c, {.method = "GET", .path = PathOf(o.ref)}));
  if (existing.status < 300) {
    return Error(BaseErrc::kAlreadyExists,
                 fmt::format("{} already exists (change it with `orrery dps {} update`)",
                             Describe(o.ref), o.ref.group ? "enrollment-group" : "enrollment"));
  }
  if (existing.status != 404) return Refusal(existing);
  return Print(out, SendJson(c, "PUT", PathOf(o.ref), e));
}

Status EnrollmentShow(const ServiceConnection& c, const EnrollmentRef& ref, std::FILE* out,
                      std::FILE*) {
  return Print(out, Get(c, PathOf(ref)));
}

Status EnrollmentList(const ServiceConnection& c, const EnrollmentListOptions& o, std::FILE* out,
                      std::FILE* err) {
  std::string query(strings::Trim(o.query));
  json::object spec{{"query", query.empty() ? "*" : query}};
  return ListPages(c, o.group ? "/enrollmentGroups/query" : "/enrollments/query", spec, o.top,
                   o.page_size, o.group ? "enrollment groups" : "enrollments", out, err);
}

Status EnrollmentUpdate(const ServiceConnection& c, const EnrollmentUpdateOptions& o,
                        std::FILE* out, std::FILE*) {
  if (Empty(o.fields)) {
    return Usage(
        "nothing to update: give an attestation flag, --hub, --allocation, --webhook-url, "
        "--initial-twin, --edge, --disabled, --enabled or --reprovision");
  }
  ORRERY_TRY(CheckFields(o.fields, o.ref.group, /*create=*/false));
  ORRERY_ASSIGN_OR_RETURN(auto current, Get(c, PathOf(o.ref)));
  ORRERY_ASSIGN_OR_RETURN(json::object e, BodyObject(current));
  ORRERY_TRY(ApplyFields(e, o.fields, o.ref.group, /*create=*/false));
  std::string etag = o.etag.empty() ? Str(e, "etag") : o.etag;
  return Print(out, SendJson(c, "PUT", PathOf(o.ref), e, IfMatch(etag)));
}

Status EnrollmentDelete(const ServiceConnection& c, const EnrollmentDeleteOptions& o,
                        std::FILE* out, std::FILE*) {
  Request r{.method = "DELETE", .path = PathOf(o.ref)};
  if (!o.etag.empty()) r.headers.Set("If-Match", IfMatch(o.etag));
  return Print(out, Send(c, std::move(r)));
}

// ---------------------------------------------------------------- registration states

Status RegistrationShow(const ServiceConnection& c, const std::string& registration_id,
                        std::FILE* out, std::FILE*) {
  return Print(out, Get(c, "/registrations/" + strings::UrlEncode(registration_id)));
}

Status RegistrationList(const ServiceConnection& c, const RegistrationListOptions& o,
                        std::FILE* out, std::FILE* err) {
  if (o.group.empty()) return Usage("--group is required: registrations are listed per group");
  return ListPages(c, "/registrations/" + strings::UrlEncode(o.group) + "/query",
                   json::object{{"query", "*"}}, o.top, o.page_size, "registrations", out, err);
}

Status RegistrationDelete(const ServiceConnection& c, const RegistrationDeleteOptions& o,
                          std::FILE* out, std::FILE*) {
  Request r{.method = "DELETE", .path = "/registrations/" + strings::UrlEncode(o.registration_id)};
  if (!o.etag.empty()) r.headers.Set("If-Match", IfMatch(o.etag));
  return Print(out, Send(c, std::move(r)));
}

// ---------------------------------------------------------------- derived keys

Status DeriveKey(const ServiceConnection& c, const DeriveKeyOptions& o, std::FILE* out,
                 std::FILE*) {
  if (o.key.empty() == o.group.empty()) {
    return Usage(
        "give the group's key with --key, or --group <enrollment group id> to read it from the "
        "server");
  }
  if (o.secondary && o.group.empty()) {
    return Usage("--secondary picks the group's secondary key; it goes with --group");
  }
  ORRERY_TRY(CheckIdArg(o.registration_id, "the registration id"));
  std::string key = o.key;
  if (key.empty()) {
    ORRERY_TRY(CheckIdArg(o.group, "--group"));
    EnrollmentRef ref{.group = true, .id = o.group};
    Request r{.method = "POST", .path = PathOf(ref) + "/attestationmechanism"};
    ORRERY_ASSIGN_OR_RETURN(auto response, Send(c, std::move(r)));
    ORRERY_ASSIGN_OR_RETURN(json::object mechanism, BodyObject(response));
    std::string type = Str(mechanism, "type");
    if (type != "symmetricKey") {
      return Error(BaseErrc::kNotFound,
                   fmt::format("{} uses {} attestation and has no symmetric key to derive from",
                               Describe(ref), type.empty() ? "unknown" : type));
    }
    key = Str(Member(mechanism, "symmetricKey"), o.secondary ? "secondaryKey" : "primaryKey");
    if (key.empty()) {
      return Error(BaseErrc::kNotFound, fmt::format("{} has no {} key", Describe(ref),
                                                    o.secondary ? "secondary" : "primary"));
    }
  } else {
    ORRERY_TRY(CheckKeyArg(key, "--key"));
  }
  auto derived = dps::DeriveDeviceKey(key, o.registration_id);
  if (!derived) return Usage(derived.error().message());
  fmt::print(out, "{}\n", *derived);
  std::fflush(out);
  return Ok();
}

}  // namespace orrery::api
