// The IoT Hub MQTT device protocol (wire contract §2) on the broker core: it plugs into the
// broker's hooks (authentication, authorization, publish interception, connection events)
// and translates between device MQTT traffic and hub operations.
//
// A client whose CONNECT user name has IoT Hub's shape ("{host}/{clientId}/?api-version=…")
// is a device or module: it authenticates with a SAS token (password) or an X.509 client
// certificate, may only use its own hub topics (anything else closes the connection, as IoT
// Hub does), and every PUBLISH it sends is handled by the hub (telemetry → event log, PUBACK
// once durable; twin GET / reported PATCH; method responses). Any other client is a plain
// MQTT client: the fallback authenticator/authorizer (ConfigAuth) decides, and the hub's
// topic namespace ("devices/…", "$iothub…") is closed to it.
//
// Thread safety: called by the broker from any I/O thread; stateless apart from the hub.
#pragma once

#include <memory>

#include "hub/hub.h"
#include "mqtt/auth.h"
#include "mqtt/broker.h"

namespace orrery::hub {

class MqttAdapter final : public mqtt::Authenticator,
                          public mqtt::Authorizer,
                          public mqtt::PublishInterceptor,
                          public mqtt::ConnectionObserver,
                          public std::enable_shared_from_this<MqttAdapter> {
 public:
  // `broker` and `hub` must outlive the adapter; the fallbacks serve non-device clients.
  MqttAdapter(Hub& hub, std::shared_ptr<mqtt::Authenticator> fallback_authn,
              std::shared_ptr<mqtt::Authorizer> fallback_authz);
  // Late binding: the broker is built with this adapter as its authenticator.
  void SetBroker(mqtt::Broker* broker) { broker_ = broker; }

  void Authenticate(const mqtt::ConnectInfo& info,
                    std::function<void(mqtt::AuthResult)> done) override;
  mqtt::Access CanPublish(const mqtt::ClientInfo& client, std::string_view topic) override;
  mqtt::Access CanSubscribe(const mqtt::ClientInfo& client, std::string_view filter) override;
  bool Intercept(const mqtt::ClientInfo& client, const mqtt::MessagePtr& message,
                 std::function<void(mqtt::Reason)> done) override;
  void OnConnected(const mqtt::ClientInfo& client) override;
  void OnDisconnected(const mqtt::ClientInfo& client) override;
  void OnSubscribed(const mqtt::ClientInfo& client, const std::string& filter) override;

 private:
  struct DeviceSession;
  class Channel;
  static const DeviceSession* SessionOf(const mqtt::ClientInfo& client);
  void Reply(const std::string& client_id, std::string topic, std::string body);

  Hub& hub_;
  mqtt::Broker* broker_ = nullptr;
  std::shared_ptr<mqtt::Authenticator> fallback_authn_;
  std::shared_ptr<mqtt::Authorizer> fallback_authz_;
};

}  // namespace orrery::hub
