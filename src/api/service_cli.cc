#include "api/service_cli.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>
#include <thread>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "api/cli_http.h"
#include "base/files.h"
#include "base/strings.h"
#include "base/time.h"
#include "hub/policies.h"
#include "hub/sas.h"
#include "net/http_client.h"

namespace orrery::api {
namespace json = boost::json;
using namespace std::chrono_literals;

namespace {

constexpr std::string_view kApiVersion = "2021-04-12";
using cli::kJsonType;
constexpr std::chrono::milliseconds kRequestTimeout = 30s;
constexpr size_t kMaxBodyFile = 1 << 20;  // the server takes 64 KiB; refuse far beyond early
constexpr std::chrono::milliseconds kFeedbackPoll = 500ms;

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

void Pretty(const json::value& v, std::string& out, int depth) {
  std::string pad(static_cast<size_t>(depth + 1) * 4, ' ');
  std::string close_pad(static_cast<size_t>(depth) * 4, ' ');
  if (v.is_object()) {
    const auto& o = v.as_object();
    if (o.empty()) {
      out += "{}";
      return;
    }
    out += "{\n";
    bool first = true;
    for (auto& [k, val] : o) {
      if (!first) out += ",\n";
      first = false;
      out += pad + json::serialize(json::value(k)) + ": ";
      Pretty(val, out, depth + 1);
    }
    out += "\n" + close_pad + "}";
  } else if (v.is_array()) {
    const auto& a = v.as_array();
    if (a.empty()) {
      out += "[]";
      return;
    }
    out += "[\n";
    for (size_t i = 0; i < a.size(); ++i) {
      if (i) out += ",\n";
      out += pad;
      Pretty(a[i], out, depth + 1);
    }
    out += "\n" + close_pad + "]";
  } else {
    out += json::serialize(v);
  }
}

Result<net::HttpResponse> SendJson(const ServiceConnection& c, std::string method, std::string path,
                                   const json::value& body, std::string if_match = {}) {
  Request r{.method = std::move(method), .path = std::move(path), .body = json::serialize(body)};
  r.headers.Set("Content-Type", std::string(kJsonType));
  if (!if_match.empty()) r.headers.Set("If-Match", std::move(if_match));
  return Send(c, std::move(r));
}

Result<net::HttpResponse> Get(const ServiceConnection& c, std::string path) {
  return Send(c, {.method = "GET", .path = std::move(path)});
}

// The If-Match value for an etag as the user gave it (quoted or not); "*" when empty.
std::string IfMatch(std::string_view etag) {
  if (etag.empty()) return "\"*\"";
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') return std::string(etag);
  return fmt::format("\"{}\"", etag);
}

// "/<root>/<device>[/modules/<module>]", ids URL-encoded.
std::string PathOf(std::string_view root, const IdentityRef& ref) {
  std::string p = fmt::format("/{}/{}", root, strings::UrlEncode(ref.device_id));
  if (!ref.module_id.empty()) p += "/modules/" + strings::UrlEncode(ref.module_id);
  return p;
}
std::string IdentityPath(const IdentityRef& ref) {
  return PathOf("devices", ref);
}
std::string TwinPath(const IdentityRef& ref) {
  return PathOf("twins", ref);
}

std::string Describe(const IdentityRef& ref) {
  if (ref.module_id.empty()) return fmt::format("device '{}'", ref.device_id);
  return fmt::format("module '{}' of device '{}'", ref.module_id, ref.device_id);
}

json::object& Member(json::object& o, std::string_view key) {
  json::value& v = o[key];
  if (!v.is_object()) v = json::object();
  return v.get_object();
}

bool OneOf(std::string_view v, std::initializer_list<std::string_view> allowed) {
  return std::find(allowed.begin(), allowed.end(), v) != allowed.end();
}

bool Empty(const IdentityFields& f) {
  return !f.auth && !f.primary_key && !f.secondary_key && !f.primary_thumbprint &&
         !f.secondary_thumbprint && !f.status && !f.status_reason && !f.edge;
}

// Writes the given fields into an identity's JSON (wire contract §4.4).
Status ApplyFields(json::object& identity, const IdentityFields& f, bool module) {
  if (module && (f.status || f.status_reason || f.edge)) {
    return Usage("modules have no status, status reason or edge capability");
  }
  if (f.auth && !OneOf(*f.auth, {"sas", "selfSigned", "certificateAuthority"})) {
    return Usage(
        fmt::format("--auth takes sas, selfSigned or certificateAuthority, not '{}'", *f.auth));
  }
  if (f.status && !OneOf(*f.status, {"enabled", "disabled"})) {
    return Usage(fmt::format("--status takes enabled or disabled, not '{}'", *f.status));
  }
  if (f.auth || f.primary_key || f.secondary_key || f.primary_thumbprint ||
      f.secondary_thumbprint) {
    json::object& auth = Member(identity, "authentication");
    if (f.auth) auth["type"] = *f.auth;
    auto set = [&](std::string_view section, std::string_view key,
                   const std::optional<std::string>& value) {
      if (value) Member(auth, section)[key] = *value;
    };
    set("symmetricKey", "primaryKey", f.primary_key);
    set("symmetricKey", "secondaryKey", f.secondary_key);
    set("x509Thumbprint", "primaryThumbprint", f.primary_thumbprint);
    set("x509Thumbprint", "secondaryThumbprint", f.secondary_thumbprint);
  }
  if (f.status) identity["status"] = *f.status;
  if (f.status_reason) identity["statusReason"] = *f.status_reason;
  if (f.edge) Member(identity, "capabilities")["iotEdge"] = *f.edge;
  return Ok();
}

// A header value the user gave: one line of printable text.
Status CheckHeaderValue(std::string_view value, std::string_view flag) {
  for (char c : value) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return Usage(fmt::format("{} must not contain control characters", flag));
    }
  }
  return Ok();
}

