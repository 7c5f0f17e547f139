#include "hub/hub.h"

#include <fmt/format.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/json.hpp>

#include "base/log.h"
#include "base/strings.h"
#include "base/time.h"
#include "eventlog/event_log.h"
#include "hub/errc.h"
#include "hub/policies.h"

namespace orrery::hub {
namespace json = boost::json;
namespace asio = boost::asio;

namespace {

Status CheckMethodName(std::string_view name) {
  if (name.empty()) return Error(Errc::kInvalidArgument, "methodName is required");
  if (name.size() > 128) {
    return Error(Errc::kInvalidArgument, "methodName is longer than 128 characters");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7F || c == '/' || c == '#' || c == '+' || c == '?' || c == '&') {
      return Error(Errc::kInvalidArgument,
                   fmt::format("methodName '{}' contains a character that cannot appear in the "
                               "method topic (/, #, +, ?, & or a control character)",
                               name));
    }
  }
  if (!strings::IsValidUtf8(name)) {
    return Error(Errc::kInvalidArgument, "methodName is not valid UTF-8");
  }
  return Ok();
}

bool IsJson(std::string_view text) {
  boost::system::error_code ec;
  json::parse(text, ec);
  return !ec;
}

}  // namespace

struct Hub::PendingMethod {
  explicit PendingMethod(asio::any_io_executor ex) : timer(ex) {}
  std::string request_id;
  std::string key;
  MethodRequest request;
  std::function<void(Result<MethodResponse>)> done;
  asio::steady_timer timer;  // touched on the timer executor only
  bool delivered = false;    // guarded by methods_mu_
};

struct Hub::Housekeeper {
  explicit Housekeeper(asio::any_io_executor ex) : timer(ex) {}
  asio::steady_timer timer;
};

Hub::Hub(HubOptions options, store::KvStore* store, eventlog::EventLog* log,
         const PolicyStore* policies, asio::any_io_executor timers)
    : options_(std::move(options)),
      store_(store),
      log_(log),
      policies_(policies),
      timers_(std::move(timers)),
      service_limits_(options_.service_requests_per_second, options_.service_burst,
                      options_.registry.now_ms),
      device_limits_(options_.device_messages_per_second, options_.device_burst,
                     options_.registry.now_ms),
      housekeeper_(std::make_shared<Housekeeper>(timers_)) {
  if (auto* m = options_.metrics) {
    telemetry_ = &m->GetCounter("orrery_hub_telemetry_messages_total",
                                "Device-to-cloud messages accepted into the event log.");
    telemetry_bytes_ = &m->GetCounter("orrery_hub_telemetry_bytes_total",
                                      "Body bytes of device-to-cloud messages accepted.");
    methods_ok_ = &m->GetCounter("orrery_hub_method_calls_total", "Direct method calls, by result.",
                                 {{"result", "answered"}});
    methods_failed_ = &m->GetCounter("orrery_hub_method_calls_total",
                                     "Direct method calls, by result.", {{"result", "failed"}});
    desired_pushes_ = &m->GetCounter("orrery_hub_desired_pushes_total",
                                     "Desired-property patches pushed to connected devices.");
  }
}

Hub::~Hub() {
  Shutdown();
}

Result<std::unique_ptr<Hub>> Hub::Open(HubOptions options, store::KvStore* store,
                                       eventlog::EventLog* log, const PolicyStore* policies,
                                       asio::any_io_executor timers) {
  auto ropts = options.registry;
  auto copts = options.c2d;
  if (!ropts.metrics) ropts.metrics = options.metrics;
  if (!copts.metrics) copts.metrics = options.metrics;
  std::unique_ptr<Hub> hub(new Hub(std::move(options), store, log, policies, std::move(timers)));
  ORRERY_ASSIGN_OR_RETURN(hub->registry_, Registry::Open(store, ropts));
  if (!copts.now_ms) copts.now_ms = hub->registry_->options().now_ms;
  ORRERY_ASSIGN_OR_RETURN(hub->c2d_, C2dQueues::Open(store, copts));
  ORRERY_ASSIGN_OR_RETURN(hub->cas_, CaStore::Open(store, hub->registry_->options().now_ms));
  Registry* reg = hub->registry_.get();
  hub->c2d_->SetDepthListener(
      [reg](const std::string& device, size_t depth) { reg->SetC2dCount(device, depth); });
  for (auto& v : reg->ListDevices(SIZE_MAX)) {
    reg->SetC2dCount(v.identity.device_id, hub->c2d_->Depth(v.identity.device_id));
  }
  return hub;
}

