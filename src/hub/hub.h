// The hub core: IoT Hub's device-facing and service-facing operations, independent of any
// protocol. Protocol adapters (MQTT, device HTTPS, the service REST API) translate their wire
// formats into these calls; none of them holds business logic of its own.
//
//   devices ──adapter──▶ Authenticate, Attach/Detach (connection state), SendTelemetry (→ event
//                        log), GetTwin/UpdateReported, CompleteMethod, C2D receive/settle
//   service ──REST────▶ registry CRUD, twin update/replace (→ desired push), InvokeMethod
//                        (→ device, wait for the answer), SendC2d (→ queue → device), feedback
//
// A connected device is represented by a DeviceChannel that its adapter implements; the hub
// pushes desired-property patches, method requests and cloud-to-device messages through it.
//
// Threads: every method is safe from any thread. Completion callbacks run on the store's
// writer thread, the event log's sync thread or the hub's timer executor: adapters post to
// their own executors. Locks are never held while calling a channel or a callback.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/json/object.hpp>

#include "base/error.h"
#include "base/metrics.h"
#include "eventlog/message.h"
#include "hub/annotator.h"
#include "hub/c2d.h"
#include "hub/certificates.h"
#include "hub/device_auth.h"
#include "hub/rate_limit.h"
#include "hub/registry.h"

namespace orrery::eventlog {
class EventLog;
}

namespace orrery::hub {

class PolicyStore;

// A connected device as its protocol adapter presents it to the hub. Calls come from any
// thread; implementations post to their connection.
class DeviceChannel {
 public:
  virtual ~DeviceChannel() = default;
  // A desired-properties patch (JSON with "$version" = `version`). False: the device is not
  // subscribed to desired-property updates.
  virtual bool PushDesired(int64_t version, std::string body) = 0;
  // A direct-method request. False: the device is not subscribed to methods.
  virtual bool PushMethod(std::string_view method, std::string_view request_id,
                          std::string payload) = 0;
  // Whether PushC2d can deliver now (the device subscribed to its C2D topic).
  virtual bool CanReceiveC2d() = 0;
  // A cloud-to-device message; `settled(acked)` runs once, on any thread, when the device
  // acknowledged it or the delivery was given up. False: not delivered (settled not called).
  virtual bool PushC2d(const C2dMessage& message, std::function<void(bool acked)> settled) = 0;
  // Closes the device's connection (identity disabled or deleted, credential expired).
  virtual void Disconnect(std::string_view why) = 0;
};

struct HubOptions {
  std::string host_name = "localhost";
  RegistryOptions registry;
  C2dOptions c2d;
  size_t max_telemetry_bytes = 256 * 1024;       // IoT Hub's device-to-cloud message limit
  size_t max_method_payload_bytes = 128 * 1024;  // request and response payloads
  size_t max_pending_methods = 100'000;
  size_t c2d_mqtt_inflight = 16;  // C2D deliveries awaiting PUBACK per device
  std::chrono::milliseconds housekeeping_interval{1000};
  // Token buckets (0 = off): service API requests per shared access policy, device-to-cloud
  // messages per device.
  double service_requests_per_second = 0, service_burst = 100;
  double device_messages_per_second = 0, device_burst = 100;
  metrics::Registry* metrics = nullptr;
};

struct MethodRequest {
  std::string method_name;
  std::string payload = "null";  // JSON text
  int response_timeout_s = 30;   // 5..300
  int connect_timeout_s = 0;     // 0..300
};

struct MethodResponse {
  int status = 200;
  std::string payload;  // JSON text from the device ("null" when it sent none)
};

class Hub {
 public:
  // Loads the registry and the cloud-to-device queues. All pointers must outlive the hub.
  // `timers` runs method deadlines and the housekeeping sweep.
  static Result<std::unique_ptr<Hub>> Open(HubOptions options, store::KvStore* store,
                                           eventlog::EventLog* log, const PolicyStore* policies,
                                           boost::asio::any_io_executor timers);
  ~Hub();

  // Message routing (nullable; set before Start): telemetry is annotated at ingestion, and
  // system events are produced for the sources some route takes.
  void SetAnnotator(std::shared_ptr<const MessageAnnotator> annotator);
  // Starts housekeeping (C2D expiry and lock timeouts, credential expiry). Once.
  void Start();
  // Fails pending method calls (503) and stops timers. Call before the executor stops.
  void Shutdown();

  Registry& registry() { return *registry_; }
  C2dQueues& c2d() { return *c2d_; }
  CaStore& certificates() { return *cas_; }
  const PolicyStore& policies() const { return *policies_; }
  const HubOptions& options() const { return options_; }
  int64_t NowMs() const { return registry_->Now(); }