// An application property name becomes part of a header name (iothub-app-<name>): RFC 9110
// token characters only.
bool IsToken(std::string_view name) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || kExtra.find(c) != std::string_view::npos;
  });
}

// --expiry: an ISO 8601 time, or whole seconds from now.
Result<std::string> ExpiryHeader(std::string_view expiry) {
  bool digits =
      !expiry.empty() && expiry.size() <= 9 &&
      std::all_of(expiry.begin(), expiry.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    return timeutil::FormatUtcMs(timeutil::NowMs() + std::stoll(std::string(expiry)) * 1000);
  }
  if (!timeutil::ParseUtcMs(expiry)) {
    return Usage(fmt::format(
        "--expiry '{}' is neither an ISO 8601 time (2030-01-01T00:00:00Z) nor a number of seconds",
        expiry));
  }
  return std::string(expiry);
}

}  // namespace

// ---------------------------------------------------------------- connection

Result<ServiceConnection> ResolveServiceConnection(const ServiceConnectionOptions& o) {
  std::string text = o.connection_string;
  if (text.empty()) {
    ORRERY_ASSIGN_OR_RETURN(
        auto store, hub::PolicyStore::Open(
                        o.data_dir, o.policy_schema ? *o.policy_schema : hub::HubPolicySchema()));
    ORRERY_ASSIGN_OR_RETURN(text, store->ConnectionString(o.host_name, o.default_policy));
  }
  auto cs = hub::ParseServiceConnectionString(text);
  if (!cs) return Usage(cs.error().message());
  auto token = hub::MakeSasToken(cs->host_name, cs->key,
                                 timeutil::NowMs() / 1000 + o.token_lifetime_s, cs->key_name);
  if (!token) return Usage(token.error().message());
  ServiceConnection c;
  c.host_name = cs->host_name;
  c.token = std::move(*token);
  c.url = !o.url.empty() ? o.url : fmt::format("https://{}:{}", cs->host_name, o.https_port);
  while (!c.url.empty() && c.url.back() == '/')
    c.url.pop_back();
  if (!o.ca_file.empty()) {
    c.tls.ca_file = o.ca_file;
  } else if (std::filesystem::exists(o.data_dir / "tls" / "ca.pem")) {
    c.tls.ca_file = o.data_dir / "tls" / "ca.pem";
  }
  return c;
}

int ExitCodeFor(const Error& error) {
  return error.Is(BaseErrc::kInvalidArgument) ? 2 : 1;
}

std::string PrettyJson(const json::value& value) {
  std::string out;
  Pretty(value, out, 0);
  return out;
}

// ---------------------------------------------------------------- registry

