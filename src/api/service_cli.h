// The client side of the service REST API (api/service_api.h): what `orrery device|twin|
// method|c2d` run, shaped like `az iot hub device-identity|device-twin|invoke-device-method|
// c2d-message`, and the connection plumbing they share with `orrery monitor-events`.
//
// Every command is blocking (one HTTPS request at a time on the calling thread), prints the
// response's JSON pretty-printed to `out`, and returns an error for anything else:
//  - a usage error (a malformed JSON argument, a bad flag value) is BaseErrc::kInvalidArgument
//    and is found before any request is sent;
//  - the server's refusal is BaseErrc::kUnavailable with the message
//    "HTTP <status> <ErrorCode>: <text>" taken from IoT Hub's error body;
//  - connection and TLS failures come from net::Fetch.
// ExitCodeFor() turns these into the CLI's exit codes. Messages never contain keys or tokens
// (the server's never do either). `err` carries progress notes only.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <boost/json/fwd.hpp>

#include "base/error.h"
#include "net/tls.h"

namespace orrery::hub {
struct PolicySchema;
}

namespace orrery::api {

// ---------------------------------------------------------------- connection

// Where the service API is and which credential to use, as the CLI flags give them.
struct ServiceConnectionOptions {
  std::string connection_string;  // "HostName=…;SharedAccessKeyName=…;SharedAccessKey=…"
  std::string default_policy;     // read from data_dir when connection_string is empty
  std::filesystem::path data_dir;
  std::string host_name;          // server.host_name, for the policy's connection string
  int64_t https_port = 8443;      // for the default URL
  std::string url;                // default https://<HostName>:<https_port>
  std::filesystem::path ca_file;  // default <data_dir>/tls/ca.pem when it exists
  int64_t token_lifetime_s = 3600;
  // Whose policies data_dir holds the default policy in: the hub's (null) or another
  // service's (the provisioning service: dps::DpsPolicySchema()).
  const hub::PolicySchema* policy_schema = nullptr;
};

// A resolved endpoint with a freshly minted service SAS token.
struct ServiceConnection {
  std::string url;        // base URL without a trailing '/'
  std::string host_name;  // HostName of the connection string (device connection strings)
  std::string token;      // the Authorization header value
  net::TlsClientOptions tls;
};

// Reads the policy from data_dir when no connection string was given (creating the hub's
// keys on first use, like `orrery hub connection-string`), parses the connection string and
// signs a token valid for token_lifetime_s. Errors name what is wrong, never the key.
Result<ServiceConnection> ResolveServiceConnection(const ServiceConnectionOptions& options);

// 2 for usage errors (BaseErrc::kInvalidArgument), 1 for everything else.
int ExitCodeFor(const Error& error);

// JSON with four-space indentation, as az prints it (no trailing newline).
std::string PrettyJson(const boost::json::value& value);

// ---------------------------------------------------------------- commands

// A device, or one of its modules when module_id is non-empty.
struct IdentityRef {
  std::string device_id;
  std::string module_id;
};

// Identity properties to set; unset ones keep their value (update) or the server's default
// (create: SAS with generated keys, enabled).
struct IdentityFields {
  std::optional<std::string> auth;  // sas | selfSigned | certificateAuthority
  std::optional<std::string> primary_key, secondary_key;
  std::optional<std::string> primary_thumbprint, secondary_thumbprint;
  std::optional<std::string> status;  // enabled | disabled (devices only)
  std::optional<std::string> status_reason;
  std::optional<bool> edge;  // capabilities.iotEdge (devices only)
};

struct DeviceCreateOptions {
  IdentityRef ref;
  IdentityFields fields;
};
// PUT /devices/{id}[/modules/{mid}] without If-Match; prints the new identity.
Status DeviceCreate(const ServiceConnection& c, const DeviceCreateOptions& o, std::FILE* out,
                    std::FILE* err);

// GET /devices/{id}[/modules/{mid}].
Status DeviceShow(const ServiceConnection& c, const IdentityRef& ref, std::FILE* out,
                  std::FILE* err);

struct DeviceListOptions {
  std::string modules_of;       // list this device's modules instead of devices
  std::optional<uint64_t> top;  // at most this many devices (the server caps it too)
};
Status DeviceList(const ServiceConnection& c, const DeviceListOptions& o, std::FILE* out,
                  std::FILE* err);

struct DeviceUpdateOptions {
  IdentityRef ref;
  IdentityFields fields;
  std::string etag;  // If-Match; default: the etag read with the identity
};
// GET, change only the given fields, PUT with If-Match (412 when it changed in between).
Status DeviceUpdate(const ServiceConnection& c, const DeviceUpdateOptions& o, std::FILE* out,
                    std::FILE* err);

struct DeviceDeleteOptions {
  IdentityRef ref;
  std::string etag;  // If-Match; default "*"
};
Status DeviceDelete(const ServiceConnection& c, const DeviceDeleteOptions& o, std::FILE* out,
                    std::FILE* err);

struct DeviceConnectionStringOptions {
  IdentityRef ref;
  bool secondary = false;
};
// Prints "HostName=<host>;DeviceId=<id>[;ModuleId=<mid>];SharedAccessKey=<key>" (one line);
// BaseErrc::kNotFound for an identity that does not use SAS authentication (it has no key).
Status DeviceConnectionString(const ServiceConnection& c, const DeviceConnectionStringOptions& o,
                              std::FILE* out, std::FILE* err);

// GET /twins/{id}[/modules/{mid}].
Status TwinShow(const ServiceConnection& c, const IdentityRef& ref, std::FILE* out, std::FILE* err);

struct TwinUpdateOptions {
  IdentityRef ref;
  std::string desired;  // JSON object text (a patch of properties.desired), may be empty
  std::string tags;     // JSON object text (a patch of tags), may be empty
  std::string etag;     // If-Match; default "*"
};
// PATCH /twins/…: REQUIRES at least one of desired and tags (else a usage error).
Status TwinUpdate(const ServiceConnection& c, const TwinUpdateOptions& o, std::FILE* out,
                  std::FILE* err);

struct TwinReplaceOptions {
  IdentityRef ref;
  std::string twin;  // JSON object text: {"tags":…, "properties":{"desired":…}}
  std::string etag;  // If-Match; default "*"
};
// PUT /twins/…: replaces tags and desired properties.
Status TwinReplace(const ServiceConnection& c, const TwinReplaceOptions& o, std::FILE* out,
                   std::FILE* err);

struct MethodInvokeOptions {
  IdentityRef ref;
  std::string name;
  std::string payload;                        // JSON text; empty = null
  std::chrono::seconds response_timeout{30};  // 5..300, checked by the server
  std::chrono::seconds connect_timeout{0};    // 0..300
};
// POST /twins/…/methods and prints {"status", "payload"}: success whenever the device
// answered, whatever status it answered with.
Status MethodInvoke(const ServiceConnection& c, const MethodInvokeOptions& o, std::FILE* out,
                    std::FILE* err);

struct C2dSendOptions {
  std::string device_id;
  std::string body;
  std::filesystem::path body_file;  // read instead of `body` when non-empty
  std::string message_id;
  std::string correlation_id;
  std::string ack;     // none | positive | negative | full (empty: none)
  std::string expiry;  // ISO 8601 time, or whole seconds from now
  std::string content_type;
  std::string content_encoding;
  std::vector<std::string> properties;  // "key=value" application properties
};
// POST /devices/{id}/messages/devicebound; prints {"queueDepth"}.
Status C2dSend(const ServiceConnection& c, const C2dSendOptions& o, std::FILE* out, std::FILE* err);

// DELETE /devices/{id}/commands; prints {"deviceId", "totalMessagesPurged"}.
Status C2dPurge(const ServiceConnection& c, const std::string& device_id, std::FILE* out,
                std::FILE* err);

struct C2dFeedbackOptions {
  std::chrono::seconds wait{0};  // poll this long for a first record (0: ask once)
  bool complete = false;         // settle (delete) the printed records
};
// GET /messages/serviceBound/feedback: prints one batch of records as a JSON array ([] when
// there is none). The batch is then completed (`complete`) or abandoned, so that records
// that were only looked at stay readable at once.
Status C2dFeedback(const ServiceConnection& c, const C2dFeedbackOptions& o, std::FILE* out,
                   std::FILE* err);

// ---------------------------------------------------------------- CA certificates

struct CaOptions {
  enum class Op { kAdd, kList, kShow, kDelete, kVerificationCode, kVerify } op = Op::kList;
  std::string name;
  std::filesystem::path cert;  // PEM file: the CA (add) or the proof of possession (verify)
  bool verified = false;       // add: mark verified without a proof of possession
};
// /certificates…: register, list, show, delete CA certificates; make and check the proof of
// possession (a certificate with CN = the verification code, signed by the CA).
Status CaCommand(const ServiceConnection& c, const CaOptions& o, std::FILE* out, std::FILE* err);

// ---------------------------------------------------------------- shared access policies

struct PolicyOptions {
  enum class Op { kList, kSet, kDelete, kRotateKey } op = Op::kList;
  std::string name;
  std::string rights;      // set: "RegistryRead, ServiceConnect"
  bool secondary = false;  // rotate-key: the secondary key instead of the primary
};
// /policies…: list, create or change, delete policies and rotate their keys (needs an
// owner-level connection string).
Status PolicyCommand(const ServiceConnection& c, const PolicyOptions& o, std::FILE* out,
                     std::FILE* err);

}  // namespace orrery::api
