#include "hub/mqtt_adapter.h"

#include <fmt/format.h>
#include <boost/json.hpp>

#include "base/log.h"
#include "hub/errc.h"
#include "hub/mqtt_topics.h"
#include "mqtt/message.h"

namespace orrery::hub {
namespace json = boost::json;
namespace topics = mqtt_topics;
using mqtt::Access;
using mqtt::Reason;

namespace {

const std::shared_ptr<spdlog::logger>& Log() {
  static auto l = log::Get("hub.mqtt");
  return l;
}

mqtt::MessagePtr MakeMessage(std::string topic, std::string payload, uint8_t qos) {
  auto m = std::make_shared<mqtt::Message>();
  m->topic = std::move(topic);
  m->payload = std::move(payload);
  m->qos = qos;
  return m;
}

// A twin error body the SDK understands (it fails the call with `message`, §2.3).
std::string TwinErrorBody(const Error& e) {
  auto w = ToWireError(e);
  return json::serialize(json::object{{"errorCode", w.numeric}, {"message", e.message()}});
}

int TwinErrorStatus(const Error& e) {
  return ToWireError(e).status;
}

// The MQTT reason for a telemetry refusal: 3.1.1 connections are closed for these (the
// message is not acknowledged, so the device sends it again after reconnecting).
Reason TelemetryReason(const Error& e) {
  if (e.Is(Errc::kTooLarge)) return Reason::kImplementationSpecificError;
  if (e.Is(Errc::kInvalidArgument)) return Reason::kImplementationSpecificError;
  return Reason::kUnspecifiedError;
}

}  // namespace

struct MqttAdapter::DeviceSession {
  DeviceIdentity device;
  std::string key;
  std::string model_id;
  std::shared_ptr<Channel> channel;
};

class MqttAdapter::Channel final : public DeviceChannel {
 public:
  Channel(mqtt::Broker* broker, std::string client_id, std::string device_id)
      : broker_(broker), client_id_(std::move(client_id)), device_id_(std::move(device_id)) {}

  bool PushDesired(int64_t version, std::string body) override {
    return broker_->DeliverTo(client_id_,
                              MakeMessage(topics::DesiredTopic(version), std::move(body), 0),
                              0) == mqtt::DeliverResult::kQueued;
  }
  bool PushMethod(std::string_view method, std::string_view rid, std::string payload) override {
    return broker_->DeliverTo(client_id_,
                              MakeMessage(topics::MethodTopic(method, rid), std::move(payload), 0),
                              0) == mqtt::DeliverResult::kQueued;
  }
  bool CanReceiveC2d() override {
    return broker_->IsSubscribed(client_id_, "devices/" + device_id_ + "/messages/devicebound/x");
  }
  bool PushC2d(const C2dMessage& m, std::function<void(bool)> settled) override {
    auto hook = std::make_shared<mqtt::DeliveryHook>(std::move(settled));
    auto r = broker_->DeliverTo(client_id_, MakeMessage(topics::C2dTopic(device_id_, m), m.body, 1),
                                1, hook);
    if (r != mqtt::DeliverResult::kQueued && r != mqtt::DeliverResult::kDropped) {
      // Never handed over: the caller settles it; the hook must not fire as well.
      hook->Disarm();
      return false;
    }
    return true;
  }
  void Disconnect(std::string_view why) override {
    Log()->info("disconnecting '{}': {}", client_id_, why);
    broker_->Disconnect(client_id_, Reason::kNotAuthorized);
  }

