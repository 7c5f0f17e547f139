#include "dps/mqtt_front.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/crypto.h"
#include "base/log.h"
#include "base/time.h"
#include "dps/errc.h"
#include "net/http.h"

namespace orrery::dps {
namespace json = boost::json;
using mqtt::Access;
using mqtt::Reason;

namespace {
const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("dps.mqtt");
  return l;
}

constexpr std::string_view kRegisterTopic = "$dps/registrations/PUT/iotdps-register/";
constexpr std::string_view kStatusTopic = "$dps/registrations/GET/iotdps-get-operationstatus/";
constexpr std::string_view kResponseFilter = "$dps/registrations/res/#";
}  // namespace

// What a provisioning client proved at CONNECT; re-checked on each register request, since
// its enrollment may change while it is connected.
struct MqttFront::Session {
  std::string registration_id;
  std::optional<std::string> password;
  std::vector<std::string> chain_der;
};

MqttFront::MqttFront(ProvisioningService& service, std::shared_ptr<hub::MqttAdapter> next)
    : service_(service), next_(std::move(next)) {}

bool MqttFront::IsDps(const mqtt::ClientInfo& client) {
  return ParseDpsUserName(client.username).has_value();
}

void MqttFront::Authenticate(const mqtt::ConnectInfo& info,
                             std::function<void(mqtt::AuthResult)> done) {
  std::optional<DpsUserName> user;
  if (info.username) user = ParseDpsUserName(*info.username);
  if (!user) return next_->Authenticate(info, std::move(done));
  mqtt::AuthResult r;
  if (!service_.IsScope(user->id_scope)) {
    r.reason = Reason::kNotAuthorized;
    r.message = fmt::format("unknown ID scope '{}'", user->id_scope);
    Log()->info("refused provisioning connection '{}': {}", info.client_id, r.message);
    return done(std::move(r));
  }
  if (user->registration_id != info.client_id) {
    r.reason = Reason::kClientIdentifierNotValid;
    r.message = fmt::format("the user name names registration '{}' but the client id is '{}'",
                            user->registration_id, info.client_id);
    return done(std::move(r));
  }
  auto session = std::make_shared<Session>();
  session->registration_id = user->registration_id;
  if (info.password && !info.password->empty()) session->password = *info.password;
  if (info.peer) session->chain_der = info.peer->client_cert_chain_der;
  DeviceCredentials creds{.registration_id = session->registration_id,
                          .client_cert_chain_der = &session->chain_der};
  if (session->password) creds.sas_token = *session->password;
  auto attested = service_.Authenticate(creds);
  if (!attested) {
    r.reason = Reason::kNotAuthorized;
    r.message = attested.error().message();
    Log()->info("refused provisioning connection '{}': {}", info.client_id, r.message);
    return done(std::move(r));
  }
  r.principal = "dps:" + info.client_id;
  r.identity = session;
  // Not the hub device of the same name: a registration must not take over its session.
  r.session_key = "$dps:" + info.client_id;
  done(std::move(r));
}

Access MqttFront::CanPublish(const mqtt::ClientInfo& client, std::string_view topic) {
  if (!IsDps(client)) return next_->CanPublish(client, topic);
  if (topic.starts_with(kRegisterTopic) || topic.starts_with(kStatusTopic)) return Access::kAllow;
  return Access::kDenyDisconnect;
}

Access MqttFront::CanSubscribe(const mqtt::ClientInfo& client, std::string_view filter) {
  if (!IsDps(client)) return next_->CanSubscribe(client, filter);
  return filter == kResponseFilter ? Access::kAllow : Access::kDenyDisconnect;
}

void MqttFront::OnConnected(const mqtt::ClientInfo& client) {
  if (!IsDps(client)) next_->OnConnected(client);
}

void MqttFront::OnDisconnected(const mqtt::ClientInfo& client) {
  if (!IsDps(client)) next_->OnDisconnected(client);
}

void MqttFront::OnSubscribed(const mqtt::ClientInfo& client, const std::string& filter) {
  if (!IsDps(client)) next_->OnSubscribed(client, filter);
}

void MqttFront::Reply(const std::string& client_id, int status, std::string_view rid,
                      std::string body, int retry_after_s) {
  auto m = std::make_shared<mqtt::Message>();
  // The SDK matches "res/(status)/?(query)": the "/?" after the status is required.
  m->topic = fmt::format("$dps/registrations/res/{}/?$rid={}", status, rid);
  if (retry_after_s > 0) m->topic += fmt::format("&retry-after={}", retry_after_s);
  m->payload = std::move(body);
  broker_->DeliverTo(client_id, std::move(m), 0);
}

void MqttFront::ReplyError(const std::string& client_id, std::string_view rid, const Error& error) {
  auto w = ToWireError(error);
  Reply(client_id, w.status, rid, ErrorBody(error), w.status == 429 ? 5 : 0);
}

bool MqttFront::Intercept(const mqtt::ClientInfo& client, const mqtt::MessagePtr& message,
                          std::function<void(Reason)> done) {
  if (!IsDps(client)) return next_->Intercept(client, message, std::move(done));
  auto session = std::static_pointer_cast<const Session>(client.identity);
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  net::ParseTarget(message->topic, path, query);
  std::string rid, operation_id;
  for (auto& [k, v] : query) {
    if (k == "$rid") rid = v;
    if (k == "operationId") operation_id = v;
  }
  // The request is taken: its answer travels on the response topic.
  done(Reason::kSuccess);
  std::string client_id = client.client_id;
  if (!session || rid.empty() || rid.size() > 128) {
    Log()->info("'{}' sent a provisioning request without a usable $rid", client_id);
    return true;
  }
  int retry = service_.options().retry_after_s;
  if (path == kStatusTopic) {
    auto st = service_.OperationStatus(session->registration_id, operation_id);
    if (!st) {
      ReplyError(client_id, rid, st.error());
    } else {
      bool assigning = st->at("status") == "assigning";
      Reply(client_id, assigning ? 202 : 200, rid, json::serialize(*st), assigning ? retry : 0);
    }
    return true;
  }
  // Register: {"registrationId":"…"[,"payload":{…}]}.
  boost::system::error_code ec;
  auto body = json::parse(message->payload, ec);
  if (ec || !body.is_object()) {
    ReplyError(client_id, rid,
               Error(Errc::kInvalidArgument, "the register request body must be a JSON object"));
    return true;
  }
  auto& o = body.get_object();
  if (auto* id = o.if_contains("registrationId");
      id && (!id->is_string() || id->get_string() != session->registration_id)) {
    ReplyError(client_id, rid,
               Error(Errc::kInvalidArgument,
                     "the body's registrationId is not the connection's registration id"));
    return true;
  }
  DeviceCredentials creds{.registration_id = session->registration_id,
                          .client_cert_chain_der = &session->chain_der};
  if (session->password) creds.sas_token = *session->password;
  auto attested = service_.Authenticate(creds);
  if (!attested) {
    ReplyError(client_id, rid, attested.error());
    return true;
  }
  std::optional<json::value> payload;
  if (auto* p = o.if_contains("payload"); p && !p->is_null()) payload = *p;
  service_.Register(std::move(*attested), std::move(payload),
                    [this, client_id, rid, retry](Result<json::object> r) {
                      if (!r) return ReplyError(client_id, rid, r.error());
                      bool assigning = r->at("status") == "assigning";
                      Reply(client_id, assigning ? 202 : 200, rid, json::serialize(*r),
                            assigning ? retry : 0);
                    });
  return true;
}

}  // namespace orrery::dps