Status DeviceCreate(const ServiceConnection& c, const DeviceCreateOptions& o, std::FILE* out,
                    std::FILE*) {
  json::object identity{{"deviceId", o.ref.device_id}};
  if (!o.ref.module_id.empty()) identity["moduleId"] = o.ref.module_id;
  ORRERY_TRY(ApplyFields(identity, o.fields, !o.ref.module_id.empty()));
  return Print(out, SendJson(c, "PUT", IdentityPath(o.ref), identity));
}

Status DeviceShow(const ServiceConnection& c, const IdentityRef& ref, std::FILE* out, std::FILE*) {
  return Print(out, Get(c, IdentityPath(ref)));
}

Status DeviceList(const ServiceConnection& c, const DeviceListOptions& o, std::FILE* out,
                  std::FILE*) {
  std::string path = "/devices";
  if (!o.modules_of.empty()) {
    if (o.top) return Usage("--top lists devices; it does not apply to --modules-of");
    path += "/" + strings::UrlEncode(o.modules_of) + "/modules";
  } else if (o.top) {
    if (*o.top == 0) return Usage("--top must be a positive number");
    path += fmt::format("?top={}", *o.top);
  }
  return Print(out, Get(c, std::move(path)));
}

Status DeviceUpdate(const ServiceConnection& c, const DeviceUpdateOptions& o, std::FILE* out,
                    std::FILE*) {
  if (Empty(o.fields)) {
    return Usage(
        "nothing to update: give --status, --status-reason, --auth, a key, a thumbprint or "
        "--edge");
  }
  ORRERY_ASSIGN_OR_RETURN(auto current, Get(c, IdentityPath(o.ref)));
  ORRERY_ASSIGN_OR_RETURN(json::object identity, BodyObject(current));
  ORRERY_TRY(ApplyFields(identity, o.fields, !o.ref.module_id.empty()));
  std::string etag = o.etag.empty() ? Str(identity, "etag") : o.etag;
  return Print(out, SendJson(c, "PUT", IdentityPath(o.ref), identity, IfMatch(etag)));
}

Status DeviceDelete(const ServiceConnection& c, const DeviceDeleteOptions& o, std::FILE* out,
                    std::FILE*) {
  Request r{.method = "DELETE", .path = IdentityPath(o.ref)};
  r.headers.Set("If-Match", IfMatch(o.etag));
  return Print(out, Send(c, std::move(r)));
}

Status DeviceConnectionString(const ServiceConnection& c, const DeviceConnectionStringOptions& o,
                              std::FILE* out, std::FILE*) {
  ORRERY_ASSIGN_OR_RETURN(auto r, Get(c, IdentityPath(o.ref)));
  ORRERY_ASSIGN_OR_RETURN(json::object identity, BodyObject(r));
  json::object auth = Member(identity, "authentication");
  std::string type = Str(auth, "type");
  if (type != "sas") {
    return Error(BaseErrc::kNotFound,
                 fmt::format("{} uses {} authentication and has no shared access key; it "
                             "connects with its X.509 certificate instead",
                             Describe(o.ref), type.empty() ? "unknown" : type));
  }
  std::string key = Str(Member(auth, "symmetricKey"), o.secondary ? "secondaryKey" : "primaryKey");
  if (key.empty()) {
    return Error(BaseErrc::kNotFound, fmt::format("{} has no {} key", Describe(o.ref),
                                                  o.secondary ? "secondary" : "primary"));
  }
  std::string text = fmt::format("HostName={};DeviceId={}", c.host_name, o.ref.device_id);
  if (!o.ref.module_id.empty()) text += ";ModuleId=" + o.ref.module_id;
  fmt::print(out, "{};SharedAccessKey={}\n", text, key);
  std::fflush(out);
  return Ok();
}

// ---------------------------------------------------------------- twins

Status TwinShow(const ServiceConnection& c, const IdentityRef& ref, std::FILE* out, std::FILE*) {
  return Print(out, Get(c, TwinPath(ref)));
}