void Hub::SetAnnotator(std::shared_ptr<const MessageAnnotator> annotator) {
  annotator_ = std::move(annotator);
}

void Hub::Start() {
  ScheduleHousekeeping();
}

void Hub::Shutdown() {
  if (stopping_.exchange(true)) return;
  std::vector<std::shared_ptr<PendingMethod>> pending;
  {
    std::lock_guard lock(methods_mu_);
    for (auto& [id, p] : methods_)
      pending.push_back(p);
    methods_.clear();
  }
  for (auto& p : pending) {
    if (p->done) p->done(Error(Errc::kUnavailable, "the hub is shutting down"));
  }
  asio::post(timers_, [hk = housekeeper_] { hk->timer.cancel(); });
}

Result<DeviceIdentity> Hub::Authenticate(const DeviceCredentials& credentials) const {
  return AuthenticateDevice(*registry_, *policies_, cas_.get(), credentials, NowMs() / 1000);
}

std::shared_ptr<DeviceChannel> Hub::ChannelFor(const std::string& key) const {
  std::lock_guard lock(channels_mu_);
  auto it = channels_.find(key);
  return it == channels_.end() ? nullptr : it->second.channel;
}

size_t Hub::connected_count() const {
  std::lock_guard lock(channels_mu_);
  return channels_.size();
}

void Hub::Attach(const DeviceIdentity& device, std::shared_ptr<DeviceChannel> channel,
                 std::string_view model_id) {
  std::string key = device.key();
  {
    std::lock_guard lock(channels_mu_);
    channels_[key] = Attached{std::move(channel), device};
  }
  registry_->SetConnected(key, true);
  if (!model_id.empty()) registry_->SetModelId(key, model_id);
  EmitEvent(MessageSource::kDeviceConnectionStateEvents, device.device_id, device.module_id,
            "deviceConnected",
            fmt::format(R"({{"sequenceNumber":"{:016X}{:016X}"}})", NowMs(),
                        connection_events_.fetch_add(1)));
  ChannelReady(key);
}

void Hub::Detach(const std::string& key, const DeviceChannel* channel) {
  {
    std::lock_guard lock(channels_mu_);
    auto it = channels_.find(key);
    if (it == channels_.end() || it->second.channel.get() != channel) return;
    channels_.erase(it);
  }
  registry_->SetConnected(key, false);
  auto slash = key.find('/');
  EmitEvent(MessageSource::kDeviceConnectionStateEvents, key.substr(0, slash),
            slash == std::string::npos ? "" : key.substr(slash + 1), "deviceDisconnected",
            fmt::format(R"({{"sequenceNumber":"{:016X}{:016X}"}})", NowMs(),
                        connection_events_.fetch_add(1)));
}

void Hub::ChannelReady(const std::string& key) {
  std::vector<std::shared_ptr<PendingMethod>> waiting;
  {
    std::lock_guard lock(methods_mu_);
    for (auto& [id, p] : methods_) {
      if (p->key == key && !p->delivered) waiting.push_back(p);
    }
  }
  for (auto& p : waiting) {
    if (TryDeliverMethod(p)) ArmResponseTimeout(p);
  }
  if (key.find('/') == std::string::npos) PumpC2d(key);
}

void Hub::DisconnectIdentity(const std::string& key, std::string_view why) {
  std::vector<std::shared_ptr<DeviceChannel>> targets;
  {
    std::lock_guard lock(channels_mu_);
    for (auto& [k, a] : channels_) {
      if (k == key || (key.find('/') == std::string::npos && k.starts_with(key + "/"))) {
        targets.push_back(a.channel);
      }
    }
  }
  for (auto& c : targets)
    c->Disconnect(why);
}

// ---------------------------------------------------------------- telemetry