 private:
  mqtt::Broker* broker_;
  std::string client_id_;
  std::string device_id_;
};

MqttAdapter::MqttAdapter(Hub& hub, std::shared_ptr<mqtt::Authenticator> fallback_authn,
                         std::shared_ptr<mqtt::Authorizer> fallback_authz)
    : hub_(hub),
      fallback_authn_(std::move(fallback_authn)),
      fallback_authz_(std::move(fallback_authz)) {}

const MqttAdapter::DeviceSession* MqttAdapter::SessionOf(const mqtt::ClientInfo& client) {
  // Only this adapter sets identities (fallback results have theirs cleared).
  return static_cast<const DeviceSession*>(client.identity.get());
}

void MqttAdapter::Authenticate(const mqtt::ConnectInfo& info,
                               std::function<void(mqtt::AuthResult)> done) {
  std::optional<topics::HubUserName> user;
  if (info.username) user = topics::ParseUserName(*info.username);
  if (!user) {
    return fallback_authn_->Authenticate(info, [done = std::move(done)](mqtt::AuthResult r) {
      r.identity.reset();
      done(std::move(r));
    });
  }
  mqtt::AuthResult r;
  if (user->client_id != info.client_id) {
    r.reason = Reason::kClientIdentifierNotValid;
    r.message = fmt::format("the user name names client '{}' but the client id is '{}'",
                            user->client_id, info.client_id);
    return done(std::move(r));
  }
  auto [device, module] = topics::SplitClientId(info.client_id);
  DeviceCredentials creds;
  creds.device_id = device;
  creds.module_id = module;
  if (info.password) creds.sas_token = *info.password;
  if (info.peer) creds.client_cert_chain_der = &info.peer->client_cert_chain_der;
  if (creds.sas_token && creds.client_cert_chain_der && !creds.client_cert_chain_der->empty() &&
      creds.sas_token->empty()) {
    creds.sas_token.reset();
  }
  auto identity = hub_.Authenticate(creds);
  if (!identity) {
    r.reason = Reason::kNotAuthorized;
    r.message = identity.error().message();
    Log()->info("refused device connection '{}': {}", info.client_id, r.message);
    return done(std::move(r));
  }
  auto session = std::make_shared<DeviceSession>();
  session->device = std::move(*identity);
  session->key = session->device.key();
  session->model_id = user->model_id;
  session->channel = std::make_shared<Channel>(broker_, info.client_id, session->device.device_id);
  r.principal = info.client_id;
  r.identity = session;
  done(std::move(r));
}

Access MqttAdapter::CanPublish(const mqtt::ClientInfo& client, std::string_view topic) {
  const DeviceSession* s = SessionOf(client);
  if (!s) {
    if (topics::IsHubTopic(topic)) return Access::kDeny;
    return fallback_authz_->CanPublish(client, topic);
  }
  auto t = topics::ClassifyPublish(topic, s->device.device_id, s->device.module_id);
  if (t.kind == topics::Kind::kOther) {
    Log()->info("closing '{}': it may not publish to '{}'", client.client_id, topic);
    return Access::kDenyDisconnect;
  }
  return Access::kAllow;
}

Access MqttAdapter::CanSubscribe(const mqtt::ClientInfo& client, std::string_view filter) {
  const DeviceSession* s = SessionOf(client);
  if (!s) {
    if (topics::IsHubTopic(filter)) return Access::kDeny;
    return fallback_authz_->CanSubscribe(client, filter);
  }
  if (topics::DeviceMaySubscribe(filter, s->device.device_id, s->device.module_id)) {
    return Access::kAllow;
  }
  Log()->info("'{}' may not subscribe to '{}'", client.client_id, filter);
  return Access::kDeny;
}

void MqttAdapter::Reply(const std::string& client_id, std::string topic, std::string body) {
  broker_->DeliverTo(client_id, MakeMessage(std::move(topic), std::move(body), 0), 0);
}

bool MqttAdapter::Intercept(const mqtt::ClientInfo& client, const mqtt::MessagePtr& message,
                            std::function<void(Reason)> done) {
  const DeviceSession* s = SessionOf(client);
  if (!s) return false;  // a plain MQTT client: routed by the broker
  auto t = topics::ClassifyPublish(message->topic, s->device.device_id, s->device.module_id);
  // Hold the session while the hub works: the connection may go away meanwhile.
  auto session = std::static_pointer_cast<const DeviceSession>(client.identity);
  std::string client_id = client.client_id;
  switch (t.kind) {
    case topics::Kind::kTelemetry: {
      auto m = topics::TelemetryFromBag(t.bag, message->payload);
      if (!m) {
        Log()->info("closing '{}': {}", client_id, m.error().message());
        done(TelemetryReason(m.error()));
        return true;
      }
      auto send = [this, session, client_id, done = std::move(done),
                   m = std::make_shared<eventlog::Message>(std::move(*m))]() mutable {
        hub_.SendTelemetry(
            session->device, std::move(*m), [done = std::move(done), client_id](Status st) {
              if (st) return done(Reason::kSuccess);
              Log()->warn("telemetry from '{}' refused: {}", client_id, st.error().message());
              done(TelemetryReason(st.error()));
            });
      };
      // Over its rate limit, a device's acknowledgement waits (its in-flight window then
      // slows it down) instead of the message being refused.
      if (int64_t wait = hub_.device_limits().Take(session->key); wait > 0) {
        hub_.RunAfter(std::chrono::milliseconds(wait), std::move(send));
      } else {
        send();
      }
      return true;
    }
    case topics::Kind::kTwinGet: {
      done(Reason::kSuccess);
      auto twin = hub_.registry().GetDeviceTwin(session->key);
      if (!twin) {
        Reply(client_id, topics::TwinResponseTopic(TwinErrorStatus(twin.error()), t.request_id),
              TwinErrorBody(twin.error()));
      } else {
        Reply(client_id, topics::TwinResponseTopic(200, t.request_id), json::serialize(*twin));
      }
      return true;
    }
    case topics::Kind::kTwinPatchReported: {
      done(Reason::kSuccess);
      boost::system::error_code ec;
      json::value patch = json::parse(message->payload, ec);
      if (ec || !patch.is_object()) {
        Error e(Errc::kInvalidArgument, "the reported-properties patch must be a JSON object");
        Reply(client_id, topics::TwinResponseTopic(400, t.request_id), TwinErrorBody(e));
        return true;
      }
      auto self = shared_from_this();
      hub_.UpdateReported(
          session->key, patch.get_object(),
          [self, client_id, rid = t.request_id](Result<TwinChange> r) {
            if (!r) {
              self->Reply(client_id, topics::TwinResponseTopic(TwinErrorStatus(r.error()), rid),
                          TwinErrorBody(r.error()));
              return;
            }
            self->Reply(client_id, topics::TwinResponseTopic(204, rid, r->reported_version), "");
          });
      return true;
    }
    case topics::Kind::kMethodResponse:
      done(Reason::kSuccess);
      hub_.CompleteMethod(session->key, t.request_id, t.status, message->payload);
      return true;
    case topics::Kind::kOther:
      break;
  }
  done(Reason::kNotAuthorized);  // CanPublish refused it already; never reached
  return true;
}

void MqttAdapter::OnConnected(const mqtt::ClientInfo& client) {
  const DeviceSession* s = SessionOf(client);
  if (!s) return;
  hub_.Attach(s->device, s->channel, s->model_id);
}

void MqttAdapter::OnDisconnected(const mqtt::ClientInfo& client) {
  const DeviceSession* s = SessionOf(client);
  if (!s) return;
  hub_.Detach(s->key, s->channel.get());
}

void MqttAdapter::OnSubscribed(const mqtt::ClientInfo& client, const std::string&) {
  const DeviceSession* s = SessionOf(client);
  if (!s) return;
  hub_.ChannelReady(s->key);
}

}  // namespace orrery::hub