  // ---- device-facing ----
  Result<DeviceIdentity> Authenticate(const DeviceCredentials& credentials) const;
  // A device connected on `channel` (a new connection replaces the previous one's channel).
  // `model_id` (IoT Plug and Play) is recorded on the twin when non-empty.
  void Attach(const DeviceIdentity& device, std::shared_ptr<DeviceChannel> channel,
              std::string_view model_id = {});
  // The channel's connection ended. Ignored when another channel has replaced it.
  void Detach(const std::string& key, const DeviceChannel* channel);
  // The channel's subscriptions changed: deliver waiting method calls and C2D messages.
  void ChannelReady(const std::string& key);
  // Appends a device-to-cloud message to the event log with IoT Hub's system properties;
  // `done` once it is durable (the protocol's acknowledgement), or with the refusal:
  // kTooLarge (256 KB body), kUnavailable (the log failed or is closing).
  void SendTelemetry(const DeviceIdentity& device, eventlog::Message message,
                     std::function<void(Status)> done);
  // A device's answer to a method request.
  void CompleteMethod(const std::string& key, std::string_view request_id, int status,
                      std::string payload);

  // ---- service-facing ----
  // Calls a direct method and waits for the device (wire contract §4.5): kDeviceNotFound,
  // kDeviceNotOnline (not connected within connect_timeout_s), kTimeout (no answer within
  // response_timeout_s), kInvalidArgument (bad name, timeouts, payload), kTooLarge.
  void InvokeMethod(std::string key, MethodRequest request,
                    std::function<void(Result<MethodResponse>)> done);
  void UpdateTwin(std::string key, const boost::json::object& patch, std::string if_match,
                  Done<TwinChange> done);
  void ReplaceTwin(std::string key, const boost::json::object& twin, std::string if_match,
                   Done<TwinChange> done);
  // A device's reported patch (pushes nothing).
  void UpdateReported(const std::string& key, const boost::json::object& patch,
                      Done<TwinChange> done);
  // Identity changes with their consequences: creating and deleting produce lifecycle events,
  // disabling disconnects, deleting also purges the C2D queue and disconnects the device and
  // its modules.
  void CreateIdentity(Identity identity, Done<IdentityView> done);
  void UpdateIdentity(Identity identity, std::string if_match, Done<IdentityView> done);
  void DeleteIdentity(std::string device_id, std::string module_id, std::string if_match,
                      Done<void> done);
  // Enqueues a cloud-to-device message for a device and delivers it when the device can
  // take it. `done` with the queue depth once durable.
  void SendC2d(std::string device_id, C2dMessage message, std::function<void(Result<size_t>)> done);

  size_t connected_count() const;

  // A system event (IoT Hub's twin change, lifecycle, connection state and job lifecycle
  // notifications) for `source`, appended to the event log when some route takes that
  // source; best effort (a failure is logged). `body` is the event's JSON.
  void EmitEvent(MessageSource source, std::string_view device_id, std::string_view module_id,
                 std::string_view op_type, std::string body);

  // Rate limits (see HubOptions); adapters take a token per request or message.
  RateLimiter& service_limits() { return service_limits_; }
  RateLimiter& device_limits() { return device_limits_; }
  // Runs `fn` on the timer executor after `delay` (throttled acknowledgements).
  void RunAfter(std::chrono::milliseconds delay, std::function<void()> fn);

 private:
  struct PendingMethod;
  Hub(HubOptions options, store::KvStore* store, eventlog::EventLog* log,
      const PolicyStore* policies, boost::asio::any_io_executor timers);
  std::shared_ptr<DeviceChannel> ChannelFor(const std::string& key) const;
  void PushDesired(const std::string& key, const boost::json::object& push);
  void TwinChanged(const std::string& key, std::string_view op, const TwinChange& change);
  void PumpC2d(const std::string& device_id);
  bool TryDeliverMethod(const std::shared_ptr<PendingMethod>& pending);
  void FinishMethod(const std::string& request_id, Result<MethodResponse> result);
  void ArmResponseTimeout(const std::shared_ptr<PendingMethod>& pending);
  void AppendTelemetry(std::shared_ptr<eventlog::Message> message,
                       std::function<void(Status)> done);
  void ScheduleHousekeeping();
  void Housekeeping();
  void DisconnectIdentity(const std::string& key, std::string_view why);

  HubOptions options_;
  store::KvStore* store_;
  eventlog::EventLog* log_;
  const PolicyStore* policies_;
  boost::asio::any_io_executor timers_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<C2dQueues> c2d_;
  std::unique_ptr<CaStore> cas_;
  std::shared_ptr<const MessageAnnotator> annotator_;
  std::atomic<uint64_t> connection_events_{0};
  RateLimiter service_limits_;
  RateLimiter device_limits_;

  struct Attached {
    std::shared_ptr<DeviceChannel> channel;
    DeviceIdentity device;
  };
  mutable std::mutex channels_mu_;
  std::unordered_map<std::string, Attached> channels_;  // guarded by channels_mu_

  std::mutex methods_mu_;
  std::unordered_map<std::string, std::shared_ptr<PendingMethod>> methods_;  // by request id
  std::atomic<uint64_t> next_request_id_{1};

  struct Housekeeper;
  std::shared_ptr<Housekeeper> housekeeper_;
  std::atomic<bool> stopping_{false};

  metrics::Counter* telemetry_ = nullptr;
  metrics::Counter* telemetry_bytes_ = nullptr;
  metrics::Counter* methods_ok_ = nullptr;
  metrics::Counter* methods_failed_ = nullptr;
  metrics::Counter* desired_pushes_ = nullptr;
};

}  // namespace orrery::hub