void Hub::SendTelemetry(const DeviceIdentity& device, eventlog::Message message,
                        std::function<void(Status)> done) {
  if (message.body.size() > options_.max_telemetry_bytes) {
    return done(Error(Errc::kTooLarge,
                      fmt::format("the message body is {} bytes; device-to-cloud messages are "
                                  "limited to {} bytes",
                                  message.body.size(), options_.max_telemetry_bytes)));
  }
  auto& sys = message.system;
  sys.connection_device_id = device.device_id;
  sys.connection_module_id = device.module_id;
  sys.connection_auth_method = device.AuthMethodJson();
  sys.connection_auth_generation_id = device.generation_id;
  if (sys.message_source.empty()) sys.message_source = "Telemetry";
  sys.enqueued_time_ms = 0;
  sys.route_annotation.clear();  // never taken from a client
  if (annotator_) annotator_->Annotate(message, MessageSource::kDeviceMessages);
  if (auto st = eventlog::CheckMessageLimits(message); !st) {
    return done(Error(Errc::kTooLarge, st.error().message()));
  }
  registry_->Touch(device.key());
  size_t bytes = message.body.size();
  AppendTelemetry(std::make_shared<eventlog::Message>(std::move(message)),
                  [this, bytes, done = std::move(done)](Status st) {
                    if (st) {
                      if (telemetry_) telemetry_->Inc();
                      if (telemetry_bytes_) telemetry_bytes_->Inc(bytes);
                    }
                    done(std::move(st));
                  });
}

void Hub::AppendTelemetry(std::shared_ptr<eventlog::Message> message,
                          std::function<void(Status)> done) {
  auto st = log_->Append(*message, [done](const Result<eventlog::Appended>& r) {
    if (r) return done(Ok());
    done(Error(Errc::kUnavailable, fmt::format("the event log failed: {}", r.error().message())));
  });
  if (st) return;
  if (st.error().Is(eventlog::Errc::kBackpressure)) {
    // The log is absorbing a burst: retry once it has drained to half its limit. The device's
    // acknowledgement waits, which slows the device (its connection stops being read once
    // its in-flight window is full) instead of growing memory.
    auto retry = [this, message, done] {
      asio::post(timers_, [this, message, done] { AppendTelemetry(message, done); });
    };
    if (!log_->NotifyWhenWritable(retry)) retry();
    return;
  }
  if (st.error().Is(eventlog::Errc::kTooLarge)) {
    return done(Error(Errc::kTooLarge, st.error().message()));
  }
  done(Error(Errc::kUnavailable,
             fmt::format("the event log refused the message: {}", st.error().message())));
}

// ---------------------------------------------------------------- direct methods

