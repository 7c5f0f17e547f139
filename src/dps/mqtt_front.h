// The DPS device protocol over MQTT (wire contract §5.2) on the broker shared with the hub:
// a client whose CONNECT user name has DPS's shape ("{idScope}/registrations/{registrationId}/
// api-version=…") is a provisioning client and is handled here; every other client goes to
// the hub's adapter unchanged. That is how one MQTT port (8883) serves both, as Azure's
// documentation allows.
//
// A provisioning client authenticates with its SAS token (password) or X.509 client
// certificate, may subscribe only to "$dps/registrations/res/#" and publish only the register
// and operation-status requests; answers go to "$dps/registrations/res/{status}/?$rid=…"
// with a retry-after while the operation is assigning, and always carry a JSON body.
//
// Thread safety: called by the broker from any I/O thread; stateless apart from the service.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "dps/provisioning.h"
#include "dps/wire.h"
#include "hub/mqtt_adapter.h"
#include "mqtt/auth.h"
#include "mqtt/broker.h"

namespace orrery::dps {

class MqttFront final : public mqtt::Authenticator,
                        public mqtt::Authorizer,
                        public mqtt::PublishInterceptor,
                        public mqtt::ConnectionObserver {
 public:
  // `service` must outlive the front; `next` serves every other client.
  MqttFront(ProvisioningService& service, std::shared_ptr<hub::MqttAdapter> next);
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
  struct Session;
  static bool IsDps(const mqtt::ClientInfo& client);
  void Reply(const std::string& client_id, int status, std::string_view rid, std::string body,
             int retry_after_s = 0);
  void ReplyError(const std::string& client_id, std::string_view rid, const Error& error);

  ProvisioningService& service_;
  std::shared_ptr<hub::MqttAdapter> next_;
  mqtt::Broker* broker_ = nullptr;
};

}  // namespace orrery::dps