Status TwinUpdate(const ServiceConnection& c, const TwinUpdateOptions& o, std::FILE* out,
                  std::FILE*) {
  if (o.desired.empty() && o.tags.empty()) return Usage("give --desired, --tags or both");
  json::object patch;
  if (!o.desired.empty()) {
    ORRERY_ASSIGN_OR_RETURN(json::value desired, JsonArg(o.desired, "--desired", true));
    patch["properties"] = json::object{{"desired", std::move(desired)}};
  }
  if (!o.tags.empty()) {
    ORRERY_ASSIGN_OR_RETURN(patch["tags"], JsonArg(o.tags, "--tags", true));
  }
  return Print(out, SendJson(c, "PATCH", TwinPath(o.ref), patch, IfMatch(o.etag)));
}

Status TwinReplace(const ServiceConnection& c, const TwinReplaceOptions& o, std::FILE* out,
                   std::FILE*) {
  ORRERY_ASSIGN_OR_RETURN(json::value twin, JsonArg(o.twin, "--twin", true));
  return Print(out, SendJson(c, "PUT", TwinPath(o.ref), twin, IfMatch(o.etag)));
}

// ---------------------------------------------------------------- direct methods

Status MethodInvoke(const ServiceConnection& c, const MethodInvokeOptions& o, std::FILE* out,
                    std::FILE*) {
  if (o.name.empty()) return Usage("--name is required");
  json::value payload = nullptr;
  if (!o.payload.empty()) {
    ORRERY_ASSIGN_OR_RETURN(payload, JsonArg(o.payload, "--payload", false));
  }
  json::object call{{"methodName", o.name},
                    {"payload", std::move(payload)},
                    {"responseTimeoutInSeconds", o.response_timeout.count()},
                    {"connectTimeoutInSeconds", o.connect_timeout.count()}};
  Request r{.method = "POST",
            .path = TwinPath(o.ref) + "/methods",
            .body = json::serialize(call),
            // The server enforces both timeouts; leave it room to say so.
            .timeout = o.response_timeout + o.connect_timeout + kRequestTimeout};
  r.headers.Set("Content-Type", std::string(kJsonType));
  return Print(out, Send(c, std::move(r)));
}

// ---------------------------------------------------------------- cloud-to-device

Status C2dSend(const ServiceConnection& c, const C2dSendOptions& o, std::FILE* out, std::FILE*) {
  Request r{.method = "POST",
            .path = "/devices/" + strings::UrlEncode(o.device_id) + "/messages/devicebound",
            .body = o.body};
  if (!o.body_file.empty()) {
    auto body = files::ReadFile(o.body_file, kMaxBodyFile);
    if (!body) return Usage(fmt::format("--body-file: {}", body.error().message()));
    r.body = std::move(*body);
  }
  if (!o.ack.empty() && !OneOf(o.ack, {"none", "positive", "negative", "full"})) {
    return Usage(fmt::format("--ack takes none, positive, negative or full, not '{}'", o.ack));
  }
  std::string expiry;
  if (!o.expiry.empty()) {
    ORRERY_ASSIGN_OR_RETURN(expiry, ExpiryHeader(o.expiry));
  }
  struct {
    const char* header;
    const char* flag;
    const std::string& value;
  } system[] = {{"iothub-messageid", "--message-id", o.message_id},
                {"iothub-correlationid", "--correlation-id", o.correlation_id},
                {"iothub-ack", "--ack", o.ack},
                {"iothub-expiry", "--expiry", expiry},
                {"iothub-contenttype", "--content-type", o.content_type},
                {"iothub-contentencoding", "--content-encoding", o.content_encoding}};
  for (auto& s : system) {
    if (s.value.empty()) continue;
    ORRERY_TRY(CheckHeaderValue(s.value, s.flag));
    r.headers.Set(s.header, s.value);
  }
  for (const auto& p : o.properties) {
    auto [name, value] = strings::SplitOnce(p, '=');
    if (!value || !IsToken(name)) {
      return Usage(fmt::format(
          "--property takes name=value with a name of letters, digits and !#$%&'*+-.^_`|~, "
          "not '{}'",
          OneLine(p)));
    }
    ORRERY_TRY(CheckHeaderValue(*value, "--property"));
    r.headers.Add("iothub-app-" + std::string(name), std::string(*value));
  }
  return Print(out, Send(c, std::move(r)));
}

Status C2dPurge(const ServiceConnection& c, const std::string& device_id, std::FILE* out,
                std::FILE*) {
  return Print(out, Send(c, {.method = "DELETE",
                             .path = "/devices/" + strings::UrlEncode(device_id) + "/commands"}));
}