void Hub::InvokeMethod(std::string key, MethodRequest request,
                       std::function<void(Result<MethodResponse>)> done) {
  if (auto st = CheckMethodName(request.method_name); !st) return done(st.error());
  if (request.response_timeout_s < 5 || request.response_timeout_s > 300) {
    return done(Error(Errc::kInvalidArgument,
                      fmt::format("responseTimeoutInSeconds must be 5..300 (got {})",
                                  request.response_timeout_s)));
  }
  if (request.connect_timeout_s < 0 || request.connect_timeout_s > 300) {
    return done(Error(
        Errc::kInvalidArgument,
        fmt::format("connectTimeoutInSeconds must be 0..300 (got {})", request.connect_timeout_s)));
  }
  if (request.payload.empty()) request.payload = "null";
  if (request.payload.size() > options_.max_method_payload_bytes) {
    return done(Error(Errc::kTooLarge,
                      fmt::format("the method payload is {} bytes; at most {}",
                                  request.payload.size(), options_.max_method_payload_bytes)));
  }
  if (!IsJson(request.payload)) {
    return done(Error(Errc::kInvalidArgument, "the method payload is not valid JSON"));
  }
  auto slash = key.find('/');
  std::string device = key.substr(0, slash);
  std::string module = slash == std::string::npos ? "" : key.substr(slash + 1);
  if (!registry_->Get(device, module)) {
    if (module.empty()) {
      return done(Error(Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", device)));
    }
    return done(Error(Errc::kModuleNotFound,
                      fmt::format("module '{}' of device '{}' does not exist", module, device)));
  }
  if (stopping_) return done(Error(Errc::kUnavailable, "the hub is shutting down"));
  auto p = std::make_shared<PendingMethod>(timers_);
  p->request_id = fmt::format("{:x}", next_request_id_.fetch_add(1));
  p->key = std::move(key);
  p->request = std::move(request);
  p->done = std::move(done);
  {
    std::lock_guard lock(methods_mu_);
    if (methods_.size() >= options_.max_pending_methods) {
      auto d = std::move(p->done);
      return d(Error(
          Errc::kThrottled,
          fmt::format("{} direct method calls are already waiting for devices", methods_.size())));
    }
    methods_[p->request_id] = p;
  }
  if (TryDeliverMethod(p)) return ArmResponseTimeout(p);
  if (p->request.connect_timeout_s == 0) {
    return FinishMethod(
        p->request_id,
        Error(Errc::kDeviceNotOnline, fmt::format("'{}' is not connected or has not subscribed to "
                                                  "direct methods",
                                                  p->key)));
  }
  // Wait for the device to connect (ChannelReady delivers it).
  asio::post(timers_, [this, p] {
    p->timer.expires_after(std::chrono::seconds(p->request.connect_timeout_s));
    p->timer.async_wait([this, p](const boost::system::error_code& ec) {
      if (ec) return;
      bool delivered;
      {
        std::lock_guard lock(methods_mu_);
        delivered = p->delivered;
      }
      if (!delivered) {
        FinishMethod(p->request_id, Error(Errc::kDeviceNotOnline,
                                          fmt::format("'{}' did not connect within {} s", p->key,
                                                      p->request.connect_timeout_s)));
      }
    });
  });
}

bool Hub::TryDeliverMethod(const std::shared_ptr<PendingMethod>& p) {
  auto channel = ChannelFor(p->key);
  if (!channel) return false;
  {
    std::lock_guard lock(methods_mu_);
    if (p->delivered || !methods_.count(p->request_id)) return false;
    p->delivered = true;  // claimed: a concurrent ChannelReady must not send it twice
  }
  if (channel->PushMethod(p->request.method_name, p->request_id, p->request.payload)) return true;
  std::lock_guard lock(methods_mu_);
  p->delivered = false;
  return false;
}

void Hub::ArmResponseTimeout(const std::shared_ptr<PendingMethod>& p) {
  asio::post(timers_, [this, p] {
    p->timer.cancel();  // a connect-timeout wait, if any
    p->timer.expires_after(std::chrono::seconds(p->request.response_timeout_s));
    p->timer.async_wait([this, p](const boost::system::error_code& ec) {
      if (ec) return;
      FinishMethod(p->request_id,
                   Error(Errc::kTimeout,
                         fmt::format("'{}' did not answer method '{}' within {} s", p->key,
                                     p->request.method_name, p->request.response_timeout_s)));
    });
  });
}

void Hub::FinishMethod(const std::string& request_id, Result<MethodResponse> result) {
  std::shared_ptr<PendingMethod> p;
  {
    std::lock_guard lock(methods_mu_);
    auto it = methods_.find(request_id);
    if (it == methods_.end()) return;
    p = std::move(it->second);
    methods_.erase(it);
  }
  asio::post(timers_, [p] { p->timer.cancel(); });
  if (result) {
    if (methods_ok_) methods_ok_->Inc();
  } else if (methods_failed_) {
    methods_failed_->Inc();
  }
  if (p->done) p->done(std::move(result));
}

void Hub::CompleteMethod(const std::string& key, std::string_view request_id, int status,
                         std::string payload) {
  {
    std::lock_guard lock(methods_mu_);
    auto it = methods_.find(std::string(request_id));
    // Only the device the request went to may answer it.
    if (it == methods_.end() || it->second->key != key || !it->second->delivered) return;
  }
  if (payload.empty()) payload = "null";
  if (payload.size() > options_.max_method_payload_bytes || !IsJson(payload)) {
    // IoT Hub passes the device's body through; a body that is not JSON becomes a string.
    if (payload.size() > options_.max_method_payload_bytes) {
      return FinishMethod(std::string(request_id),
                          Error(Errc::kTooLarge, "the device's method response is too large"));
    }
    payload = json::serialize(json::value(payload));
  }
  FinishMethod(std::string(request_id), MethodResponse{status, std::move(payload)});
}

// ---------------------------------------------------------------- twins

void Hub::PushDesired(const std::string& key, const json::object& push) {
  if (push.empty()) return;
  auto channel = ChannelFor(key);
  if (!channel) return;  // delivered on the device's next twin GET
  auto* v = push.if_contains("$version");
  int64_t version = v && v->is_int64() ? v->get_int64() : 0;
  if (channel->PushDesired(version, json::serialize(push)) && desired_pushes_) {
    desired_pushes_->Inc();
  }
}

void Hub::UpdateTwin(std::string key, const json::object& patch, std::string if_match,
                     Done<TwinChange> done) {
  registry_->UpdateTwin(key, patch, if_match,
                        [this, key, done = std::move(done)](Result<TwinChange> r) {
                          if (r) {
                            PushDesired(key, r->desired_push);
                            TwinChanged(key, "updateTwin", *r);
                          }
                          done(std::move(r));
                        });
}

void Hub::ReplaceTwin(std::string key, const json::object& twin, std::string if_match,
                      Done<TwinChange> done) {
  registry_->ReplaceTwin(key, twin, if_match,
                         [this, key, done = std::move(done)](Result<TwinChange> r) {
                           if (r) {
                             PushDesired(key, r->desired_push);
                             TwinChanged(key, "replaceTwin", *r);
                           }
                           done(std::move(r));
                         });
}

void Hub::UpdateReported(const std::string& key, const json::object& patch, Done<TwinChange> done) {
  registry_->Touch(key);
  registry_->UpdateReported(key, patch, [this, key, done = std::move(done)](Result<TwinChange> r) {
    if (r) TwinChanged(key, "updateTwin", *r);
    done(std::move(r));
  });
}

// ---------------------------------------------------------------- identities

void Hub::CreateIdentity(Identity identity, Done<IdentityView> done) {
  registry_->Create(std::move(identity), [this, done = std::move(done)](Result<IdentityView> r) {
    if (r) {
      const Identity& id = r->identity;
      auto twin = registry_->CachedTwin(IdentityKey(id.device_id, id.module_id));
      EmitEvent(MessageSource::kDeviceLifecycleEvents, id.device_id, id.module_id,
                id.is_module() ? "createModuleIdentity" : "createDeviceIdentity",
                twin ? json::serialize(*twin) : "{}");
    }
    done(std::move(r));
  });
}

void Hub::UpdateIdentity(Identity identity, std::string if_match, Done<IdentityView> done) {
  registry_->Update(
      std::move(identity), if_match, [this, done = std::move(done)](Result<IdentityView> r) {
        if (r && !r->identity.enabled && !r->identity.is_module()) {
          DisconnectIdentity(IdentityKey(r->identity.device_id, r->identity.module_id),
                             "the device was disabled");
        }
        done(std::move(r));
      });
}

void Hub::DeleteIdentity(std::string device_id, std::string module_id, std::string if_match,
                         Done<void> done) {
  // The twin as it was, for the lifecycle event (IoT Hub sends the deleted twin).
  auto last = annotator_ && annotator_->Wants(MessageSource::kDeviceLifecycleEvents)
                  ? registry_->CachedTwin(IdentityKey(device_id, module_id))
                  : nullptr;
  done = [this, device_id, module_id, last, inner = std::move(done)](Status st) {
    if (st) {
      EmitEvent(MessageSource::kDeviceLifecycleEvents, device_id, module_id,
                module_id.empty() ? "deleteDeviceIdentity" : "deleteModuleIdentity",
                last ? json::serialize(*last) : "{}");
    }
    inner(std::move(st));
  };
  registry_->Delete(device_id, module_id, if_match,
                    [this, device_id, module_id, done = std::move(done)](Status st) {
                      if (st) {
                        if (module_id.empty())
                          c2d_->Purge(device_id, /*device_deleted=*/true, [](Result<size_t>) {});
                        DisconnectIdentity(IdentityKey(device_id, module_id),
                                           "the identity was deleted");
                      }
                      done(std::move(st));
                    });
}

// ---------------------------------------------------------------- cloud-to-device

void Hub::SendC2d(std::string device_id, C2dMessage message,
                  std::function<void(Result<size_t>)> done) {
  auto view = registry_->Get(device_id);
  if (!view) {
    return done(Error(Errc::kDeviceNotFound, fmt::format("device '{}' does not exist", device_id)));
  }
  if (message.to.empty()) message.to = fmt::format("/devices/{}/messages/devicebound", device_id);
  c2d_->Send(device_id, view->identity.generation_id, std::move(message),
             [this, device_id, done = std::move(done)](Result<size_t> r) {
               if (r) asio::post(timers_, [this, device_id] { PumpC2d(device_id); });
               done(std::move(r));
             });
}

void Hub::PumpC2d(const std::string& device_id) {
  auto channel = ChannelFor(device_id);
  if (!channel || !channel->CanReceiveC2d()) return;
  for (auto& m : c2d_->TakeForDelivery(device_id, options_.c2d_mqtt_inflight)) {
    uint64_t seq = m.sequence;
    bool pushed = channel->PushC2d(m, [this, device_id, seq](bool acked) {
      // May run under a broker lock: only post.
      asio::post(timers_, [this, device_id, seq, acked] {
        if (acked) {
          c2d_->DeliveredOverMqtt(device_id, seq);
          PumpC2d(device_id);
        } else {
          c2d_->MqttDeliveryFailed(device_id, seq);
        }
      });
    });
    if (!pushed) c2d_->MqttDeliveryFailed(device_id, seq);
  }
}

// ---------------------------------------------------------------- system events

void Hub::TwinChanged(const std::string& key, std::string_view op, const TwinChange& change) {
  if (!annotator_ || !annotator_->Wants(MessageSource::kTwinChangeEvents)) return;
  json::object body = change.event;
  body["version"] = change.twin_version;
  auto slash = key.find('/');
  EmitEvent(MessageSource::kTwinChangeEvents, key.substr(0, slash),
            slash == std::string::npos ? "" : key.substr(slash + 1), op, json::serialize(body));
}

void Hub::EmitEvent(MessageSource source, std::string_view device_id, std::string_view module_id,
                    std::string_view op_type, std::string body) {
  if (!annotator_ || !annotator_->Wants(source) || stopping_) return;
  std::string_view kind, schema;
  switch (source) {
    case MessageSource::kTwinChangeEvents:
      kind = "twinChangeEvents";
      schema = "twinChangeNotification";
      break;
    case MessageSource::kDeviceLifecycleEvents:
      kind = "deviceLifecycleEvents";
      schema = "deviceLifecycleNotification";
      break;
    case MessageSource::kDeviceConnectionStateEvents:
      kind = "deviceConnectionStateEvents";
      schema = "deviceConnectionStateNotification";
      break;
    case MessageSource::kDeviceJobLifecycleEvents:
      kind = "deviceJobLifecycleEvents";
      schema = "deviceJobLifecycleNotification";
      break;
    case MessageSource::kDeviceMessages:
      return;  // telemetry comes from devices
  }
  eventlog::Message m;
  m.body = std::move(body);
  std::string hub_name = options_.host_name.substr(0, options_.host_name.find('.'));
  m.properties = {{"hubName", hub_name},
                  {"deviceId", std::string(device_id)},
                  {"operationTimestamp", timeutil::FormatUtcMs(NowMs())},
                  {"opType", std::string(op_type)},
                  {"iothub-message-schema", std::string(schema)}};
  if (!module_id.empty()) m.properties.emplace_back("moduleId", std::string(module_id));
  m.system.content_type = "application/json";
  m.system.content_encoding = "utf-8";
  m.system.connection_device_id = std::string(device_id);
  m.system.connection_module_id = std::string(module_id);
  m.system.message_source = std::string(kind);
  annotator_->Annotate(m, source);
  AppendTelemetry(std::make_shared<eventlog::Message>(std::move(m)), [kind](Status st) {
    if (!st) log::Get("hub")->warn("could not record a {} event: {}", kind, st.error().message());
  });
}

// ---------------------------------------------------------------- housekeeping

void Hub::RunAfter(std::chrono::milliseconds delay, std::function<void()> fn) {
  asio::post(timers_, [this, delay, fn = std::move(fn)]() mutable {
    auto timer = std::make_shared<asio::steady_timer>(timers_, delay);
    timer->async_wait([timer, fn = std::move(fn)](const boost::system::error_code&) { fn(); });
  });
}

void Hub::ScheduleHousekeeping() {
  if (stopping_) return;
  auto hk = housekeeper_;
  asio::post(timers_, [this, hk] {
    if (stopping_) return;
    hk->timer.expires_after(options_.housekeeping_interval);
    hk->timer.async_wait([this, hk](const boost::system::error_code& ec) {
      if (ec || stopping_) return;
      Housekeeping();
      ScheduleHousekeeping();
    });
  });
}

void Hub::Housekeeping() {
  for (auto& device : c2d_->Sweep())
    PumpC2d(device);
  // IoT Hub closes a connection whose SAS token has expired; the SDKs renew before that.
  int64_t now_s = NowMs() / 1000;
  std::vector<std::shared_ptr<DeviceChannel>> expired;
  {
    std::lock_guard lock(channels_mu_);
    for (auto& [k, a] : channels_) {
      if (a.device.token_expiry_s != 0 && a.device.token_expiry_s <= now_s) {
        expired.push_back(a.channel);
      }
    }
  }
  for (auto& c : expired)
    c->Disconnect("the SAS token expired");
}

}  // namespace orrery::hub