Status C2dFeedback(const ServiceConnection& c, const C2dFeedbackOptions& o, std::FILE* out,
                   std::FILE* err) {
  auto deadline = std::chrono::steady_clock::now() + o.wait;
  if (o.wait.count() > 0) {
    fmt::print(err, "Waiting up to {} s for feedback...\n", o.wait.count());
    std::fflush(err);
  }
  for (;;) {
    ORRERY_ASSIGN_OR_RETURN(auto r, Get(c, "/messages/serviceBound/feedback"));
    if (r.status == 200) {
      ORRERY_TRY(Print(out, r));
      std::string lock(r.headers.Get("ETag").value_or(""));
      if (lock.size() >= 2 && lock.front() == '"' && lock.back() == '"') {
        lock = lock.substr(1, lock.size() - 2);
      }
      if (lock.empty()) return Error(BaseErrc::kParse, "the feedback batch came without an ETag");
      std::string path = "/messages/serviceBound/feedback/" + strings::UrlEncode(lock);
      if (o.complete) {
        ORRERY_TRY(Send(c, {.method = "DELETE", .path = std::move(path)}));
      } else {
        ORRERY_TRY(Send(c, {.method = "POST", .path = path + "/abandon"}));
      }
      return Ok();
    }
    // 204: nothing yet. The API has no long poll, so ask again shortly.
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) break;
    std::this_thread::sleep_for(
        std::min<std::chrono::steady_clock::duration>(kFeedbackPoll, deadline - now));
  }
  fmt::print(out, "[]\n");
  std::fflush(out);
  return Ok();
}

Status CaCommand(const ServiceConnection& c, const CaOptions& o, std::FILE* out, std::FILE*) {
  using Op = CaOptions::Op;
  std::string path = "/certificates";
  if (o.op != Op::kList) path += "/" + strings::UrlEncode(o.name);
  auto pem = [&]() -> Result<std::string> {
    std::ifstream f(o.cert);
    if (!f) {
      return Error(BaseErrc::kInvalidArgument,
                   fmt::format("cannot read the certificate file {}", o.cert.string()));
    }
    std::stringstream buf;
    buf << f.rdbuf();
    if (buf.str().find("-----BEGIN CERTIFICATE-----") == std::string::npos) {
      return Error(BaseErrc::kInvalidArgument,
                   fmt::format("{} is not a PEM certificate", o.cert.string()));
    }
    return buf.str();
  };
  switch (o.op) {
    case Op::kList:
    case Op::kShow:
      return Print(out, Get(c, path));
    case Op::kDelete:
      return Print(out, Send(c, {.method = "DELETE", .path = path}));
    case Op::kVerificationCode:
      return Print(out, SendJson(c, "POST", path + "/generateVerificationCode", json::object{}));
    case Op::kAdd: {
      ORRERY_ASSIGN_OR_RETURN(std::string text, pem());
      json::object body{
          {"properties", json::object{{"certificate", text}, {"isVerified", o.verified}}}};
      return Print(out, SendJson(c, "PUT", path, body));
    }
    case Op::kVerify: {
      ORRERY_ASSIGN_OR_RETURN(std::string text, pem());
      return Print(out, SendJson(c, "POST", path + "/verify", json::object{{"certificate", text}}));
    }
  }
  return Ok();
}

Status PolicyCommand(const ServiceConnection& c, const PolicyOptions& o, std::FILE* out,
                     std::FILE*) {
  using Op = PolicyOptions::Op;
  std::string path = "/policies";
  if (o.op != Op::kList) path += "/" + strings::UrlEncode(o.name);
  switch (o.op) {
    case Op::kList:
      return Print(out, Get(c, path));
    case Op::kSet:
      return Print(out, SendJson(c, "PUT", path, json::object{{"rights", o.rights}}));
    case Op::kDelete:
      return Print(out, Send(c, {.method = "DELETE", .path = path}));
    case Op::kRotateKey:
      return Print(out, SendJson(c, "POST", path + "/regenerateKey",
                                 json::object{{"keyType", o.secondary ? "secondary" : "primary"}}));
  }
  return Ok();
}

}  // namespace orrery::api
